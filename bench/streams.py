"""Job streams under load: 1,000 SSE clients on one web process, and WebSocket connect + first message.

    .venv/bin/python bench/streams.py [--runs 3] [--clients 1000] [--events 50] [--ws-clients 50] [--ws-seconds 10]
                                      [--only sse|ws] [--web-processes N] [--baseline]

Starts an embedded Redis (Valkey) and `aqe web` pinned to core 0 (this script, the clients and Redis on core 1);
with `--web-processes N` > 1, `aqe web --processes N` and nothing pinned (the processes, the clients and Redis
share both cores). Server CPU is that of every web process.

1. SSE fan-out: `--clients` clients open `GET /api/v1/job/{id}/events` of one queued job and wait; then the job
   gets `--events` progress events (one every `--interval-ms`, default 100 ms, appended with the real
   `JobStore.save`, as the worker does) and its final event. Every client must receive every event, in order,
   and see the stream close. Reported: the delay from each event's append (its stream id is Redis's clock) to its
   arrival at each client (p50, p95, max over all deliveries; and p95 of the final event alone, which carries the
   job's result), the web process's CPU per delivery (one event to one client), its RSS with every client
   connected, and the Redis connections the web process held (one reader for all clients, not one per client).
2. WebSocket connect + first message (target p95 < 20 ms) of `WS /api/v1/job/{id}/stream`: (a) one client
   connecting again and again while `--ws-clients` clients are connected to that running job, which gets an
   event every 20 ms (fanned out to all of them); (b) `--ws-clients` clients connecting in a closed loop for
   `--ws-seconds` (to a finished job: each gets its events, reads the first and closes): connections per second,
   the server's CPU per connection and the clients'. With `--baseline`, (b) also against `bench/bare_ws_app.py`
   (the same uvicorn and options, as many processes, an app that does no work), in the same run. The connecting
   clients are `bench/ws_client.py` (a lean client: the load generator shares the machine), the 50 streaming
   ones the `websockets` library; this part runs on uvloop.

Prints the median over `--runs` and writes `bench/results/streams.json`. Holds the bench lock. Raises this
process's soft limit of open files (the web process inherits it): 1,000 clients are 2,000 sockets here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from common import exclusive, free_port, git_state, machine, start, stop, tree_cpu_seconds, wait_quiet  # noqa: E402
import uvloop  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402
from redis.asyncio import Redis  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402
from ws_client import first_message  # noqa: E402

from jobs import apikeys  # noqa: E402
from jobs.model import JobRecord, RunRequest  # noqa: E402
from jobs.redis_server import EmbeddedRedis  # noqa: E402
from jobs.store import JobStore  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def new_job(store: JobStore, n: int) -> JobRecord:
    request = RunRequest(forge="github", repo="acme/widgets", clone_url="u", head_sha=f"{n:040x}", trigger="api.bench",
                         agents=["tests"])
    outcome = await store.enqueue(request, delivery_key=f"aqe:delivery:api:bench-{n}-{time.time_ns()}")
    record = await store.get(outcome.job_id)
    assert record is not None
    return record


async def sse_client(port: int, path: str, key: str, ready: asyncio.Event, counter: list[int], total: int,
                     arrivals: list[tuple[str, float]]) -> bool:
    """A minimal SSE client on a raw socket (httpx for 1,000 streams would measure httpx): ids and arrival times."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
                 "Accept: text/event-stream\r\n\r\n".encode())
    await writer.drain()
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(f"SSE answered {status!r}")
    first = True
    try:
        while True:
            line = await reader.readline()
            if not line:
                return False  # closed before the final event
            if line.startswith(b"id: "):
                arrivals.append((line[4:].strip().decode(), time.time()))
                if first:
                    first = False
                    counter[0] += 1
                    if counter[0] == total:
                        ready.set()
            elif line.startswith(b"event: complete"):
                return True
    finally:
        writer.close()


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]} if runs else {}


def raise_open_files_limit(wanted: int) -> dict[str, int]:
    """Raise the soft RLIMIT_NOFILE towards the hard limit (children inherit it); the limits before and after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = max(wanted, 65536) if hard == resource.RLIM_INFINITY else min(hard, max(wanted, 65536))
    target = max(soft, ceiling)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < wanted:
        print(f"open files limit {target} < {wanted}: some clients will fail to connect", file=sys.stderr)
    return {"soft_before": soft, "soft": target, "hard": hard}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


BENCH_CLIENT = "bench"  # this script's Redis connections, told apart from the web process's in CLIENT LIST


async def sse_run(port: int, key: str, redis_url: str, clients: int, events: int, pid: int, n: int,
                  interval_s: float) -> dict[str, Any]:
    redis = Redis.from_url(redis_url, client_name=BENCH_CLIENT)
    store = JobStore(redis)
    record = await new_job(store, n)
    ready, counter = asyncio.Event(), [0]
    per_client: list[list[tuple[str, float]]] = [[] for _ in range(clients)]
    path = f"/api/v1/job/{record.id}/events"
    tasks = [asyncio.create_task(sse_client(port, path, key, ready, counter, clients, per_client[i]))
             for i in range(clients)]
    await asyncio.wait_for(ready.wait(), 120)  # every client has the queued event: connected and subscribed
    await asyncio.sleep(1.0)  # and the server is done setting them up (the figures are of delivery, not setup)
    rss, connections = rss_mb(pid), sum(1 for c in await redis.client_list() if c.get("name") != BENCH_CLIENT)
    appended: list[str] = []
    cpu_before, wall_before = tree_cpu_seconds(pid), time.monotonic()
    for i in range(1, events + 1):
        record.status, record.progress = "running", float(i)
        appended.append(await store.save(record, "progress", {"progress": float(i), "message": f"event {i}",
                                                              "status": "running"}))
        await asyncio.sleep(interval_s)
    record.status, record.progress, record.conclusion = "completed", 100.0, "success"
    appended.append(await store.save(record, "complete", {"status": "completed", "progress": 100.0}))
    finished = await asyncio.wait_for(asyncio.gather(*tasks), 120)
    web_cpu_s = tree_cpu_seconds(pid) - cpu_before
    web_busy = web_cpu_s / (time.monotonic() - wall_before)
    await redis.aclose()
    delays: list[float] = []
    final_delays: list[float] = []
    complete = 0
    for arrivals in per_client:
        ids = [eid for eid, _ in arrivals][1:]  # after the queued event
        if ids == appended:
            complete += 1
        elif os.environ.get("AQE_BENCH_DEBUG"):
            print("missing", sorted(set(appended) - set(ids)), "extra", [i for i in ids if i not in appended],
                  "first", arrivals[:2], flush=True)
        delays += [(at - int(eid.split("-")[0]) / 1000) * 1000 for eid, at in arrivals[1:]]
        final_delays += [(at - int(eid.split("-")[0]) / 1000) * 1000 for eid, at in arrivals if eid == appended[-1]]
    return {"clients": clients, "events": len(appended), "clients_with_every_event": complete,
            "clients_closed_after_final": sum(finished), "delay_p50_ms": round(percentile(delays, 0.5), 2),
            "delay_p95_ms": round(percentile(delays, 0.95), 2), "delay_max_ms": round(max(delays), 2),
            "final_delay_p95_ms": round(percentile(final_delays, 0.95), 2),
            "web_rss_mb": round(rss, 1), "redis_connections": connections, "web_cpu_busy": round(web_busy, 2),
            "web_cpu_us_per_delivery": round(web_cpu_s * 1e6 / max(1, len(delays)), 1),
            "delivery_s": round(time.monotonic() - wall_before, 2)}


async def ws_run(port: int, key: str, redis_url: str, clients: int, seconds: float, n: int,
                 pid: int) -> dict[str, Any]:
    """(a) Connect + first message of one more client while `clients` are connected to a running job that gets
    an event every 20 ms (each fanned out to all of them); (b) `clients` connecting in a closed loop."""
    redis = Redis.from_url(redis_url, client_name=BENCH_CLIENT)
    store = JobStore(redis)
    record = await new_job(store, n)
    url = f"ws://127.0.0.1:{port}/api/v1/job/{record.id}/stream"
    headers = {"Authorization": f"Bearer {key}"}
    holders = [await connect(url, additional_headers=headers) for _ in range(clients)]
    stop_at = time.monotonic() + seconds

    async def produce() -> None:
        i = 0
        while time.monotonic() < stop_at:
            i += 1
            record.status = "running"
            await store.save(record, "progress", {"progress": min(99.0, i / 10), "message": f"e{i}",
                                                  "status": "running"})
            await asyncio.sleep(0.02)

    async def drain(ws: Any) -> None:
        with contextlib.suppress(Exception):
            async for _ in ws:
                pass

    drains = [asyncio.create_task(drain(ws)) for ws in holders]
    producer = asyncio.create_task(produce())
    under_load: list[float] = []
    probe = await new_job(store, n + 500)  # a job that has just started: its first message is "queued"
    probe_path = f"/api/v1/job/{probe.id}/stream"
    while time.monotonic() < stop_at:
        started = time.perf_counter()
        await first_message("127.0.0.1", port, probe_path, headers)
        under_load.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(0.01)
    await producer
    for ws in holders:
        await ws.close()
    await asyncio.gather(*drains)

    record.status, record.progress, record.conclusion = "completed", 100.0, "success"
    await store.save(record, "complete", {"status": "completed", "progress": 100.0})
    finished = await new_job(store, n + 700)  # the closed loop replays a short finished job: queued, complete
    finished.status, finished.progress, finished.conclusion = "completed", 100.0, "success"
    await store.save(finished, "complete", {"status": "completed", "progress": 100.0})
    path = f"/api/v1/job/{finished.id}/stream"
    await redis.aclose()

    def check(first: dict[str, Any]) -> None:
        assert first["type"] == "progress" and first["status"] == "queued", first

    return {"connect_under_load_p50_ms": round(percentile(under_load, 0.5), 2),
            "connect_under_load_p95_ms": round(percentile(under_load, 0.95), 2),
            "connect_under_load_samples": len(under_load),
            **await closed_loop(port, path, headers, clients, seconds, pid, check)}


async def closed_loop(port: int, path: str, headers: dict[str, str], clients: int, seconds: float, pid: int,
                      check: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """`clients` connecting to ws://127.0.0.1:port/path in a closed loop for `seconds`, each reading the first
    message and leaving: connections per second, p50 and p95 of connect + first message, the CPU of the server
    (the process `pid` and its children) and of this process's clients per connection."""
    timings: list[float] = []
    deadline = time.monotonic() + seconds

    async def loop() -> None:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            first = json.loads(await first_message("127.0.0.1", port, path, headers))
            timings.append((time.perf_counter() - started) * 1000)
            check(first)

    cpu_before, own_before = tree_cpu_seconds(pid), time.process_time()
    await asyncio.gather(*(loop() for _ in range(clients)))
    server_cpu_ms = (tree_cpu_seconds(pid) - cpu_before) * 1000 / max(1, len(timings))
    client_cpu_ms = (time.process_time() - own_before) * 1000 / max(1, len(timings))
    return {"closed_loop_connections_per_s": round(len(timings) / seconds, 1),
            "closed_loop_p50_ms": round(percentile(timings, 0.5), 2),
            "closed_loop_p95_ms": round(percentile(timings, 0.95), 2),
            "server_cpu_ms_per_connection": round(server_cpu_ms, 3),
            "client_cpu_ms_per_connection": round(client_cpu_ms, 3)}


def start_baseline(work: Path, processes: int, pinned: bool) -> tuple[subprocess.Popen[bytes], int]:
    """`bench/bare_ws_app.py` served by uvicorn with `aqe web`'s options, as many processes as `aqe web`."""
    port = free_port()
    code = ("import uvicorn\nfrom app.cli import UVICORN_OPTIONS\n"
            f"uvicorn.run('bare_ws_app:app', app_dir={str(ROOT / 'bench')!r}, host='127.0.0.1', port={port}, "
            f"workers={processes}, log_level='warning', **UVICORN_OPTIONS)\n")
    argv = [sys.executable, "-c", code]
    return start(argv, dict(os.environ), work / "baseline.log", f"http://127.0.0.1:{port}/", cwd=ROOT,
                 core=0 if pinned else None), port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--interval-ms", type=float, default=100.0, help="between events (the worker sends at "
                                                                         "most 4 progress events a second)")
    parser.add_argument("--ws-clients", type=int, default=50)
    parser.add_argument("--ws-seconds", type=float, default=10.0)
    parser.add_argument("--only", choices=("sse", "ws"), help="run one of the two parts")
    parser.add_argument("--web-processes", type=int, default=1, help="aqe web --processes N (N > 1: nothing pinned)")
    parser.add_argument("--baseline", action="store_true", help="also run the WebSocket closed loop against "
                                                                  "bench/bare_ws_app.py (the same uvicorn, no work)")
    args = parser.parse_args()
    nofile = raise_open_files_limit(2 * args.clients + 1000)
    with exclusive("streams"), tempfile.TemporaryDirectory(prefix="aqe-streams-bench-") as tmp:
        work = Path(tmp)
        key_file = work / "app.pem"
        key_file.write_bytes(rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))
        with EmbeddedRedis(work / "redis", persist=False) as redis_url:
            pinned = args.web_processes == 1
            if pinned:
                subprocess.run(["taskset", "-cp", "1", str(os.getpid())], check=False, capture_output=True)

            async def make_key() -> str:
                redis = Redis.from_url(redis_url)
                try:
                    return await apikeys.create_key(redis, "bench", rate_limit="100000000/minute")
                finally:
                    await redis.aclose()

            key = asyncio.run(make_key())
            port = free_port()
            env = {**os.environ, "REDIS_URL": redis_url, "GITHUB_APP_ID": "1", "GITHUB_PRIVATE_KEY_PATH": str(key_file),
                   "GITHUB_WEBHOOK_SECRET": "bench", "AQE_DATA_DIR": str(work / "data"), "PORT": str(port),
                   "AQE_LOG_LEVEL": "WARNING"}
            web = start([sys.executable, "-m", "app.cli", "web", "--host", "127.0.0.1",
                         "--processes", str(args.web_processes)], env, work / "web.log",
                        f"http://127.0.0.1:{port}/healthz", cwd=ROOT, core=0 if pinned else None)
            sse: list[dict[str, Any]] = []
            ws: list[dict[str, Any]] = []
            baseline: list[dict[str, Any]] = []
            bare = start_baseline(work, args.web_processes, pinned) if args.baseline and args.only != "sse" else None
            try:
                for run in range(args.runs):
                    if args.only != "ws":
                        wait_quiet()
                        sse.append(asyncio.run(sse_run(port, key, redis_url, args.clients, args.events, web.pid, run,
                                                        args.interval_ms / 1000)))
                        print("sse", json.dumps(sse[-1]), flush=True)
                    if args.only != "sse":
                        wait_quiet()
                        ws.append(uvloop.run(ws_run(port, key, redis_url, args.ws_clients, args.ws_seconds,
                                                      1000 + run, web.pid)))
                        print("ws", json.dumps(ws[-1]), flush=True)
                    if bare is not None:
                        wait_quiet()
                        baseline.append(uvloop.run(closed_loop(bare[1], "/", {}, args.ws_clients, args.ws_seconds,
                                                               bare[0].pid, lambda first: None)))
                        print("baseline", json.dumps(baseline[-1]), flush=True)
            finally:
                stop(web)
                if bare is not None:
                    stop(bare[0])
                if os.environ.get("AQE_BENCH_DEBUG"):
                    print((work / "web.log").read_text()[-3000:])
    summary = {"sse": medians(sse), "ws": medians(ws), "ws_baseline": medians(baseline),
               "every_client_got_every_event": all(r["clients_with_every_event"] == r["clients"] for r in sse)}
    RESULTS.mkdir(exist_ok=True)
    runs = {"sse": sse, "ws": ws, "ws_baseline": baseline}
    (RESULTS / "streams.json").write_text(json.dumps({"machine": machine(), "code": git_state(None),
                                                      "open_files_limit": nofile, "args": vars(args),
                                                      "summary": summary, "runs": runs}, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
