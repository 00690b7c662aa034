"""The coverage agent on a real sample repository measured by coverage.py."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from jobs.agents.base import Workspace
from jobs.agents.coverage import CoverageAgent, delta_text
from jobs.coverage.config import CoverageConfig, as_coverage_config
from jobs.coverage.diff import changed_lines_between
from jobs.coverage.reports import FileCoverage
from tests.jobs.coverage.coverage_samples import coverage, make_sample_repo, measure


async def no_progress(fraction: float, message: str) -> None:
    assert 0.0 <= fraction <= 1.0 and message


@pytest.fixture
def measured_repo(tmp_path: Path) -> tuple[Path, Path]:
    """The sample repository at its head, measured with branches; the XML is in the scratch space."""
    repo = make_sample_repo(tmp_path / "repo")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    measure(repo, branch=True)
    coverage(repo, "xml", "-o", str(scratch / "coverage.xml"))
    coverage(repo, "json", "-o", str(scratch / "coverage.json"))
    return repo, scratch


async def workspace_of(repo: Path, scratch: Path, *, changed: bool = True) -> Workspace:
    lines = await changed_lines_between(repo, "main", "HEAD") if changed else None
    return Workspace(root=repo, scratch=scratch, head_sha="h" * 40, base_sha="b" * 40, changed_lines=lines,
                     artifacts={"coverage.cobertura": scratch / "coverage.xml"})  # fmt: skip


def truth(scratch: Path) -> dict:
    return json.loads((scratch / "coverage.json").read_text())["totals"]


async def test_patch_below_target_fails_with_annotations(measured_repo: tuple[Path, Path]) -> None:
    repo, scratch = measured_repo
    workspace = await workspace_of(repo, scratch)
    workspace.baseline = (90.0, "main")  # the base branch's stored total
    result = await CoverageAgent().run(workspace, {}, no_progress)

    totals = truth(scratch)
    total = float(f"{totals['percent_covered']:.1f}")
    assert result.agent == "coverage"
    assert result.conclusion == "failure"
    assert result.metrics["total_percent"] == total
    assert result.metrics["statements"] == totals["num_statements"]
    assert result.metrics["branches"] == totals["num_branches"]
    assert result.metrics["patch_coverable"] == 21 and result.metrics["patch_covered"] == 10  # as diff-cover
    assert result.metrics["patch_percent"] == 47.6
    assert result.metrics["total_delta"] == round(total - 90.0, 1)
    assert result.title == f"Patch 47.6 % · total {total:.1f} % (\u2212{90.0 - total:.1f} % vs main)"
    assert "patch coverage 47.6 % is below the target of 80 %" in result.summary
    assert "| `pkg/shapes.py` | 7–12 | 5 | 2 |" in result.summary  # the largest gap first
    assert "Largest uncovered blocks" in result.summary
    assert {(f.path, f.start_line, f.end_line) for f in result.findings} == {
        ("pkg/shapes.py", 9, 10), ("pkg/shapes.py", 19, 19), ("pkg/shapes.py", 28, 28),
        ("pkg/geometry.py", 5, 8), ("pkg/geometry.py", 12, 12),
        ("pkg/util/words.py", 10, 11),
    }  # fmt: skip
    assert all(f.level == "warning" and f.rule == "uncovered-line" for f in result.findings)


async def test_passes_at_a_lower_target(measured_repo: tuple[Path, Path]) -> None:
    repo, scratch = measured_repo
    result = await CoverageAgent().run(await workspace_of(repo, scratch), {"patch_target": 47.6}, no_progress)
    assert result.conclusion == "success"
    assert len(result.findings) == 6  # still annotated


async def test_total_target(measured_repo: tuple[Path, Path]) -> None:
    repo, scratch = measured_repo
    config = CoverageConfig(patch_target=0, total_target=99)
    result = await CoverageAgent().run(await workspace_of(repo, scratch), config, no_progress)
    assert result.conclusion == "failure"
    assert "total coverage" in result.summary and "below the target of 99 %" in result.summary


async def test_unknown_changed_lines_report_totals_only(measured_repo: tuple[Path, Path]) -> None:
    repo, scratch = measured_repo
    result = await CoverageAgent().run(await workspace_of(repo, scratch, changed=False), None, no_progress)
    assert result.conclusion == "success"
    assert result.title.startswith("Coverage: total ")
    assert "patch_percent" not in result.metrics and result.findings == []


async def test_small_changes_never_fail(measured_repo: tuple[Path, Path]) -> None:
    repo, scratch = measured_repo
    workspace = await workspace_of(repo, scratch)
    workspace.changed_lines = {"pkg/geometry.py": {6, 7}}  # two uncovered lines
    result = await CoverageAgent().run(workspace, {}, no_progress)
    assert result.metrics["patch_percent"] == 0.0
    assert result.conclusion == "success"
    assert "Fewer than 5 coverable lines changed" in result.summary


async def test_nothing_coverable_changed(measured_repo: tuple[Path, Path]) -> None:
    repo, scratch = measured_repo
    workspace = await workspace_of(repo, scratch)
    workspace.changed_lines = {"README.md": {3}}
    result = await CoverageAgent().run(workspace, {}, no_progress)
    assert result.conclusion == "success"
    assert result.title.startswith("Patch: no coverable lines changed")


async def test_reports_from_config_globs_are_merged(measured_repo: tuple[Path, Path]) -> None:
    repo, scratch = measured_repo
    (repo / "web").mkdir()
    (repo / "web" / "lcov.info").write_text("SF:web/app.js\nDA:1,1\nDA:2,0\nend_of_record\n")
    (repo / "web" / "app.js").write_text("a()\nb()\n")
    workspace = await workspace_of(repo, scratch)
    workspace.changed_lines = {"web/app.js": {1, 2}}
    result = await CoverageAgent().run(workspace, {"reports": "web/*.info", "small_change_lines": 0}, no_progress)
    assert result.metrics["statements"] == truth(scratch)["num_statements"] + 2
    assert result.metrics["patch_percent"] == 50.0
    assert result.conclusion == "failure"
    assert [(f.path, f.start_line) for f in result.findings] == [("web/app.js", 2)]


async def test_no_report_is_neutral(tmp_path: Path) -> None:
    workspace = Workspace(root=tmp_path, scratch=tmp_path, head_sha="h" * 40, changed_lines={"a.py": {1}})
    result = await CoverageAgent().run(workspace, {"reports": ["../outside.xml", "nope/*.xml"]}, no_progress)
    assert (result.conclusion, result.title) == ("neutral", "No coverage report")
    assert "coverage:" in result.summary


async def test_unreadable_report_is_neutral_and_named(tmp_path: Path) -> None:
    (tmp_path / "coverage.xml").write_text("<coverage")
    workspace = Workspace(root=tmp_path, scratch=tmp_path, head_sha="h" * 40,
                          artifacts={"coverage.cobertura": tmp_path / "coverage.xml"})  # fmt: skip
    result = await CoverageAgent().run(workspace, {}, no_progress)
    assert (result.conclusion, result.title) == ("neutral", "Coverage report unreadable")
    assert "coverage.xml: not well-formed XML" in result.summary


def test_delta_text() -> None:
    assert delta_text(81.2, 82.0, "main") == "\u22120.8 % vs main"
    assert delta_text(82.0, 80.75, "develop") == "+1.2 % vs develop"
    assert delta_text(80.0, 80.04, "main") == "±0.0 % vs main"
    assert delta_text(80.0, None, "main") == ""


def test_config_defaults_and_validation() -> None:
    cfg = as_coverage_config(None)
    assert (cfg.reports, cfg.patch_target, cfg.total_target, cfg.small_change_lines) == ([], 80.0, None, 5)
    with pytest.raises(msgspec.ValidationError, match="patch_target"):
        as_coverage_config({"patch_target": 120})
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        as_coverage_config({"target": 80})


def test_agent_is_not_collected_as_a_test() -> None:
    assert CoverageAgent.__test__ is False and CoverageAgent.name == "coverage"
    assert CoverageAgent().applies_to(Workspace(Path("."), Path("."), "h"), None)
    assert FileCoverage("x").numbers().pc_covered == 100.0


def test_the_base_branch_figure_cannot_be_set_in_aqe_yml() -> None:
    from jobs.repo_config import ConfigError, parse_config

    with pytest.raises(ConfigError, match="coverage.base_total"):
        parse_config("coverage:\n  base_total: 10\n")
