"""API authentication: `Authorization: Bearer aqe_…` checked against the stored key hashes."""

from __future__ import annotations

from starlette.requests import Request

from app.api.errors import ApiError
from jobs.apikeys import ApiKey, find_key


async def require_api_key(request: Request) -> ApiKey:
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    if not header:
        raise ApiError(401, "unauthenticated", "send 'Authorization: Bearer aqe_…' (create a key with `aqe api generate-key`)")
    if scheme.lower() != "bearer" or not credential.strip():
        raise ApiError(401, "unauthenticated", "the Authorization header must be 'Bearer <API key>'")
    key = await find_key(request.app.state.redis, credential.strip())
    if key is None:
        raise ApiError(401, "invalid_credentials", "the API key is not valid")
    return key
