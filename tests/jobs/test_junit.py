"""jobs.junit against reports that pytest really wrote (both junit families) and hand-written
Surefire and jest-junit samples."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from jobs.junit import (
    TAIL_MAX_CHARS,
    TAIL_MAX_LINES,
    JUnitError,
    Location,
    NotJUnitError,
    RepoFiles,
    TestCase,
    failure_findings,
    failure_message,
    locate_failure,
    located_failures,
    merge_junit,
    parse_junit,
    summarise,
    tail_text,
)

CALC = "def add(a, b):\n    return a + b\n"

TEST_CALC = '''\
import pytest
from calc import add


def test_add():
    assert add(1, 2) == 4


@pytest.mark.parametrize("a,b", [(1, 2), (2, 1)])
def test_param(a, b):
    assert add(a, b) == 3


@pytest.fixture
def broken():
    raise RuntimeError("fixture boom")


def test_uses_broken_fixture(broken):
    pass


@pytest.mark.skip(reason="not today")
def test_skipped():
    pass


def test_m():
    pass


class TestThings:
    def test_m(self):
        assert {"a": 1}["a"] == 2, "mismatch"


def helper():
    raise ValueError("deep")


def test_deep():
    helper()
'''


def line_of(source: str, needle: str) -> int:
    """1-based line of the first line of `source` containing `needle`."""
    return next(i for i, line in enumerate(source.splitlines(), 1) if needle in line)


def run_pytest_junit(repo: Path, family: str) -> bytes:
    report = repo / f"junit-{family}.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", f"junit_family={family}",
         f"--junitxml={report}", "tests"],
        cwd=repo, env={"PATH": "/usr/bin:/bin", "HOME": str(repo), "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True, check=False, timeout=120,
    )  # fmt: skip
    return report.read_bytes()


@pytest.fixture(scope="module")
def sample_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("repo")
    (repo / "calc.py").write_text(CALC)
    (repo / "tests").mkdir()
    (repo / "tests" / "test_calc.py").write_text(TEST_CALC)
    return repo


@pytest.fixture(scope="module", params=["xunit1", "xunit2"])
def family(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def reports(sample_repo: Path) -> dict[str, bytes]:
    return {family: run_pytest_junit(sample_repo, family) for family in ("xunit1", "xunit2")}


def by_id(cases: list[TestCase]) -> dict[str, TestCase]:
    return {case.id: case for case in cases}


# ----------------------------------------------------------------------------- pytest's reports


def test_counts_are_the_same_in_both_families(reports: dict[str, bytes], family: str) -> None:
    counts = summarise(parse_junit(reports[family]))
    assert (counts.passed, counts.failed, counts.errors, counts.skipped, counts.total) == (3, 3, 1, 1, 8)
    assert counts.duration_s >= 0


def test_test_ids_and_statuses(reports: dict[str, bytes], family: str) -> None:
    cases = by_id(parse_junit(reports[family]))
    assert cases["tests.test_calc.test_add"].status == "failed"
    assert cases["tests.test_calc.test_param[1-2]"].status == "passed"
    assert cases["tests.test_calc.test_param[2-1]"].status == "passed"
    assert cases["tests.test_calc.test_uses_broken_fixture"].status == "error"
    assert cases["tests.test_calc.test_skipped"].status == "skipped"
    assert cases["tests.test_calc.TestThings.test_m"].status == "failed"
    assert "fixture boom" in cases["tests.test_calc.test_uses_broken_fixture"].message


def test_xunit1_line_attributes_become_one_based(reports: dict[str, bytes]) -> None:
    cases = by_id(parse_junit(reports["xunit1"]))
    add = cases["tests.test_calc.test_add"]
    assert (add.file, add.line) == ("tests/test_calc.py", line_of(TEST_CALC, "def test_add"))
    assert cases["tests.test_calc.test_m"].line == line_of(TEST_CALC, "def test_m")


def test_xunit2_has_no_file_or_line(reports: dict[str, bytes]) -> None:
    case = by_id(parse_junit(reports["xunit2"]))["tests.test_calc.test_add"]
    assert (case.file, case.line) == (None, None)


def test_failures_point_at_the_failing_line(sample_repo: Path, reports: dict[str, bytes], family: str) -> None:
    located = {case.id: loc for case, loc in located_failures(parse_junit(reports[family]), sample_repo)}
    test_file = "tests/test_calc.py"
    assert located["tests.test_calc.test_add"] == Location(test_file, line_of(TEST_CALC, "assert add(1, 2) == 4"))
    assert located["tests.test_calc.TestThings.test_m"] == Location(test_file, line_of(TEST_CALC, '"mismatch"'))
    fixture_line = line_of(TEST_CALC, "fixture boom")
    assert located["tests.test_calc.test_uses_broken_fixture"] == Location(test_file, fixture_line)
    # the deepest frame inside the repository: the helper that raised
    assert located["tests.test_calc.test_deep"] == Location(test_file, line_of(TEST_CALC, 'raise ValueError("deep")'))


def test_findings_from_a_real_report(sample_repo: Path, reports: dict[str, bytes], family: str) -> None:
    findings = {f.title: f for f in failure_findings(parse_junit(reports[family]), sample_repo)}
    assert set(findings) == {
        "tests.test_calc.test_add",
        "tests.test_calc.test_uses_broken_fixture",
        "tests.test_calc.TestThings.test_m",
        "tests.test_calc.test_deep",
    }
    add = findings["tests.test_calc.test_add"]
    assert (add.level, add.rule, add.path) == ("failure", "test-failure", "tests/test_calc.py")
    assert add.start_line == add.end_line == line_of(TEST_CALC, "assert add(1, 2) == 4")
    assert add.message.startswith("assert 3 == 4")
    assert "tests/test_calc.py:6: AssertionError" in add.message
    assert findings["tests.test_calc.test_uses_broken_fixture"].rule == "test-error"


def test_collection_error_is_located_from_its_traceback(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_broken.py").write_text("import os\nimport no_such_module_here\n")
    cases = parse_junit(run_pytest_junit(tmp_path, "xunit1"))
    assert [case.status for case in cases] == ["error"]
    assert locate_failure(cases[0], tmp_path) == Location("tests/test_broken.py", 2)


# ---------------------------------------------------------------------- locating, case by case


def case(**fields: object) -> TestCase:
    defaults: dict[str, object] = {"classname": "tests.test_calc", "name": "test_add", "status": "failed"}
    return TestCase(**{**defaults, **fields})  # type: ignore[arg-type]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_calc.py").write_text(TEST_CALC)
    (tmp_path / "node_modules" / "lib").mkdir(parents=True)
    (tmp_path / "node_modules" / "lib" / "index.js").write_text("x\n" * 20)
    return tmp_path


def test_python_traceback_with_an_absolute_path(repo: Path) -> None:
    details = (
        "Traceback (most recent call last):\n"
        f'  File "{repo}/tests/test_calc.py", line 6, in test_add\n'
        '  File "/usr/lib/python3.11/unittest/case.py", line 873, in assertEqual\n'
        "AssertionError: 3 != 4"
    )
    assert locate_failure(case(details=details), repo) == Location("tests/test_calc.py", 6)


def test_paths_outside_the_repository_are_ignored(repo: Path) -> None:
    details = '/usr/lib/python3.11/foo.py:12: in bar\nFile "/etc/passwd", line 1\n../outside.py:3: Error'
    loc = locate_failure(case(details=details, file="tests/test_calc.py", line=8), repo)
    assert loc == Location("tests/test_calc.py", 8)  # fell back to the attributes


def test_dependency_directories_inside_the_repository_are_ignored(repo: Path) -> None:
    details = f"Error: boom\n    at thing ({repo}/node_modules/lib/index.js:3:9)\n"
    definition = Location("tests/test_calc.py", line_of(TEST_CALC, "def test_add"))
    assert locate_failure(case(details=details), repo) == definition


def test_attribute_file_without_line_finds_the_definition(repo: Path) -> None:
    loc = locate_failure(case(name="test_param[2-1]", file="tests/test_calc.py"), repo)
    assert loc == Location("tests/test_calc.py", line_of(TEST_CALC, "def test_param"))


def test_test_id_maps_to_module_and_def(repo: Path) -> None:
    definition = Location("tests/test_calc.py", line_of(TEST_CALC, "def test_add"))
    assert locate_failure(case(name="test_add"), repo) == definition


def test_test_id_with_a_class_finds_the_method_in_that_class(repo: Path) -> None:
    loc = locate_failure(case(classname="tests.test_calc.TestThings", name="test_m"), repo)
    assert loc == Location("tests/test_calc.py", line_of(TEST_CALC, "def test_m(self)"))
    loc = locate_failure(case(classname="tests.test_calc", name="test_m"), repo)
    assert loc == Location("tests/test_calc.py", line_of(TEST_CALC, "def test_m():"))


def test_relative_paths_of_a_subdirectory_run_match_by_suffix(tmp_path: Path) -> None:
    (tmp_path / "backend" / "tests").mkdir(parents=True)
    (tmp_path / "backend" / "tests" / "test_calc.py").write_text(TEST_CALC)
    loc = locate_failure(case(details="tests/test_calc.py:6: AssertionError"), tmp_path)
    assert loc == Location("backend/tests/test_calc.py", 6)


def test_unlocatable_failures_have_no_finding(tmp_path: Path) -> None:
    cases = [case(classname="somewhere.else", name="test_x", details="boom")]
    assert located_failures(cases, tmp_path) == [(cases[0], None)]
    assert failure_findings(cases, tmp_path) == []


def test_repo_files_rejects_escapes_through_symlinks(tmp_path: Path) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text("x = 1\n")
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "link.py").symlink_to(outside)
    assert RepoFiles(tmp_path / "repo").relative("link.py") is None


# --------------------------------------------------------------------- Surefire and jest-junit

SUREFIRE = b"""<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="com.example.CalcTest" tests="4" failures="1" errors="1" skipped="1" time="0.061">
    <properties><property name="java.version" value="21"/></properties>
    <testcase name="addsNumbers" classname="com.example.CalcTest" time="0.012">
      <failure message="expected: &lt;4&gt; but was: &lt;3&gt;" type="org.opentest4j.AssertionFailedError"><![CDATA[
org.opentest4j.AssertionFailedError: expected: <4> but was: <3>
\tat org.junit.jupiter.api.AssertionUtils.fail(AssertionUtils.java:151)
\tat com.example.CalcTest.addsNumbers(CalcTest.java:12)
\tat java.base/java.lang.reflect.Method.invoke(Method.java:580)
]]></failure>
      <system-out><![CDATA[computing 1 + 2
]]></system-out>
    </testcase>
    <testcase name="divides" classname="com.example.CalcTest" time="0.004">
      <error message="/ by zero" type="java.lang.ArithmeticException">java.lang.ArithmeticException: / by zero
\tat com.example.Calc.divide(Calc.java:9)
\tat com.example.CalcTest.divides(CalcTest.java:18)
</error>
    </testcase>
    <testcase name="subtracts" classname="com.example.CalcTest" time="0.002"/>
    <testcase name="later" classname="com.example.CalcTest" time="0"><skipped/></testcase>
  </testsuite>
  <testsuites name="nested">
    <testsuite name="com.example.MoreTest" tests="1" time="0.01">
      <testcase name="more" classname="com.example.MoreTest" time="0.010"/>
    </testsuite>
  </testsuites>
</testsuites>
"""

JEST = b"""<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="jest tests" tests="2" failures="1" errors="0" time="1.2">
  <testsuite name="calc" errors="0" failures="1" skipped="0" tests="2" time="1.2">
    <testcase classname="calc adds" name="calc adds" time="0.004">
      <failure>Error: expect(received).toBe(expected)

Expected: 4
Received: 3
    at Object.toBe (REPO/src/calc.test.js:5:17)
    at Promise.then.completed (REPO/node_modules/jest-circus/build/utils.js:298:28)</failure>
    </testcase>
    <testcase classname="calc subtracts" name="calc subtracts" time="0.001"/>
  </testsuite>
</testsuites>
"""


@pytest.fixture
def java_repo(tmp_path: Path) -> Path:
    for rel in ("src/main/java/com/example/Calc.java", "src/test/java/com/example/CalcTest.java"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("class X {}\n" * 30)
    return tmp_path


def test_surefire_counts_include_nested_suites() -> None:
    counts = summarise(parse_junit(SUREFIRE))
    assert (counts.passed, counts.failed, counts.errors, counts.skipped, counts.total) == (2, 1, 1, 1, 5)
    assert counts.duration_s == pytest.approx(0.028)


def test_surefire_case_fields() -> None:
    cases = by_id(parse_junit(SUREFIRE))
    add = cases["com.example.CalcTest.addsNumbers"]
    assert add.message == "expected: <4> but was: <3>"
    assert add.kind == "org.opentest4j.AssertionFailedError"
    assert "computing 1 + 2" in add.output
    assert add.file is None and add.line is None


def test_surefire_frames_map_to_source_files(java_repo: Path) -> None:
    located = {case.id: loc for case, loc in located_failures(parse_junit(SUREFIRE), java_repo)}
    assert located["com.example.CalcTest.addsNumbers"] == Location("src/test/java/com/example/CalcTest.java", 12)
    # innermost frame first: the production code that threw
    assert located["com.example.CalcTest.divides"] == Location("src/main/java/com/example/Calc.java", 9)


def test_jest_junit_frames(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "calc.test.js").write_text("test('adds', () => {\n" * 10)
    (tmp_path / "node_modules" / "jest-circus" / "build").mkdir(parents=True)
    (tmp_path / "node_modules" / "jest-circus" / "build" / "utils.js").write_text("x\n" * 400)
    cases = parse_junit(JEST.replace(b"REPO", str(tmp_path).encode()))
    assert [c.id for c in cases] == ["calc adds", "calc subtracts"]
    (finding,) = failure_findings(cases, tmp_path)
    assert (finding.path, finding.start_line) == ("src/calc.test.js", 5)
    assert finding.message.startswith("Error: expect(received).toBe(expected)")


def test_a_bare_testsuite_root_is_accepted() -> None:
    data = b'<testsuite name="pytest"><testcase classname="a" name="b" line="0"/></testsuite>'
    (only,) = parse_junit(data)
    assert (only.status, only.line) == ("passed", 1)


def test_line_base_can_be_forced() -> None:
    data = b'<testsuite name="phpunit"><testcase classname="a" name="b" file="a.php" line="7"/></testsuite>'
    assert parse_junit(data)[0].line == 7
    assert parse_junit(data, zero_based_lines=True)[0].line == 8


# ------------------------------------------------------------------------------ bad documents


def test_coverage_xml_is_not_junit() -> None:
    with pytest.raises(NotJUnitError):
        parse_junit(b'<?xml version="1.0" ?><coverage version="7"></coverage>')


def test_malformed_xml() -> None:
    with pytest.raises(JUnitError, match="not well-formed"):
        parse_junit(b"<testsuites><testsuite>")


def test_entity_declarations_are_refused() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaa">]><testsuites>&a;</testsuites>'
    with pytest.raises(JUnitError, match="entities"):
        parse_junit(bomb)


def test_merge_keeps_every_case(reports: dict[str, bytes]) -> None:
    merged = merge_junit([reports["xunit1"], SUREFIRE])
    assert summarise(parse_junit(merged)).total == 8 + 5
    assert parse_junit(merged)[0].line is not None  # pytest's suite name survives: still 0-based


# --------------------------------------------------------------------------------- the texts


def test_tail_text_limits_lines_and_characters() -> None:
    text = "\n".join(f"line {i}" for i in range(1000))
    tail = tail_text(text)
    assert len(tail.splitlines()) <= TAIL_MAX_LINES + 1 and len(tail) <= TAIL_MAX_CHARS
    assert tail.endswith("line 999") and tail.startswith("…")
    wide = tail_text("x" * 10_000 + "\nend")
    assert len(wide) <= TAIL_MAX_CHARS and wide.endswith("end")
    assert tail_text("short\n") == "short"


def test_failure_message_is_bounded() -> None:
    huge = case(message="m" * 10_000, details="\n".join("d" * 500 for _ in range(200)), output="o\n" * 100)
    message = failure_message(huge)
    assert len(message) <= 2000 + 2 + TAIL_MAX_CHARS
    assert message.endswith("o")


def test_failure_message_falls_back_to_details() -> None:
    assert failure_message(case(details="\nBoom happened\n  at x")).startswith("Boom happened")


def test_locating_is_quick_on_huge_unstructured_output(repo: Path) -> None:
    blob = ("a" * 200_000 + " " + "b.c" * 100_000 + "\n") * 3
    started = time.monotonic()
    loc = locate_failure(case(details=blob + "tests/test_calc.py:6: AssertionError"), repo)
    assert loc == Location("tests/test_calc.py", 6)
    assert locate_failure(case(classname="nowhere", details=blob), repo) is None
    assert time.monotonic() - started < 2


def test_line_base_is_decided_per_suite_in_merged_reports(reports: dict[str, bytes]) -> None:
    other = b'<testsuite name="phpunit"><testcase classname="a" name="b" file="a.php" line="7"/></testsuite>'
    cases = by_id(parse_junit(merge_junit([reports["xunit1"], other])))
    assert cases["tests.test_calc.test_add"].line == line_of(TEST_CALC, "def test_add")
    assert cases["a.b"].line == 7
