"""REST API latency under 50 concurrent clients, measured with wrk: p95 of each endpoint the issue names.

    .venv/bin/python bench/api_latency.py [--runs 3] [--duration 10] [--connections 50] [--web-processes N]

Starts an embedded Redis (Valkey) and `aqe web` pinned to core 0 (wrk and Redis on core 1; with `--web-processes
N` > 1, `aqe web --processes N` and nothing pinned), makes an API key and one job, then runs wrk
(`bench/wrk_api.lua`) against:

- `GET /healthz` (target p95 < 5 ms)
- `POST /api/v1/security/scan` with a new random sha in every body: each request creates and enqueues a job
  (target p95 < 20 ms; no worker runs, the queue just grows)
- `GET /api/v1/job/{id}/status` (target p95 < 10 ms)
- `GET /api/v1/fleet/status` (target p95 < 50 ms)

Also reports the web process's CPU time per request (its CPU seconds during the run / requests: less noisy than
latency on a shared machine). Prints the median over `--runs` of each figure and writes
`bench/results/api_latency.json`. Every answer must have the expected status (wrk's Lua counts them), or the run
is reported as invalid. Holds the bench lock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from common import exclusive, free_port, machine, start, stop, tree_cpu_seconds, wait_quiet  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402
from redis.asyncio import Redis  # noqa: E402

from jobs import apikeys  # noqa: E402
from jobs.model import RunRequest  # noqa: E402
from jobs.redis_server import EmbeddedRedis  # noqa: E402
from jobs.store import JobStore  # noqa: E402

LUA = ROOT / "bench" / "wrk_api.lua"
RESULTS = ROOT / "bench" / "results"
TARGETS = {  # name: (path template, mode, expected status, target p95 in ms)
    "healthz": ("/healthz", "get", 200, 5.0),
    "job creation": ("/api/v1/security/scan", "create", 202, 20.0),
    "job status": ("/api/v1/job/{job_id}/status", "get", 200, 10.0),
    "fleet status": ("/api/v1/fleet/status", "get", 200, 50.0),
}


async def prepare(redis_url: str) -> tuple[str, str]:
    redis = Redis.from_url(redis_url)
    key = await apikeys.create_key(redis, "bench", rate_limit="100000000/minute", scopes=["admin"])  # no 429s, fleet too
    request = RunRequest(forge="github", repo="acme/widgets", clone_url="u", head_sha="a" * 40, trigger="api.bench",
                         agents=["tests"])
    job_id = (await JobStore(redis).enqueue(request, delivery_key="aqe:delivery:api:bench")).job_id
    await redis.aclose()
    return key, job_id


def wrk(url: str, mode: str, key: str, duration: int, connections: int, pinned: bool) -> dict[str, Any]:
    env = {**os.environ, "AQE_API_KEY": key, "AQE_BENCH_MODE": mode}
    done = subprocess.run([*(["taskset", "-c", "1"] if pinned else []), "wrk", "-t1", f"-c{connections}",
                           f"-d{duration}s", "--timeout", "5s",
                           "-s", str(LUA), url], env=env, capture_output=True, text=True, check=True)
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--web-processes", type=int, default=1, help="aqe web --processes N (N > 1: nothing pinned)")
    args = parser.parse_args()
    pinned = args.web_processes == 1
    with exclusive("api_latency"), tempfile.TemporaryDirectory(prefix="aqe-api-bench-") as tmp:
        work = Path(tmp)
        key_file = work / "app.pem"
        key_file.write_bytes(rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))
        with EmbeddedRedis(work / "redis", persist=False) as redis_url:
            if pinned:
                subprocess.run(["taskset", "-cp", "1", str(os.getpid())], check=False, capture_output=True)
            api_key, job_id = asyncio.run(prepare(redis_url))
            port = free_port()
            env = {**os.environ, "REDIS_URL": redis_url, "GITHUB_APP_ID": "1", "GITHUB_PRIVATE_KEY_PATH": str(key_file),
                   "GITHUB_WEBHOOK_SECRET": "bench", "AQE_DATA_DIR": str(work / "data"), "PORT": str(port),
                   "AQE_LOG_LEVEL": "WARNING", "AQE_RATE_LIMIT": "1000000/minute"}
            base = f"http://127.0.0.1:{port}"
            web = start([sys.executable, "-m", "app.cli", "web", "--host", "127.0.0.1",
                         "--processes", str(args.web_processes)], env, work / "web.log", f"{base}/healthz", cwd=ROOT,
                        core=0 if pinned else None)
            results: dict[str, list[dict[str, Any]]] = {name: [] for name in TARGETS}
            try:
                for _ in range(args.runs):
                    wait_quiet()
                    for name, (path, mode, expected, _target) in TARGETS.items():
                        cpu_before = tree_cpu_seconds(web.pid)
                        result = wrk(base + path.format(job_id=job_id), mode, api_key, args.duration, args.connections,
                                     pinned)
                        result["server_cpu_us_per_request"] = round(
                            (tree_cpu_seconds(web.pid) - cpu_before) * 1e6 / max(1, result["requests"]), 1)
                        result["valid"] = set(result["statuses"]) == {str(expected)} and result["errors"] == 0
                        results[name].append(result)
                        print(f"{name}: p95 {result['p95_ms']:.2f} ms, {result['requests']} requests, "
                              f"{result['server_cpu_us_per_request']} µs of server CPU each, "
                              f"statuses {result['statuses']}", flush=True)
            finally:
                stop(web)
    summary = {name: {"p50_ms": statistics.median(r["p50_ms"] for r in runs),
                      "p95_ms": statistics.median(r["p95_ms"] for r in runs),
                      "p99_ms": statistics.median(r["p99_ms"] for r in runs),
                      "requests_per_s": statistics.median(r["requests"] / args.duration for r in runs),
                      "server_cpu_us_per_request": statistics.median(r["server_cpu_us_per_request"] for r in runs),
                      "target_p95_ms": TARGETS[name][3], "all_valid": all(r["valid"] for r in runs)}
               for name, runs in results.items()}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "api_latency.json").write_text(json.dumps({"machine": machine(), "args": vars(args),
                                                          "summary": summary, "runs": results}, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
