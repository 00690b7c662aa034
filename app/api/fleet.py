"""GET (and POST) /api/v1/fleet/status: workers alive, the queue, what the agents did lately, Redis."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from app.api.auth import require_scope
from jobs import fleet

_encode = msgspec.json.Encoder().encode


async def fleet_status(request: Request) -> Response:
    await require_scope(request, "fleet:read")
    state = request.app.state
    return Response(_encode(await fleet.snapshot(state.redis, pipelined=state.store.pipelined)),
                    media_type="application/json")
