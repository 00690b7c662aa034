"""Completion callbacks: `send_result` for a job a worker ran to its end, and the arq function `callback` for one
that ended otherwise (cancelled while queued, the gate answered by the web process, a job given up after its
workers stopped). A worker runs `callback` as it runs analyses, so the attempts are retried with backoff off the
request path and survive a web process's restart."""

from __future__ import annotations

import logging
from typing import Any

from jobs import callbacks
from jobs.model import TERMINAL_STATUSES, JobRecord
from jobs.services import Services

log = logging.getLogger("aqe.callbacks")


async def send_result(services: Services, record: JobRecord) -> None:
    """The request's `callback_url` gets the ended job's result (`jobs.callbacks`); each attempt is saved on the job."""
    if not record.request.callback_url or record.status not in TERMINAL_STATUSES:
        return
    settings = services.settings
    status_url = f"{settings.public_url}/api/v1/job/{record.id}/status"
    try:
        await callbacks.deliver(services.http, record, settings.callback_secret, status_url, services.store.update,
                                denied=settings.denied_networks)
    except Exception:
        log.exception("job %s: the completion callback failed", record.id)


async def callback(ctx: dict[str, Any], job_id: str) -> None:
    services: Services = ctx["services"]
    record = await services.store.get(job_id)
    if record is not None:
        await send_result(services, record)
