"""POST /webhooks/github and /webhooks/gitlab: verify, decide, dedupe, enqueue, answer. No forge API call, no git."""

from __future__ import annotations

import logging

import msgspec
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response

from app.metrics import WEBHOOK_DELIVERIES
from jobs.forges.base import Decision, Delivery, WebhookError
from jobs.forges.github import webhook as github_webhook
from jobs.forges.gitlab import webhook as gitlab_webhook

log = logging.getLogger("aqe.webhooks")
_encode = msgspec.json.Encoder().encode


def _json(status: int, body: dict) -> Response:
    return Response(_encode(body), status_code=status, media_type="application/json")


MAX_BODY_BYTES = 25 * 1024 * 1024  # GitHub's cap, and GitLab's default instance limit


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise WebhookError(413, "payload larger than the forges' 25 MB cap")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise WebhookError(413, "payload larger than the forges' 25 MB cap")
        chunks.append(chunk)
    return b"".join(chunks)


async def _record_installation(request: Request, decision: Decision) -> None:
    record = decision.record or {}
    await request.app.state.redis.hset("aqe:installations", str(record.get("installation_id")), _encode(record))


async def _answer(request: Request, delivery: Delivery, decision: Decision) -> Response:
    store = request.app.state.store
    key = f"aqe:delivery:{delivery.forge}:{delivery.delivery_id}"
    if decision.record is not None:
        await _record_installation(request, decision)
    if not decision.runs:
        reason = decision.ignored or "nothing to do"
        first = await store.record_ignored(key, event=delivery.event, action=decision.action,
                                           repo=decision.repo, reason=reason)
        return _json(200, {"ignored": reason} if first else {"duplicate": True, "ignored": reason})
    outcomes = [await store.enqueue(run, delivery_key=key, event=delivery.event, action=decision.action)
                for run in decision.runs]
    if outcomes[0].state == "duplicate":
        return _json(200, {"duplicate": True, "job_id": outcomes[0].job_id})
    return _json(202, {"job_ids": [o.job_id for o in outcomes], "status": outcomes[0].state})


def delivery_outcome(status: int, decision: Decision) -> str:
    if status == 202:
        return "queued"
    return "duplicate" if decision.runs else "ignored"


async def github(request: Request) -> Response:
    settings = request.app.state.settings
    if not settings.webhook_secrets:
        return _json(503, {"error": "not_configured", "detail": "GITHUB_WEBHOOK_SECRET is not set on this AQE server"})
    try:
        body = await _read_body(request)
        delivery = github_webhook.verify(request.headers, body, settings.webhook_secrets)
        decision = github_webhook.decide(delivery, settings.github.app_slug if settings.github else "aqe")
        response = await _answer(request, delivery, decision)
    except WebhookError as exc:
        WEBHOOK_DELIVERIES.labels("github", "unverified", "refused").inc()  # its headers are not to be trusted
        log.info("github delivery refused status=%d reason=%s", exc.status_code, exc.message)
        return _json(exc.status_code, {"error": "bad_delivery", "detail": exc.message})
    except RedisError as exc:
        # GitHub does not retry by itself: answer 503 so the failure shows in the App's delivery log.
        log.error("github delivery could not be enqueued: %s", exc)
        return _json(503, {"error": "queue_unavailable", "detail": "could not enqueue; redeliver from the App settings"})
    WEBHOOK_DELIVERIES.labels("github", delivery.event, delivery_outcome(response.status_code, decision)).inc()
    log.info("github delivery=%s event=%s action=%s repo=%s status=%d secret=%d", delivery.delivery_id,
             delivery.event, decision.action, decision.repo, response.status_code, delivery.secret_index)
    return response


async def gitlab(request: Request) -> Response:
    """Every event is answered 2xx unless the delivery is not authentic or malformed: GitLab disables a hook
    after repeated 4xx/5xx answers."""
    settings = request.app.state.settings.gitlab
    if not (settings.webhook_secrets or settings.signing_tokens):
        return _json(503, {"error": "not_configured", "detail": "GITLAB_WEBHOOK_SECRET is not set on this AQE server"})
    try:
        body = await _read_body(request)
        delivery = gitlab_webhook.verify(request.headers, body, settings.webhook_secrets, settings.signing_tokens)
        decision = gitlab_webhook.decide(delivery, settings.url)
        response = await _answer(request, delivery, decision)
    except WebhookError as exc:
        WEBHOOK_DELIVERIES.labels("gitlab", "unverified", "refused").inc()
        log.info("gitlab delivery refused status=%d reason=%s", exc.status_code, exc.message)
        return _json(exc.status_code, {"error": "bad_delivery", "detail": exc.message})
    except RedisError as exc:
        # A resend from the hook's "Recent events" carries the same Idempotency-Key: it is deduped once it lands.
        log.error("gitlab delivery could not be enqueued: %s", exc)
        return _json(503, {"error": "queue_unavailable", "detail": "could not enqueue; resend it from the webhook's Recent events"})
    WEBHOOK_DELIVERIES.labels("gitlab", delivery.event, delivery_outcome(response.status_code, decision)).inc()
    log.info("gitlab delivery=%s event=%s action=%s repo=%s status=%d", delivery.delivery_id, delivery.event,
             decision.action, decision.repo, response.status_code)
    return response
