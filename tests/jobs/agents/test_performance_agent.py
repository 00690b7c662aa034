"""The performance agent end to end: the built-in engine against a real server on 127.0.0.1."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from jobs.agents.base import AgentOptions, Workspace
from jobs.agents.performance import PerformanceAgent
from jobs.model import AgentResult
from tests.fakes.processes import free_port
from tests.fakes.target import FakeTarget

METRICS = {"requests", "errors", "rps", "p50_ms", "p95_ms", "p99_ms", "max_ms", "avg_ms", "error_rate",
           "virtual_users", "duration_s", "engine", "thresholds", "thresholds_failed"}
SHORT = {"virtual_users": 2, "duration": "500ms", "ramp_up": 0, "engine": "builtin"}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeTarget]:
    with FakeTarget() as fake:
        yield fake


@pytest.fixture
def target(server: FakeTarget) -> FakeTarget:
    server.reset()
    return server


class Updates:
    def __init__(self) -> None:
        self.seen: list[tuple[float, str]] = []

    async def __call__(self, fraction: float, message: str) -> None:
        self.seen.append((fraction, message))


async def _run(tmp_path: Path, section: dict[str, Any] | None, api_target: str | None = None,
               updates: Updates | None = None) -> AgentResult:
    workspace = Workspace(root=tmp_path / "repo", scratch=tmp_path / "scratch", head_sha="0" * 40,
                          options=AgentOptions(performance_target=api_target))
    workspace.root.mkdir()
    result = await PerformanceAgent().run(workspace, section, updates or Updates())
    msgspec.json.encode(result)  # it must cross the queue
    return result


def _everything(result: AgentResult) -> str:
    return result.title + result.summary + result.text + msgspec.json.encode(result.metrics).decode()


async def test_no_target_is_neutral_with_the_reason(tmp_path: Path) -> None:
    result = await _run(tmp_path, None)
    assert (result.conclusion, result.title) == ("neutral", "No performance target configured")
    assert result.summary.startswith("No performance target configured: set `performance.target_url` in .aqe.yml "
                                     "or pass `target_url` to the API.")
    assert "requests" not in result.metrics  # the gate counts only a test that ran
    assert PerformanceAgent().applies_to(Workspace(root=tmp_path, scratch=tmp_path, head_sha="0"), None)


async def test_passing_thresholds_succeed_with_exact_figures(target: FakeTarget, tmp_path: Path) -> None:
    updates = Updates()
    section = {**SHORT, "target_url": f"{target.url}/fast", "thresholds": ["p95 < 1s", "errors < 1%"]}
    result = await _run(tmp_path, section, updates=updates)
    assert result.conclusion == "success", result.summary
    assert set(result.metrics) == METRICS
    metrics = result.metrics
    assert metrics["requests"] == target.requests > 0
    assert (metrics["errors"], metrics["error_rate"], metrics["thresholds"], metrics["thresholds_failed"]) == (
        0, 0, 2, 0)
    assert (metrics["engine"], metrics["virtual_users"]) == ("builtin", 2)
    p50, p95, p99, most = (float(metrics[key]) for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms"))
    assert 0 < p50 <= p95 <= p99 <= most
    assert float(metrics["rps"]) == pytest.approx(int(metrics["requests"]) / float(metrics["duration_s"]), rel=1e-3)
    assert result.title.startswith("All 2 thresholds passed: p95 ")
    assert "| `p95 < 1s` |" in result.summary and "✅ pass" in result.summary and "❌" not in result.summary
    assert f"| {target.requests:,} |" in result.summary
    assert f"`{target.url}/fast`" in result.summary
    assert result.findings == []
    assert updates.seen and all(0 <= fraction <= 1 for fraction, _ in updates.seen)


async def test_a_slow_target_fails_its_latency_threshold(target: FakeTarget, tmp_path: Path) -> None:
    section = {**SHORT, "target_url": f"{target.url}/slow?ms=30", "thresholds": ["p95 < 10ms", "errors < 1%"]}
    result = await _run(tmp_path, section)
    assert result.conclusion == "failure"
    assert result.metrics["thresholds_failed"] == 1
    assert float(result.metrics["p95_ms"]) >= 30.0
    assert result.title.startswith("1 of 2 thresholds failed (p95 < 10ms): p95 ")
    assert "| `p95 < 10ms` |" in result.summary and "❌ fail" in result.summary


async def test_planted_errors_fail_the_error_threshold_with_their_kinds(target: FakeTarget, tmp_path: Path) -> None:
    result = await _run(tmp_path, {**SHORT, "target_url": f"{target.url}/flaky?every=4", "thresholds": ["errors < 1%"]})
    assert result.conclusion == "failure"
    errors, requests = int(result.metrics["errors"]), int(result.metrics["requests"])
    assert errors == target.statuses[500] == requests // 4 and requests == target.requests
    assert result.metrics["error_rate"] == round(errors * 100 / requests, 4)
    assert f"**Errors:** `500` × {errors:,}" in result.summary


async def test_no_thresholds_only_reports(target: FakeTarget, tmp_path: Path) -> None:
    result = await _run(tmp_path, {**SHORT, "target_url": f"{target.url}/flaky?every=2"})
    assert result.conclusion == "success"  # errors alone do not fail without a threshold on them
    assert result.title.endswith("(no thresholds set)")
    assert "No thresholds set: add `performance.thresholds`" in result.summary


async def test_a_dead_port_fails_saying_the_target_is_unreachable(tmp_path: Path) -> None:
    result = await _run(tmp_path, {**SHORT, "duration": "300ms", "target_url": f"http://127.0.0.1:{free_port()}/"})
    assert result.conclusion == "failure"
    requests = int(result.metrics["requests"])
    assert result.title == (f"Target unreachable: none of {requests:,} requests could be sent "
                            f"(ConnectError × {requests:,})")
    assert "**The target could not be reached**" in result.summary
    assert result.metrics["error_rate"] == 100.0


async def test_the_api_target_wins_over_the_config(target: FakeTarget, tmp_path: Path) -> None:
    section = {**SHORT, "target_url": f"http://127.0.0.1:{free_port()}/"}
    result = await _run(tmp_path, section, api_target=f"{target.url}/fast")
    assert result.conclusion == "success"
    assert result.metrics["requests"] == target.by_path["/fast"] == target.requests


async def test_credentials_in_the_target_are_used_but_never_shown(target: FakeTarget, tmp_path: Path) -> None:
    host = target.url.removeprefix("http://")
    url = f"http://deploy:hunter22@{host}/fast?token=sekrit-token&page=2"
    section = {**SHORT, "target_url": url, "requests": [{"path": "/", "headers": {"X-Api-Key": "key-0451"}}]}
    result = await _run(tmp_path, section)
    assert result.conclusion == "success"
    assert target.authorizations == {"Basic ZGVwbG95Omh1bnRlcjIy"}  # deploy:hunter22
    shown = _everything(result)
    assert not [secret for secret in ("hunter22", "sekrit-token", "key-0451", "deploy:") if secret in shown]
    assert f"`http://{host}/fast?token=***&page=***`" in result.summary


async def test_an_engine_failure_fails_the_check_without_leaking(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    failing = [sys.executable, "-c", "import sys; sys.stderr.write('cannot reach ?token=sekrit-token\\n'); sys.exit(3)"]
    monkeypatch.setattr("jobs.performance.builtin.engine_argv", lambda: failing)
    result = await _run(tmp_path, {**SHORT, "target_url": "http://127.0.0.1:9/?token=sekrit-token"})
    assert (result.conclusion, result.title) == ("failure", "Load test could not run")
    assert "exited with status 3: cannot reach ?token=***" in result.summary
    assert "sekrit-token" not in _everything(result)
    assert "requests" not in result.metrics


async def test_an_invalid_api_target_fails_clearly(tmp_path: Path) -> None:
    result = await _run(tmp_path, SHORT, api_target="ftp://files.example.com")
    assert (result.conclusion, result.title) == ("failure", "Invalid performance target")
    assert result.summary == "The performance target URL must be an http:// or https:// URL."


@pytest.mark.skipif(shutil.which("k6") is not None, reason="k6 is installed")
async def test_asking_for_k6_without_k6_is_neutral(tmp_path: Path) -> None:
    result = await _run(tmp_path, {**SHORT, "engine": "k6", "target_url": "http://127.0.0.1:9/"})
    assert (result.conclusion, result.title) == ("neutral", "k6 is not installed")
    assert "set `engine: auto`" in result.summary


async def test_a_target_in_a_denied_network_is_not_load_tested(target: FakeTarget, tmp_path: Path) -> None:
    from jobs.netpolicy import parse_networks

    workspace = Workspace(root=tmp_path / "repo", scratch=tmp_path / "scratch", head_sha="0" * 40,
                          options=AgentOptions(denied_networks=parse_networks("127.0.0.0/8")))
    workspace.root.mkdir()
    result = await PerformanceAgent().run(workspace, {**SHORT, "target_url": target.url}, Updates())
    assert result.conclusion == "failure" and result.title == "Invalid performance target"
    assert "resolves to 127.0.0.1" in result.summary and "AQE_DENY_NETWORKS" in result.summary
    assert target.requests == 0
