"""The report parsers, and the totals against coverage.py's own `coverage report` on real data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobs.coverage.reports import (
    CoverageReport,
    FileCoverage,
    Numbers,
    ReportError,
    detect_format,
    display_covered,
    merge_reports,
    parse_cobertura,
    parse_coverage_json,
    parse_jacoco,
    parse_lcov,
    parse_report,
    repo_path,
    resolve_paths,
)
from tests.jobs.coverage.coverage_samples import coverage, measure

# ------------------------------------------------------------------ agreement with coverage.py


@pytest.mark.parametrize("branch", [True, False], ids=["branch", "lines"])
def test_totals_equal_coverage_report(sample_project: Path, branch: bool) -> None:
    measure(sample_project, branch=branch)
    coverage(sample_project, "xml", "-o", "coverage.xml")
    coverage(sample_project, "json", "-o", "coverage.json")
    truth = json.loads((sample_project / "coverage.json").read_text())["totals"]

    for report in (
        parse_cobertura((sample_project / "coverage.xml").read_bytes()),
        parse_coverage_json((sample_project / "coverage.json").read_bytes()),
    ):
        totals = report.totals()
        assert report.has_branches is branch
        assert totals.pc_covered == truth["percent_covered"]  # the same float, bit for bit
        assert (totals.statements, totals.executed) == (truth["num_statements"], truth["covered_lines"])
        assert (totals.branches, totals.executed_branches) == (
            truth.get("num_branches", 0), truth.get("covered_branches", 0))  # fmt: skip
        for precision in (0, 1, 2, 4):
            shown = coverage(sample_project, "report", f"--precision={precision}", "--format=total").strip()
            assert display_covered(totals.pc_covered, precision) == shown
    assert 0 < truth["percent_covered"] < 100


def test_per_file_and_statement_figures_equal_coverage_json(sample_project: Path) -> None:
    measure(sample_project, branch=True)
    coverage(sample_project, "xml", "-o", "coverage.xml")
    coverage(sample_project, "json", "-o", "coverage.json")
    files = json.loads((sample_project / "coverage.json").read_text())["files"]
    report = parse_cobertura((sample_project / "coverage.xml").read_bytes())
    assert set(report.files) == set(files)
    for path, entry in files.items():
        numbers, summary = report.files[path].numbers(), entry["summary"]
        assert numbers.pc_covered == summary["percent_covered"]
        assert numbers.pc_statements == summary["percent_statements_covered"]
        assert numbers.pc_branches == summary["percent_branches_covered"]
        assert sorted(n for n, h in report.files[path].lines.items() if h == 0) == entry["missing_lines"]


def test_excluded_lines_are_not_statements(sample_project: Path) -> None:
    measure(sample_project, branch=True)
    coverage(sample_project, "json", "-o", "coverage.json")
    report = parse_coverage_json((sample_project / "coverage.json").read_bytes())
    shapes = report.files["pkg/shapes.py"]
    assert 25 not in shapes.lines and 26 not in shapes.lines  # the `# pragma: no cover` function
    assert shapes.branches[14] == (1, 2)  # `if len(label) > 100` only ever false


def test_lcov_from_coverage_py_gives_the_same_lines(sample_project: Path) -> None:
    measure(sample_project, branch=True)
    coverage(sample_project, "xml", "-o", "coverage.xml")
    coverage(sample_project, "lcov", "-o", "coverage.info")
    xml = parse_cobertura((sample_project / "coverage.xml").read_bytes())
    lcov = parse_report((sample_project / "coverage.info").read_bytes(), "coverage.info")
    assert lcov.format == "lcov"
    assert {p: {n: h > 0 for n, h in f.lines.items()} for p, f in lcov.files.items() if f.lines} == {
        p: {n: h > 0 for n, h in f.lines.items()} for p, f in xml.files.items() if f.lines
    }
    assert lcov.totals().pc_statements == xml.totals().pc_statements
    assert lcov.totals().pc_covered == xml.totals().pc_covered  # coverage.py writes a BRDA per exit


# ------------------------------------------------------------------------------------ Cobertura

COBERTURA = b"""<?xml version="1.0" ?>
<coverage version="7.0" line-rate="0.5" branch-rate="0.5" branches-valid="4">
  <sources>
    <source>/ci/work/repo/src</source>
    <source></source>
  </sources>
  <packages><package name="app"><classes>
    <class name="a.py" filename="app/a.py">
      <methods><method name="f" signature=""><lines><line number="4" hits="0"/><line number="77" hits="1"/></lines>
      </method></methods>
      <lines>
        <line number="1" hits="3"/>
        <line number="2" hits="0" branch="true" condition-coverage="0% (0/2)" missing-branches="3,5"/>
        <line number="4" hits="1" branch="true" condition-coverage="50% (1/2)"/>
        <line number="5" hits="bogus"/>
        <line number="6" hits="-1"/>
        <line number="0" hits="1"/>
      </lines>
    </class>
    <class name="a.py$Inner" filename="app/a.py">
      <lines><line number="9" hits="2"/></lines>
    </class>
    <class name="noname"><lines><line number="1" hits="1"/></lines></class>
  </classes></package></packages>
</coverage>
"""


def test_cobertura_lines_branches_and_sources() -> None:
    report = parse_cobertura(COBERTURA)
    assert report.sources == ["/ci/work/repo/src"]
    assert report.has_branches
    a = report.files["app/a.py"]
    assert a.lines == {1: 3, 2: 0, 4: 1, 5: 0, 6: 0, 9: 2}  # not the lines repeated under <methods>
    assert a.branches == {2: (0, 2), 4: (1, 2)}
    assert report.totals() == Numbers(statements=6, executed=3, branches=4, executed_branches=1, files=1)
    assert report.totals().pc_covered == 100.0 * 4 / 10


@pytest.mark.parametrize("data", [b"<coverage", b"<nope/>", b'<!DOCTYPE x [<!ENTITY a "b">]><coverage/>'])
def test_cobertura_rejects_bad_documents(data: bytes) -> None:
    with pytest.raises(ReportError):
        parse_cobertura(data)


def test_sources_resolve_to_repository_paths() -> None:
    report = parse_cobertura(COBERTURA)
    on_disk = {"src/app/a.py"}
    resolved = resolve_paths(report, "/checkout", exists=on_disk.__contains__)
    assert list(resolved.files) == ["src/app/a.py"]  # found under a trailing part of a foreign source
    assert list(resolve_paths(report, "/ci/work/repo").files) == ["src/app/a.py"]
    assert list(resolve_paths(report, "/elsewhere").files) == ["app/a.py"]


def test_repo_path_candidates() -> None:
    root = "/r"
    assert repo_path("/r/pkg/m.py", [], root) == "pkg/m.py"
    assert repo_path("/other/pkg/m.py", [], root) == "/other/pkg/m.py"
    assert repo_path("m.py", ["/r/src", "/r"], root, exists={"m.py"}.__contains__) == "m.py"
    assert repo_path("m.py", ["/r/src", "/r"], root) == "src/m.py"
    assert repo_path("./a\\b.py", [], root) == "a/b.py"
    assert repo_path("../up.py", ["/r"], root) == "../up.py"  # never outside the root


# ----------------------------------------------------------------------------------------- LCOV

LCOV = """\
TN:
SF:src/a.js
FN:1,f
DA:1,1
DA:2,0
DA:3,5,abcdef
BRDA:2,0,0,-
BRDA:2,0,1,-
BRDA:3,0,0,4
BRDA:3,0,1,0
LF:3
LH:2
end_of_record
SF:./src/b.js
DA:1,0
end_of_record
SF:src/a.js
DA:2,1
end_of_record
"""


def test_lcov_records() -> None:
    report = parse_lcov(LCOV)
    assert report.files["src/a.js"].lines == {1: 1, 2: 1, 3: 5}  # the second record adds hits
    assert report.files["src/a.js"].branches == {2: (0, 2), 3: (1, 2)}
    assert report.files["src/b.js"].lines == {1: 0}
    assert report.has_branches


def test_lcov_truncated_record_is_kept() -> None:
    assert parse_lcov("SF:x.c\nDA:1,1\nDA:2,0\n").files["x.c"].lines == {1: 1, 2: 0}


# ------------------------------------------------------------------------------ coverage.py JSON


def test_coverage_json_without_branches() -> None:
    document = {"meta": {"branch_coverage": False},
                "files": {"m.py": {"executed_lines": [1, 2], "missing_lines": [4], "excluded_lines": [6]}}}  # fmt: skip
    report = parse_coverage_json(json.dumps(document).encode())
    assert report.files["m.py"].lines == {1: 1, 2: 1, 4: 0}
    assert not report.has_branches and report.files["m.py"].branches == {}


def test_coverage_json_branches_from_arcs() -> None:
    entry = {"executed_lines": [1, 2, 3], "missing_lines": [5], "excluded_lines": [],
             "executed_branches": [[2, 3], [3, -1]], "missing_branches": [[2, 5], [3, 4]]}  # fmt: skip
    report = parse_coverage_json(json.dumps({"meta": {"branch_coverage": True}, "files": {"m.py": entry}}).encode())
    assert report.files["m.py"].branches == {2: (1, 2), 3: (1, 2)}


@pytest.mark.parametrize("data", [b"{", b"[]", b'{"files": 3}'])
def test_coverage_json_rejects_other_json(data: bytes) -> None:
    with pytest.raises(ReportError):
        parse_coverage_json(data)


# --------------------------------------------------------------------------------------- JaCoCo

JACOCO = b"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<!DOCTYPE report PUBLIC "-//JACOCO//DTD Report 1.1//EN" "report.dtd">
<report name="demo">
  <package name="com/example">
    <class name="com/example/App" sourcefilename="App.java"/>
    <sourcefile name="App.java">
      <line nr="3" mi="3" ci="0" mb="0" cb="0"/>
      <line nr="5" mi="0" ci="4" mb="1" cb="1"/>
      <line nr="7" mi="0" ci="2" mb="0" cb="0"/>
      <line nr="8" mi="0" ci="0" mb="0" cb="0"/>
      <counter type="LINE" missed="1" covered="2"/>
    </sourcefile>
  </package>
</report>
"""


def test_jacoco_lines_and_branches() -> None:
    report = parse_report(JACOCO, "jacoco.xml")
    assert report.format == "jacoco"
    app = report.files["com/example/App.java"]
    assert app.lines == {3: 0, 5: 4, 7: 2}
    assert app.branches == {5: (1, 2)}
    assert report.totals() == Numbers(3, 2, 2, 1, 1)
    assert parse_jacoco(JACOCO).files.keys() == report.files.keys()


# ------------------------------------------------------------------------------- model and misc


def test_detect_format() -> None:
    assert detect_format(COBERTURA) == "cobertura"
    assert detect_format(JACOCO) == "jacoco"
    assert detect_format(b'  {"files": {}}') == "coverage.py-json"
    assert detect_format(LCOV.encode()) == "lcov"
    assert detect_format(b"DA:1,1\n", "app.lcov") == "lcov"
    with pytest.raises(ReportError):
        detect_format(b"hello")


def test_display_covered_never_rounds_to_0_or_100() -> None:
    assert display_covered(99.9) == "99"
    assert display_covered(0.01) == "1"
    assert display_covered(99.99, 1) == "99.9"
    assert display_covered(100.0, 1) == "100.0"
    assert display_covered(0.0) == "0"
    assert display_covered(66.666, 2) == "66.67"


def test_empty_report_is_fully_covered_like_coverage_py() -> None:
    assert CoverageReport().totals().pc_covered == 100.0


def test_merge_reports_adds_hits() -> None:
    one = CoverageReport(files={"a.py": FileCoverage("a.py", {1: 0, 2: 1}, {1: (0, 2)})}, has_branches=True)
    two = CoverageReport(files={"a.py": FileCoverage("a.py", {1: 2}, {1: (1, 2)}), "b.py": FileCoverage("b.py", {1: 0})})
    merged = merge_reports([one, two])
    assert merged.files["a.py"].lines == {1: 2, 2: 1}
    assert merged.files["a.py"].branches == {1: (1, 2)}
    assert set(merged.files) == {"a.py", "b.py"} and merged.has_branches
    assert one.files["a.py"].lines == {1: 0, 2: 1}  # the inputs are left alone
