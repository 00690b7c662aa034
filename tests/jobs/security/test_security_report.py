"""The security result built from an analysis: conclusion, title, levels and the summary's parts."""

from __future__ import annotations

from jobs.security.config import SecurityConfig, as_security_config
from jobs.security.issues import Classified, Issue
from jobs.security.report import (
    DependencyStatus,
    ScanOutcome,
    SecurityAnalysis,
    finding_level,
    security_result,
)


def item(severity: str, status: str = "new", fails: bool = False, scanner: str = "sast") -> Classified:
    issue = Issue(scanner, "B999", severity, "a.py", 3, 4, "B999: title", "message",  # type: ignore[arg-type]
                  details="more")
    return Classified(issue, status, fails)  # type: ignore[arg-type]


def analysis(items: list[Classified], config: SecurityConfig | None = None, *, failed: dict[str, str] | None = None,
             deps: DependencyStatus | None = None) -> SecurityAnalysis:
    outcomes = {"secrets": ScanOutcome("secrets", ["detect-secrets"]),
                "sast": ScanOutcome("sast", ["bandit"], failed=failed or {}),
                "dependencies": ScanOutcome("dependencies", ["OSV"])}
    return SecurityAnalysis(config or SecurityConfig(), outcomes, items,  # type: ignore[arg-type]
                            deps or DependencyStatus("no lock files"), files_scanned=3)


def test_levels_follow_failing_and_severity() -> None:
    assert [finding_level(item(s, fails=f)) for s, f in [("high", True), ("critical", False), ("medium", False),
                                                          ("low", False), ("low", True)]] == [
        "failure", "warning", "warning", "notice", "failure"]  # fmt: skip


def test_a_failed_tool_makes_the_result_neutral_and_says_so() -> None:
    result = security_result("security", analysis([item("low")], failed={"bandit": "bandit exited with 2"}), 1.5)
    assert (result.conclusion, result.title) == ("neutral", "1 new security issue (1 low); bandit failed")
    assert "| Code (bandit) (incomplete) | 1 low | 0 | 0 |" in result.summary
    assert "- ⚠️ bandit failed: bandit exited with 2" in result.summary


def test_a_failing_finding_fails_even_when_a_scan_was_incomplete() -> None:
    result = security_result("security", analysis([item("high", fails=True)], deps=DependencyStatus(
        "unavailable", "osv.example could not be reached (ConnectError) after 3 attempts")), 0.1)
    assert (result.conclusion, result.title) == (
        "failure", "1 new security issue (1 high); dependency scan unavailable")
    assert result.metrics["dependency_scan"] == "unavailable"


def test_ignored_items_are_counted_but_not_annotated() -> None:
    result = security_result("security", analysis([item("high", "ignored"), item("low", "existing")]), 0.1)
    assert (result.conclusion, result.title) == ("success", "No new security issues")
    assert [(f.level, f.message) for f in result.findings] == [("notice", "(not on a changed line) message")]
    assert (result.metrics["ignored"], result.metrics["findings_total"], result.metrics["existing_total"]) == (1, 1, 1)
    assert result.findings[0].raw_details == "more"


def test_the_finding_list_is_cut_after_twenty() -> None:
    result = security_result("security", analysis([item("low") for _ in range(23)]), 0.1)
    assert result.summary.count("| low | `B999` |") == 20
    assert "…and 3 more, annotated in the files." in result.summary
    assert len(result.findings) == 23


def test_fail_on_none_is_explained() -> None:
    result = security_result("security", analysis([], as_security_config({"fail_on": "none"})), 0.1)
    assert result.summary.endswith("Findings never fail this check (`security.fail_on: none` in `.aqe.yml`).")
