"""POST /webhooks/github and /webhooks/gitlab: verify, decide, dedupe, enqueue, answer. No forge API call, no git."""

from __future__ import annotations

import logging
from collections.abc import Callable

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


async def _receive(request: Request, forge: str, read: Callable[[bytes], tuple[Delivery, Decision]],
                   redeliver: str) -> Response:
    """Read the body, verify and decide (`read`), enqueue, answer; count and log the delivery either way."""
    try:
        delivery, decision = read(await _read_body(request))
        response = await _answer(request, delivery, decision)
    except WebhookError as exc:
        WEBHOOK_DELIVERIES.labels(forge, "unverified", "refused").inc()  # its headers are not to be trusted
        log.info("%s delivery refused status=%d reason=%s", forge, exc.status_code, exc.message)
        return _json(exc.status_code, {"error": "bad_delivery", "detail": exc.message})
    except RedisError as exc:
        log.error("%s delivery could not be enqueued: %s", forge, exc)
        return _json(503, {"error": "queue_unavailable", "detail": f"could not enqueue; {redeliver}"})
    WEBHOOK_DELIVERIES.labels(forge, delivery.event, delivery_outcome(response.status_code, decision)).inc()
    log.info("%s delivery=%s event=%s action=%s repo=%s status=%d secret=%d", forge, delivery.delivery_id,
             delivery.event, decision.action, decision.repo, response.status_code, delivery.secret_index)
    return response


async def github(request: Request) -> Response:
    settings = request.app.state.settings
    if not settings.webhook_secrets:
        return _json(503, {"error": "not_configured", "detail": "GITHUB_WEBHOOK_SECRET is not set on this AQE server"})
    slug = settings.github.app_slug if settings.github else "aqe"

    def read(body: bytes) -> tuple[Delivery, Decision]:
        delivery = github_webhook.verify(request.headers, body, settings.webhook_secrets)
        return delivery, github_webhook.decide(delivery, slug)

    # GitHub does not retry by itself: a 503 shows the failure in the App's delivery log.
    return await _receive(request, "github", read, "redeliver from the App settings")


async def gitlab(request: Request) -> Response:
    """Every event is answered 2xx unless the delivery is not authentic or malformed: GitLab disables a hook
    after repeated 4xx/5xx answers."""
    settings = request.app.state.settings.gitlab
    if not (settings.webhook_secrets or settings.signing_tokens):
        return _json(503, {"error": "not_configured", "detail": "GITLAB_WEBHOOK_SECRET is not set on this AQE server"})

    def read(body: bytes) -> tuple[Delivery, Decision]:
        delivery = gitlab_webhook.verify(request.headers, body, settings.webhook_secrets, settings.signing_tokens)
        return delivery, gitlab_webhook.decide(delivery, settings.url)

    # A resend from the hook's "Recent events" carries the same Idempotency-Key: it is deduped once it lands.
    return await _receive(request, "gitlab", read, "resend it from the webhook's Recent events")
