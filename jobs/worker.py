"""The arq worker: `aqe worker` (or the Procfile's `worker:` line) runs `run_worker(settings)`."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from arq import func
from arq.connections import RedisSettings
from arq.worker import Worker
from redis.asyncio import Redis

from jobs import fleet
from jobs.callbacks import ATTEMPT_DELAYS_S, TIMEOUT_S
from jobs.pipeline import JOB_TIMEOUT_S, MAX_TRIES
from jobs.services import Services
from jobs.settings import Settings
from jobs.store import ARQ_CALLBACK_FUNCTION, ARQ_FUNCTION, ARQ_QUEUE, arq_deserialize, arq_serialize
from jobs.tasks.analyse import analyse
from jobs.tasks.callback import callback
from jobs.worker_health import HEALTH_INTERVAL_S

log = logging.getLogger("aqe.worker")
CALLBACK_TIMEOUT_S = sum(ATTEMPT_DELAYS_S) + len(ATTEMPT_DELAYS_S) * (TIMEOUT_S + 5)  # every attempt, with margin


class AqeWorker(Worker):
    """arq's worker, telling jobs cancelled by a shutdown (retried later) from jobs aborted on request."""

    def _note_shutdown(self) -> None:
        services: Services | None = self.ctx.get("services")
        if services is not None:
            services.shutting_down = True

    def handle_sig(self, signum: Any) -> None:
        self._note_shutdown()
        super().handle_sig(signum)

    def handle_sig_wait_for_completion(self, signum: Any) -> None:
        self._note_shutdown()
        super().handle_sig_wait_for_completion(signum)


async def heartbeat(services: Services, max_jobs: int) -> None:
    """`aqe:worker:<host>:<pid>` every few seconds, for /api/v1/fleet/status; a failed beat is logged, not fatal."""
    identity, started_at = fleet.worker_id(), round(time.time(), 3)
    while True:
        try:
            await fleet.beat(services.redis, identity, started_at, services.jobs_running, max_jobs)
        except Exception as exc:  # Redis away for a moment: the next beat tries again
            log.warning("worker heartbeat failed: %s", exc)
        await asyncio.sleep(fleet.HEARTBEAT_INTERVAL_S)


def create_worker(settings: Settings, *, max_jobs: int = 4, burst: bool = False) -> Worker:
    if not settings.redis_url:
        raise RuntimeError("REDIS_URL is not set; start the worker with `aqe run` or set REDIS_URL")
    redis_url = settings.redis_url

    async def on_startup(ctx: dict[str, Any]) -> None:
        redis = Redis.from_url(redis_url, max_connections=64)
        ctx["services"] = services = Services.create(settings, redis)
        ctx["heartbeat"] = asyncio.create_task(heartbeat(services, max_jobs))

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        if "heartbeat" in ctx:
            ctx["heartbeat"].cancel()
        services: Services | None = ctx.get("services")
        if services is not None:
            await fleet.forget(services.redis, fleet.worker_id())
            await services.close()
            await services.redis.aclose()

    return AqeWorker(
        functions=[func(analyse, name=ARQ_FUNCTION, timeout=JOB_TIMEOUT_S + 120, max_tries=MAX_TRIES),
                   func(callback, name=ARQ_CALLBACK_FUNCTION, timeout=CALLBACK_TIMEOUT_S, max_tries=1)],
        queue_name=ARQ_QUEUE,
        redis_settings=RedisSettings.from_dsn(redis_url),
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        job_serializer=arq_serialize,
        job_deserializer=arq_deserialize,
        poll_delay=settings.worker_poll_delay,
        health_check_interval=HEALTH_INTERVAL_S,
        max_jobs=max_jobs,
        keep_result=3600,
        allow_abort_jobs=True,
        burst=burst,
        handle_signals=not burst,
    )
