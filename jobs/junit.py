"""JUnit XML: parse test results, count them and point each failure at a file and line.

Understands pytest's ``xunit1`` and ``xunit2`` flavours and the generic Surefire / jest-junit shape
(``<testsuites>`` → nested ``<testsuite>`` → ``<testcase>`` with ``<failure>``, ``<error>`` or
``<skipped>``). Parsing and counting are pure; locating a failure reads the work tree only to check
that a path exists inside it and to find a test's ``def`` line.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from jobs.model import Finding

CaseStatus = Literal["passed", "failed", "error", "skipped"]

MESSAGE_MAX_CHARS = 2000
TAIL_MAX_LINES = 40
TAIL_MAX_CHARS = 4000
INDEX_MAX_FILES = 50_000

# Directories whose files are never "the repository's code", even when they sit inside the work tree.
IGNORED_DIRS = frozenset(
    {".git", ".hg", ".svn", "node_modules", ".venv", "venv", ".tox", ".nox", "site-packages",
     "dist-packages", "__pycache__", ".mypy_cache", ".pytest_cache"}
)


class JUnitError(ValueError):
    """The bytes are not a JUnit XML report we can read."""


class NotJUnitError(JUnitError):
    """Well-formed XML of another kind, e.g. a coverage report."""


@dataclass(frozen=True, slots=True)
class TestCase:
    """One ``<testcase>``; ``line`` is 1-based (pytest's 0-based ``line`` attribute is converted)."""

    __test__ = False  # not a pytest test class

    classname: str
    name: str
    status: CaseStatus
    time_s: float = 0.0
    file: str | None = None
    line: int | None = None
    message: str = ""
    kind: str = ""  # the failure's ``type`` attribute, e.g. "AssertionError"
    details: str = ""  # the text of <failure>/<error>/<skipped>: pytest's long repr, a stack trace
    output: str = ""  # <system-out> and <system-err>

    @property
    def id(self) -> str:
        """`tests.test_calc.test_add[1-2]`, `com.example.CalcTest.testAdd`, or just the name."""
        if not self.classname or self.name.startswith(self.classname):
            return self.name
        return f"{self.classname}.{self.name}"

    @property
    def is_problem(self) -> bool:
        return self.status in ("failed", "error")


@dataclass(frozen=True, slots=True)
class JUnitSummary:
    passed: int
    failed: int
    errors: int
    skipped: int
    total: int
    duration_s: float


@dataclass(frozen=True, slots=True)
class Location:
    path: str  # relative to the repository root, posix separators
    line: int  # 1-based


# --------------------------------------------------------------------------------------- parsing

_STATUS_OF_TAG: dict[str, CaseStatus] = {"failure": "failed", "error": "error", "skipped": "skipped"}


def parse_junit(data: bytes, *, zero_based_lines: bool | None = None) -> list[TestCase]:
    """All test cases of one report, in document order.

    `zero_based_lines=None` detects pytest (whose ``line`` attribute counts from 0) by suite name.
    """
    root = _parse_xml(data)
    cases = []
    for suite in _suites(root):
        zero_based = _is_pytest_suite(root, suite) if zero_based_lines is None else zero_based_lines
        cases += [_test_case(element, zero_based) for element in suite.findall("testcase")]
    return cases


def _parse_xml(data: bytes) -> ET.Element:
    if b"<!ENTITY" in data:
        raise JUnitError("refusing an XML document that declares entities")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise JUnitError(f"not well-formed XML: {exc}") from None
    if root.tag not in ("testsuites", "testsuite"):
        raise NotJUnitError(f"not a JUnit report: the root element is <{root.tag}>")
    return root


def merge_junit(documents: list[bytes]) -> bytes:
    """One `<testsuites>` document holding the suites of all `documents` (each must parse)."""
    merged = ET.Element("testsuites")
    for data in documents:
        root = _parse_xml(data)
        merged.extend(list(root) if root.tag == "testsuites" else [root])
    return ET.tostring(merged, encoding="utf-8", xml_declaration=True)


def _suites(root: ET.Element) -> list[ET.Element]:
    """Every element that holds test cases: all (nested) suites, and a `<testsuites>` root itself."""
    return ([root] if root.tag == "testsuites" else []) + list(root.iter("testsuite"))


def _is_pytest_suite(root: ET.Element, suite: ET.Element) -> bool:
    return suite.get("name") == "pytest" or root.get("name", "").startswith("pytest")


def _test_case(element: ET.Element, zero_based_lines: bool) -> TestCase:
    problem = _problem_element(element)
    outcome = problem.attrib if problem is not None else {}
    return TestCase(
        classname=element.get("classname", "").strip(),
        name=element.get("name", "").strip(),
        status=_STATUS_OF_TAG[problem.tag] if problem is not None else "passed",
        time_s=_parse_float(element.get("time")),
        file=element.get("file") or None,
        line=_parse_line(element.get("line"), zero_based_lines),
        message=outcome.get("message", ""),
        kind=outcome.get("type", ""),
        details=(problem.text or "").strip("\n") if problem is not None else "",
        output=_captured_output(element),
    )


def _problem_element(element: ET.Element) -> ET.Element | None:
    """The most serious outcome element: a failure outranks an error outranks a skip."""
    for tag in ("failure", "error", "skipped"):
        found = element.find(tag)
        if found is not None:
            return found
    return None


def _captured_output(element: ET.Element) -> str:
    parts = [(child.text or "").strip("\n") for child in element if child.tag in ("system-out", "system-err")]
    return "\n".join(part for part in parts if part)


def _parse_float(value: str | None) -> float:
    try:
        return float((value or "0").replace(",", ""))
    except ValueError:
        return 0.0


def _parse_line(value: str | None, zero_based: bool) -> int | None:
    if value is None or not value.strip().isdigit():
        return None
    line = int(value) + (1 if zero_based else 0)
    return line if line >= 1 else None


# -------------------------------------------------------------------------------------- counting


def summarise(cases: Iterable[TestCase]) -> JUnitSummary:
    """Counts by outcome and the summed test time."""
    cases = list(cases)
    by_status = {status: sum(1 for case in cases if case.status == status) for status in _ALL_STATUSES}
    return JUnitSummary(
        passed=by_status["passed"],
        failed=by_status["failed"],
        errors=by_status["error"],
        skipped=by_status["skipped"],
        total=len(cases),
        duration_s=round(sum(case.time_s for case in cases), 3),
    )


_ALL_STATUSES: tuple[CaseStatus, ...] = ("passed", "failed", "error", "skipped")


# ------------------------------------------------------------------------------------ text tails


def tail_text(text: str, max_lines: int = TAIL_MAX_LINES, max_chars: int = TAIL_MAX_CHARS) -> str:
    """The last `max_lines` lines of `text`, cut to at most `max_chars` characters ("…" marks a cut)."""
    lines = text.rstrip().splitlines()
    tail = "\n".join(lines[-max_lines:])
    cut = len(lines) > max_lines
    if len(tail) > max_chars:
        tail, cut = tail[len(tail) - max_chars + 2 :], True
    return f"…\n{tail}" if cut and len(tail) + 2 <= max_chars else tail


def head_text(text: str, max_chars: int = MESSAGE_MAX_CHARS) -> str:
    """`text` cut to at most `max_chars` characters ("…" marks a cut)."""
    text = text.strip()
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


# ----------------------------------------------------------------------------- locating failures


class RepoFiles:
    """Answers "which file of the work tree is this path?" for paths that are absolute, relative
    to the root, or relative to some subdirectory (matched by unique suffix)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._index: dict[str, list[str]] | None = None

    def relative(self, path: str) -> str | None:
        """The repository-relative posix path of an existing file, or None."""
        found = self._direct(path)
        if found is None and not os.path.isabs(path):
            match = self.by_suffix(path)
            found = self._direct(match) if match else None  # symlinks must stay inside too
        return found

    def _direct(self, path: str) -> str | None:
        try:
            candidate = (self.root / path).resolve()
            rel = candidate.relative_to(self.root)
        except (ValueError, OSError):
            return None
        if not candidate.is_file() or IGNORED_DIRS.intersection(rel.parts):
            return None
        return rel.as_posix()

    def by_suffix(self, suffix: str) -> str | None:
        """The one indexed file whose path ends with `suffix` (at a directory boundary)."""
        suffix = suffix.replace(os.sep, "/").lstrip("./")
        same_name = self.index().get(suffix.rsplit("/", 1)[-1], []) if suffix else []
        matches = [p for p in same_name if p == suffix or p.endswith("/" + suffix)]
        return matches[0] if len(matches) == 1 else None

    def index(self) -> dict[str, list[str]]:
        """Repository files by base name (built on first use, at most INDEX_MAX_FILES files)."""
        if self._index is None:
            self._index = {}
            for rel in _walk_files(self.root, INDEX_MAX_FILES):
                self._index.setdefault(rel.rsplit("/", 1)[-1], []).append(rel)
        return self._index


def _walk_files(root: Path, limit: int) -> Iterator[str]:
    count = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_DIRS)
        base = Path(dirpath).relative_to(root)
        for filename in sorted(filenames):
            yield (base / filename).as_posix()
            count += 1
            if count >= limit:
                return


# Python: pytest's long repr (`tests/test_calc.py:12: AssertionError`) and tracebacks
# (`File "/repo/tests/test_calc.py", line 12, in test_add`). Outermost frame first: the last wins.
_PYTEST_LOCATION = re.compile(r"^(?P<path>[^\s:][^\s:]*):(?P<line>\d+):(?=\s|$)", re.MULTILINE)
_TRACEBACK_LOCATION = re.compile(r'File "(?P<path>[^"\n]+)", line (?P<line>\d+)')
# Stack traces listed innermost frame first (the first wins): JavaScript `at f (/repo/a.test.js:5:17)`
# and the JVM's `at com.example.CalcTest.testAdd(CalcTest.java:12)`.
_JS_FRAME = re.compile(
    r"(?:(?<=[\s(])|^)(?P<path>(?:[A-Za-z]:)?[\w@.~/\\-]*[\w-]\.[A-Za-z]\w*):(?P<line>\d+):\d+", re.MULTILINE
)  # starts only after a space or "(", which keeps it linear on long tokens
SCAN_MAX_CHARS = 256 * 1024  # of a failure's text searched for locations: the tail for Python, the head for stacks
_JVM_FRAME = re.compile(r"at (?P<cls>[\w$.]+)\.[\w$<>-]+\((?P<file>[\w$-]+\.\w+):(?P<line>\d+)\)")


def locate_failure(case: TestCase, root: Path, files: RepoFiles | None = None) -> Location | None:
    """Where to annotate a failed test: the failing line named in its output, else the testcase's
    ``file``/``line`` attributes, else the test function found from its id. None if nowhere."""
    files = files or RepoFiles(root)
    text = "\n".join(part for part in (case.message, case.details) if part)
    return (
        location_in_text(text, files)
        or location_from_attributes(case, files)
        or location_from_test_id(case, files)
    )


def location_in_text(text: str, files: RepoFiles) -> Location | None:
    """The deepest frame of a Python traceback, else the innermost frame of a JS/JVM stack trace,
    that points into the repository."""
    tail, head = text[-SCAN_MAX_CHARS:], text[:SCAN_MAX_CHARS]
    python = sorted(_matches(_PYTEST_LOCATION, tail) + _matches(_TRACEBACK_LOCATION, tail))
    for _, path, line in reversed(python):
        if found := _existing(path, line, files):
            return found
    frames = sorted(_matches(_JS_FRAME, head) + _jvm_matches(head))
    for _, path, line in frames:
        if found := _existing(path, line, files):
            return found
    return None


def _matches(pattern: re.Pattern[str], text: str) -> list[tuple[int, str, int]]:
    return [(m.start(), m.group("path"), int(m.group("line"))) for m in pattern.finditer(text)]


def _jvm_matches(text: str) -> list[tuple[int, str, int]]:
    """JVM frames name only the file; the package of the class gives its directory."""
    found = []
    for m in _JVM_FRAME.finditer(text):
        package = m.group("cls").split("$")[0].rsplit(".", 1)[0] if "." in m.group("cls") else ""
        path = "/".join([*package.split("."), m.group("file")]) if package else m.group("file")
        found.append((m.start(), path, int(m.group("line"))))
    return found


def _existing(path: str, line: int, files: RepoFiles) -> Location | None:
    if line < 1:
        return None
    rel = files.relative(path)
    return Location(rel, line) if rel else None


def location_from_attributes(case: TestCase, files: RepoFiles) -> Location | None:
    """The testcase's own ``file`` (and ``line``, else the test's definition in that file)."""
    rel = files.relative(case.file) if case.file else None
    if rel is None:
        return None
    line = case.line or definition_line(files.root / rel, case)
    return Location(rel, line or 1)


def location_from_test_id(case: TestCase, files: RepoFiles) -> Location | None:
    """Map `tests.test_calc[.TestX]` + `test_add[1-2]` to `tests/test_calc.py` and its `def` line."""
    rel = module_file(case, files)
    if rel is None:
        return None
    return Location(rel, definition_line(files.root / rel, case) or 1)


def module_file(case: TestCase, files: RepoFiles) -> str | None:
    """The repository file a dotted classname (or, for pytest collection errors, name) names."""
    dotted = case.classname or case.name
    parts = [part for part in dotted.split(".") if part]
    for end in range(len(parts), 0, -1):
        stem = "/".join(parts[:end])
        for suffix in _SOURCE_SUFFIXES:
            if found := files.relative(stem + suffix):
                return found
    return None


_SOURCE_SUFFIXES = (".py", ".java", ".kt", ".scala", ".groovy", ".ts", ".js", ".cs", ".rb", ".php")


def definition_line(path: Path, case: TestCase) -> int | None:
    """1-based line of the test's definition: `def name`, else `name(`, else the name as a string."""
    try:
        source = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    name = re.sub(r"\[.*\]$", "", case.name).rsplit(".", 1)[-1]
    if not name:
        return None
    start = _class_offset(source, case.classname)
    for pattern in _definition_patterns(name):
        match = pattern.search(source, start) or pattern.search(source)
        if match:
            return source.count("\n", 0, match.start()) + 1
    return None


def _definition_patterns(name: str) -> list[re.Pattern[str]]:
    escaped = re.escape(name)
    return [
        re.compile(rf"^[ \t]*(?:async[ \t]+)?def[ \t]+{escaped}\b", re.MULTILINE),
        re.compile(rf"\b{escaped}[ \t]*\(") if re.fullmatch(r"\w+", name) else re.compile(r"(?!)"),
        re.compile(rf"([\"'`]){escaped}\1"),
    ]


def _class_offset(source: str, classname: str) -> int:
    """Where `class X` starts when the classname's last part looks like a class, else 0."""
    last = classname.rsplit(".", 1)[-1]
    if not last[:1].isupper():
        return 0
    match = re.search(rf"^[ \t]*class[ \t]+{re.escape(last)}\b", source, re.MULTILINE)
    return match.start() if match else 0


# ------------------------------------------------------------------------------------- findings


def failure_message(case: TestCase) -> str:
    """The failure's message, then the tail of its details and captured output."""
    message = head_text(case.message or first_line(case.details) or case.kind or case.status)
    tail = tail_text("\n".join(part for part in (case.details, case.output) if part))
    if not tail or tail.strip() == message.strip():
        return message
    return f"{message}\n\n{tail}"


def first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def failure_finding(case: TestCase, location: Location) -> Finding:
    return Finding(
        path=location.path,
        start_line=location.line,
        end_line=location.line,
        level="failure",
        rule="test-error" if case.status == "error" else "test-failure",
        title=case.id,
        message=failure_message(case),
    )


def located_failures(cases: Iterable[TestCase], root: Path) -> list[tuple[TestCase, Location | None]]:
    """Every failed or erroring case with where it failed (None when it can't be placed)."""
    files = RepoFiles(root)
    return [(case, locate_failure(case, root, files)) for case in cases if case.is_problem]


def failure_findings(cases: Iterable[TestCase], root: Path) -> list[Finding]:
    """One annotation per failed or erroring test that can be placed in the repository."""
    return [failure_finding(case, loc) for case, loc in located_failures(cases, root) if loc is not None]
