"""The built-in engine against a real server on 127.0.0.1 (`tests/fakes/target.py`), in its own process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from jobs.performance.builtin import AQE_ROOT, engine_argv, engine_env, run_builtin
from jobs.performance.config import as_performance_config
from jobs.performance.plan import LoadPlan, plan_load
from jobs.performance.process import EngineError
from jobs.performance.stats import LoadStats
from tests.fakes.processes import free_port
from tests.fakes.target import FakeTarget


@pytest.fixture(scope="module")
def server() -> Iterator[FakeTarget]:
    with FakeTarget() as fake:
        yield fake


@pytest.fixture
def target(server: FakeTarget) -> FakeTarget:
    server.reset()
    return server


def _plan(url: str, **section: object) -> LoadPlan:
    config = as_performance_config({"ramp_up": 0, **section})
    return plan_load(config, url)


class Updates:
    def __init__(self) -> None:
        self.seen: list[tuple[float, str]] = []

    async def __call__(self, fraction: float, message: str) -> None:
        self.seen.append((fraction, message))


async def _run(plan: LoadPlan, scratch: Path, progress: Updates | None = None) -> LoadStats:
    return await run_builtin(plan, scratch, progress or Updates())


async def test_every_request_is_counted_once_on_both_sides(target: FakeTarget, tmp_path: Path) -> None:
    stats = await _run(_plan(f"{target.url}/fast", virtual_users=4, duration="600ms"), tmp_path)
    assert stats.requests > 0
    assert stats.requests == target.requests == target.by_path["/fast"]
    assert (stats.failed, stats.sent, stats.error_kinds, stats.vus) == (0, stats.requests, {}, 4)
    assert 0 < stats.min_ms <= stats.med_ms <= stats.percentiles_ms["p(95)"] <= stats.max_ms
    assert stats.percentiles_ms["p(50)"] == stats.med_ms
    assert len(target.connections) == 4  # one kept-alive connection per virtual user


async def test_the_error_rate_is_the_planted_one(target: FakeTarget, tmp_path: Path) -> None:
    stats = await _run(_plan(f"{target.url}/flaky?every=5", virtual_users=3, duration="600ms"), tmp_path)
    assert stats.requests == target.requests
    assert stats.failed == target.statuses[500] == stats.requests // 5
    assert stats.error_kinds == {"500": stats.failed}
    assert stats.error_rate == stats.failed / stats.requests
    assert stats.sent == stats.requests


async def test_durations_include_the_servers_time(target: FakeTarget, tmp_path: Path) -> None:
    stats = await _run(_plan(f"{target.url}/slow?ms=40", virtual_users=2, duration="500ms"), tmp_path)
    assert stats.requests == target.requests > 0
    assert stats.min_ms >= 40.0
    assert stats.requests <= 2 * (1 + 500 // 40)  # a user waits for each answer before it sends again


async def test_ramp_up_starts_users_one_by_one(target: FakeTarget, tmp_path: Path) -> None:
    before = time.monotonic()
    stats = await _run(_plan(f"{target.url}/fast", virtual_users=4, duration="1200ms", ramp_up="800ms"), tmp_path)
    # user k of 4 starts no earlier than 0.8 s * k / 4 (lower bounds only: a busy machine only delays them)
    assert len(stats.vu_starts_s) == 4
    assert all(start >= 0.2 * k for k, start in enumerate(stats.vu_starts_s, start=1))
    first_requests = sorted(target.connections.values())
    assert len(first_requests) == 4
    assert first_requests[-1] - before >= 0.8  # the server saw the last user arrive no earlier than that
    assert stats.requests == target.requests


async def test_a_dead_port_fails_every_request_without_a_response(tmp_path: Path) -> None:
    stats = await _run(_plan(f"http://127.0.0.1:{free_port()}/", virtual_users=2, duration="300ms"), tmp_path)
    assert stats.requests > 0
    assert (stats.failed, stats.sent, stats.unreachable) == (stats.requests, 0, True)
    assert stats.error_kinds == {"ConnectError": stats.requests}
    assert stats.max_ms == 0.0  # as in k6: nothing was sent, so nothing was timed


async def test_requests_slower_than_the_timeout_fail(target: FakeTarget, tmp_path: Path) -> None:
    stats = await _run(_plan(f"{target.url}/slow?ms=3000", virtual_users=1, duration="300ms", timeout="200ms"),
                       tmp_path)
    assert stats.requests == target.requests == stats.failed == stats.sent
    assert stats.requests >= 1
    assert set(stats.error_kinds or {}) <= {"Timeout", "ReadTimeout"}
    assert stats.min_ms > 0  # sent, then timed until given up, as k6 does
    assert not stats.unreachable  # the server took them, it did not answer in time


async def test_methods_headers_bodies_and_userinfo_reach_the_server(target: FakeTarget, tmp_path: Path) -> None:
    host = target.url.removeprefix("http://")
    plan = _plan(f"http://deploy:pw@{host}", virtual_users=1, duration="300ms",
                 requests=[{"method": "POST", "path": "/fast", "body": {"q": 1}}, {"path": "/status?code=404"}])
    stats = await _run(plan, tmp_path)
    assert stats.requests == target.requests
    assert target.by_path["/fast"] >= target.by_path["/status"] >= 1
    assert stats.error_kinds == {"404": target.by_path["/status"]}
    assert target.authorizations == {"Basic ZGVwbG95OnB3"}  # deploy:pw


async def test_progress_is_reported_while_it_runs(target: FakeTarget, tmp_path: Path) -> None:
    updates = Updates()
    plan = msgspec.structs.replace(_plan(f"{target.url}/fast", virtual_users=2, duration="800ms"),
                                   progress_interval_s=0.2)
    stats = await _run(plan, tmp_path, updates)
    assert len(updates.seen) >= 2
    fractions = [fraction for fraction, _ in updates.seen]
    assert fractions == sorted(fractions) and all(0 < f <= 1 for f in fractions)
    requests = [int(message.split()[0]) for _, message in updates.seen]
    assert requests == sorted(requests) and requests[-1] <= stats.requests
    assert "virtual users" in updates.seen[-1][1]


def _engine_children() -> list[int]:
    """Our child processes that run the engine."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        if parent == os.getpid() and b"jobs.performance.engine" in cmdline:
            found.append(int(entry.name))
    return found


async def test_cancelling_kills_the_engine_which_sees_no_secret(target: FakeTarget, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AQE_TEST_SECRET", "hunter2")
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_secret")
    updates = Updates()
    plan = msgspec.structs.replace(_plan(f"{target.url}/fast", virtual_users=2, duration="30s"),
                                   progress_interval_s=0.1)
    task = asyncio.create_task(_run(plan, tmp_path, updates))
    while not updates.seen:
        await asyncio.sleep(0.05)
    [pid] = _engine_children()
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert not [v for v in environ if v.startswith((b"AQE_", b"GITHUB_")) or b"hunter2" in v]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _engine_children() == []
    assert not Path(f"/proc/{pid}").exists()


def test_the_engine_environment_is_built_from_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AQE_LLM_API_KEY", "sk-secret")
    env = engine_env(tmp_path / "home")
    assert env["PYTHONPATH"] == str(AQE_ROOT)
    assert not [key for key in env if key.startswith(("AQE_", "GITHUB_", "REDIS"))]
    assert (tmp_path / "home" / "tmp").is_dir()


def test_the_engine_refuses_a_plan_it_cannot_read(tmp_path: Path) -> None:
    done = subprocess.run(engine_argv(), input=b"{not json", capture_output=True, env=engine_env(tmp_path),
                          cwd=tmp_path, timeout=60, check=False)
    assert done.returncode == 2
    assert b"cannot read the load plan on stdin" in done.stderr


async def test_a_failing_engine_is_an_engine_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("jobs.performance.builtin.engine_argv",
                        lambda: [sys.executable, "-c", "import sys; sys.stderr.write('boom\\n'); sys.exit(3)"])
    with pytest.raises(EngineError, match="exited with status 3: boom"):
        await _run(_plan("http://127.0.0.1:9/", duration="1s"), tmp_path)
