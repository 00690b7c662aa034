"""`aqe web --processes N` as an operator runs it: N processes on one port, one /metrics, dead ones replaced,
SIGTERM stops them all, a broken start stops at once."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.fakes.processes import free_port

ROOT = Path(__file__).parents[2]


def children_of(pid: int) -> set[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return {int(p) for p in out.split()}


def wait_until(condition, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise TimeoutError("condition not met")


def answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def api_requests_counted(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return sum(float(v) for v in re.findall(r'^aqe_api_requests_total\{[^}]*route="/jobs"[^}]*\} (\S+)$', text, re.M))


def start_web(tmp_path: Path, redis_url: str, *args: str, **env: str) -> tuple[subprocess.Popen[str], str, int]:
    port = free_port()
    environ = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PORT": str(port), "REDIS_URL": redis_url,
               "AQE_DATA_DIR": str(tmp_path / "d"), **env}
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "web", "--host", "127.0.0.1", *args], env=environ,
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc, f"http://127.0.0.1:{port}", port


def stop(proc: subprocess.Popen[str]) -> str:
    """SIGTERM, and its output once it exited; killed (with its processes) if it does not exit in time."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        output, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        for pid in children_of(proc.pid):
            os.kill(pid, signal.SIGKILL)
        proc.kill()
        raise
    return output


def exited(proc: subprocess.Popen[str]) -> str:
    """Its output once it exits by itself; stopped (and the test failed) if it does not within 60 s."""
    try:
        output, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        stop(proc)
        raise
    return output


def test_processes_share_the_port_sum_their_counters_and_a_dead_one_is_replaced(tmp_path: Path,
                                                                                  redis_url: str) -> None:
    proc, url, _ = start_web(tmp_path, redis_url, AQE_WEB_PROCESSES="2")
    try:
        wait_until(lambda: answers(url) and len(children_of(proc.pid)) == 2)
        first = children_of(proc.pid)
        for _ in range(10):
            assert httpx.get(f"{url}/api/v1/jobs").status_code == 401  # each on a new connection
        assert api_requests_counted(url) == 10
        time.sleep(5.5)  # past the start-up window in which a dying process stops everything
        for pid in first:  # every process that served those requests dies; their counts stay in /metrics
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda pid=pid: pid not in children_of(proc.pid) and len(children_of(proc.pid)) == 2)
        wait_until(lambda: answers(url))
        assert children_of(proc.pid).isdisjoint(first)
        for _ in range(5):
            assert httpx.get(f"{url}/api/v1/jobs").status_code == 401
        assert api_requests_counted(url) == 15
        children = children_of(proc.pid)
    finally:
        output = stop(proc)
    assert proc.returncode == 0, output
    assert output.count("web process") >= 2 and "starting another" in output
    assert all(not Path(f"/proc/{pid}").exists() for pid in children)  # the supervisor reaped them
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", int(url.rsplit(":", 1)[1]))) != 0  # nothing listens any more


def test_one_process_is_the_default_and_serves_alone(tmp_path: Path, redis_url: str) -> None:
    proc, url, _ = start_web(tmp_path, redis_url)
    try:
        wait_until(lambda: answers(url))
        assert children_of(proc.pid) == set()
    finally:
        output = stop(proc)
    assert proc.returncode in (0, -signal.SIGTERM), output  # uvicorn ends by re-raising the signal it stopped on


def test_a_process_that_dies_at_its_start_stops_everything_with_an_error(tmp_path: Path, redis_url: str) -> None:
    """Dying within seconds of its start means something is broken that a restart would not mend: no restart loop."""
    proc, url, _ = start_web(tmp_path, redis_url, "--processes", "2")
    try:
        wait_until(lambda: len(children_of(proc.pid)) == 2)
        children = children_of(proc.pid)
        os.kill(min(children), signal.SIGKILL)
        output = exited(proc)
    finally:
        stop(proc)
    assert proc.returncode == 1, output
    assert f"web process {min(children)} exited with -9 within 5 s of its start; stopping" in output
    assert all(not Path(f"/proc/{pid}").exists() for pid in children)


def test_a_port_in_use_is_refused_with_a_message(tmp_path: Path, redis_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc, _, _ = start_web(tmp_path, redis_url, "--processes", "2", PORT=str(port))
        output = exited(proc)
    assert proc.returncode == 3, output
    assert f"cannot listen on 127.0.0.1:{port}" in output


@pytest.mark.parametrize("value", ["0", "65", "two", "-1"])
def test_a_bad_number_of_processes_is_named(tmp_path: Path, redis_url: str, value: str) -> None:
    proc, _, _ = start_web(tmp_path, redis_url, AQE_WEB_PROCESSES=value)
    output = exited(proc)
    assert proc.returncode == 2 and f"AQE_WEB_PROCESSES: '{value}' is not a number of processes from 1 to 64" in output
