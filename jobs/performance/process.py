"""Run a load generator process: input on stdin, result on stdout, progress lines on stderr.

The process gets its own session (process group) and an environment built from nothing
(`jobs.sandbox.scrubbed_env`); past its deadline, when it is done, or when the caller is cancelled
(the job was aborted), the whole group is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

STDERR_TAIL_LINES = 20

class EngineError(RuntimeError):
    """A load generator (the built-in engine or k6) could not run the test; the message says why."""


LineHandler = Callable[[str], Awaitable[bool]]
"""`await on_line(line)` for each stderr line: True when it was a progress line (not kept for errors)."""


@dataclass(frozen=True, slots=True)
class ProcessResult:
    returncode: int | None  # None: killed at the deadline
    stdout: bytes
    stderr_tail: str  # the last lines that were not progress lines
    timed_out: bool


async def run_process(
    argv: Sequence[str],
    *,
    env: dict[str, str],
    cwd: Path,
    timeout_s: float,
    stdin: bytes | None = None,
    on_line: LineHandler | None = None,
) -> ProcessResult:
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
    try:
        async with asyncio.timeout(timeout_s):
            stdout, _ = await asyncio.gather(
                _feed_and_read(process, stdin), _read_lines(process.stderr, on_line, tail)
            )
            returncode: int | None = await process.wait()
    except TimeoutError:
        return ProcessResult(None, b"", "\n".join(tail), timed_out=True)
    finally:
        kill_group(process.pid)
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await asyncio.shield(process.wait())
    return ProcessResult(returncode, stdout, "\n".join(tail), timed_out=False)


async def _feed_and_read(process: asyncio.subprocess.Process, stdin: bytes | None) -> bytes:
    assert process.stdout is not None
    if stdin is not None and process.stdin is not None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            process.stdin.write(stdin)
            await process.stdin.drain()
        process.stdin.close()
    return await process.stdout.read()  # until EOF: a summary of a few kilobytes


async def _read_lines(stream: asyncio.StreamReader | None, on_line: LineHandler | None, tail: deque[str]) -> None:
    assert stream is not None
    while raw := await stream.readline():
        line = raw.decode("utf-8", errors="replace").rstrip()
        if on_line is not None and await on_line(line):
            continue
        if line:
            tail.append(line)


def kill_group(pgid: int) -> None:
    """SIGKILL to the whole process group (the process and anything it started)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
