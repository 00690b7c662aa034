"""The built-in load generator, run as its own process so that a heavy test never stalls the worker.

`python -m jobs.performance.engine` reads a `LoadPlan` (JSON) on stdin, runs it, writes `LoadStats`
(JSON) on stdout, and about every second a progress line (JSON: elapsed_s, requests, failed, vus) on
stderr. Exit status 0, or 2 when the plan cannot be read.

How it measures, as k6 does:

- Virtual users follow `jobs.performance.plan`'s schedule; each has its own connection (a pool of one,
  kept alive), as each k6 VU has its own, so no user waits for another's connection.
- A request's duration is k6's `http_req_duration`: from the moment its headers start to be sent
  (httpcore's trace event) to the end of the response body, so connection set-up is excluded. A
  request that failed before anything was sent (connection refused) lasts 0 ms, as in k6.
- A request fails (k6's `http_req_failed`) with a status outside 200-399 or without a response
  (connection error, protocol error, timeout); redirects are not followed (a 3xx is a success).

httpcore (the transport under httpx) is used directly: per request it costs about half of what an
`httpx.AsyncClient` call does, and the engine must outrun the servers it measures.
"""

from __future__ import annotations

import asyncio
import importlib.util
import resource
import ssl
import sys
import time
from collections import Counter
from typing import Any

import certifi
import httpcore
import msgspec

from jobs.performance.plan import LoadPlan, vu_start_offsets
from jobs.performance.stats import LoadStats, summarise

REQUEST_ERRORS = (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError,
                  httpcore.UnsupportedProtocol, OSError)  # fmt: skip
OPEN_FILES_WANTED = 8192  # one connection per virtual user, up to 1000 of them
_SEND_STARTED = ".send_request_headers.started"  # "http11.send_request_headers.started" (and http2)


class Recorder:
    """Everything measured so far; only touched from the event loop's thread."""

    __slots__ = ("durations_ms", "failed", "sent", "kinds", "starts")

    def __init__(self) -> None:
        self.durations_ms: list[float] = []
        self.failed = 0
        self.sent = 0
        self.kinds: Counter[str] = Counter()
        self.starts: list[float] = []

    def add(self, duration_ms: float, sent: bool, error: str | None) -> None:
        self.durations_ms.append(duration_ms)
        if sent:
            self.sent += 1
        if error is not None:
            self.failed += 1
            self.kinds[error] += 1


def error_of(status: int) -> str | None:
    """The error kind of a response (its status), or None when k6 would count it as expected."""
    return None if 200 <= status <= 399 else str(status)


async def virtual_user(plan: LoadPlan, start_at: float, deadline: float, recorder: Recorder,
                       context: ssl.SSLContext, clock_zero: float) -> None:
    """One user: wait for its start, then loop over the requests until the deadline."""
    perf_counter = time.perf_counter
    while (delay := start_at - perf_counter()) > 0:  # a loop: uvloop's timers may fire a little early
        await asyncio.sleep(delay)
    if perf_counter() >= deadline:
        return
    recorder.starts.append(perf_counter() - clock_zero)
    sent_at = 0.0

    async def trace(event: str, info: Any) -> None:
        nonlocal sent_at
        if event.endswith(_SEND_STARTED):
            sent_at = perf_counter()

    timeout = plan.timeout_s
    extensions = {"trace": trace, "timeout": dict.fromkeys(("connect", "read", "write", "pool"), timeout)}
    requests = [(r.method.encode(), r.url.encode(), r.headers, r.body.encode() if r.body is not None else None)
                for r in plan.requests]
    async with httpcore.AsyncConnectionPool(ssl_context=context, max_connections=1, retries=0) as pool:
        while True:
            for method, url, headers, body in requests:
                if perf_counter() >= deadline:
                    return
                sent_at, error = 0.0, None
                try:
                    async with asyncio.timeout(timeout):
                        response = await pool.request(method, url, headers=headers, content=body,
                                                      extensions=extensions)
                    error = error_of(response.status)
                except TimeoutError:
                    error = "Timeout"
                except REQUEST_ERRORS as exc:
                    error = type(exc).__name__
                finished = perf_counter()
                recorder.add((finished - sent_at) * 1000.0 if sent_at else 0.0, sent_at > 0, error)


async def report_progress(recorder: Recorder, clock_zero: float, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        line = {"elapsed_s": round(time.perf_counter() - clock_zero, 3), "requests": len(recorder.durations_ms),
                "failed": recorder.failed, "vus": len(recorder.starts)}
        sys.stderr.write(msgspec.json.encode(line).decode() + "\n")
        sys.stderr.flush()


async def run_plan(plan: LoadPlan) -> LoadStats:
    recorder, context = Recorder(), ssl_context()
    clock_zero = time.perf_counter()
    deadline = clock_zero + plan.duration_s
    reporter = asyncio.create_task(report_progress(recorder, clock_zero, plan.progress_interval_s))
    try:
        await asyncio.gather(*(
            virtual_user(plan, clock_zero + offset, deadline, recorder, context, clock_zero)
            for offset in vu_start_offsets(plan.virtual_users, plan.ramp_up_s)
        ))
    finally:
        reporter.cancel()
    elapsed_s = time.perf_counter() - clock_zero
    return summarise(
        recorder.durations_ms, engine="builtin", failed=recorder.failed, elapsed_s=round(elapsed_s, 6),
        vus=len(recorder.starts), percentiles=plan.percentiles, sent=recorder.sent,
        error_kinds=recorder.kinds, vu_starts_s=sorted(recorder.starts),
    )


def ssl_context() -> ssl.SSLContext:
    """One verifying context shared by every connection (building one per connection costs ~20 ms)."""
    return ssl.create_default_context(cafile=certifi.where())


def skip_sniffio_lookup() -> None:
    """httpcore runs `import sniffio` on every request to tell asyncio from trio. Without sniffio
    installed (anyio 4 no longer needs it) each of those imports searches sys.path and fails, about
    a third of the engine's CPU time; a None entry in sys.modules makes it fail at once, and httpcore
    then assumes asyncio, which is what this process runs."""
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


def raise_open_files_limit(wanted: int = OPEN_FILES_WANTED) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def run(plan: LoadPlan) -> LoadStats:
    skip_sniffio_lookup()
    raise_open_files_limit()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return asyncio.run(run_plan(plan))
    return uvloop.run(run_plan(plan))


def main() -> int:
    try:
        plan = msgspec.json.decode(sys.stdin.buffer.read(), type=LoadPlan)
    except msgspec.DecodeError as exc:
        sys.stderr.write(f"cannot read the load plan on stdin: {exc}\n")
        return 2
    stats = run(plan)
    sys.stdout.buffer.write(msgspec.json.encode(stats))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
