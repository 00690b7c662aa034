"""The "quality" agent (`aqe/quality`): complexity of the changed functions, duplicated new code.

- Complexity: lizard's cyclomatic complexity (CCN) of every function a change touches; each one above
  `quality.max_ccn` is a warning annotation on the function's lines.
- Duplication: blocks of the change that repeat code elsewhere in the repository (or in the change),
  identifiers and literals normalised so that renamed copies are found (`jobs.quality.duplication`);
  each is a warning annotation on the changed copy, pointing at the other copy.

The check fails when a changed function is above `max_ccn`, or when the duplicated share of the
changed lines of code is above `max_duplication_percent` (shown rounded to one decimal, and compared
as shown). It is neutral when no analysable source file changed. Without a diff (`changed_lines` is
None) every line of every analysable file counts as new, as on a first analysis.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.agents.base import Progress, Workspace
from jobs.reporting.markdown import code_cell, code_span, plural
from jobs.model import AgentResult, Conclusion, Finding
from jobs.quality.complexity import (
    ComplexityReport,
    FunctionComplexity,
    is_analysable,
    measure_changed_files,
    over_threshold,
    worst_first,
)
from jobs.quality.config import QualityConfig, as_quality_config
from jobs.quality.duplication import Block, Duplicate, DuplicationReport, repository_sources, scan_repository

MAX_LISTED_FUNCTIONS = 10
MAX_LISTED_BLOCKS = 20
MAX_OTHER_COPIES_NAMED = 3

NO_SOURCES_SUMMARY = (
    "No analysable source file changed (languages lizard measures: C/C++, C#, Java, JavaScript, "
    "TypeScript, Python, Go, Rust, Kotlin, Swift, Scala, Ruby, PHP, Lua, Perl, R and more), or every "
    "changed one is excluded by `quality.exclude` in `.aqe.yml` (by default tests and vendored code)."
)


# ----------------------------------------------------------------------------------- the targets


def analysed_changes(
    root: Path, changed_lines: Mapping[str, set[int]] | None, config: QualityConfig
) -> dict[str, set[int]] | None:
    """The changed lines of the files to analyse: existing, lizard-analysable, not excluded, with at
    least one changed line. None (no diff known) stays None: everything is new."""
    if changed_lines is None:
        return None
    return {
        path: set(lines)
        for path, lines in sorted(changed_lines.items())
        if lines and is_analysable(path) and not config.is_excluded(path) and (root / path).is_file()
    }


def complexity_targets(
    root: Path, targets: dict[str, set[int]] | None, config: QualityConfig
) -> dict[str, set[int] | None]:
    """What `measure_changed_files` measures: the changed files, or every analysable file (None lines)."""
    if targets is not None:
        return dict(targets)
    return dict.fromkeys(repository_sources(root, config, accept=is_analysable))


# ---------------------------------------------------------------------------------- the findings


def complexity_finding(function: FunctionComplexity, max_ccn: int) -> Finding:
    return Finding(
        path=function.path,
        start_line=function.start_line,
        end_line=function.end_line,
        level="warning",
        rule="complexity",
        title=f"Cyclomatic complexity {function.ccn} > {max_ccn}",
        message=(
            f"{function.name} has a cyclomatic complexity of {function.ccn}, above the threshold of "
            f"{max_ccn} ({function.nloc} lines of code, {function.params} parameters). "
            "Split it into smaller functions."
        ),
    )


@dataclass(frozen=True, slots=True)
class ChangedCopy:
    """A duplicated block on the changed side and the other copies of it."""

    block: Block
    others: list[Block]
    tokens: int


def changed_copies(duplicates: list[Duplicate], duplicated_lines: Mapping[str, set[int]]) -> list[ChangedCopy]:
    """One entry per changed block (a copy holding duplicated changed lines), with its other copies."""
    others: dict[Block, list[Block]] = {}
    tokens: dict[Block, int] = {}
    for duplicate in duplicates:
        for block, other in ((duplicate.first, duplicate.second), (duplicate.second, duplicate.first)):
            if _holds_any(block, duplicated_lines.get(block.path)):
                others.setdefault(block, []).append(other)
                tokens[block] = max(tokens.get(block, 0), duplicate.tokens)
    return [ChangedCopy(block, sorted(set(others[block])), tokens[block]) for block in sorted(others)]


def _holds_any(block: Block, lines: set[int] | None) -> bool:
    return lines is not None and any(block.start_line <= line <= block.end_line for line in lines)


def where(block: Block) -> str:
    return f"{block.path}:{block.start_line}-{block.end_line}"


def duplication_finding(copy: ChangedCopy) -> Finding:
    named = ", ".join(where(other) for other in copy.others[:MAX_OTHER_COPIES_NAMED])
    more = len(copy.others) - MAX_OTHER_COPIES_NAMED
    also = f" and {more} more" if more > 0 else ""
    return Finding(
        path=copy.block.path,
        start_line=copy.block.start_line,
        end_line=copy.block.end_line,
        level="warning",
        rule="duplication",
        title=f"Duplicated block ({copy.tokens} tokens)",
        message=(
            f"Lines {copy.block.start_line}-{copy.block.end_line} duplicate {named}{also} "
            "(the same code up to the names of identifiers and the values of literals)."
        ),
    )


# ------------------------------------------------------------------------------------ the result


@dataclass(frozen=True, slots=True)
class QualityAnalysis:
    complexity: ComplexityReport
    duplication: DuplicationReport
    config: QualityConfig

    @property
    def over(self) -> list[FunctionComplexity]:
        return over_threshold(self.complexity.functions, self.config.max_ccn)

    @property
    def copies(self) -> list[ChangedCopy]:
        return changed_copies(self.duplication.duplicates, self.duplication.duplicated_lines)

    @property
    def max_ccn(self) -> int:
        return max((fn.ccn for fn in self.complexity.functions), default=0)

    @property
    def duplication_fails(self) -> bool:
        return self.duplication.new_code.percent > self.config.max_duplication_percent


def quality_metrics(analysis: QualityAnalysis) -> dict[str, float | int | str]:
    new_code = analysis.duplication.new_code
    return {
        "max_ccn_changed": analysis.max_ccn,
        "functions_changed": len(analysis.complexity.functions),
        "functions_over_threshold": len(analysis.over),
        "duplicated_blocks": len(analysis.copies),
        "duplicated_lines_new": new_code.duplicated_lines,
        "duplication_new_percent": new_code.percent,
        "changed_lines": new_code.changed_lines,
        "files_analysed": len(analysis.complexity.files),
    }


def quality_conclusion(analysis: QualityAnalysis) -> Conclusion:
    return "failure" if analysis.over or analysis.duplication_fails else "success"




def quality_title(analysis: QualityAnalysis) -> str:
    over = len(analysis.over)
    complexity = f"{plural(over, 'function', 'functions')} over CCN {analysis.config.max_ccn}" if over else (
        f"no function over CCN {analysis.config.max_ccn}"
    )
    text = f"{complexity}; {analysis.duplication.new_code.percent:.1f} % duplication on new code"
    return text[0].upper() + text[1:]




def _verdict(passed: bool) -> str:
    return "✅ pass" if passed else "❌ fail"


def conditions_table(analysis: QualityAnalysis) -> str:
    cfg, new_code = analysis.config, analysis.duplication.new_code
    over = len(analysis.over)
    return (
        "| Condition | Actual | Threshold | Result |\n"
        "|---|---:|---:|---|\n"
        f"| Changed functions over CCN {cfg.max_ccn} | {over} (max CCN {analysis.max_ccn}) | 0 | {_verdict(not over)} |\n"
        f"| Duplication on new code | {new_code.percent:.1f} % ({new_code.duplicated_lines} of "
        f"{new_code.changed_lines} changed lines) | ≤ {cfg.max_duplication_percent:.1f} % "
        f"| {_verdict(not analysis.duplication_fails)} |"
    )


def functions_table(functions: list[FunctionComplexity], max_ccn: int) -> str:
    if not functions:
        return ""
    worst = sorted(functions, key=worst_first)
    rows = [
        f"| {code_cell(fn.name)} | {code_cell(fn.path)} | {fn.start_line}-{fn.end_line} | "
        f"{f'**{fn.ccn}**' if fn.ccn > max_ccn else fn.ccn} | {fn.nloc} | {fn.params} |"
        for fn in worst[:MAX_LISTED_FUNCTIONS]
    ]
    more = len(worst) - MAX_LISTED_FUNCTIONS
    tail = f"\n\n…and {plural(more, 'more changed function', 'more changed functions')}." if more > 0 else ""
    header = "### Most complex changed functions\n\n| Function | File | Lines | CCN | NLOC | Params |\n|---|---|---|---:|---:|---:|\n"
    return header + "\n".join(rows) + tail


def blocks_table(copies: list[ChangedCopy]) -> str:
    if not copies:
        return ""
    rows = [
        f"| {code_cell(where(copy.block))} | {', '.join(code_cell(where(o)) for o in copy.others[:MAX_OTHER_COPIES_NAMED])}"
        f"{' …' if len(copy.others) > MAX_OTHER_COPIES_NAMED else ''} | {copy.tokens} |"
        for copy in copies[:MAX_LISTED_BLOCKS]
    ]
    more = len(copies) - MAX_LISTED_BLOCKS
    tail = f"\n\n…and {plural(more, 'more duplicated block', 'more duplicated blocks')}." if more > 0 else ""
    header = "### Duplicated blocks\n\n| Changed block | Duplicate of | Tokens |\n|---|---|---:|\n"
    return header + "\n".join(rows) + tail


def skipped_note(skipped: dict[str, str]) -> str:
    if not skipped:
        return ""
    listed = "\n".join(f"- {code_cell(path)}: {why}" for path, why in list(skipped.items())[:MAX_LISTED_BLOCKS])
    return f"Files not measured:\n{listed}"


def quality_summary(analysis: QualityAnalysis) -> str:
    parts = [
        conditions_table(analysis),
        functions_table(analysis.complexity.functions, analysis.config.max_ccn),
        blocks_table(analysis.copies),
        skipped_note(analysis.complexity.skipped),
        f"Complexity by [lizard](https://github.com/terryyin/lizard); duplicates searched in "
        f"{analysis.duplication.files} files ({analysis.duplication.tokens} tokens), blocks of at least "
        f"{analysis.config.min_duplicate_tokens} tokens and {analysis.config.min_duplicate_lines} lines.",
    ]
    return "\n\n".join(part for part in parts if part)


def quality_result(name: str, analysis: QualityAnalysis, duration_s: float) -> AgentResult:
    findings = [complexity_finding(fn, analysis.config.max_ccn) for fn in analysis.over]
    findings += [duplication_finding(copy) for copy in analysis.copies]
    return AgentResult(
        agent=name,
        conclusion=quality_conclusion(analysis),
        title=quality_title(analysis),
        summary=quality_summary(analysis),
        metrics=quality_metrics(analysis),
        findings=findings,
        duration_s=duration_s,
    )


def neutral_result(name: str, duration_s: float) -> AgentResult:
    return AgentResult(
        agent=name, conclusion="neutral", title="No changed source files to analyse", summary=NO_SOURCES_SUMMARY,
        metrics={"changed_lines": 0, "functions_changed": 0}, duration_s=duration_s,
    )  # fmt: skip


# ------------------------------------------------------------------------------------ the agent


class QualityAgent:
    """Complexity of the changed functions and duplicated new code (`aqe/quality`)."""

    __test__ = False
    name = "quality"

    def applies_to(self, workspace: Workspace, config: Any) -> bool:
        return True  # no changed source file gives a neutral "No changed source files to analyse"

    async def run(
        self, workspace: Workspace, config: QualityConfig | dict[str, Any] | None, progress: Progress
    ) -> AgentResult:
        started, cfg = time.monotonic(), as_quality_config(config)
        await progress(0.05, "Finding changed source files")
        targets = await asyncio.to_thread(analysed_changes, workspace.root, workspace.changed_lines, cfg)
        if targets is not None and not targets:
            return neutral_result(self.name, _since(started))
        await progress(0.1, "Measuring complexity")
        complexity = await asyncio.to_thread(_measure, workspace.root, targets, cfg)
        if not complexity.files:
            return neutral_result(self.name, _since(started))
        await progress(0.5, "Looking for duplicated code")
        duplication = await asyncio.to_thread(scan_repository, workspace.root, targets, cfg)
        await progress(0.95, "Reporting")
        return quality_result(self.name, QualityAnalysis(complexity, duplication, cfg), _since(started))


def _measure(root: Path, targets: dict[str, set[int]] | None, config: QualityConfig) -> ComplexityReport:
    return measure_changed_files(root, complexity_targets(root, targets, config))


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)
