"""Each gate condition as a plain function over the other agents' results.

A condition is *passed*, *failed*, or *not evaluated* (the agent it reads was not asked to run, or had nothing
to measure, e.g. no coverage report); only a failed condition fails the gate, as in SonarQube, and a
condition that could not be evaluated says why. An agent that was run but could not finish (it timed out,
its setup failed, it crashed: no figures) fails the conditions that read it — a broken run is never a pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from jobs.gate.config import GateConfig
from jobs.model import AgentResult

Status = Literal["passed", "failed", "not evaluated"]
Results = Mapping[str, AgentResult]

NOT_RUN = {"skipped", "cancelled", "action_required"}


@dataclass(frozen=True, slots=True)
class Condition:
    name: str
    actual: str
    threshold: str
    status: Status
    note: str = ""


def _metric(results: Results, agent: str, key: str) -> float | None:
    result = results.get(agent)
    value = result.metrics.get(key) if result is not None else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _unavailable(results: Results, agent: str) -> tuple[Status, str] | None:
    """(status, why) when `agent`'s figures cannot be used: not evaluated when it did not run, failed when it
    ran and broke; None when they can be used."""
    result = results.get(agent)
    if result is None:
        return "not evaluated", f"`aqe/{agent}` did not run"
    if result.conclusion in NOT_RUN:
        return "not evaluated", f"`aqe/{agent}` was {result.conclusion.replace('_', ' ')}"
    if result.conclusion == "timed_out":
        return "failed", f"`aqe/{agent}` timed out"
    if result.conclusion == "failure" and not result.metrics:
        return "failed", f"`aqe/{agent}` could not finish: {result.title}"
    return None


def _pct(value: float) -> str:
    return f"{value:.1f} %"


def tests_pass(config: GateConfig, results: Results) -> Condition | None:
    if not config.tests_pass:
        return None
    name, threshold = "Tests pass", "0 failed"
    if blocked := _unavailable(results, "tests"):
        return Condition(name, "—", threshold, *blocked)
    failed = (_metric(results, "tests", "tests_failed") or 0) + (_metric(results, "tests", "tests_errors") or 0)
    total = _metric(results, "tests", "tests_total")
    if total is None or (total == 0 and results["tests"].conclusion != "failure"):
        return Condition(name, "no tests", threshold, "not evaluated", results["tests"].title)
    if results["tests"].conclusion == "failure" and failed == 0:  # e.g. the command failed without failing a test
        return Condition(name, "failed", threshold, "failed", results["tests"].title)
    return Condition(name, f"{int(failed)} failed of {int(total)}", threshold, "failed" if failed else "passed")


def patch_coverage(config: GateConfig, results: Results) -> Condition | None:
    if config.min_patch_coverage is None:
        return None
    name, threshold = "Coverage on new code", f"≥ {_pct(config.min_patch_coverage)}"
    if blocked := _unavailable(results, "coverage"):
        return Condition(name, "—", threshold, *blocked)
    percent = _metric(results, "coverage", "patch_percent")
    coverable = _metric(results, "coverage", "patch_coverable")
    if percent is None:
        note = "no coverable changed lines" if coverable == 0 else results["coverage"].title
        return Condition(name, "—", threshold, "not evaluated", note)
    if coverable is not None and coverable < config.small_change_lines:
        return Condition(name, _pct(percent), threshold, "passed",
                         f"small change: {int(coverable)} coverable lines (< {config.small_change_lines})")
    return Condition(name, _pct(percent), threshold, "passed" if percent >= config.min_patch_coverage else "failed")


def total_coverage(config: GateConfig, results: Results) -> Condition | None:
    if config.min_total_coverage is None:
        return None
    name, threshold = "Total coverage", f"≥ {_pct(config.min_total_coverage)}"
    if blocked := _unavailable(results, "coverage"):
        return Condition(name, "—", threshold, *blocked)
    percent = _metric(results, "coverage", "total_percent")
    if percent is None:
        return Condition(name, "—", threshold, "not evaluated", results["coverage"].title)
    return Condition(name, _pct(percent), threshold, "passed" if percent >= config.min_total_coverage else "failed")


def new_security_findings(config: GateConfig, results: Results) -> Condition | None:
    severities = config.failing_severities()
    if not severities:
        return None
    name = f"New {'/'.join(reversed(severities)) if len(severities) <= 2 else severities[-1] + '+'} security issues"
    threshold = "0"
    if blocked := _unavailable(results, "security"):
        return Condition(name, "—", threshold, *blocked)
    counts = [_metric(results, "security", f"new_{severity}") for severity in severities]
    if all(count is None for count in counts):
        return Condition(name, "—", threshold, "not evaluated", results["security"].title)
    found = int(sum(count or 0 for count in counts))
    note = ""
    if results["security"].metrics.get("dependency_scan") == "unavailable":
        note = "dependency scan unavailable: vulnerable dependencies were not checked"
    return Condition(name, str(found), threshold, "failed" if found else "passed", note)


def complexity(config: GateConfig, results: Results) -> Condition | None:
    if config.max_ccn is None:
        return None
    name, threshold = "Complexity of changed functions", f"CCN ≤ {config.max_ccn}"
    if blocked := _unavailable(results, "quality"):
        return Condition(name, "—", threshold, *blocked)
    worst = _metric(results, "quality", "max_ccn_changed")
    if worst is None or not _metric(results, "quality", "functions_changed"):
        return Condition(name, "—", threshold, "not evaluated", "no changed function")
    over = int(_metric(results, "quality", "functions_over_threshold") or 0)
    actual = f"max {int(worst)}" + (f" ({over} over)" if worst > config.max_ccn and over else "")
    return Condition(name, actual, threshold, "failed" if worst > config.max_ccn else "passed")


def duplication(config: GateConfig, results: Results) -> Condition | None:
    if config.max_duplication is None:
        return None
    name, threshold = "Duplication on new code", f"≤ {_pct(config.max_duplication)}"
    if blocked := _unavailable(results, "quality"):
        return Condition(name, "—", threshold, *blocked)
    percent = _metric(results, "quality", "duplication_new_percent")
    if percent is None or not _metric(results, "quality", "changed_lines"):
        return Condition(name, "—", threshold, "not evaluated", "no changed code lines")
    return Condition(name, _pct(percent), threshold, "passed" if percent <= config.max_duplication else "failed")


def performance(config: GateConfig, results: Results) -> Condition | None:
    result = results.get("performance")
    if not config.performance or result is None:
        return None  # optional: only when a load test was run
    if (blocked := _unavailable(results, "performance")) and blocked[0] == "failed":
        return Condition("Performance thresholds", "—", "all hold", *blocked)
    if blocked or _metric(results, "performance", "requests") is None:
        return None
    failed = int(_metric(results, "performance", "thresholds_failed") or 0)
    p95 = _metric(results, "performance", "p95_ms")
    errors = _metric(results, "performance", "error_rate")
    actual = ", ".join(part for part in (
        f"p95 {p95:.0f} ms" if p95 is not None else "", f"errors {errors:.2f} %" if errors is not None else "",
    ) if part) or "—"
    status: Status = "failed" if failed or result.conclusion == "failure" else "passed"
    return Condition("Performance thresholds", actual, "all hold", status,
                     f"{failed} threshold{'s' if failed != 1 else ''} failed" if failed else "")


CONDITIONS: tuple[Callable[[GateConfig, Results], Condition | None], ...] = (
    tests_pass, patch_coverage, total_coverage, new_security_findings, complexity, duplication, performance,
)


def evaluate(config: GateConfig, results: Results) -> list[Condition]:
    """Every configured condition, in the order of the table."""
    return [condition for check in CONDITIONS if (condition := check(config, results)) is not None]
