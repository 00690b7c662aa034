"""Run a command of untrusted code: its own process group, resource limits, a deadline, a clean
environment, and only the tail of its output kept.

This is containment, not isolation: the command runs as the worker's user and sees its file system.
It does run without any capability (even when the worker is root) and with no_new_privs, and the AQE
processes are not dumpable (`harden_process`), so it cannot read their memory or `/proc/<pid>/environ`
nor raise its own limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import resource
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

DEFAULT_OUTPUT_LIMIT_BYTES = 1024 * 1024
KILL_GRACE_S = 5.0
SYSTEM_PATH = ("/usr/local/bin", "/usr/bin", "/bin")
_READ_CHUNK = 64 * 1024
_DRAIN_AFTER_EXIT_S = 2.0

Limits = list[tuple[int, tuple[int, int]]]

_PR_SET_PDEATHSIG, _PR_SET_DUMPABLE, _PR_CAPBSET_DROP, _PR_SET_NO_NEW_PRIVS = 1, 4, 24, 38
_CAP_LAST = 63
_libc = ctypes.CDLL(None, use_errno=True)


def harden_process() -> bool:
    """Make this process non-dumpable: code we run (same user, no CAP_SYS_PTRACE) cannot read our
    environment or memory through /proc. Returns False where the kernel refuses."""
    return _libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) == 0


def die_with_parent() -> None:
    """In a child, before exec: the kernel sends it SIGTERM when its parent dies (PR_SET_PDEATHSIG), so a killed
    supervisor leaves no process behind."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _drop_privileges() -> None:
    """In the child: empty the capability bounding set and set no_new_privs, so even a root worker's
    tests run without capabilities after exec (no reading other processes, no raising limits)."""
    for cap in range(_CAP_LAST + 1):
        if _libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break  # past the kernel's last capability (or not permitted: then there are none to drop)
    _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class SandboxResult:
    returncode: int  # negative: killed by that signal
    output: str  # stdout and stderr interleaved; only the tail when longer than the limit
    timed_out: bool
    duration_s: float
    output_truncated: bool = False


def scrubbed_env(
    home: Path, extra_path: list[Path], extra: dict[str, str], *, tmpdir: Path | None = None
) -> dict[str, str]:
    """An environment built from nothing: no variable of the worker's (tokens, GITHUB_*, REDIS_URL,
    AQE_*) can reach the command. TMPDIR defaults to `home/tmp`; `extra` is applied last."""
    env = {
        "PATH": os.pathsep.join([*(str(p) for p in extra_path), *SYSTEM_PATH]),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TMPDIR": str(tmpdir if tmpdir is not None else home / "tmp"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "CI": "true",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
    }
    return {**env, **extra}


def shell_argv(command: str | Sequence[str]) -> list[str]:
    """A shell string runs under /bin/sh -c; a sequence is the argv itself."""
    return ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)


def resource_limits(memory_mb: int) -> Limits:
    """RLIMIT_AS = memory_mb MiB (never above the current hard limit) and no core dumps."""
    return [
        (resource.RLIMIT_AS, _capped(resource.RLIMIT_AS, memory_mb * 1024 * 1024)),
        (resource.RLIMIT_CORE, (0, 0)),
    ]


def _capped(which: int, wanted: int) -> tuple[int, int]:
    hard = resource.getrlimit(which)[1]
    value = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    return value, value


def _prepare_child(limits: Limits) -> None:
    """Runs in the child between fork and exec: nothing here may take a lock."""
    for which, values in limits:
        resource.setrlimit(which, values)
    _drop_privileges()


class _Tail:
    """Keeps the last `limit` bytes written to it."""

    def __init__(self, limit: int) -> None:
        self.limit, self.data, self.dropped = limit, bytearray(), 0

    def add(self, chunk: bytes) -> None:
        self.data += chunk
        excess = len(self.data) - self.limit
        if excess > 0:
            del self.data[:excess]
            self.dropped += excess

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


async def _drain(stream: asyncio.StreamReader, tail: _Tail) -> None:
    while chunk := await stream.read(_READ_CHUNK):
        tail.add(chunk)


async def run_sandboxed(
    command: str | Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    timeout_s: float,
    memory_mb: int,
    output_limit_bytes: int = DEFAULT_OUTPUT_LIMIT_BYTES,
    kill_grace_s: float = KILL_GRACE_S,
) -> SandboxResult:
    """Run `command` in a new session under `memory_mb` of address space; past `timeout_s` its whole
    process group gets SIGTERM, then SIGKILL after `kill_grace_s`. Leftover processes of the group
    are killed when the command exits, and when the caller is cancelled."""
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        *shell_argv(command),
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=partial(_prepare_child, resource_limits(memory_mb)),
    )
    assert process.stdout is not None
    tail = _Tail(output_limit_bytes)
    reader = asyncio.create_task(_drain(process.stdout, tail))
    try:
        timed_out = not await _until(lambda: process.returncode is not None, timeout_s)
        if timed_out:
            await _terminate_group(process, reader, kill_grace_s)
    finally:
        _kill_group(process.pid, signal.SIGKILL)
        await _finish_reading(process, reader)
    returncode = await process.wait()
    return SandboxResult(returncode, tail.text(), timed_out, round(time.monotonic() - started, 3), tail.dropped > 0)


async def _until(condition: Callable[[], bool], timeout_s: float) -> bool:
    """Poll `condition` until it holds (True) or `timeout_s` passes (False).

    Polling, because `Process.wait()` also waits for every holder of the output pipe to close it,
    and a background process of the command's may hold it for ever."""
    deadline, pause = time.monotonic() + timeout_s, 0.005
    while not condition():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        await asyncio.sleep(min(pause, remaining))
        pause = min(pause * 2, 0.1)
    return True


async def _terminate_group(process: asyncio.subprocess.Process, reader: asyncio.Task[None], grace_s: float) -> None:
    """SIGTERM to the group; wait until the leader is gone and the output closed, or `grace_s`."""
    _kill_group(process.pid, signal.SIGTERM)
    await _until(lambda: process.returncode is not None and reader.done(), grace_s)


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def _finish_reading(process: asyncio.subprocess.Process, reader: asyncio.Task[None]) -> None:
    """Let the reader collect what is still buffered; give up on processes that left the group
    (setsid) but still hold the output open, and close our end of the pipe."""
    if await _until(reader.done, _DRAIN_AFTER_EXIT_S):
        return
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reader
    pipe = process._transport.get_pipe_transport(1) if hasattr(process, "_transport") else None
    if pipe is not None:
        pipe.close()
