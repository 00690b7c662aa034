"""What every fake server shares: an ASGI app served by uvicorn in a daemon thread on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from typing import Any, Self

import uvicorn

START_TIMEOUT_S = 15.0


class ThreadedServer:
    """`start()` returns the base URL once the socket listens (on a port the kernel picks)."""

    def __init__(self, app: Any, name: str, **options: Any) -> None:
        self.app, self.name, self.options = app, name, {"log_level": "warning", "lifespan": "off", **options}
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        self._server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=0, **self.options))
        self._thread = threading.Thread(target=self._server.run, name=self.name, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"{self.name} server thread died during startup")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} server did not start within {START_TIMEOUT_S:.0f}s")
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None


class FakeServer:
    """Base of the fake servers: `start()`/`stop()`, a context manager, and `base_url` once started.
    A subclass builds its ASGI app, then calls `self.serve(app, name, **uvicorn_options)`."""

    def serve(self, app: Any, name: str, **options: Any) -> None:
        self._threaded = ThreadedServer(app, name, **options)
        self._base_url: str | None = None

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError(f"{self._threaded.name} is not started")
        return self._base_url

    def start(self) -> None:
        self._base_url = self._threaded.start()

    def stop(self) -> None:
        self._threaded.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
