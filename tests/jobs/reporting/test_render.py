"""Forge-neutral rendering: truncation below GitHub's limits, comment body, ordering."""

from __future__ import annotations

from jobs.model import AgentResult, Finding, JobRecord, RunRequest
from jobs.reporting import render


def _record(results: list[AgentResult]) -> JobRecord:
    request = RunRequest(forge="github", repo="acme/widgets", clone_url="x", head_sha="a" * 40, trigger="push",
                         agents=["tests"], pr_number=7)
    return JobRecord(id="0" * 24, status="completed", request=request, created_at=0.0, results=results)


def test_truncate_keeps_short_text() -> None:
    assert render.truncate("hello", 10) == "hello"


def test_truncate_cuts_below_limit_and_links() -> None:
    text = render.truncate("x" * 100_000, render.GITHUB_TEXT_LIMIT, "http://aqe/jobs/1")
    assert len(text) < render.GITHUB_TEXT_LIMIT
    assert text.endswith("[Full report](http://aqe/jobs/1)")


def test_truncate_closes_an_open_code_fence() -> None:
    text = render.truncate("```\n" + "line\n" * 50_000, 1000)
    assert text.count("```") % 2 == 0


def test_check_summary_fits_and_links_job() -> None:
    result = AgentResult(agent="tests", conclusion="failure", title="t", summary="y" * 200_000)
    summary = render.check_summary(result, "http://aqe/jobs/1")
    assert len(summary) <= render.GITHUB_TEXT_LIMIT
    assert summary.endswith("[Job details](http://aqe/jobs/1)")


def test_title_is_one_short_line() -> None:
    result = AgentResult(agent="tests", conclusion="failure", title="a\nb " + "z" * 500, summary="")
    title = render.check_title(result)
    assert "\n" not in title and len(title) <= render.TITLE_LIMIT


def test_comment_body_has_marker_row_and_stays_under_limit() -> None:
    results = [AgentResult(agent=f"a{i}", conclusion="failure", title="1 failed | 2 passed", summary="s" * 30_000)
               for i in range(5)]
    body = render.comment_body(_record(results), "http://aqe/jobs/1", "a" * 40)
    assert body.startswith(render.COMMENT_MARKER)
    assert "| `aqe/a0` | ❌ failure | 1 failed \\| 2 passed |" in body
    assert len(body) < render.GITHUB_COMMENT_LIMIT
    assert "more in the [job details](http://aqe/jobs/1)" in body


def test_findings_ordered_by_level() -> None:
    findings = [Finding(path="a", start_line=1, end_line=1, level=level, rule="r", message="m")
                for level in ("notice", "failure", "warning", "failure")]
    assert [f.level for f in render.ordered_findings(findings)] == ["failure", "failure", "warning", "notice"]


def test_batches_of_fifty() -> None:
    assert [len(b) for b in render.batches(list(range(120)), 50)] == [50, 50, 20]


def test_comment_links_each_check_and_shows_the_gate_table() -> None:
    gate = AgentResult(agent="quality-gate", conclusion="failure", title="Quality gate failed: 1 of 2 conditions",
                       summary="| Condition | Actual | Threshold | Result |\n| --- | --- | --- | --- |\n"
                               "| Coverage on new code | 50.0 % | ≥ 80.0 % | ❌ failed |")
    tests = AgentResult(agent="tests", conclusion="success", title="12 passed", summary="all good")
    body = render.comment_body(_record([tests, gate]), "http://aqe/jobs/1", "a" * 40,
                               {"tests": "https://github.com/acme/widgets/runs/5"})
    assert "| [`aqe/tests`](https://github.com/acme/widgets/runs/5) | ✅ success | 12 passed |" in body
    assert "| `aqe/quality-gate` | ❌ failure |" in body
    assert "#### Quality gate: ❌ failure" in body and "| Coverage on new code | 50.0 % | ≥ 80.0 % | ❌ failed |" in body
    assert "<summary>aqe/quality-gate</summary>" not in body  # the table is shown, not folded


def test_comment_stays_under_the_limit_with_any_number_of_findings() -> None:
    many = [Finding(path=f"f{i}.py", start_line=i, end_line=i, level="warning", rule="r", message="m" * 500)
            for i in range(10_000)]
    results = [AgentResult(agent=name, conclusion="failure", title="t", summary="x" * 60_000, findings=many)
               for name in ("tests", "coverage", "security", "quality", "quality-gate")]
    body = render.comment_body(_record(results), "http://aqe/jobs/1", "a" * 40)
    assert len(body) < render.GITHUB_COMMENT_LIMIT
