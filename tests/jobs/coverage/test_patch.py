"""Patch coverage, uncovered runs and gaps; and agreement with diff-cover on a real repository."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

from jobs.coverage.diff import changed_lines_between
from jobs.coverage.patch import (
    Gap,
    analyse_patch,
    diff_cover_display,
    merge_runs,
    patch_coverage,
    statement_index,
)
from jobs.coverage.reports import CoverageReport, FileCoverage, parse_cobertura, parse_report, resolve_paths
from tests.jobs.coverage.coverage_samples import coverage, measure, run

DIFF_COVER = str(Path(sys.executable).with_name("diff-cover"))


# ------------------------------------------------------------------------ agreement with diff-cover


def diff_cover_json(repo: Path, report: str, *extra: str) -> dict:
    out = repo.parent / f"diff-cover-{len(extra)}.json"
    run([DIFF_COVER, report, "--compare-branch=main", f"--format=json:{out}", *extra], repo)
    return json.loads(out.read_text())


@pytest.mark.parametrize("branch", [True, False], ids=["branch", "lines"])
async def test_patch_coverage_equals_diff_cover(sample_repo: Path, branch: bool) -> None:
    measure(sample_repo, branch=branch)
    coverage(sample_repo, "xml", "-o", "coverage.xml")
    report = resolve_paths(parse_cobertura((sample_repo / "coverage.xml").read_bytes()), str(sample_repo))
    changed = await changed_lines_between(sample_repo, "main", "HEAD")
    patch = analyse_patch(report, changed).patch

    truth = diff_cover_json(sample_repo, "coverage.xml", "--total-percent-float")
    assert patch.coverable == truth["total_num_lines"] > 0
    assert patch.missing == truth["total_num_violations"] > 0
    assert patch.changed == sum(len(lines) for path, lines in changed.items() if report.get(path))
    assert sum(len(lines) for lines in changed.values()) == truth["num_changed_lines"]
    assert diff_cover_display(patch.percent, as_float=True) == truth["total_percent_covered"]
    assert diff_cover_display(patch.percent) == diff_cover_json(sample_repo, "coverage.xml")["total_percent_covered"]
    assert {f.path: list(f.uncovered_lines) for f in patch.files if f.coverable} == {
        path: stats["violation_lines"] for path, stats in truth["src_stats"].items()
    }
    assert {f.path: f.percent for f in patch.files if f.coverable} == {
        path: stats["percent_covered"] for path, stats in truth["src_stats"].items()
    }


async def test_patch_coverage_equals_diff_cover_on_lcov(sample_repo: Path) -> None:
    measure(sample_repo, branch=True)
    coverage(sample_repo, "lcov", "-o", "coverage.info")
    report = parse_report((sample_repo / "coverage.info").read_bytes(), "coverage.info")
    patch = patch_coverage(resolve_paths(report, str(sample_repo)), await changed_lines_between(sample_repo, "main", "HEAD"))
    truth = diff_cover_json(sample_repo, "coverage.info", "--total-percent-float")
    assert (patch.coverable, patch.missing) == (truth["total_num_lines"], truth["total_num_violations"])
    assert diff_cover_display(patch.percent, as_float=True) == truth["total_percent_covered"]


async def test_the_sample_change_in_detail(sample_repo: Path) -> None:
    """What the sample change adds, line by line (a reading aid for the agreement test above)."""
    measure(sample_repo, branch=True)
    coverage(sample_repo, "xml", "-o", "coverage.xml")
    report = resolve_paths(parse_cobertura((sample_repo / "coverage.xml").read_bytes()), str(sample_repo))
    changed = await changed_lines_between(sample_repo, "main", "HEAD")
    files = {f.path: f for f in analyse_patch(report, changed).patch.files}
    assert files["pkg/shapes.py"].uncovered == ((9, 10), (19, 19), (28, 28))  # 27 is a comment, 18 is unchanged
    assert files["pkg/geometry.py"].uncovered == ((5, 8), (12, 12))
    assert "README.md" not in files and "pkg/never.py" not in files


# ------------------------------------------------------------------------------------ unit tests


def file_coverage(path: str, hits: dict[int, int]) -> FileCoverage:
    return FileCoverage(path, dict(sorted(hits.items())))


def test_counts_only_changed_statements() -> None:
    report = CoverageReport(files={"a.py": file_coverage("a.py", {1: 1, 2: 0, 3: 0, 5: 1, 8: 0})})
    patch = patch_coverage(report, {"a.py": {1, 2, 4, 5, 6}, "other.py": {1, 2}})
    assert (patch.changed, patch.coverable, patch.covered) == (5, 3, 2)
    assert patch.percent == 2 / 3 * 100
    assert [f.path for f in patch.files] == ["a.py"]


def test_nothing_coverable_is_undefined() -> None:
    report = CoverageReport(files={"a.py": file_coverage("a.py", {1: 1})})
    patch = patch_coverage(report, {"a.py": {3}})
    assert patch.percent is None
    assert diff_cover_display(None) == 100 and diff_cover_display(None, as_float=True) == 100.0


def test_runs_join_across_non_statements_but_not_across_other_statements() -> None:
    index = statement_index(file_coverage("a.py", {1: 0, 2: 0, 5: 0, 6: 1, 7: 0, 9: 0, 12: 0}))
    assert merge_runs(index, [1, 2, 5, 7, 9]) == [(1, 5), (7, 9)]  # 3-4 and 8 are not statements
    assert merge_runs(index, [1, 5]) == [(1, 1), (5, 5)]  # 2 is an unchanged statement between
    assert merge_runs(index, []) == []


def test_gaps_rank_the_largest_uncovered_blocks_of_changed_files() -> None:
    a = file_coverage("a.py", {1: 1, 2: 0, 3: 0, 4: 0, 6: 1, 7: 0, 10: 0, 11: 1, 12: 0})
    b = file_coverage("b.py", {1: 0, 2: 0, 3: 0, 4: 0})
    untouched = file_coverage("c.py", {n: 0 for n in range(1, 100)})
    report = CoverageReport(files={"a.py": a, "b.py": b, "c.py": untouched})
    gaps = analyse_patch(report, {"a.py": {7, 12}, "b.py": {9}}, gap_limit=3).gaps
    assert gaps == (
        Gap("b.py", 1, 4, 4, 0),
        Gap("a.py", 2, 4, 3, 0),
        Gap("a.py", 7, 10, 2, 1),
    )
    assert analyse_patch(report, {"a.py": {7}}, gap_limit=0).gaps == ()


def test_statement_index_blocks() -> None:
    index = statement_index(file_coverage("a.py", {1: 0, 2: 0, 4: 3, 5: 0, 9: 0}))
    assert (index.block_starts, index.block_ends, index.block_sizes) == ([1, 5], [2, 9], [2, 2])
    assert index.block_of(2) == 0 and index.block_of(4) is None and index.block_of(7) == 1
    assert index.block_of(10) is None and index.block_of(0) is None


def test_matches_a_brute_force_count_on_random_data() -> None:
    rng = random.Random(7)
    for _ in range(200):
        hits = {n: rng.choice([0, 0, 1, 3]) for n in rng.sample(range(1, 300), rng.randint(0, 150))}
        changed = set(rng.sample(range(1, 320), rng.randint(1, 100)))
        patch = patch_coverage(CoverageReport(files={"f": file_coverage("f", hits)}), {"f": changed})
        coverable = [n for n in changed if n in hits]
        assert patch.coverable == len(coverable)
        assert patch.covered == sum(1 for n in coverable if hits[n] > 0)
        runs = patch.files[0].uncovered if patch.files else ()
        statements = sorted(hits)
        for start, end in runs:  # every run holds only uncovered changed statements
            inside = [n for n in statements if start <= n <= end]
            assert inside and all(n in changed and hits[n] == 0 for n in inside)
        assert sum(len([n for n in statements if s <= n <= e]) for s, e in runs) == patch.missing
