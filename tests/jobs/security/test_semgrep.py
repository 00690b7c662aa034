"""semgrep: its JSON output (a real captured run of the shipped rules) and, when semgrep is installed, a real run.

The sample files in fixtures/semgrep mark every line a rule must find with `bad: <rule id>`; the
other lines must not be found. Set AQE_TEST_SEMGREP to a semgrep executable (e.g. one installed in a
separate venv: `python3 -m venv /tmp/semgrep-venv && /tmp/semgrep-venv/bin/pip install semgrep`) when
it is not on PATH.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from jobs.security.semgrep import (
    RULES_DIR,
    SemgrepError,
    find_semgrep,
    parse_semgrep,
    rule_id,
    run_semgrep,
    semgrep_argv,
    shipped_rule_ids,
    shipped_rules,
)

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLES = FIXTURES / "semgrep"
CAPTURED = FIXTURES / "semgrep-output.json"  # semgrep 1.185.0 over the samples plus a file with a syntax error


def expected_findings() -> set[tuple[str, int, str]]:
    expected = set()
    for sample in sorted(SAMPLES.iterdir()):
        for number, line in enumerate(sample.read_text().splitlines(), start=1):
            if match := re.search(r"bad: (\S+)", line):
                expected.add((sample.name, number, match.group(1)))
    return expected


def semgrep_executable() -> Path | None:
    explicit = os.environ.get("AQE_TEST_SEMGREP")
    return Path(explicit) if explicit else find_semgrep()


def test_the_shipped_rules_have_ids_languages_severities_and_messages() -> None:
    import yaml

    ids = shipped_rule_ids()
    assert {"aqe.js.eval-dynamic", "aqe.js.child-process-exec-dynamic", "aqe.js.html-injection",
            "aqe.js.sql-string-building", "aqe.go.exec-shell-dynamic", "aqe.go.sql-string-building",
            "aqe.go.tls-insecure-skip-verify"} == ids  # fmt: skip
    for rule_file in RULES_DIR.glob("*.yml"):
        for rule in yaml.safe_load(rule_file.read_text())["rules"]:
            assert rule["severity"] in ("ERROR", "WARNING", "INFO")
            assert rule["languages"] and rule["message"] and rule["metadata"]["cwe"].startswith("CWE-")
    assert {rule for _, _, rule in expected_findings()} == ids  # every rule has a sample


def test_the_captured_output_gives_one_issue_per_rule_and_place() -> None:
    report = parse_semgrep(CAPTURED.read_bytes(), shipped_rules())
    assert {(i.path, i.start_line, i.rule) for i in report.issues} == expected_findings()
    assert len(report.issues) == len(expected_findings())  # semgrep's repeats of one match are dropped
    assert report.errors == ["broken.js: PartialParsing"]  # its message quotes the code: not kept


def test_a_captured_issue_in_full() -> None:
    issue = next(i for i in parse_semgrep(CAPTURED.read_bytes(), shipped_rules()).issues
                 if i.rule == "aqe.go.exec-shell-dynamic")
    assert (issue.scanner, issue.severity, issue.path, issue.start_line, issue.end_line) == (
        "sast", "high", "main.go", 14, 14)
    assert issue.title == 'aqe.go.exec-shell-dynamic: A shell ("sh -c") runs a command built from a dynamic value'
    assert issue.message.endswith("(semgrep aqe.go.exec-shell-dynamic, severity high, CWE-78)")
    assert issue.aliases == ("CWE-78",)


def test_the_message_is_the_rule_files_never_semgreps_with_matched_code() -> None:
    """semgrep replaces a rule message's `$X` with the matched code: that copy of the message is never kept."""
    result = {"check_id": "work.main.jobs.security.rules.aqe.js.eval-dynamic", "path": "app.js",
              "start": {"line": 6}, "end": {"line": 6},
              "extra": {"message": "eval of token = 'sk-'quoted'-5e1f'", "severity": "WARNING",
                        "metadata": {"cwe": "CWE-95: Eval Injection"}, "lines": "eval(token)"}}
    foreign = {**result, "path": "other.js", "check_id": "someone.elses.rule"}
    issue, other = parse_semgrep(json.dumps({"results": [result, foreign]}), shipped_rules()).issues
    assert issue.title == "aqe.js.eval-dynamic: Code is evaluated from a dynamic value (eval or new Function)"
    assert issue.message.startswith("Code is evaluated from a dynamic value")
    assert other.message.startswith("Matched by the semgrep rule someone.elses.rule.")
    for shown in (issue.title, issue.message, other.title, other.message):
        assert "sk-" not in shown and "quoted" not in shown and "5e1f" not in shown


@pytest.mark.parametrize("text", [b"", b"not json", b"[]", b'{"errors": []}'])
def test_output_that_is_not_a_report_is_an_error(text: bytes) -> None:
    with pytest.raises(SemgrepError):
        parse_semgrep(text, shipped_rules())


def test_rule_ids_lose_the_directory_prefix() -> None:
    known = shipped_rule_ids()
    assert rule_id("work.aqe.jobs.security.rules.aqe.js.eval-dynamic", known) == "aqe.js.eval-dynamic"
    assert rule_id("aqe.go.tls-insecure-skip-verify", known) == "aqe.go.tls-insecure-skip-verify"
    assert rule_id("someone.elses.rule", known) == "someone.elses.rule"


def test_semgrep_runs_offline_with_the_shipped_rules_only() -> None:
    argv = semgrep_argv(Path("/opt/semgrep"), RULES_DIR, Path("/tmp/out.json"), ["a.js"])
    assert argv[:3] == ["/opt/semgrep", "scan", "--config"] and argv[3] == str(RULES_DIR)
    assert "--metrics=off" in argv and "--disable-version-check" in argv and "--json" in argv
    assert argv[-2:] == ["--", "a.js"]


@pytest.mark.skipif(semgrep_executable() is None, reason="semgrep is not installed (optional extra)")
async def test_a_real_semgrep_run_finds_what_the_samples_mark(tmp_path: Path) -> None:
    semgrep = semgrep_executable()
    assert semgrep is not None
    root = tmp_path / "repo"
    shutil.copytree(SAMPLES, root)
    report = await run_semgrep(semgrep, root, sorted(p.name for p in root.iterdir()), tmp_path / "scratch")
    assert {(i.path, i.start_line, i.rule) for i in report.issues} == expected_findings()
    assert report.errors == []
