"""Coverage reports in four formats, read into one model, and their totals.

Every parser here is pure (bytes or text in, `CoverageReport` out); finding and reading the files is
the agent's business. The model keeps, per source file, the hits of every *statement* (a line the
tool could measure) and, for lines that branch, `(covered, total)` branch exits.

The totals follow coverage.py's `Numbers` class exactly, so that `CoverageReport.totals().pc_covered`
equals the TOTAL of `coverage report` on the same data (and `display_covered` its display):

    percent = 100.0 * (executed statements + executed branches) / (statements + branches)

100.0 when there is nothing to measure. For a report without branch data it is the line coverage.
"""

from __future__ import annotations

import json
import posixpath
import pyexpat
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

ReportFormat = Literal["cobertura", "lcov", "coverage.py-json", "jacoco"]

_CONDITION = re.compile(r"\((\d+)/(\d+)\)")
_SOURCE_SUFFIX_DEPTH = 6  # how many trailing components of a foreign `<source>` are tried under the root


class ReportError(ValueError):
    """A coverage report that cannot be read (malformed, or not a coverage report)."""


# ------------------------------------------------------------------------------------- the model


@dataclass(frozen=True, slots=True)
class Numbers:
    """coverage.py's `results.Numbers`, reduced to what its percentages use."""

    statements: int = 0
    executed: int = 0
    branches: int = 0
    executed_branches: int = 0
    files: int = 0

    def __add__(self, other: Numbers) -> Numbers:
        return Numbers(
            self.statements + other.statements,
            self.executed + other.executed,
            self.branches + other.branches,
            self.executed_branches + other.executed_branches,
            self.files + other.files,
        )

    @property
    def missing(self) -> int:
        return self.statements - self.executed

    @property
    def missing_branches(self) -> int:
        return self.branches - self.executed_branches

    @property
    def pc_covered(self) -> float:
        """Statements and branches together: the figure `coverage report` shows as TOTAL."""
        return _percent(self.executed + self.executed_branches, self.statements + self.branches)

    @property
    def pc_statements(self) -> float:
        return _percent(self.executed, self.statements)

    @property
    def pc_branches(self) -> float:
        return _percent(self.executed_branches, self.branches)


def _percent(numerator: int, denominator: int) -> float:
    """As `Numbers._percent` in coverage.py (the same expression, so the same float)."""
    if denominator > 0:
        return (100.0 * numerator) / denominator
    return 100.0


def display_covered(pc: float, precision: int = 0) -> str:
    """As coverage.py's `display_covered`: rounded to `precision` decimals, except that a figure
    above 0 never shows as "0" and one below 100 never shows as "100"."""
    if precision < 0:
        raise ValueError("precision must not be negative")
    near0 = 1.0 / 10**precision
    if 0 < pc < near0:
        pc = near0
    elif (100.0 - near0) < pc < 100:
        pc = 100.0 - near0
    else:
        pc = round(pc, precision)
    return f"{pc:.{precision}f}"


@dataclass(slots=True)
class FileCoverage:
    """One source file: hits per statement line, `(covered, total)` exits per branching line."""

    path: str
    lines: dict[int, int] = field(default_factory=dict)
    branches: dict[int, tuple[int, int]] = field(default_factory=dict)

    def numbers(self) -> Numbers:
        executed = sum(1 for hits in self.lines.values() if hits > 0)
        covered = sum(c for c, _ in self.branches.values())
        total = sum(t for _, t in self.branches.values())
        return Numbers(len(self.lines), executed, total, covered, 1)

    def merge(self, other: FileCoverage) -> None:
        """Add `other`'s measurements: hits add up; a branch line keeps the better-covered record."""
        for line, hits in other.lines.items():
            self.lines[line] = self.lines.get(line, 0) + hits
        for line, (covered, total) in other.branches.items():
            mine = self.branches.get(line)
            if mine is None or (covered, total) > mine:
                self.branches[line] = (covered, total)


@dataclass(slots=True)
class CoverageReport:
    """The files of one (or several merged) reports, keyed by path."""

    files: dict[str, FileCoverage] = field(default_factory=dict)
    format: ReportFormat | Literal["merged"] = "cobertura"
    sources: list[str] = field(default_factory=list)  # Cobertura `<source>` roots
    has_branches: bool = False  # the report measured branches

    def totals(self) -> Numbers:
        return sum((f.numbers() for f in self.files.values()), Numbers())

    def get(self, path: str) -> FileCoverage | None:
        return self.files.get(path)

    def add(self, coverage: FileCoverage) -> None:
        """Add a file, merging it into an existing entry with the same path."""
        existing = self.files.get(coverage.path)
        if existing is None:
            self.files[coverage.path] = coverage
        else:
            existing.merge(coverage)


def merge_reports(reports: Iterable[CoverageReport]) -> CoverageReport:
    """One report of several (e.g. a Python and a JavaScript one); the same file's hits add up."""
    merged = CoverageReport(format="merged")
    for report in reports:
        merged.has_branches |= report.has_branches
        merged.sources += [s for s in report.sources if s not in merged.sources]
        for coverage in report.files.values():
            merged.add(FileCoverage(coverage.path, dict(coverage.lines), dict(coverage.branches)))
    return merged


# ------------------------------------------------------------------------------- format detection


def detect_format(data: bytes, name: str = "") -> ReportFormat:
    """Which format `data` is in, from its first bytes (and the file name for LCOV)."""
    head = data[:4096].lstrip()
    if head.startswith(b"{"):
        return "coverage.py-json"
    if head.startswith(b"<"):
        return "jacoco" if b"<report" in head or b"JACOCO" in head else "cobertura"
    if name.endswith((".info", ".lcov")) or re.search(rb"^(TN|SF):", head, re.MULTILINE):
        return "lcov"
    raise ReportError("not a coverage report (neither XML, JSON nor LCOV)")


def parse_report(data: bytes, name: str = "") -> CoverageReport:
    """Parse a report in any of the four formats."""
    fmt = detect_format(data, name)
    if fmt == "lcov":
        return parse_lcov(data.decode("utf-8", errors="replace"))
    if fmt == "coverage.py-json":
        return parse_coverage_json(data)
    if fmt == "jacoco":
        return parse_jacoco(data)
    return parse_cobertura(data)


# -------------------------------------------------------------------------------------- Cobertura


def _xml_root(data: bytes, expected: str) -> ET.Element:
    if b"<!ENTITY" in data:
        raise ReportError("refusing an XML document that declares entities")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ReportError(f"not well-formed XML: {exc}") from None
    if root.tag != expected:
        raise ReportError(f"not a {expected!r} report: the root element is <{root.tag}>")
    return root


def parse_cobertura(data: bytes) -> CoverageReport:
    """Cobertura XML (coverage.py's `coverage xml`, and other tools'): paths as the `filename` of each
    `<class>`, relative to one of the `<sources>` (see `resolve_paths`). The `<line>`s of a class are
    read, not those repeated under its `<methods>`.

    Streamed through expat without an element tree (a 5,000-file report parses in well under a
    second): only start tags reach Python, except inside `<source>` and `<methods>`."""
    if b"<!ENTITY" in data:
        raise ReportError("refusing an XML document that declares entities")
    parser = pyexpat.ParserCreate()
    parser.buffer_text = True
    state = _CoberturaState()
    parser.StartElementHandler = _cobertura_start(parser, state)
    try:
        parser.Parse(data, True)
    except pyexpat.ExpatError as exc:
        raise ReportError(f"not well-formed XML: {exc}") from None
    if state.root != "coverage":
        raise ReportError(f"not a 'coverage' report: the root element is <{state.root}>")
    return state.report()


@dataclass(slots=True)
class _CoberturaState:
    root: str | None = None
    branches_valid: int = 0
    files: list[FileCoverage] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def report(self) -> CoverageReport:
        report = CoverageReport(format="cobertura", sources=self.sources)
        for coverage in self.files:
            report.add(coverage)
        report.has_branches = self.branches_valid > 0 or any(f.branches for f in report.files.values())
        return report


def _cobertura_start(parser: Any, state: _CoberturaState) -> Callable[[str, dict[str, str]], None]:
    """The start-tag handler. `<line>` is the hot path (hundreds of thousands of calls): it only
    touches closure variables. End tags and text are listened to inside `<source>` and `<methods>`."""
    lines: dict[int, int] | None = None  # of the class being read; None outside classes
    branches: dict[int, tuple[int, int]] = {}
    in_methods = False
    source_text: list[str] = []
    search = _CONDITION.search  # `condition-coverage="50% (1/2)"` -> (1, 2)

    def start(name: str, attrs: dict[str, str]) -> None:
        nonlocal lines, branches, in_methods, source_text
        if name == "line":
            if lines is None or in_methods:
                return
            try:
                number, hits = int(attrs["number"]), int(attrs["hits"])
            except (KeyError, ValueError):
                number, hits = _int(attrs.get("number")), _int(attrs.get("hits"))
            if number > 0:
                if hits < 0:
                    hits = 0
                if hits >= lines.get(number, 0):
                    lines[number] = hits
                if attrs.get("branch") == "true" and (found := search(attrs.get("condition-coverage", ""))):
                    branches[number] = (int(found.group(1)), int(found.group(2)))
        elif name == "class":
            coverage = FileCoverage(normalise_path(attrs["filename"])) if attrs.get("filename") else None
            if coverage is not None:
                state.files.append(coverage)
            lines, branches = (coverage.lines, coverage.branches) if coverage else (None, {})
        elif name == "methods":
            in_methods = True
            parser.EndElementHandler = end_methods
        elif name == "source":
            source_text = []
            parser.CharacterDataHandler, parser.EndElementHandler = source_text.append, end_source
        elif state.root is None:
            state.root, state.branches_valid = name, _int(attrs.get("branches-valid"))

    def end_methods(name: str) -> None:
        nonlocal in_methods
        if name == "methods":
            in_methods, parser.EndElementHandler = False, None

    def end_source(name: str) -> None:
        if name == "source":
            if text := "".join(source_text).strip():
                state.sources.append(text)
            parser.CharacterDataHandler = parser.EndElementHandler = None

    return start


def _int(text: str | None) -> int:
    """A non-negative count; malformed or negative values count as 0."""
    try:
        value = int(text or 0)
        return value if value > 0 else 0
    except ValueError:
        try:
            return max(0, int(float(text or 0)))
        except ValueError:
            return 0


# ------------------------------------------------------------------------------------------- LCOV


def parse_lcov(text: str) -> CoverageReport:
    """LCOV tracefiles: `SF:` opens a file, `DA:line,hits`, `BRDA:line,block,branch,taken` ("-" for
    never reached), `end_of_record` closes it. Summary records (LF/LH/BRF/BRH) are recomputed."""
    report = CoverageReport(format="lcov")
    current: FileCoverage | None = None
    brda: dict[int, list[int]] = {}
    for raw in text.splitlines():
        key, _, value = raw.strip().partition(":")
        if key == "SF":
            current, brda = FileCoverage(normalise_path(value.strip())), {}
        elif current is not None and key == "DA":
            _lcov_da(current, value)
        elif current is not None and key == "BRDA":
            _lcov_brda(brda, value)
        elif current is not None and key == "end_of_record":
            _close_lcov_record(report, current, brda)
            current = None
    if current is not None:  # a truncated file: keep what was read
        _close_lcov_record(report, current, brda)
    report.has_branches = any(f.branches for f in report.files.values())
    return report


def _lcov_da(current: FileCoverage, value: str) -> None:
    parts = value.split(",")
    if len(parts) >= 2 and (number := _int(parts[0])) > 0:
        current.lines[number] = current.lines.get(number, 0) + _int(parts[1])


def _lcov_brda(brda: dict[int, list[int]], value: str) -> None:
    parts = value.split(",")
    if len(parts) >= 4 and (number := _int(parts[0])) > 0:
        taken = 0 if parts[3].strip() == "-" else _int(parts[3])
        brda.setdefault(number, []).append(taken)


def _close_lcov_record(report: CoverageReport, current: FileCoverage, brda: dict[int, list[int]]) -> None:
    for number, taken in brda.items():
        current.branches[number] = (sum(1 for t in taken if t > 0), len(taken))
    report.add(current)


# ---------------------------------------------------------------------------- coverage.py JSON


def parse_coverage_json(data: bytes) -> CoverageReport:
    """coverage.py's `coverage json`: `executed_lines` / `missing_lines` are the statements (excluded
    lines are not); with branch measurement, `executed_branches` / `missing_branches` are the arcs
    `[from, to]` out of branching lines."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReportError(f"not valid JSON: {exc}") from None
    files = document.get("files") if isinstance(document, dict) else None
    if not isinstance(files, dict):
        raise ReportError("not a coverage.py JSON report: no `files` object")
    report = CoverageReport(format="coverage.py-json")
    report.has_branches = bool((document.get("meta") or {}).get("branch_coverage"))
    for path, entry in files.items():
        if isinstance(entry, dict):
            report.add(_json_file(str(path), entry))
    return report


def _json_file(path: str, entry: dict[str, Any]) -> FileCoverage:
    coverage = FileCoverage(normalise_path(path))
    coverage.lines.update((n, 1) for n in _ints(entry.get("executed_lines")))
    coverage.lines.update((n, 0) for n in _ints(entry.get("missing_lines")))
    executed = _arc_sources(entry.get("executed_branches"))
    missing = _arc_sources(entry.get("missing_branches"))
    for line in set(executed) | set(missing):
        covered = executed.get(line, 0)
        coverage.branches[line] = (covered, covered + missing.get(line, 0))
    return coverage


def _ints(values: Any) -> list[int]:
    return [v for v in values or [] if isinstance(v, int) and v > 0]


def _arc_sources(arcs: Any) -> dict[int, int]:
    """How many arcs leave each line."""
    counts: dict[int, int] = {}
    for arc in arcs or []:
        if isinstance(arc, list | tuple) and len(arc) == 2 and isinstance(arc[0], int):
            counts[arc[0]] = counts.get(arc[0], 0) + 1
    return counts


# ----------------------------------------------------------------------------------------- JaCoCo


def parse_jacoco(data: bytes) -> CoverageReport:
    """JaCoCo XML: `<package name="com/x"><sourcefile name="A.java"><line nr mi ci mb cb/>`. A line
    is covered when it has covered instructions (`ci > 0`, as diff-cover reads it)."""
    root = _xml_root(data, "report")
    report = CoverageReport(format="jacoco")
    for package in root.iter("package"):
        directory = package.get("name") or ""
        for sourcefile in package.iterfind("sourcefile"):
            name = sourcefile.get("name")
            if name:
                report.add(_jacoco_file(posixpath.join(directory, name), sourcefile))
    report.has_branches = any(f.branches for f in report.files.values())
    return report


def _jacoco_file(path: str, sourcefile: ET.Element) -> FileCoverage:
    coverage = FileCoverage(normalise_path(path))
    for line in sourcefile.iterfind("line"):
        number = _int(line.get("nr"))
        missed, covered = _int(line.get("mi")), _int(line.get("ci"))
        if number <= 0 or missed + covered == 0:
            continue
        coverage.lines[number] = covered
        missed_b, covered_b = _int(line.get("mb")), _int(line.get("cb"))
        if missed_b + covered_b:
            coverage.branches[number] = (covered_b, missed_b + covered_b)
    return coverage


# ------------------------------------------------------------------------------------------ paths


def normalise_path(path: str) -> str:
    """Posix separators, no `./` and no `..` folding beyond what is lexical."""
    path = path.replace("\\", "/")
    normalised = posixpath.normpath(path) if path else path
    return normalised.removeprefix("./")


def resolve_paths(report: CoverageReport, root: str, exists: Callable[[str], bool] | None = None) -> CoverageReport:
    """The same report keyed by paths relative to the repository `root` (posix).

    For each file the candidates are, in order: its path joined to each `<source>` (relative
    sources are taken from `root`), the path itself from `root`, and — for reports made elsewhere
    (another CI machine) — the path joined to the trailing components of each source. With `exists`
    (a predicate on root-relative paths), the first candidate that exists wins; without it, the
    first one inside `root`. A file with no candidate inside `root` keeps its path.
    """
    root = posixpath.normpath(root.replace("\\", "/"))
    resolved = CoverageReport(format=report.format, sources=report.sources, has_branches=report.has_branches)
    for coverage in report.files.values():
        path = repo_path(coverage.path, report.sources, root, exists)
        resolved.add(FileCoverage(path, coverage.lines, coverage.branches))
    return resolved


def repo_path(path: str, sources: list[str], root: str, exists: Callable[[str], bool] | None = None) -> str:
    """The root-relative path of one report path (see `resolve_paths`)."""
    inside = [rel for rel in _candidates(path, sources, root, guess=False) if rel is not None]
    if exists is not None:
        guesses = [rel for rel in _candidates(path, sources, root, guess=True) if rel is not None]
        found = next((rel for rel in inside + guesses if exists(rel)), None)
        if found is not None:
            return found
    return inside[0] if inside else normalise_path(path)


def _candidates(path: str, sources: list[str], root: str, *, guess: bool) -> list[str | None]:
    """The report's own reading of `path` (`guess=False`), or the guesses for a report made on
    another machine, which only an existing file confirms (`guess=True`)."""
    path = path.replace("\\", "/")
    if posixpath.isabs(path):
        return [] if guess else [_relative_to(path, root)]
    if guess:
        candidates = [posixpath.join(root, suffix, path) for s in sources for suffix in _suffixes(s)]
    else:
        candidates = [*(posixpath.join(root, s.replace("\\", "/"), path) for s in sources), posixpath.join(root, path)]
    return [_relative_to(p, root) for p in candidates]


def _suffixes(source: str) -> list[str]:
    """`/ci/work/repo/src` -> `src`, `repo/src`, `work/repo/src` (shortest first)."""
    parts = [p for p in source.replace("\\", "/").split("/") if p and p != "."]
    return ["/".join(parts[-n:]) for n in range(1, min(len(parts), _SOURCE_SUFFIX_DEPTH) + 1)]


def _relative_to(path: str, root: str) -> str | None:
    path = posixpath.normpath(path)
    if path == root:
        return None
    prefix = root.rstrip("/") + "/"
    return path[len(prefix):] if path.startswith(prefix) else None
