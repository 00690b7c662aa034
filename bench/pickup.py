"""Pickup latency: from GitHub's webhook being answered to the check run shown queued, then in progress.

    .venv/bin/python bench/pickup.py [--deliveries 30] [--poll-delays 0.05,0.5] [--git-ref REF]

For each worker poll delay (AQE_WORKER_POLL_DELAY) it starts a fresh stack on 127.0.0.1, as the e2e tests
do (tests/e2e/conftest.py): an embedded Redis (Valkey, no persistence), `aqe web`, one `aqe worker`, and
the fake GitHub of tests/fakes/github.py serving a sample repository over git smart HTTP. It then sends
`--deliveries` signed pull_request `synchronize` deliveries one after the other, each for its own PR
number and its own commit, each after the previous job has finished (record terminal, arq done), and
measures per delivery, from the moment the webhook's 202 answer is received:

  queued       the fake receives POST /repos/{repo}/check-runs (status queued) for that head sha
  in progress  the fake receives the PATCH that sets that check run to in_progress
  started      the job record's started_at (the worker took the job; wall clock, ms resolution)

The fake GitHub runs in this process; a subclass stamps each check-run request with time.monotonic() when
it reaches the fake's handler (before the fake does its own work, e.g. `git cat-file` for POST), so no
polling is involved. Nothing is pinned: the machine's two cores are shared by all processes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from common import exclusive, export_tree, free_port, git_state, machine, start, stop, wait_quiet  # noqa: E402
from tests.e2e.conftest import INSTALLATION_ID, REPO, SampleRepo, pull_request_payload, signed_headers  # noqa: E402
from tests.fakes.processes import wait_ready  # noqa: E402
from tests.fakes.github import FakeGitHub  # noqa: E402

from jobs.redis_server import EmbeddedRedis  # noqa: E402

APP_ID = 424242
SECRET = "bench-webhook-secret"
TERMINAL = {"completed", "failed", "cancelled", "skipped"}


class StampedFakeGitHub(FakeGitHub):
    """The fake GitHub, also noting when each check-run write arrives (monotonic clock of this process)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stamps: list[dict[str, Any]] = []

    async def _serve_api(self, request, handler):  # type: ignore[no-untyped-def]
        arrived = time.monotonic()
        if request.method in ("POST", "PATCH") and "/check-runs" in request.url.path:
            try:
                body = json.loads(await request.body())  # Starlette keeps the body for the fake to read again
            except ValueError:
                body = {}
            with self.lock:
                self.stamps.append({"t": arrived, "method": request.method, "path": request.url.path,
                                    "status": body.get("status"), "head_sha": body.get("head_sha")})
        return await super()._serve_api(request, handler)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (p95 of 30 values is the 29th smallest)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-pct * len(ordered) // 100))))
    return ordered[rank - 1]


def stats(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(values), 1), "p95_ms": round(percentile(values, 95), 1),
            "max_ms": round(max(values), 1), "min_ms": round(min(values), 1), "n": len(values)}


def wait_finished(r: redis.Redis, job_id: str, timeout: float = 180.0) -> str:
    """Until the job record is terminal and arq no longer has the job in progress or queued."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        raw = r.get(f"aqe:job:{job_id}")
        status = json.loads(raw)["status"] if raw else None
        if status in TERMINAL and not r.exists(f"arq:in-progress:{job_id}") and not r.zscore("arq:queue", job_id):
            return str(status)
        time.sleep(0.02)
    raise TimeoutError(f"job {job_id} did not finish within {timeout:.0f} s")


def measure(poll_delay: float, args: argparse.Namespace, app_root: Path, workdir: Path) -> dict[str, Any]:
    base = workdir / f"poll-{poll_delay}"
    base.mkdir()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (base / "app.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                     serialization.PrivateFormat.TraditionalOpenSSL,
                                                     serialization.NoEncryption()))
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    repo = SampleRepo(base / "sample")
    commits = []  # one branch and one commit per pull request
    for i in range(args.deliveries):
        repo.branch("main")
        repo.branch(f"feature-{i}")
        repo.write(f"feature_{i}.py", f"VALUE = {i}\n")
        commits.append((100 + i, repo.commit(f"feature {i}"), f"feature-{i}"))

    embedded = EmbeddedRedis(base / "redis-data", persist=False)
    redis_url = embedded.start()
    fake = StampedFakeGitHub(APP_ID, public, git_root=base / "git")
    fake.start()
    fake.add_repo(REPO, repo.path)
    fake.update_repo(REPO, repo.path)
    fake.install(INSTALLATION_ID, [REPO])
    for number, sha, ref in commits:
        fake.add_pull(REPO, number, head_sha=sha, base_sha=repo.main_sha, head_ref=ref)

    port = free_port()
    web_url = f"http://127.0.0.1:{port}"
    env = {"PATH": os.environ["PATH"], "HOME": str(base), "LANG": "C.UTF-8", "REDIS_URL": redis_url,
           "GITHUB_APP_ID": str(APP_ID), "GITHUB_PRIVATE_KEY_PATH": str(base / "app.pem"),
           "GITHUB_WEBHOOK_SECRET": SECRET, "GITHUB_API_URL": fake.url, "AQE_PUBLIC_URL": web_url,
           "PORT": str(port), "AQE_DATA_DIR": str(base / "data"), "AQE_WORKER_POLL_DELAY": str(poll_delay),
           "PYTHONPATH": str(app_root)}
    procs = []
    r = redis.Redis.from_url(redis_url)
    rows: list[dict[str, Any]] = []
    rng = random.Random(20261128)
    gap = tuple(float(x) for x in args.gap.split("-", 1)) if "-" in args.gap else (float(args.gap),) * 2
    try:
        procs.append(start([sys.executable, "-m", "app.cli", "web", "--host", "127.0.0.1"], env, base / "web.log",
                           f"{web_url}/healthz", cwd=app_root))
        with (base / "worker.log").open("ab") as out:
            procs.append(subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], env=env, cwd=app_root,
                                          stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        wait_ready(web_url, procs)
        time.sleep(1.0)  # let the worker settle into its polling loop
        for number, sha, ref in commits:
            body = json.dumps(pull_request_payload(fake.url, "synchronize", number, sha, repo.main_sha, ref)).encode()
            headers = signed_headers(body, "pull_request", str(uuid.uuid4()), SECRET)
            sent = time.monotonic()
            answer = httpx.post(f"{web_url}/webhooks/github", content=body, headers=headers, timeout=10)
            answered, answered_wall = time.monotonic(), time.time()
            if answer.status_code != 202:
                raise RuntimeError(f"delivery for PR {number} answered {answer.status_code}: {answer.text}")
            job_id = answer.json()["job_ids"][0]
            outcome = wait_finished(r, job_id)
            record = json.loads(r.get(f"aqe:job:{job_id}"))
            with fake.lock:
                stamps = list(fake.stamps)
                run_ids = {rid for rid, run in fake.check_runs.items() if run["head_sha"] == sha}
            queued = next(s["t"] for s in stamps if s["method"] == "POST" and s["head_sha"] == sha)
            in_progress = next(s["t"] for s in stamps if s["method"] == "PATCH" and s["status"] == "in_progress"
                               and int(s["path"].rsplit("/", 1)[1]) in run_ids)
            rows.append({"pr": number, "job_id": job_id, "outcome": outcome,
                         "webhook_answer_ms": round(1000 * (answered - sent), 2),
                         "to_started_ms": round(1000 * (record["started_at"] - answered_wall), 1),
                         "to_queued_ms": round(1000 * (queued - answered), 1),
                         "to_in_progress_ms": round(1000 * (in_progress - answered), 1)})
            row = rows[-1]
            print(f"  poll {poll_delay}: PR {number} ({outcome}): started +{row['to_started_ms']} ms, "
                  f"queued +{row['to_queued_ms']} ms, in progress +{row['to_in_progress_ms']} ms", flush=True)
            time.sleep(rng.uniform(*gap))
    finally:
        for proc in procs:
            stop(proc)
        fake.stop()
        embedded.stop()
    return {
        "poll_delay_s": poll_delay,
        "to_started": stats([row["to_started_ms"] for row in rows]),
        "to_queued": stats([row["to_queued_ms"] for row in rows]),
        "to_in_progress": stats([row["to_in_progress_ms"] for row in rows]),
        "deliveries": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=30)
    parser.add_argument("--poll-delays", default="0.05,0.5",
                        help="comma-separated AQE_WORKER_POLL_DELAY values (0.05 is AQE's default, 0.5 arq's)")
    parser.add_argument("--gap", default="0.1-1.1",
                        help="seconds between a job's end and the next delivery, drawn uniformly from this range "
                             "(seeded), so that deliveries fall at every phase of the worker's poll loop")
    parser.add_argument("--git-ref", default=None, help="measure the code committed at this ref (git archive)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs) at the end")
    args = parser.parse_args()
    if not shutil.which("git"):
        sys.exit("git is needed")
    workdir = Path(tempfile.mkdtemp(prefix="aqe-pickup-"))
    app_root = export_tree(args.git_ref, workdir / "tree") if args.git_ref else ROOT
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    results = []
    with exclusive("pickup"):
        for delay in (float(d) for d in args.poll_delays.split(",")):
            wait_quiet()
            results.append(measure(delay, args, app_root, workdir))
    report = {"benchmark": "pickup", "started": started, "settings": vars(args), "git": git_state(args.git_ref),
              "machine": machine(), "results": results,
              "target_p95_in_progress_below_1s": {str(r["poll_delay_s"]): r["to_in_progress"]["p95_ms"] < 1000
                                                  for r in results}}
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / f"pickup-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"\n{args.deliveries} deliveries per poll delay, one after the other; ms after the webhook's 202:\n")
    print("| poll delay | started p50 / p95 | queued p50 / p95 / max | in progress p50 / p95 / max |\n"
          "| ---: | ---: | ---: | ---: |")
    for res in results:
        s, q, p = res["to_started"], res["to_queued"], res["to_in_progress"]
        print(f"| {res['poll_delay_s']} s | {s['p50_ms']} / {s['p95_ms']} | {q['p50_ms']} / {q['p95_ms']} / {q['max_ms']} "
              f"| {p['p50_ms']} / {p['p95_ms']} / {p['max_ms']} |")
    code = report["git"]
    print(f"\ncode: {code['tree']} at {str(code['commit'])[:10]}{' + uncommitted edits' if code.get('dirty_files') else ''}"
          f"\nresults: {path}")
    if args.keep:
        print(f"logs: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
