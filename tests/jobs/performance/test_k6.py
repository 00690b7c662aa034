"""The k6 adapter: script generation, summary parsing, and runs (a stand-in k6, and the real one when installed)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobs.performance.config import as_performance_config
from jobs.performance.k6 import K6SummaryError, k6_argv, k6_script, parse_k6_summary, run_k6
from jobs.performance.plan import LoadPlan, plan_load
from jobs.performance.process import EngineError
from jobs.performance.thresholds import evaluate
from tests.fakes.target import FakeTarget

# What `k6 run --summary-export` writes (k6's legacy summary: js/summary-wrapper.js `oldJSONSummary`): every
# metric's statistics at the top level, Rate metrics as passes (true samples) / fails / value, thresholds as
# `true` when crossed. 1,200 requests in 30 s, 6 of them failed, `summaryTrendStats` as AQE sets it.
LEGACY_EXPORT: dict[str, Any] = {
    "root_group": {"name": "", "path": "", "id": "d41d8cd98f00b204e9800998ecf8427e", "groups": {}, "checks": {}},
    "metrics": {
        "http_reqs": {"count": 1200, "rate": 40.0},
        "http_req_failed": {"passes": 6, "fails": 1194, "value": 0.005, "thresholds": {"rate<0.01": False}},
        "http_req_duration": {
            "avg": 21.5, "min": 3.25, "med": 18.75, "max": 412.0, "p(50)": 18.75, "p(90)": 35.5, "p(95)": 48.125,
            "p(99)": 212.0, "count": 1200, "thresholds": {"p(95)<40": True},
        },
        "http_req_duration{expected_response:true}": {"avg": 21.0, "min": 3.25, "med": 18.5, "max": 412.0,
                                                       "p(90)": 35.0, "p(95)": 47.0},
        "http_req_waiting": {"avg": 21.0, "min": 3.0, "med": 18.5, "max": 411.0, "p(90)": 35.0, "p(95)": 47.5},
        "iterations": {"count": 1200, "rate": 40.0},
        "vus": {"value": 1, "min": 1, "max": 10},
        "vus_max": {"value": 10, "min": 10, "max": 10},
        "data_sent": {"count": 98400, "rate": 3280.0},
        "data_received": {"count": 240000, "rate": 8000.0},
    },
}  # fmt: skip

# The same run as `handleSummary(data)` sees it: statistics under `values`, thresholds as {"ok": bool}.
HANDLE_SUMMARY: dict[str, Any] = {
    "root_group": {"name": "", "path": "", "id": "d41d8cd98f00b204e9800998ecf8427e", "groups": [], "checks": []},
    "options": {"summaryTrendStats": ["avg", "min", "med", "max", "p(50)", "p(90)", "p(95)", "p(99)", "count"],
                "summaryTimeUnit": "", "noColor": False},
    "state": {"isStdOutTTY": False, "isStdErrTTY": False, "testRunDurationMs": 30012.5},
    "metrics": {
        "http_reqs": {"type": "counter", "contains": "default", "values": {"count": 1200, "rate": 39.98}},
        "http_req_failed": {"type": "rate", "contains": "default",
                            "values": {"rate": 0.005, "passes": 6, "fails": 1194},
                            "thresholds": {"rate<0.01": {"ok": True}}},
        "http_req_duration": {"type": "trend", "contains": "time", "values": {
            "avg": 21.5, "min": 3.25, "med": 18.75, "max": 412.0, "p(50)": 18.75, "p(90)": 35.5, "p(95)": 48.125,
            "p(99)": 212.0, "count": 1200}, "thresholds": {"p(95)<40": {"ok": False}}},
        "vus": {"type": "gauge", "contains": "default", "values": {"value": 1, "min": 1, "max": 10}},
    },
}  # fmt: skip


def _plan(**section: Any) -> LoadPlan:
    return plan_load(as_performance_config(section), "https://deploy:pw@preview.example.com/app?token=t1")


def _embedded(script: str, name: str) -> Any:
    """The JSON literal assigned to `const PLAN` / `export const options` in a generated script."""
    found = re.search(rf"{name} = (\{{.*?\n\}});", script, re.S)
    assert found, name
    return json.loads(found.group(1))


def test_the_script_ramps_like_the_builtin_engine_and_maps_thresholds() -> None:
    config = as_performance_config({"virtual_users": 8, "duration": "30s", "ramp_up": "5s", "timeout": "2s",
                                    "thresholds": ["p95 < 200ms", "errors < 1%", "p(99.9) < 1s", "rps > 50"]})
    script = k6_script(plan_load(config, "https://preview.example.com"), config.parsed_thresholds)
    options = _embedded(script, "export const options")
    assert options["scenarios"] == {"aqe": {
        "executor": "ramping-vus", "startVUs": 0, "gracefulRampDown": "0s", "gracefulStop": "3000ms",
        "stages": [{"duration": "5000ms", "target": 8}, {"duration": "25000ms", "target": 8}]}}
    assert options["thresholds"] == {"http_req_duration": ["p(95)<200", "p(99.9)<1000"],
                                     "http_req_failed": ["rate<0.01"], "http_reqs": ["rate>50"]}
    assert options["summaryTrendStats"] == ["avg", "min", "med", "max", "p(50)", "p(90)", "p(95)", "p(99)",
                                            "p(99.9)", "count"]
    assert options["discardResponseBodies"] is True
    assert "Date.now() - exec.scenario.startTime >= PLAN.durationMs" in script  # none starts after the deadline
    assert "redirects: 0" in script


def test_without_ramp_up_all_users_start_at_once_and_no_thresholds_are_set() -> None:
    options = _embedded(k6_script(_plan(virtual_users=3, duration="10s", ramp_up=0), []), "export const options")
    assert options["scenarios"]["aqe"]["startVUs"] == 3
    assert options["scenarios"]["aqe"]["stages"] == [{"duration": "10000ms", "target": 3}]
    assert "thresholds" not in options


def test_the_script_carries_the_requests_as_planned() -> None:
    plan = _plan(requests=[{"path": "/items"}, {"method": "POST", "path": "/search", "body": {"q": "x"}}])
    embedded = _embedded(k6_script(plan, []), "const PLAN")
    assert embedded["durationMs"] == 30000 and embedded["timeoutMs"] == 10000
    assert [(r["method"], r["url"], r["body"]) for r in embedded["requests"]] == [
        ("GET", "https://preview.example.com/app/items?token=t1", None),
        ("POST", "https://preview.example.com/app/search?token=t1", '{"q":"x"}'),
    ]
    assert embedded["requests"][1]["headers"]["Content-Type"] == "application/json"
    assert embedded["requests"][0]["headers"]["Authorization"].startswith("Basic ")


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_script_is_valid_javascript(tmp_path: Path) -> None:
    config = as_performance_config({"thresholds": ["p95 < 200ms"], "requests": [{"body": "it's \"quoted\"\n"}]})
    script = tmp_path / "script.mjs"
    script.write_text(k6_script(plan_load(config, "https://example.com"), config.parsed_thresholds))
    checked = subprocess.run(["node", "--check", str(script)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr


def test_k6_runs_quietly_with_a_summary_export(tmp_path: Path) -> None:
    assert k6_argv("/usr/bin/k6", tmp_path / "s.js", tmp_path / "summary.json") == [
        "/usr/bin/k6", "run", "--quiet", "--no-color", "--summary-export", str(tmp_path / "summary.json"),
        str(tmp_path / "s.js")]


@pytest.mark.parametrize("summary", [LEGACY_EXPORT, HANDLE_SUMMARY], ids=["summary-export", "handleSummary"])
def test_both_summary_shapes_give_the_same_figures(summary: dict[str, Any]) -> None:
    stats = parse_k6_summary(json.dumps(summary), planned_vus=10)
    assert (stats.engine, stats.requests, stats.failed, stats.vus) == ("k6", 1200, 6, 10)
    assert (stats.avg_ms, stats.min_ms, stats.med_ms, stats.max_ms) == (21.5, 3.25, 18.75, 412.0)
    assert stats.percentiles_ms == {"p(50)": 18.75, "p(90)": 35.5, "p(95)": 48.125, "p(99)": 212.0}
    assert stats.error_rate == 0.005 and stats.error_kinds is None and not stats.unreachable
    assert stats.elapsed_s == pytest.approx(30.0, abs=0.02)  # count / rate, or state.testRunDurationMs


def test_aqe_reaches_k6s_verdict_on_its_summary() -> None:
    config = as_performance_config({"thresholds": ["http_req_duration: p(95)<40", "errors < 1%"]})
    outcomes = evaluate(config.parsed_thresholds, parse_k6_summary(json.dumps(LEGACY_EXPORT), planned_vus=10))
    # k6 marked p(95)<40 as crossed (true) and rate<0.01 as not crossed (false)
    assert [(o.threshold.k6_expression, o.passed) for o in outcomes] == [("p(95)<40", False), ("rate<0.01", True)]


def test_a_target_k6_could_not_connect_to_is_unreachable() -> None:
    summary = json.loads(json.dumps(LEGACY_EXPORT))
    summary["metrics"]["http_req_failed"] = {"passes": 1200, "fails": 0, "value": 1}
    summary["metrics"]["data_sent"] = {"count": 0, "rate": 0}
    assert parse_k6_summary(json.dumps(summary), planned_vus=10).unreachable


@pytest.mark.parametrize(("raw", "message"), [
    ("{not json", "k6's summary is not JSON"),
    ("[]", "k6's summary has no `metrics`"),
    ('{"metrics": {}}', "k6's summary has no `http_reqs` metric"),
    ('{"metrics": {"http_reqs": {"count": 0, "rate": 0}}}', "k6 made no request"),
    ('{"metrics": {"http_reqs": {"count": 5, "rate": 1}, "http_req_failed": {"value": 0}}}',
     "k6's summary has no number `http_req_failed.passes`"),
    ('{"metrics": {"http_reqs": {"count": "5"}}}', "k6's summary has no number `http_reqs.count`"),
])  # fmt: skip
def test_unusable_summaries_say_what_is_wrong(raw: str, message: str) -> None:
    with pytest.raises(K6SummaryError, match=re.escape(message)):
        parse_k6_summary(raw, planned_vus=1)


# ---------------------------------------------------------------------------------- running k6


def _stand_in_k6(tmp_path: Path, summary: dict[str, Any] | None, status: int, stderr: str = "") -> str:
    """An executable that behaves as `k6 run` does at the end: writes the summary export, exits."""
    program = tmp_path / "k6"
    program.write_text(
        f"#!{sys.executable}\n"
        "import json, pathlib, sys\n"
        "args = sys.argv[1:]\n"
        "assert args[0] == 'run' and pathlib.Path(args[-1]).read_text().startswith('// Generated by AQE')\n"
        f"summary = {json.dumps(summary)!r}\n"
        "if json.loads(summary) is not None:\n"
        "    pathlib.Path(args[args.index('--summary-export') + 1]).write_text(summary)\n"
        f"sys.stderr.write({stderr!r})\n"
        f"sys.exit({status})\n"
    )
    program.chmod(0o755)
    return str(program)


async def _noop(fraction: float, message: str) -> None:
    return None


async def test_thresholds_crossed_is_a_normal_end(tmp_path: Path) -> None:
    k6 = _stand_in_k6(tmp_path, LEGACY_EXPORT, status=99)
    stats = await run_k6(_plan(duration="1s", ramp_up=0), [], k6, tmp_path / "scratch", _noop)
    assert (stats.engine, stats.requests) == ("k6", 1200)
    script = tmp_path / "scratch" / "k6" / "script.js"
    assert script.stat().st_mode & 0o777 == 0o600  # it holds the headers


async def test_a_failing_k6_is_an_engine_error_with_its_output(tmp_path: Path) -> None:
    k6 = _stand_in_k6(tmp_path, None, status=107, stderr="level=error msg=\"SyntaxError: boom\"\n")
    with pytest.raises(EngineError, match="k6 exited with status 107: level=error msg=\"SyntaxError: boom\""):
        await run_k6(_plan(duration="1s", ramp_up=0), [], k6, tmp_path / "scratch", _noop)


async def test_a_summary_k6_did_not_write_whole_is_an_engine_error(tmp_path: Path) -> None:
    k6 = _stand_in_k6(tmp_path, {"metrics": {}}, status=0)
    with pytest.raises(EngineError, match="no `http_reqs` metric"):
        await run_k6(_plan(duration="1s", ramp_up=0), [], k6, tmp_path / "scratch", _noop)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeTarget]:
    with FakeTarget() as fake:
        yield fake


@pytest.mark.skipif(shutil.which("k6") is None, reason="k6 is not installed")
async def test_real_k6_counts_what_the_server_received(server: FakeTarget, tmp_path: Path) -> None:
    server.reset()
    config = as_performance_config({"virtual_users": 2, "duration": "1s", "ramp_up": 0,
                                    "thresholds": ["p95 < 1s", "errors < 1%"]})
    plan = plan_load(config, f"{server.url}/flaky?every=4")
    stats = await run_k6(plan, config.parsed_thresholds, shutil.which("k6") or "k6", tmp_path, _noop)
    assert stats.requests == server.requests
    assert stats.failed == server.statuses[500] == stats.requests // 4
