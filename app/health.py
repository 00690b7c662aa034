"""GET /healthz (the process is up) and GET /readyz (Redis answers and a worker was seen recently)."""

from __future__ import annotations

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse

from jobs.worker_health import HEALTH_INTERVAL_S, HEALTH_KEY


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    redis = request.app.state.redis
    try:
        await redis.ping()
        heartbeat = await redis.get(HEALTH_KEY)
    except (RedisError, OSError) as exc:
        return JSONResponse({"status": "unavailable", "redis": f"unreachable: {type(exc).__name__}"}, status_code=503)
    if heartbeat is None:
        return JSONResponse({"status": "unavailable", "redis": "ok", "worker": f"no worker heartbeat in the last {HEALTH_INTERVAL_S + 1} s"},
                            status_code=503)
    return JSONResponse({"status": "ok", "redis": "ok", "worker": heartbeat.decode()})
