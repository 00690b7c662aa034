"""Helpers for tests (and benchmarks) that start AQE's own processes on loopback."""

from __future__ import annotations

import socket
import subprocess
import time

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, processes: list[subprocess.Popen], timeout: float = 60.0) -> None:  # type: ignore[type-arg]
    """Until `url`/readyz answers 200 (Redis reachable and a worker heartbeat); fail if a process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in processes:
            if proc.poll() is not None:
                raise RuntimeError(f"a process of the stack exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not become ready within {timeout:.0f} s")
