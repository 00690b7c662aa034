"""A completion-callback receiver on 127.0.0.1: records every POST (headers and body), fails on demand."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.server import FakeServer


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes


class FakeReceiver(FakeServer):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self._failures: list[int] = []
        self.app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])
        self.serve(self.app, "fake-receiver")

    @property
    def url(self) -> str:
        return f"{self.base_url}/hook"

    def fail_next(self, count: int, status: int = 503) -> None:
        with self.lock:
            self._failures += [status] * count

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        with self.lock:
            self.received.append(Received(dict(request.headers), body))
            status = self._failures.pop(0) if self._failures else 204
        return Response(status_code=status)
