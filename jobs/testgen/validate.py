"""Running generated tests and reading what happened: pure except `run_pytest` (the sandboxed run).

Generated Python tests run with pytest in the sandbox, in a directory of their own (its `pytest.ini` and a
watchdog `conftest.py`), the repository on `PYTHONPATH`, plugins not auto-loaded (the repository's own
pytest plugins could not collect them) except hypothesis', `--hypothesis-seed=0` for reproducibility. A
test that runs longer than the per-test limit ends the process (faulthandler); the watchdog's marker file
names it, and the run is repeated without it.

A failing property test is a likely bug when hypothesis printed a falsifying example ("Falsifying example:"
before hypothesis 6.13x, "Failing test case:" since); hypothesis' own errors (a health check, an
unsatisfiable strategy) and failures without an example are dropped with the reason.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from jobs.junit import TestCase, first_line, head_text

CURRENT_TEST_FILE = ".aqe-current-test"
MAX_EXAMPLES_SHOWN = 3

PYTEST_INI = "[pytest]\nconsole_output_style = classic\n"

WATCHDOG_CONFTEST = '''\
"""AQE's watchdog for generated tests: a test running past the limit ends the run, naming itself."""

import faulthandler
import pathlib

import pytest

_CURRENT = pathlib.Path(__file__).with_name("{marker}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _CURRENT.write_text(item.nodeid, encoding="utf-8")
    faulthandler.dump_traceback_later({timeout_s}, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
        _CURRENT.unlink(missing_ok=True)
'''


def watchdog_conftest(per_test_timeout_s: float) -> str:
    return WATCHDOG_CONFTEST.format(marker=CURRENT_TEST_FILE, timeout_s=round(per_test_timeout_s, 1))


def pytest_argv(python: Path, files: Sequence[str], junit: Path, deselect: Sequence[str] = ()) -> list[str]:
    argv = [
        str(python), "-m", "pytest", "-p", "_hypothesis_pytestplugin", "-p", "no:cacheprovider",
        "-o", "junit_family=xunit1", f"--junitxml={junit}", "--hypothesis-seed=0", "-q", "-rN",
    ]  # fmt: skip
    for nodeid in deselect:
        argv += ["--deselect", nodeid]
    return [*argv, *files]


# ---------------------------------------------------------------------------- falsifying examples


@dataclass(frozen=True, slots=True)
class FailingExample:
    test: str  # the test function hypothesis named
    error: str  # "ZeroDivisionError: division by zero"
    arguments: tuple[tuple[str, str], ...] | None  # (name, value source), None when it could not be parsed
    raw: str  # the example as printed, comments and gutters removed

    def call(self, name: str, *, positional: bool = False) -> str:
        """`name(values=[])`, or `name([])` with `positional`; the printed text when it did not parse."""
        if self.arguments is None:
            return self.raw.replace(self.test, name, 1)
        args = [value if positional else f"{key}={value}" for key, value in self.arguments]
        return f"{name}({', '.join(args)})"


_HEADER = re.compile(r"^(?:Falsifying(?: explicit)? example|Failing test case): (?P<test>\w+)\((?P<rest>.*)$")
_GUTTER = re.compile(r"^\s*(?:(?:E(?=\s|$)|\||\+[-+]*)\s?)*")


def clean_lines(text: str) -> list[str]:
    """Lines with pytest's `E   ` markers and exception-group gutters (`| `) removed, stripped."""
    return [_GUTTER.sub("", line, count=1).strip() for line in text.splitlines()]


def failing_examples(text: str) -> list[FailingExample]:
    """Every distinct falsifying example in a failure's text, with the error printed before it."""
    lines = clean_lines(text)
    found: dict[tuple[str, str], FailingExample] = {}
    for index, line in enumerate(lines):
        match = _HEADER.match(line)
        if match is None:
            continue
        body = [match.group("rest")]
        cursor = index + 1
        while not _closes(body[-1]) and cursor < len(lines):
            body.append(lines[cursor])
            cursor += 1
        raw_call = f"{match.group('test')}(" + "\n".join(body)
        example = FailingExample(match.group("test"), _error_before(lines, index), _arguments(raw_call),
                                 _without_comments(raw_call))  # fmt: skip
        found.setdefault((example.error, example.raw), example)
    return list(found.values())


def _closes(line: str) -> bool:
    return line.rstrip().endswith(")") and (line.strip() == ")" or line.count("(") < line.count(")"))


def _error_before(lines: list[str], index: int) -> str:
    for line in reversed(lines[max(0, index - 5) : index]):
        if line:
            return head_text(line, 300)
    return ""


def _arguments(call_text: str) -> tuple[tuple[str, str], ...] | None:
    try:
        node = ast.parse(call_text, mode="eval").body
    except SyntaxError:
        return None
    if not isinstance(node, ast.Call) or node.args:
        return None
    pairs = []
    for keyword in node.keywords:
        value = ast.get_source_segment(call_text, keyword.value)
        if keyword.arg is None or value is None:
            return None
        pairs.append((keyword.arg, " ".join(value.split())))
    return tuple(pairs)


def _without_comments(call_text: str) -> str:
    lines = [re.sub(r"\s+#.*$", "", line) if not line.lstrip().startswith("#") else "" for line in
             call_text.splitlines()]  # fmt: skip
    return " ".join(" ".join(line.split()) for line in lines if line.strip()).replace("( ", "(").replace(", )", ")")


# ------------------------------------------------------------------------------- classification

Verdict = Literal["passed", "bug", "dropped"]

_HYPOTHESIS_ERROR = re.compile(
    r"\b(?:hypothesis\.errors\.)?(FailedHealthCheck|InvalidArgument|ResolutionFailed|Unsatisfiable|"
    r"Flaky(?:Failure|Strategy|Backtrack)?|InvalidDefinition|DeadlineExceeded|HypothesisDeprecationWarning)\b"
)


@dataclass(frozen=True, slots=True)
class CaseVerdict:
    verdict: Verdict
    reason: str = ""
    examples: list[FailingExample] = field(default_factory=list)


def failure_text(case: TestCase) -> str:
    return "\n".join(part for part in (case.message, case.details) if part)


def judge_property_test(case: TestCase) -> CaseVerdict:
    """What a ghostwriter test's outcome means."""
    if case.status == "passed":
        return CaseVerdict("passed")
    if case.status == "skipped":
        return CaseVerdict("dropped", f"skipped: {head_text(first_line(case.message) or 'no reason given', 200)}")
    text = failure_text(case)
    headline = first_line(case.message) or first_line(case.details)
    if error := _HYPOTHESIS_ERROR.search(headline):
        return CaseVerdict("dropped", f"hypothesis could not run it ({error.group(1)}): {head_text(headline, 200)}")
    examples = failing_examples(text)
    if examples:
        return CaseVerdict("bug", examples=examples)
    return CaseVerdict("dropped", f"it failed without a falsifying example: {head_text(error_line(case), 200)}")


def judge_example_test(case: TestCase) -> CaseVerdict:
    """What an LLM-written test's outcome means: any failure drops it (the test may be wrong)."""
    if case.status == "passed":
        return CaseVerdict("passed")
    if case.status == "skipped":
        return CaseVerdict("dropped", f"it skipped itself: {head_text(first_line(case.message), 200)}")
    return CaseVerdict("dropped", f"`{case.name}` fails against the current code: {head_text(error_line(case), 200)}")


def error_line(case: TestCase) -> str:
    """The most telling line of a failure: the last `E   ...` line of pytest's report, else the message."""
    marked = [line[1:].strip() for line in case.details.splitlines() if line.startswith("E ")]
    marked = [line for line in marked if line]
    return marked[-1] if marked else first_line(case.message) or case.kind or case.status


def collection_errors(cases: list[TestCase]) -> dict[str, str]:
    """File stem -> why pytest could not collect that generated file."""
    return {case.name.rsplit(".", 1)[-1]: error_line(case) for case in cases
            if case.status == "error" and not case.classname and "[" not in case.name}  # fmt: skip


def base_name(case: TestCase) -> str:
    """`test_fuzz_mean` of `test_fuzz_mean[...]`."""
    return re.sub(r"\[.*\]$", "", case.name)


def file_stem(case: TestCase) -> str:
    """The generated file a case comes from: its classname's module part (run from the file's directory)."""
    return case.classname.split(".")[0] if case.classname else case.name
