"""The gate's conditions over real-shaped agent results (the metrics the agents write)."""

from __future__ import annotations

import pytest

from jobs.agents.gate import gate_result, gate_table
from jobs.gate.conditions import evaluate
from jobs.gate.config import GateConfig
from jobs.model import AgentResult
from jobs.repo_config import ConfigError, parse_config


def _r(agent: str, conclusion: str = "success", **metrics: float | int | str) -> AgentResult:
    return AgentResult(agent=agent, conclusion=conclusion, title=f"{agent} title", summary="", metrics=metrics)  # type: ignore[arg-type]


GOOD = {
    "tests": _r("tests", tests_total=12, tests_passed=12, tests_failed=0, tests_errors=0),
    "coverage": _r("coverage", total_percent=91.2, patch_percent=85.0, patch_coverable=20),
    "security": _r("security", new_critical=0, new_high=0, new_medium=2, new_low=1, dependency_scan="ok"),
    "quality": _r("quality", max_ccn_changed=7, functions_changed=3, functions_over_threshold=0,
                  duplication_new_percent=0.0, changed_lines=40),
}


def _by_name(config: GateConfig, results: dict[str, AgentResult]) -> dict[str, tuple[str, str]]:
    return {c.name: (c.status, c.actual) for c in evaluate(config, results)}


def test_defaults_pass_a_clean_change() -> None:
    result = gate_result("quality-gate", GateConfig(), GOOD)
    assert result.conclusion == "success"
    assert result.title == "Quality gate passed: 5 of 5 conditions"
    assert _by_name(GateConfig(), GOOD) == {
        "Tests pass": ("passed", "0 failed of 12"),
        "Coverage on new code": ("passed", "85.0 %"),
        "New high/critical security issues": ("passed", "0"),
        "Complexity of changed functions": ("passed", "max 7"),
        "Duplication on new code": ("passed", "0.0 %"),
    }


def test_each_default_condition_fails_on_its_own() -> None:
    bad = {
        "tests": _r("tests", "failure", tests_total=12, tests_passed=11, tests_failed=1, tests_errors=0),
        "coverage": _r("coverage", "failure", total_percent=91.2, patch_percent=79.9, patch_coverable=20),
        "security": _r("security", "failure", new_critical=0, new_high=1, new_medium=0, new_low=0),
        "quality": _r("quality", "failure", max_ccn_changed=16, functions_changed=2, functions_over_threshold=1,
                      duplication_new_percent=3.1, changed_lines=40),
    }
    for agent, result in bad.items():
        statuses = _by_name(GateConfig(), {**GOOD, agent: result})
        failed = {name for name, (status, _) in statuses.items() if status == "failed"}
        expected = {"tests": {"Tests pass"}, "coverage": {"Coverage on new code"},
                    "security": {"New high/critical security issues"},
                    "quality": {"Complexity of changed functions", "Duplication on new code"}}[agent]
        assert failed == expected, (agent, statuses)
    result = gate_result("quality-gate", GateConfig(), bad)
    assert result.conclusion == "failure" and result.metrics["conditions_failed"] == 5
    assert result.title.startswith("Quality gate failed: 5 of 5 conditions")


def test_thresholds_are_inclusive_at_the_boundary() -> None:
    edge = {**GOOD, "coverage": _r("coverage", patch_percent=80.0, patch_coverable=20),
            "quality": _r("quality", max_ccn_changed=15, functions_changed=1, duplication_new_percent=3.0, changed_lines=9)}
    assert all(status == "passed" for status, _ in _by_name(GateConfig(), edge).values())


def test_small_change_never_fails_coverage() -> None:
    small = {**GOOD, "coverage": _r("coverage", "failure", patch_percent=0.0, patch_coverable=4)}
    [coverage] = [c for c in evaluate(GateConfig(), small) if c.name == "Coverage on new code"]
    assert coverage.status == "passed" and "small change: 4 coverable lines" in coverage.note
    assert [c.status for c in evaluate(GateConfig(small_change_lines=0), small) if c.name == "Coverage on new code"] \
        == ["failed"]


def test_missing_agents_are_not_evaluated_and_do_not_fail() -> None:
    only_tests = {"tests": GOOD["tests"]}
    conditions = evaluate(GateConfig(), only_tests)
    assert [c.status for c in conditions] == ["passed", "not evaluated", "not evaluated", "not evaluated", "not evaluated"]
    assert "`aqe/coverage` did not run" in conditions[1].note
    assert gate_result("quality-gate", GateConfig(), only_tests).conclusion == "success"
    assert gate_result("quality-gate", GateConfig(), {}).conclusion == "neutral"


def test_skipped_tests_of_a_fork_are_not_evaluated() -> None:
    fork = {**GOOD, "tests": _r("tests", "neutral")}
    [tests] = [c for c in evaluate(GateConfig(), fork) if c.name == "Tests pass"]
    assert tests.status == "not evaluated"


def test_overrides_from_aqe_yml() -> None:
    config = parse_config("quality_gate:\n  min_patch_coverage: 90\n  fail_on_security: medium\n  max_ccn: null\n"
                          "  min_total_coverage: 95\n")
    statuses = _by_name(config.quality_gate, GOOD)
    assert statuses["Coverage on new code"] == ("failed", "85.0 %")
    assert statuses["New medium+ security issues"] == ("failed", "2")
    assert statuses["Total coverage"] == ("failed", "91.2 %")
    assert "Complexity of changed functions" not in statuses


def test_bad_gate_config_names_the_key_and_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("quality_gate:\n  fail_on_security: severe\n")
    assert "line 2" in str(caught.value) and "quality_gate.fail_on_security" in str(caught.value)


def test_performance_counts_only_when_a_load_test_ran() -> None:
    assert "Performance thresholds" not in _by_name(GateConfig(), {**GOOD, "performance": _r("performance", "neutral")})
    slow = {**GOOD, "performance": _r("performance", "failure", requests=500, p95_ms=340.0, error_rate=0.0,
                                       thresholds_failed=1)}
    assert _by_name(GateConfig(), slow)["Performance thresholds"] == ("failed", "p95 340 ms, errors 0.00 %")


def test_unavailable_dependency_scan_is_said_in_the_table() -> None:
    results = {**GOOD, "security": _r("security", "neutral", new_critical=0, new_high=0, dependency_scan="unavailable")}
    table = gate_table(evaluate(GateConfig(), results))
    assert "dependency scan unavailable" in table
    assert table.splitlines()[0] == "| Condition | Actual | Threshold | Result |"


@pytest.mark.parametrize("broken", [
    _r("tests", "timed_out"),
    AgentResult(agent="tests", conclusion="failure", title="The project's setup failed", summary="pip: exit 1"),
    AgentResult(agent="tests", conclusion="failure", title="AQE could not finish this check", summary="crash"),
])
def test_tests_that_could_not_finish_fail_the_gate(broken: AgentResult) -> None:
    [tests] = [c for c in evaluate(GateConfig(), {**GOOD, "tests": broken}) if c.name == "Tests pass"]
    assert tests.status == "failed" and tests.note in ("`aqe/tests` timed out",
                                                       f"`aqe/tests` could not finish: {broken.title}")
    assert gate_result("quality-gate", GateConfig(), {**GOOD, "tests": broken}).conclusion == "failure"


def test_every_agent_that_broke_fails_the_conditions_that_read_it() -> None:
    crashed = {agent: AgentResult(agent=agent, conclusion="failure", title="AQE could not finish this check",
                                  summary="") for agent in ("coverage", "security", "quality", "performance")}
    statuses = _by_name(GateConfig(performance=True), {**GOOD, **crashed})
    assert {name: status for name, (status, _) in statuses.items()} == {
        "Tests pass": "passed", "Coverage on new code": "failed", "New high/critical security issues": "failed",
        "Complexity of changed functions": "failed", "Duplication on new code": "failed",
        "Performance thresholds": "failed"}


def test_a_skipped_or_held_agent_is_still_only_not_evaluated() -> None:
    held = {**GOOD, "tests": _r("tests", "action_required"), "coverage": _r("coverage", "skipped")}
    statuses = _by_name(GateConfig(), held)
    assert statuses["Tests pass"][0] == statuses["Coverage on new code"][0] == "not evaluated"
