"""What every fake server shares: an ASGI app served by uvicorn in a daemon thread on 127.0.0.1."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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


class Waitable:
    """`wait_for` of the fake forges: their state is guarded by `self.lock` and described by `summary()`."""

    lock: threading.RLock

    def summary(self, last: int = 60) -> str:
        raise NotImplementedError

    def wait_for(self, predicate: Callable[[Self], Any], timeout: float = 30, *, interval: float = 0.05,
                 description: str | None = None) -> Any:
        """Poll `predicate(self)` (under the lock) until truthy; return its value. Exceptions raised by the
        predicate count as "not yet". On timeout an AssertionError with `summary()` is raised."""
        deadline = time.monotonic() + timeout
        last_error: BaseException | None = None
        while True:
            with self.lock:
                try:
                    result = predicate(self)
                except Exception as exc:  # noqa: BLE001 - "not yet"
                    last_error, result = exc, None
                if result:
                    return result
            if time.monotonic() >= deadline:
                what = description or getattr(predicate, "__name__", repr(predicate))
                error = f"\nlast predicate error: {last_error!r}" if last_error else ""
                raise AssertionError(f"timed out after {timeout}s waiting for {what}{error}\n{self.summary()}")
            time.sleep(interval)


@dataclass
class Fault:
    """An error a fake answers for the next `remaining` requests matching (method or "*", path regex)."""

    method: str
    pattern: re.Pattern[str]
    status: int
    remaining: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def take_fault(faults: list[Fault], method: str, path: str) -> Fault | None:
    """The first fault matching this request, counted down (and dropped once used up); None when none matches.
    The caller holds the fake's lock."""
    for fault in faults:
        if fault.method in ("*", method) and fault.pattern.search(path):
            fault.remaining -= 1
            if fault.remaining <= 0:
                faults.remove(fault)
            return fault
    return None
