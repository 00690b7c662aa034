"""Cyclomatic complexity per function with lizard (C/C++, Java, C#, JS/TS, Python, Go, Rust, …).

Pure analysis over file text: `file_functions(path, text)` measures every function of one file,
`changed_functions(functions, changed_lines)` keeps those a change touches (any changed line inside
the function's start..end lines). The file reading lives in `measure_changed_files`.
"""

from __future__ import annotations

import sys
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

MAX_FILE_BYTES = 1024 * 1024  # larger "source" files are generated or minified: not measured


def _import_lizard() -> tuple[ModuleType, Callable[[str], Any]]:
    """`import lizard` without its side effect: on import it puts its own directory and the directory
    of `sys.argv[0]` at the front of `sys.path` (lizard issue #460), which in a worker could be a
    directory whose Python files would then shadow real modules."""
    saved = list(sys.path)
    try:
        import lizard
        from lizard_languages import get_reader_for
    finally:
        sys.path[:] = saved
    return lizard, get_reader_for


lizard, _get_reader_for = _import_lizard()


@dataclass(frozen=True, slots=True)
class FunctionComplexity:
    """One function as lizard measures it."""

    path: str
    name: str  # lizard's name: "method", "Class::method" (C++), "outer.inner" (nested Python)
    start_line: int
    end_line: int
    ccn: int  # cyclomatic complexity: 1 + decision points (if, loops, case, &&, ||, except, …)
    nloc: int  # lines of code without blanks and comments
    params: int


def is_analysable(path: str) -> bool:
    """Whether lizard knows the language of `path` (by its extension)."""
    return _get_reader_for(path) is not None


def file_functions(path: str, text: str) -> list[FunctionComplexity]:
    """Every function lizard finds in `text` (the language detected from `path`), in source order."""
    info = lizard.analyze_file.analyze_source_code(path, text)
    functions = [
        FunctionComplexity(
            path=path, name=fn.name, start_line=fn.start_line, end_line=fn.end_line,
            ccn=fn.cyclomatic_complexity, nloc=fn.nloc, params=fn.parameter_count,
        )
        for fn in info.function_list
    ]  # fmt: skip
    return sorted(functions, key=lambda fn: (fn.start_line, fn.end_line))


def changed_functions(functions: Iterable[FunctionComplexity], changed: set[int]) -> list[FunctionComplexity]:
    """The functions with at least one changed line between their first and last line."""
    ordered = sorted(changed)
    return [fn for fn in functions if _any_between(ordered, fn.start_line, fn.end_line)]


def _any_between(ordered: list[int], low: int, high: int) -> bool:
    index = bisect_left(ordered, low)
    return index < len(ordered) and ordered[index] <= high


def over_threshold(functions: Iterable[FunctionComplexity], max_ccn: int) -> list[FunctionComplexity]:
    """Functions whose CCN is above `max_ccn`, the most complex first."""
    return sorted((fn for fn in functions if fn.ccn > max_ccn), key=worst_first)


def worst_first(function: FunctionComplexity) -> tuple[int, int, str, int]:
    return (-function.ccn, -function.nloc, function.path, function.start_line)


# ------------------------------------------------------------------------------------------ I/O


@dataclass(frozen=True, slots=True)
class ComplexityReport:
    functions: list[FunctionComplexity]  # the changed functions of the changed files
    files: list[str]  # the files measured
    skipped: dict[str, str]  # path -> why it could not be measured


def read_source(root: Path, path: str) -> str | None:
    """The text of a repository file, or None when it is missing, too large or not text."""
    file = root / path
    try:
        if not file.is_file() or file.is_symlink() or file.stat().st_size > MAX_FILE_BYTES:
            return None
        data = file.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


def measure_changed_files(root: Path, changed_lines: Mapping[str, set[int] | None]) -> ComplexityReport:
    """Measure each changed, analysable file of the work tree; keep the changed functions (all of a
    file's functions when its changed lines are None: a new file, or no diff known).

    `changed_lines` should already be limited to the files to analyse (see `QualityConfig.exclude`).
    """
    functions: list[FunctionComplexity] = []
    files: list[str] = []
    skipped: dict[str, str] = {}
    for path in sorted(changed_lines):
        text = read_source(root, path)
        if text is None:
            skipped[path] = "not a readable text file under 1 MiB"
            continue
        try:
            measured = file_functions(path, text)
        except Exception as exc:  # lizard's parsers are heuristic; one odd file must not stop the rest
            skipped[path] = f"lizard could not parse it ({type(exc).__name__})"
            continue
        files.append(path)
        changed = changed_lines[path]
        functions += measured if changed is None else changed_functions(measured, changed)
    return ComplexityReport(functions, files, skipped)
