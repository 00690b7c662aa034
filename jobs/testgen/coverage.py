"""How much of the targeted functions the kept tests run: line coverage over the functions' own lines.

`coverage_argv`/`json_argv` are what the agent runs in the sandbox (coverage.py over pytest, limited to the
targets' files); `targets_coverage` reads coverage.py's JSON report. A targeted file the tests never imported
counts as not covered at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jobs.testgen.targets import Target


def coverage_argv(python: Path, data_file: Path, include: Sequence[Path], files: Sequence[str]) -> list[str]:
    return [str(python), "-m", "coverage", "run", f"--data-file={data_file}",
            f"--include={','.join(str(path) for path in include)}", "-m", "pytest", "-p", "_hypothesis_pytestplugin",
            "-p", "no:cacheprovider", "--hypothesis-seed=0", "-q", *files]  # fmt: skip


def json_argv(python: Path, data_file: Path, out: Path) -> list[str]:
    return [str(python), "-m", "coverage", "json", f"--data-file={data_file}", "-o", str(out), "-q"]


def targets_coverage(report: dict[str, Any], root: Path, targets: Sequence[Target]) -> tuple[int, int]:
    """(covered, coverable) statement lines inside the targets' definitions."""
    files = report.get("files", {})
    covered = coverable = 0
    for target in targets:
        entry = files.get(str(root / target.path)) or files.get(target.path)
        span = range(target.span.start_line, target.span.end_line + 1)
        if entry is None:  # never imported: every line of the definition is a miss
            coverable += sum(1 for line in target.source.splitlines() if line.strip()
                             and not line.strip().startswith(("#", "@")))
            continue
        executed, missing = set(entry.get("executed_lines", [])), set(entry.get("missing_lines", []))
        statements = [line for line in span if line in executed or line in missing]
        coverable += len(statements)
        covered += sum(1 for line in statements if line in executed)
    return covered, coverable


def percent(covered: int, coverable: int) -> float | None:
    return round(100.0 * covered / coverable, 1) if coverable else None
