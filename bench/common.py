"""What the benchmarks share: one benchmark at a time, a quiet machine, processes, CPU accounting."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
LOCK = Path("/tmp/aqe-bench.lock")


@contextlib.contextmanager
def exclusive(what: str) -> Iterator[None]:
    """Hold the machine-wide benchmark lock: two benchmarks at once on two cores measure each other."""
    with LOCK.open("a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"{what}: another AQE benchmark holds {LOCK}; waiting for it", file=sys.stderr, flush=True)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def cpu_busy() -> dict[str, tuple[int, int]]:
    """(busy, total) jiffies per CPU from /proc/stat."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *fields = line.split()
        if re.fullmatch(r"cpu\d+", name):
            values = [int(v) for v in fields[:8]]
            idle = values[3] + values[4]  # idle + iowait
            out[name] = (sum(values) - idle, sum(values))
    return out


def busy_percent(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> dict[str, float]:
    return {name: round(100 * (after[name][0] - before[name][0]) / max(1, after[name][1] - before[name][1]), 1)
            for name in before}


def wait_quiet(threshold: float = 10.0, sample: float = 1.0, limit: float = 180.0) -> float:
    """Wait until no CPU is busier than `threshold` % over `sample` s (the machine is shared); returns the
    last sample's busiest CPU, which is recorded with the run. Gives up after `limit` s and says so."""
    deadline = time.monotonic() + limit
    warned = False
    while True:
        before = cpu_busy()
        time.sleep(sample)
        busiest = max(busy_percent(before, cpu_busy()).values())
        if busiest <= threshold or time.monotonic() > deadline:
            if busiest > threshold:
                print(f"  machine still busy ({busiest:.0f}% on one CPU) after {limit:.0f} s; measuring anyway",
                      file=sys.stderr, flush=True)
            return busiest
        if not warned:
            print(f"  machine busy ({busiest:.0f}% on one CPU, not ours); waiting for it to calm down",
                  file=sys.stderr, flush=True)
            warned = True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(argv: list[str], env: dict[str, str], log: Path, url: str, *, cwd: Path,
          core: int | None = None, timeout: float = 30.0) -> subprocess.Popen[bytes]:
    """Start a server (pinned to `core` with taskset), output to `log` (a file, not a pipe nobody reads),
    and wait until `url` answers."""
    prefix = ["taskset", "-c", str(core)] if core is not None else []
    with log.open("ab") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen([*prefix, *argv], env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{argv} exited with {proc.returncode}; see {log}")
        try:
            httpx.get(url, timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    stop(proc)
    raise RuntimeError(f"{argv} did not start; see {log}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def machine() -> dict[str, object]:
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "kernel": os.uname().release,
            "python": sys.version.split()[0]}


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def git_state(ref: str | None) -> dict[str, object]:
    """Which code was measured: a committed tree (--git-ref), or the working tree with its uncommitted edits."""
    import hashlib

    if ref:
        return {"tree": f"git archive {ref}", "commit": git("rev-parse", f"{ref}^{{commit}}")}
    dirty = git("status", "--porcelain", "--", "app", "jobs", "pyproject.toml")
    return {"tree": "working tree", "commit": git("rev-parse", "HEAD"), "dirty_files": dirty.splitlines(),
            "diff_sha256": hashlib.sha256(git("diff", "HEAD", "--", "app", "jobs").encode()).hexdigest()[:16]}


def export_tree(ref: str, dest: Path) -> Path:
    """The committed app/ and jobs/ of `ref` in `dest` (git archive: the repository itself is not touched)."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "--format=tar", ref, "app", "jobs"], cwd=ROOT, capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


_TICK = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads) in seconds, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def tree_cpu_seconds(pid: int) -> float:
    """`process_cpu_seconds` of a process and of its children, theirs and so on (e.g. `aqe web --processes N`)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = [int(c) for c in children.read_text().split()] if children.exists() else []
    return process_cpu_seconds(pid) + sum(tree_cpu_seconds(kid) for kid in kids if Path(f"/proc/{kid}").exists())
