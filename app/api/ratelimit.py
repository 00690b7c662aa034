"""The API's rate limit: an ASGI middleware on the `/api/v1` mount.

Requests are counted per API key (its own `rate_limit`, else AQE_RATE_LIMIT), per JWT subject, and, without
valid credentials, per client address (the socket's; uvicorn replaces it with X-Forwarded-For only for proxies in
FORWARDED_ALLOW_IPS, 127.0.0.1 by default). Every answer carries `X-RateLimit-Limit`, `X-RateLimit-Remaining`
and `X-RateLimit-Reset` (seconds until one more request is allowed); over the limit it is a 429 problem with
`Retry-After`. A WebSocket stream counts as one request when it connects.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from starlette.datastructures import State
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.auth import Principal, api_key_credential, identify, key_principal, settle
from app.api.errors import ApiError, problem
from app.api.jobs import keep_prefetched, read_job_id, reads_stream
from app.api.streams import BACKLOG_PAGE, resume_after
from jobs.apikeys import KEYS_HASH, key_hash, stored_key
from jobs.ratelimit import Decision, Rate, RateLimiter, parse_rate
from jobs.store import events_key, events_start, job_key


def client_ip(request: HTTPConnection) -> str:
    return request.client.host if request.client else "unknown"


def limit_for(principal: Principal | None, ip: str, default: str) -> tuple[str, Rate]:
    """Whose counter a request goes to, and at what rate."""
    if principal is None:
        return f"ip:{ip}", parse_rate(default)
    return principal.limit_identity, parse_rate(principal.rate_limit or default)


def rejection(identity: str, decision: Decision, rate: Rate) -> tuple[int, str, str]:
    whose = "address (no valid credentials)" if identity.startswith("ip:") else "credential"
    return 429, "rate_limited", f"over the limit of {rate} for this {whose}; retry in {decision.reset_s} s"


def backlog_of(after: str | None, entries: list[Any] | None) -> tuple[str, list[Any]] | None:
    return None if after is None or entries is None else (after, entries)


class RateLimit:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._limiter: tuple[Redis, RateLimiter] | None = None

    def limiter(self, state: State) -> RateLimiter:
        if self._limiter is None or self._limiter[0] is not state.redis:
            self._limiter = (state.redis, RateLimiter(state.redis, state.store.pipelined))
        return self._limiter[1]

    async def count(self, request: Request) -> tuple[str, Rate, Decision]:
        """Count the request against its caller's limit: whose counter, at what rate, and the decision. The caller
        is settled for the endpoint too; an API key is looked up and counted in one Redis round trip. That round
        trip (a token's count too) also reads the record of the job a status, events or stream request reads, and a
        stream's first page of events; the endpoint checks that the caller may see them."""
        settings = request.app.state.settings
        limiter = self.limiter(request.app.state)
        job_id = read_job_id(request.scope)
        after = resume_after(request) if job_id is not None and reads_stream(request.scope) else None
        read = None if job_id is None else job_key(job_id)
        read_stream = None if job_id is None or after is None else (events_key(job_id), events_start(after),
                                                                     BACKLOG_PAGE)
        if (credential := api_key_credential(request)) is not None:
            digest = key_hash(credential)
            found = await limiter.hit_key(KEYS_HASH, digest, parse_rate(settings.rate_limit), read=read,
                                          read_stream=read_stream)
            if found is not None:
                principal = await settle(request, key_principal(request, stored_key(found.record, digest)))
                if principal is not None:
                    if job_id is not None and found.decision.allowed:
                        keep_prefetched(request.scope, job_id, found.value, backlog_of(after, found.entries))
                    return principal.limit_identity, found.rate, found.decision
            else:
                await settle(request, key_principal(request, None))
        principal = await identify(request)
        identity, rate = limit_for(principal, client_ip(request), settings.rate_limit)
        if principal is None or job_id is None:  # no job to read, or no caller who could see it
            return identity, rate, await limiter.hit(identity, rate)
        counted = await limiter.hit_reading(identity, rate, read=read, read_stream=read_stream)
        if counted.decision.allowed:
            keep_prefetched(request.scope, job_id, counted.value, backlog_of(after, counted.entries))
        return identity, rate, counted.decision

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        identity, rate, decision = await self.count(Request(scope))
        if not decision.allowed:
            await self._problem(scope, receive, send, *rejection(identity, decision, rate), decision.headers())
            return
        started, raw_headers = False, decision.raw_headers()

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True  # the endpoints never set X-RateLimit-* themselves: appending cannot repeat one
                message = {**message, "headers": [*message.get("headers", ()), *raw_headers]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except (ApiError, HTTPException) as exc:  # raised past the endpoint's handlers (no route, wrong method)
            if started:
                raise
            status = exc.status if isinstance(exc, ApiError) else exc.status_code
            code = exc.code if isinstance(exc, ApiError) else "http_error"
            extra = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
            await self._problem(scope, receive, send, status, code, str(exc.detail), {**extra, **decision.headers()})

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A stream connection counts as one request; over the limit the handshake is refused with the 429
        problem (the ASGI denial-response extension; a plain close, which clients see as 403, without it)."""
        identity, rate, decision = await self.count(HTTPConnection(scope))  # type: ignore[arg-type]
        if decision.allowed:
            await self.app(scope, receive, send)
            return
        status, code, detail = rejection(identity, decision, rate)
        if "websocket.http.response" not in scope.get("extensions", {}):
            await send({"type": "websocket.close", "code": 1008, "reason": detail[:120]})
            return
        response = problem(status, code, detail)
        response.headers.update(decision.headers())
        await send({"type": "websocket.http.response.start", "status": status, "headers": response.raw_headers})
        await send({"type": "websocket.http.response.body", "body": response.body})

    @staticmethod
    async def _problem(scope: Scope, receive: Receive, send: Send, status: int, code: str, detail: str,
                       headers: dict[str, str]) -> None:
        response = problem(status, code, detail)
        response.headers.update(headers)
        await response(scope, receive, send)
