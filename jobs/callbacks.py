"""Completion callbacks: when a job that asked for one ends, AQE POSTs its result to `callback_url`.

The body is JSON (`callback_payload`), signed like GitHub's webhooks: `X-AQE-Signature-256: sha256=<hex HMAC-SHA256
of the body with AQE_CALLBACK_SECRET>`, with `X-AQE-Event: job.ended`, `X-AQE-Delivery` (one id per job, the same
on every attempt) and `X-AQE-Job`. A 2xx answer ends it; otherwise it is tried again after 2 and 8 seconds
(ATTEMPT_DELAYS_S), and every attempt is kept on the job record (`callbacks`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable

import httpx
import msgspec

from jobs import netpolicy
from jobs.model import CallbackAttempt, JobRecord, now

ATTEMPT_DELAYS_S = (0.0, 2.0, 8.0)
TIMEOUT_S = 10.0
MAX_URL_LENGTH = 2000


def callback_payload(record: JobRecord, status_url: str) -> bytes:
    req = record.request
    return msgspec.json.encode({
        "job_id": record.id, "status": record.status, "conclusion": record.conclusion, "error": record.error,
        "repo": req.repo, "sha": req.head_sha, "ref": req.head_ref, "trigger": req.trigger,
        "finished_at": record.finished_at, "status_url": status_url,
        "agents": [{"agent": r.agent, "conclusion": r.conclusion, "title": r.title, "metrics": r.metrics}
                   for r in record.results],
    })


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def callback_headers(secret: str, body: bytes, job_id: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "User-Agent": "AQE-Callback/1", "X-AQE-Event": "job.ended",
            "X-AQE-Delivery": f"{job_id}-callback", "X-AQE-Job": job_id,
            "X-AQE-Signature-256": signature(secret, body)}


async def deliver(http: httpx.AsyncClient, record: JobRecord, secret: str, status_url: str,
                  saved: Callable[[JobRecord], Awaitable[None]],
                  delays: tuple[float, ...] = ATTEMPT_DELAYS_S, denied: tuple[netpolicy.Network, ...] = ()) -> bool:
    """POST the result until a 2xx (or the attempts run out); each attempt is saved on the record."""
    url = record.request.callback_url
    if not url:
        return True
    if why := await netpolicy.refusal(url, denied):
        record.callbacks.append(CallbackAttempt(at=now(), status=None, error=f"not sent: the callback URL {why}",
                                                duration_s=0.0))
        await saved(record)
        return False
    body = callback_payload(record, status_url)
    headers = callback_headers(secret, body, record.id)
    for delay in delays:
        await asyncio.sleep(delay)
        started = time.monotonic()
        attempt = CallbackAttempt(at=now(), status=None, error=None, duration_s=0.0)
        try:
            response = await http.post(url, content=body, headers=headers, timeout=TIMEOUT_S, follow_redirects=False)
            attempt.status = response.status_code
        except httpx.HTTPError as exc:
            attempt.error = f"{type(exc).__name__}: {exc}"[:300]
        attempt.duration_s = round(time.monotonic() - started, 3)
        record.callbacks.append(attempt)
        await saved(record)
        if attempt.status is not None and 200 <= attempt.status < 300:
            return True
    return False


def checked_callback_url(url: str) -> str | None:
    """Why `url` cannot be a callback URL, or None when it can."""
    if len(url) > MAX_URL_LENGTH:
        return f"longer than {MAX_URL_LENGTH} characters"
    try:
        parts = httpx.URL(url)
    except httpx.InvalidURL as exc:
        return f"not a URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.host:
        return "must be an http(s) URL"
    return None
