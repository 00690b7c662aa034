"""Where the web process spends its time under the webhook_ingest load: py-spy on `aqe web` while wrk runs.

    .venv/bin/python -m pip install py-spy      # a tool, not a dependency of AQE
    .venv/bin/python bench/profile_ingest.py [--duration 15] [--git-ref HEAD] [--log-level INFO]

Same set-up as bench/webhook_ingest.py (web on core 0; wrk, Redis and py-spy on core 1). Prints the
share of samples per part of the hot path and the functions with the most samples (own time, and
including callees), and keeps the raw collapsed stacks in bench/results/ (flamegraph.pl or speedscope
read them).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import hmac
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import hmac_midstate  # noqa: E402
from common import exclusive, export_tree, free_port, git_state, start, stop  # noqa: E402
from webhook_ingest import SECRET, body_prefix, run_wrk, write_params  # noqa: E402

from jobs.redis_server import EmbeddedRedis  # noqa: E402


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        sys.exit("py-spy is needed: .venv/bin/python -m pip install py-spy")
    return found


def frame_name(frame: str) -> str:
    """`func (path/to/module.py:123)` -> `func (module path)`: lines of one function are summed."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/lib/python3.11/", str(ROOT) + "/", "/tree/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


# Where a sample's time goes, by the innermost frame that matches (first match wins, leaf upwards).
CATEGORIES = [
    ("payload decode (msgspec, jobs/forges/github)", ("_decode (jobs/forges",)),
    ("signature (hmac)", ("hmac.py", "matching_secret_index")),
    ("logging", ("logging/", "jobs/logs.py")),
    ("Redis enqueue (client, script call)", ("redis/", "redis_pipelined.py", "_run_enqueue")),
    ("job record, job id, arq job bytes", ("jobs/store.py", "jobs/model.py")),
    ("decide (RunRequest)", ("_pull_request (", "_request (jobs", "decide (")),
    ("AQE webhook handler (app/webhooks.py)", ("app/webhooks.py",)),
    ("Starlette routing, middleware, request/response", ("starlette/", "proxy_headers.py")),
    ("uvicorn HTTP protocol (httptools) and socket writes", ("httptools_impl.py",)),
    ("event loop (uvloop, C) and the rest", ("",)),
]


def categories(collapsed: Path) -> str:
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        frames = [frame_name(f) for f in stack.split(";")]
        total += int(count)
        for frame in reversed(frames):
            hit = next((name for name, marks in CATEGORIES[:-1] if any(m in frame for m in marks)), None)
            if hit:
                break
        counts[hit or CATEGORIES[-1][0]] += int(count)
    lines = ["| % of samples | where |", "| ---: | --- |"]
    lines += [f"| {100 * n / total:.1f} | {name} |" for name, n in counts.most_common()]
    return "\n".join(lines)


def report(collapsed: Path, top: int) -> str:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        n = int(count)
        frames = [frame_name(f) for f in stack.split(";")]
        # py-spy puts the thread name first (e.g. `process 123:"python -m ..."` / `MainThread`); keep real frames
        frames = [f for f in frames if "(" in f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += n
        own[frames[-1]] += n
        for f in set(frames):
            inclusive[f] += n
    lines = [f"{total} samples (inclusive figures undercount: py-spy loses the outer frames of some coroutine "
             "stacks)", "", "| own % | function |", "| ---: | --- |"]
    lines += [f"| {100 * n / total:.1f} | `{f}` |" for f, n in own.most_common(top)]
    lines += ["", "| incl. % | function |", "| ---: | --- |"]
    lines += [f"| {100 * n / total:.1f} | `{f}` |" for f, n in inclusive.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--git-ref", default=None)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--native", action="store_true", help="py-spy --native (C frames too)")
    args = parser.parse_args()
    spy = py_spy()
    os.sched_setaffinity(0, {1})
    workdir = Path(tempfile.mkdtemp(prefix="aqe-profile-"))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (workdir / "app.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                        serialization.PrivateFormat.TraditionalOpenSSL,
                                                        serialization.NoEncryption()))
    prefix = body_prefix()
    (workdir / "prefix.json").write_bytes(prefix)
    inner, outer = hmac_midstate.split_hmac(SECRET.encode(), prefix)
    tail = b'"sha":"' + b"2" * 40 + b'"}}}'
    assert hmac_midstate.finish(inner, outer, len(prefix), tail) == \
        hmac.new(SECRET.encode(), prefix + tail, hashlib.sha256).hexdigest()
    app_root = export_tree(args.git_ref, workdir / "tree") if args.git_ref else ROOT
    embedded = EmbeddedRedis(workdir / "data", persist=False)
    redis_url = embedded.start()
    port = free_port()
    env = {"PATH": os.environ["PATH"], "HOME": str(workdir), "LANG": "C.UTF-8", "REDIS_URL": redis_url,
           "GITHUB_APP_ID": "1", "GITHUB_PRIVATE_KEY_PATH": str(workdir / "app.pem"),
           "GITHUB_WEBHOOK_SECRET": SECRET, "AQE_DATA_DIR": str(workdir / "data"), "PORT": str(port),
           "AQE_LOG_LEVEL": args.log_level.upper()}
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    collapsed = out / f"profile_ingest-{stamp}.txt"
    web = None
    try:
        web = start([sys.executable, "-m", "app.cli", "web", "--host", "127.0.0.1"], env, workdir / "web.log",
                    f"http://127.0.0.1:{port}/healthz", core=0, cwd=app_root)
        url = f"http://127.0.0.1:{port}/webhooks/github"
        new = lambda: write_params(workdir, workdir / "prefix.json", inner, outer)  # noqa: E731
        run_wrk(url, new(), 3, args.connections)  # warm-up
        redis.Redis.from_url(redis_url).flushdb()
        spy_argv = ["taskset", "-c", "1", spy, "record", "--pid", str(web.pid), "--rate", str(args.rate),
                    "--duration", str(args.duration), "--format", "raw", "--output", str(collapsed), "--nonblocking"]
        if args.native:
            spy_argv.append("--native")
        sampler = subprocess.Popen(spy_argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.5)
        result = run_wrk(url, new(), args.duration, args.connections)
        _, err = sampler.communicate(timeout=args.duration + 60)
        if sampler.returncode != 0:
            raise RuntimeError(f"py-spy failed: {err.decode(errors='replace')}")
    finally:
        if web is not None:
            stop(web)
        embedded.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    code = git_state(args.git_ref)
    print(f"code: {code['tree']} at {str(code['commit'])[:10]}{' + uncommitted edits' if code.get('dirty_files') else ''};"
          f" log level {args.log_level.upper()}; under load: {result['rps']:.0f} deliveries/s "
          f"(sampling slows the process a little)\n")
    print(categories(collapsed))
    print()
    print(report(collapsed, args.top))
    print(f"\ncollapsed stacks: {collapsed} (flamegraph.pl or speedscope can read them)")


if __name__ == "__main__":
    with exclusive("profile_ingest"):
        main()
