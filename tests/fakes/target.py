"""A target for load tests: a real HTTP server (uvicorn) on 127.0.0.1 in a daemon thread.

Endpoints:

- `/fast`: 200 with a short body;
- `/slow?ms=N`: 200 after N milliseconds;
- `/flaky?every=N`: 500 on every Nth request to `/flaky` (the Nth, the 2Nth...), 200 otherwise;
- `/status?code=N`: status N;
- anything else: 404.

Everything it receives is counted (`requests`, by path in `by_path`, statuses sent in `statuses`),
with the time each connection sent its first request (`connections`, monotonic seconds) and every
`Authorization` header (`authorizations`). The state is guarded by `lock` (the server runs on its own
event loop in its own thread); read it once the load test has finished.

It is a bare ASGI application rather than a Starlette one so that the server is never the bottleneck
of the engine measuring it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from tests.fakes.server import FakeServer


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class FakeTarget(FakeServer):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.by_path: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.connections: dict[tuple[str, int], float] = {}
        self.authorizations: set[str] = set()
        self._flaky = 0
        self.serve(self.app, "fake-target", access_log=False, interface="asgi3",
                                      timeout_graceful_shutdown=1)

    @property
    def url(self) -> str:
        return self.base_url

    def reset(self) -> None:
        with self.lock:
            self.requests, self._flaky = 0, 0
            self.by_path.clear()
            self.statuses.clear()
            self.connections.clear()
            self.authorizations.clear()

    # ------------------------------------------------------------------------------- the app

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await _drain_body(receive)
        status = await self._answer(scope)
        body = b"ok" if status < 400 else b"error"
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def _answer(self, scope: Scope) -> int:
        path, query = scope["path"], parse_qs(scope["query_string"].decode())
        status = self._count(scope, path)
        if status is None:
            if path == "/slow":
                await _sleep_at_least(int(query.get("ms", ["100"])[0]) / 1000)
                status = 200
            elif path == "/status":
                status = int(query.get("code", ["200"])[0])
            elif path == "/fast":
                status = 200
            else:
                status = 404
        with self.lock:
            self.statuses[status] += 1
        return status

    def _count(self, scope: Scope, path: str) -> int | None:
        """Count the request; the status of a `/flaky` one (decided under the lock), else None."""
        host, port = scope.get("client") or ("", 0)
        authorization = dict(scope["headers"]).get(b"authorization")
        with self.lock:
            self.requests += 1
            self.by_path[path] += 1
            self.connections.setdefault((host, port), time.monotonic())
            if authorization is not None:
                self.authorizations.add(authorization.decode("latin-1"))
            if path != "/flaky":
                return None
            self._flaky += 1
            every = int(parse_qs(scope["query_string"].decode()).get("every", ["10"])[0])
            return 500 if self._flaky % every == 0 else 200

    # --------------------------------------------------------------------------- the server



async def _drain_body(receive: Receive) -> None:
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)


async def _sleep_at_least(seconds: float) -> None:
    """Never less than `seconds`: uvloop's timers go by the loop's cached clock and may fire early."""
    until = time.monotonic() + seconds
    while (remaining := until - time.monotonic()) > 0:
        await asyncio.sleep(remaining)
