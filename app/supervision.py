"""What `aqe run` and `aqe web --processes N` share as supervisors of child processes."""

from __future__ import annotations

import signal
import subprocess
import time
from types import FrameType


class StopSignal:
    """Installs SIGTERM and SIGINT handlers that only note the signal: the supervisor's loop checks `received`
    between its looks at the children, then stops them in order."""

    def __init__(self) -> None:
        self.received = False
        signal.signal(signal.SIGINT, self._note)
        signal.signal(signal.SIGTERM, self._note)

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.received = True


def stop_children(children: list[subprocess.Popen[bytes]], timeout: float) -> None:
    """SIGTERM to every child still running, then wait for all of them up to `timeout` seconds in all; kill the
    ones still there."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
