"""Patch coverage: how much of what a change adds is covered, where the holes are, which are biggest.

Patch coverage is diff-cover's figure (`diff-cover coverage.xml`, without `--include-untracked` or
`--branch-coverage`): of the changed lines that are statements in the report ("coverable"), the
share with hits > 0. Changed lines that the report does not measure (blank lines, comments, files
not in the report) are left out of both counts. With no coverable changed line the figure is
undefined (`None`; diff-cover shows 100).

Each changed file is indexed once (`StatementIndex`: its statements in line order and its uncovered
blocks as sorted ranges); every changed line is then placed with a binary search, so N changed
lines against M statements/ranges cost O((N + M) log M), and files the change does not touch are
never looked at.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

from jobs.coverage.reports import CoverageReport, FileCoverage

Run = tuple[int, int]  # first and last line, inclusive


# ----------------------------------------------------------------------------------------- index


@dataclass(frozen=True, slots=True)
class StatementIndex:
    """One file's statements in line order and its uncovered blocks: maximal runs of statements in a
    row (in statement order: lines in between that are not statements do not break a block)."""

    lines: list[int]
    block_starts: list[int]
    block_ends: list[int]
    block_sizes: list[int]

    def position(self, line: int) -> int:
        """Index of the statement at `line` (which must be one) in `lines`."""
        return bisect_left(self.lines, line)

    def block_of(self, line: int) -> int | None:
        """Index of the uncovered block holding `line`, if any."""
        index = bisect_right(self.block_starts, line) - 1
        return index if index >= 0 and line <= self.block_ends[index] else None


def statement_index(coverage: FileCoverage) -> StatementIndex:
    lines = sorted(coverage.lines)  # already in order in every report format: linear
    starts: list[int] = []
    ends: list[int] = []
    sizes: list[int] = []
    previous_uncovered = False
    for line in lines:
        uncovered = coverage.lines[line] <= 0
        if uncovered and previous_uncovered:
            ends[-1], sizes[-1] = line, sizes[-1] + 1
        elif uncovered:
            starts.append(line)
            ends.append(line)
            sizes.append(1)
        previous_uncovered = uncovered
    return StatementIndex(lines, starts, ends, sizes)


def merge_runs(index: StatementIndex, uncovered_lines: Iterable[int]) -> list[Run]:
    """Uncovered changed statements as `(start, end)` runs: two of them join when no other statement
    lies between them (blank lines and comments in between do not split a run)."""
    runs: list[Run] = []
    last_position = -2
    for line in sorted(uncovered_lines):
        position = index.position(line)
        if runs and position == last_position + 1:
            runs[-1] = (runs[-1][0], line)
        else:
            runs.append((line, line))
        last_position = position
    return runs


# --------------------------------------------------------------------------------- patch coverage


@dataclass(frozen=True, slots=True)
class FilePatch:
    path: str
    changed: int  # lines the change adds to the file
    coverable: int  # of which statements in the report
    covered: int  # of which executed
    uncovered: tuple[Run, ...]  # the coverable ones not executed, merged into runs
    uncovered_lines: tuple[int, ...]  # the same, line by line

    @property
    def missing(self) -> int:
        return self.coverable - self.covered

    @property
    def percent(self) -> float | None:
        """diff-cover's per-file `percent_covered` (its own expression, hence the same float)."""
        return 100 - float(self.missing) / self.coverable * 100 if self.coverable else None


@dataclass(frozen=True, slots=True)
class PatchCoverage:
    files: tuple[FilePatch, ...]  # changed files the report measures, by path

    @property
    def changed(self) -> int:
        return sum(f.changed for f in self.files)

    @property
    def coverable(self) -> int:
        return sum(f.coverable for f in self.files)

    @property
    def covered(self) -> int:
        return sum(f.covered for f in self.files)

    @property
    def missing(self) -> int:
        return self.coverable - self.covered

    @property
    def percent(self) -> float | None:
        """diff-cover's `total_percent_covered` before its rounding, or None with nothing coverable."""
        return _diff_cover_percent(self.covered, self.coverable)


def _diff_cover_percent(covered: int, coverable: int) -> float | None:
    """diff-cover's `total_percent_covered` expression, hence the same float."""
    return float(covered) / coverable * 100 if coverable else None


def diff_cover_display(percent: float | None, *, as_float: bool = False) -> float | int:
    """The figure diff-cover prints: truncated to an int, or rounded to 2 decimals with
    `--total-percent-float`; 100 when nothing is coverable."""
    if percent is None:
        return 100.0 if as_float else 100
    return round(percent, 2) if as_float else int(percent)


@dataclass(frozen=True, slots=True)
class Gap:
    """An uncovered block of a changed file."""

    path: str
    start: int
    end: int
    statements: int  # uncovered statements in the block
    changed: int  # of which the change added


@dataclass(frozen=True, slots=True)
class PatchAnalysis:
    patch: PatchCoverage
    gaps: tuple[Gap, ...]  # the largest uncovered blocks of the changed files, largest first


def analyse_patch(report: CoverageReport, changed: dict[str, set[int]], gap_limit: int = 10) -> PatchAnalysis:
    """Patch coverage of `changed` (path -> added lines) against `report` (keyed by the same,
    repository-relative paths), and the `gap_limit` largest uncovered blocks of the changed files."""
    files: list[FilePatch] = []
    gaps: list[Gap] = []
    for path in sorted(changed):
        coverage = report.get(path)
        if coverage is None or not changed[path]:
            continue
        file_patch, file_gaps = _analyse_file(coverage, changed[path])
        files.append(file_patch)
        gaps = _largest(gaps + file_gaps, gap_limit)
    return PatchAnalysis(PatchCoverage(tuple(files)), tuple(gaps))


def patch_coverage(report: CoverageReport, changed: dict[str, set[int]]) -> PatchCoverage:
    return analyse_patch(report, changed, gap_limit=0).patch


def _analyse_file(coverage: FileCoverage, lines: set[int]) -> tuple[FilePatch, list[Gap]]:
    hits = coverage.lines
    coverable = [line for line in lines if line in hits]
    uncovered = sorted(line for line in coverable if hits[line] <= 0)
    index = statement_index(coverage)
    runs = tuple(merge_runs(index, uncovered))
    covered = len(coverable) - len(uncovered)
    patch = FilePatch(coverage.path, len(lines), len(coverable), covered, runs, tuple(uncovered))
    return patch, _gaps(coverage.path, index, uncovered)


def _gaps(path: str, index: StatementIndex, uncovered_changed: list[int]) -> list[Gap]:
    changed_in_block = [0] * len(index.block_starts)
    for line in uncovered_changed:
        block = index.block_of(line)
        if block is not None:
            changed_in_block[block] += 1
    return [
        Gap(path, start, end, size, changed_count)
        for start, end, size, changed_count in zip(
            index.block_starts, index.block_ends, index.block_sizes, changed_in_block, strict=True
        )
    ]


def _largest(gaps: list[Gap], limit: int) -> list[Gap]:
    """Most uncovered statements first, then most changed ones, then by place."""
    if limit <= 0:
        return []
    return heapq.nsmallest(limit, gaps, key=lambda g: (-g.statements, -g.changed, g.path, g.start))
