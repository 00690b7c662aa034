"""The "coverage" agent: total, branch and patch coverage from the reports of the tests, and the
uncovered changed lines as annotations.

Reports come from the tests agent (`workspace.artifacts["coverage.cobertura"]`, and `coverage.lcov`,
`coverage.json`, `coverage.jacoco` when an agent sets them) and from the `coverage.reports` globs of
`.aqe.yml`; several are merged. The figures agree with the tools people already use: the total is
coverage.py's `coverage report` TOTAL, patch coverage is diff-cover's figure.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.agents.base import Progress, Workspace
from jobs.agents.tests import reports_matching
from jobs.reporting.markdown import code_span
from jobs.coverage.config import CoverageConfig, as_coverage_config
from jobs.coverage.patch import FilePatch, Gap, PatchAnalysis, analyse_patch
from jobs.coverage.reports import (
    CoverageReport,
    Numbers,
    ReportError,
    display_covered,
    merge_reports,
    parse_report,
    resolve_paths,
)
from jobs.model import AgentResult, Conclusion, Finding

ARTIFACT_KEYS = ("coverage.cobertura", "coverage.lcov", "coverage.json", "coverage.jacoco")
MAX_REPORT_BYTES = 200 * 1024 * 1024
PRECISION = 1  # decimals shown, and compared with the targets
GAP_LIMIT = 10
MAX_LISTED_FILES = 30
MINUS = "\u2212"

NO_REPORT_SUMMARY = """\
AQE found no coverage report. The tests agent writes one when it runs pytest; for other test \
commands, write a Cobertura XML, LCOV, coverage.py JSON or JaCoCo XML report and name it in \
`.aqe.yml`:

```yaml
coverage:
  reports: ["coverage/lcov.info"]
```
"""


# ------------------------------------------------------------------------------------- reports


def report_paths(workspace: Workspace, config: CoverageConfig) -> list[Path]:
    """The agents' report artifacts, then the configured globs (inside the work tree only)."""
    found = [workspace.artifacts[key] for key in ARTIFACT_KEYS if key in workspace.artifacts]
    found = [path for path in found if path.is_file()]
    return found + [p for p in reports_matching(workspace.root, config.reports) if p not in found]


def read_reports(paths: list[Path], root: Path) -> tuple[CoverageReport | None, list[str]]:
    """The merged report (paths relative to `root`) of every readable file, and why others were not."""
    reports: list[CoverageReport] = []
    problems: list[str] = []
    for path in paths:
        try:
            reports.append(read_report(path, root))
        except (ReportError, OSError) as exc:
            problems.append(f"{path.name}: {exc}")
    if not reports:
        return None, problems
    return (reports[0] if len(reports) == 1 else merge_reports(reports)), problems


def read_report(path: Path, root: Path) -> CoverageReport:
    if path.stat().st_size > MAX_REPORT_BYTES:
        raise ReportError(f"larger than {MAX_REPORT_BYTES // (1024 * 1024)} MiB")
    report = parse_report(path.read_bytes(), path.name)
    root = root.resolve()
    return resolve_paths(report, str(root), exists=lambda rel: (root / rel).is_file())


# ---------------------------------------------------------------------------------- the figures


@dataclass(frozen=True, slots=True)
class CoverageFigures:
    """Everything the result is built from."""

    totals: Numbers
    has_branches: bool
    analysis: PatchAnalysis | None  # None when the changed lines are unknown
    config: CoverageConfig
    problems: list[str]
    baseline: tuple[float, str] | None = None  # the base branch's total and name, for "−0.8 % vs main"

    @property
    def total(self) -> float:
        return shown(self.totals.pc_covered)

    @property
    def patch(self) -> float | None:
        percent = self.analysis.patch.percent if self.analysis else None
        return None if percent is None else shown(percent)

    @property
    def small_change(self) -> bool:
        return self.analysis is not None and self.analysis.patch.coverable < self.config.small_change_lines


def shown(percent: float) -> float:
    """A percentage as the check shows it (and compares it): coverage.py's rounding, 1 decimal."""
    return float(display_covered(percent, PRECISION))


def fmt(percent: float | None) -> str:
    return "n/a" if percent is None else f"{percent:.{PRECISION}f} %"


def delta_text(total: float, base: float | None, label: str) -> str:
    """"−0.8 % vs main", "+1.2 % vs main", "±0.0 % vs main"; empty without a base figure."""
    if base is None:
        return ""
    delta = round(total - base, PRECISION)
    sign = "+" if delta > 0 else MINUS if delta < 0 else "±"
    return f"{sign}{abs(delta):.{PRECISION}f} % vs {label}"


def failed_conditions(figures: CoverageFigures) -> list[str]:
    """Why the check fails (empty: it passes)."""
    cfg, failed = figures.config, []
    if figures.patch is not None and not figures.small_change and figures.patch < cfg.patch_target:
        failed.append(f"patch coverage {fmt(figures.patch)} is below the target of {cfg.patch_target:g} %")
    if cfg.total_target is not None and figures.total < cfg.total_target:
        failed.append(f"total coverage {fmt(figures.total)} is below the target of {cfg.total_target:g} %")
    return failed


def conclusion_of(figures: CoverageFigures) -> Conclusion:
    return "failure" if failed_conditions(figures) else "success"


def title_of(figures: CoverageFigures) -> str:
    base_total, base_label = figures.baseline or (None, "")
    delta = delta_text(figures.total, base_total, base_label)
    total = f"total {fmt(figures.total)}" + (f" ({delta})" if delta else "")
    if figures.analysis is None:
        return f"Coverage: {total}"
    if figures.patch is None:
        return f"Patch: no coverable lines changed · {total}"
    return f"Patch {fmt(figures.patch)} · {total}"


# -------------------------------------------------------------------------------------- summary


def figures_table(figures: CoverageFigures) -> str:
    t, cfg = figures.totals, figures.config
    covered, total = t.executed + t.executed_branches, t.statements + t.branches
    rows = [("Total (lines and branches)", fmt(figures.total), f"{covered} / {total}", _target(cfg.total_target))]
    rows.append(("Lines", fmt(shown(t.pc_statements)), f"{t.executed} / {t.statements}", ""))
    if figures.has_branches:
        rows.append(("Branches", fmt(shown(t.pc_branches)), f"{t.executed_branches} / {t.branches}", ""))
    if figures.analysis is not None:
        p = figures.analysis.patch
        rows.append(("Patch (changed lines)", fmt(figures.patch), f"{p.covered} / {p.coverable}", _target(cfg.patch_target)))
    body = "\n".join(f"| {name} | {value} | {count} | {target} |" for name, value, count, target in rows)
    return "| Coverage | % | Covered / total | Target |\n|---|---:|---:|---:|\n" + body


def _target(target: float | None) -> str:
    return "" if target is None else f"{target:g} %"


def uncovered_markdown(files: tuple[FilePatch, ...]) -> str:
    missing = [f for f in files if f.uncovered]
    if not missing:
        return ""
    lines = [f"- {code_span(f.path)}: {runs_text(f.uncovered)}" for f in missing[:MAX_LISTED_FILES]]
    if len(missing) > MAX_LISTED_FILES:
        lines.append(f"- …and {len(missing) - MAX_LISTED_FILES} more files, annotated in the diff.")
    return "### Uncovered changed lines\n\n" + "\n".join(lines)


def runs_text(runs: tuple[tuple[int, int], ...]) -> str:
    return ", ".join(str(start) if start == end else f"{start}–{end}" for start, end in runs)


def gaps_markdown(gaps: tuple[Gap, ...]) -> str:
    if not gaps:
        return ""
    rows = "\n".join(f"| {code_span(g.path)} | {runs_text(((g.start, g.end),))} | {g.statements} | {g.changed} |"
                     for g in gaps)  # fmt: skip
    return ("### Largest uncovered blocks in the changed files\n\n"
            "| File | Lines | Uncovered statements | Of which changed |\n|---|---|---:|---:|\n" + rows)  # fmt: skip


def notes_markdown(figures: CoverageFigures) -> str:
    notes = [f"**Failed:** {reason}." for reason in failed_conditions(figures)]
    if figures.analysis is None:
        notes.append("The changed lines are unknown (no base commit), so there is no patch coverage.")
    elif figures.small_change and figures.patch is not None:
        notes.append(f"Fewer than {figures.config.small_change_lines} coverable lines changed: patch "
                     "coverage does not fail this check.")  # fmt: skip
    notes += [f"Report not read: {code_span(problem)}" for problem in figures.problems]
    return "\n".join(f"- {note}" for note in notes)


def summary_of(figures: CoverageFigures) -> str:
    parts = [figures_table(figures), notes_markdown(figures)]
    if figures.analysis is not None:
        parts += [uncovered_markdown(figures.analysis.patch.files), gaps_markdown(figures.analysis.gaps)]
    return "\n\n".join(part for part in parts if part)


# ------------------------------------------------------------------------------ result parts


def findings_of(analysis: PatchAnalysis | None) -> list[Finding]:
    """One warning per run of uncovered changed lines."""
    if analysis is None:
        return []
    return [uncovered_finding(f.path, start, end) for f in analysis.patch.files for start, end in f.uncovered]


def uncovered_finding(path: str, start: int, end: int) -> Finding:
    what = f"Line {start} is" if start == end else f"Lines {start}–{end} are"
    return Finding(
        path=path, start_line=start, end_line=end, level="warning", rule="uncovered-line",
        title="Not covered by tests", message=f"{what} changed but not covered by the tests.",
    )  # fmt: skip


def metrics_of(figures: CoverageFigures) -> dict[str, float | int | str]:
    t = figures.totals
    metrics: dict[str, float | int | str] = {
        "total_percent": figures.total, "line_percent": shown(t.pc_statements),
        "statements": t.statements, "statements_covered": t.executed, "files": t.files,
    }  # fmt: skip
    if figures.has_branches:
        metrics |= {"branch_percent": shown(t.pc_branches), "branches": t.branches,
                    "branches_covered": t.executed_branches}  # fmt: skip
    if figures.analysis is not None:
        p = figures.analysis.patch
        metrics |= {"patch_coverable": p.coverable, "patch_covered": p.covered, "patch_changed": p.changed}
        if figures.patch is not None:
            metrics["patch_percent"] = figures.patch
    if figures.baseline is not None:
        metrics["total_delta"] = round(figures.total - figures.baseline[0], PRECISION)
    return metrics


def result_of(name: str, figures: CoverageFigures, duration_s: float) -> AgentResult:
    return AgentResult(
        agent=name, conclusion=conclusion_of(figures), title=title_of(figures), summary=summary_of(figures),
        metrics=metrics_of(figures), findings=findings_of(figures.analysis), duration_s=duration_s,
    )  # fmt: skip


def no_report_result(name: str, problems: list[str], duration_s: float) -> AgentResult:
    summary = NO_REPORT_SUMMARY
    if problems:
        summary += "\nReports that could not be read:\n" + "\n".join(f"- {code_span(p)}" for p in problems)
    title = "No coverage report" if not problems else "Coverage report unreadable"
    return AgentResult(agent=name, conclusion="neutral", title=title, summary=summary, duration_s=duration_s)


# ------------------------------------------------------------------------------------ the agent


def compute(workspace: Workspace, cfg: CoverageConfig) -> CoverageFigures | list[str]:
    """The figures, or (no report) why there are none. Blocking: run it in a thread."""
    report, problems = read_reports(report_paths(workspace, cfg), workspace.root)
    if report is None:
        return problems
    changed = workspace.changed_lines
    analysis = None if changed is None else analyse_patch(report, changed, GAP_LIMIT)
    return CoverageFigures(report.totals(), report.has_branches, analysis, cfg, problems, workspace.baseline)


class CoverageAgent:
    """Total, branch and patch coverage from the test reports; uncovered changed lines annotated."""

    __test__ = False
    name = "coverage"
    needs = ("tests",)  # reads the report the tests agent wrote

    def applies_to(self, workspace: Workspace, config: Any) -> bool:
        return True  # without a report the check is neutral and says how to get one

    async def run(
        self, workspace: Workspace, config: CoverageConfig | dict[str, Any] | None, progress: Progress
    ) -> AgentResult:
        started, cfg = time.monotonic(), as_coverage_config(config)
        await progress(0.1, "Reading coverage reports")
        figures = await asyncio.to_thread(compute, workspace, cfg)
        await progress(0.9, "Reporting coverage")
        duration = round(time.monotonic() - started, 3)
        if isinstance(figures, list):
            return no_report_result(self.name, figures, duration)
        return result_of(self.name, figures, duration)
