"""bandit as a sandboxed subprocess over real files, and the reading of its JSON report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobs.security.sast import BanditError, bandit_issue, issue_text, parse_bandit, run_bandit

VULNERABLE = '''\
import subprocess

DB_PASSWORD = "correct-horse-battery-staple-42"


def run(cmd):
    return subprocess.run(cmd, shell=True)


def check(value):
    exec(value)  # nosec B102
'''


def write(root: Path, files: dict[str, str]) -> None:
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)


async def test_bandit_reports_shell_injection_and_hides_the_password(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write(root, {"app/tasks.py": VULNERABLE, "app/broken.py": "def broken(:\n"})
    report = await run_bandit(root, ["app/tasks.py", "app/broken.py"], tmp_path / "scratch")
    by_rule = {issue.rule: issue for issue in report.issues}
    assert sorted(by_rule) == ["B105", "B404", "B602"]
    shell = by_rule["B602"]
    assert (shell.path, shell.start_line, shell.end_line, shell.severity) == ("app/tasks.py", 7, 7, "high")
    assert shell.title == "B602: subprocess call with shell=True"
    assert shell.message.startswith("subprocess call with shell=True identified, security issue. (bandit B602 "
                                    "subprocess_popen_with_shell_equals_true, severity high, confidence high, CWE-78).")
    assert by_rule["B105"].title == "B105: Possible hardcoded password assigned to a variable; the value is not shown"
    assert "horse" not in json.dumps([issue.message + issue.title for issue in report.issues])
    assert report.nosec == 1  # the exec() line
    assert report.errors == ["app/broken.py: syntax error while parsing AST from file"]


async def test_a_bandit_module_in_the_repository_is_not_imported(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    marker = tmp_path / "pwned"
    write(root, {"bandit.py": f"open({str(marker)!r}, 'w').write('ran')\n", "main.py": "print('hi')\n"})
    report = await run_bandit(root, ["main.py"], tmp_path / "scratch")
    assert report.issues == [] and report.errors == []
    assert not marker.exists()


async def test_bandit_not_writing_a_report_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    with pytest.raises(BanditError, match="exited with 1 without writing a report"):
        await run_bandit(tmp_path / "repo", ["x.py"], tmp_path / "scratch", python="/bin/false")


@pytest.mark.parametrize("text", [b"", b"<html>", b"[]", b'{"errors": []}'])
def test_a_report_that_is_not_bandit_json_is_an_error(text: bytes) -> None:
    with pytest.raises(BanditError):
        parse_bandit(text)


def test_results_without_a_place_are_skipped_and_odd_fields_tolerated() -> None:
    report = parse_bandit(json.dumps({"results": [
        {"test_id": "B101"},  # no file or line
        {"test_id": "B307", "filename": "./a.py", "line_number": 3, "issue_severity": "weird",
         "issue_cwe": "nope", "line_range": None, "issue_text": "Use of possibly insecure function."},
    ], "metrics": "none"}))
    [issue] = report.issues
    assert (issue.rule, issue.path, issue.start_line, issue.end_line, issue.severity) == (
        "B307", "a.py", 3, 3, "medium")


def test_password_tests_never_quote_the_value() -> None:
    assert issue_text("B106", "Possible hardcoded password: 'hunter2'") == (
        "Possible hardcoded password passed as an argument; the value is not shown.")
    for test_id in ("B105", "B106", "B107"):  # a value with quotes of its own: no part of it is kept
        text = issue_text(test_id, "Possible hardcoded password: 'pw-'quoted'-tail-91f'")
        assert "the value is not shown" in text
        assert not any(part in text for part in ("pw-", "quoted", "tail", "91f", "'")), text
    assert issue_text("B602", "subprocess call with shell=True identified, security issue.") == (
        "subprocess call with shell=True identified, security issue.")


async def test_a_password_with_quotes_in_it_is_not_shown(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write(root, {"app/settings.py": 'API_TOKEN = "head-\'mid7c\'-tail4e2"\n\n\ndef connect(password="def-\'x9\'-q8"):\n'
                                    '    return login(password="arg-\'y7\'-w6")\n'})
    report = await run_bandit(root, ["app/settings.py"], tmp_path / "scratch")
    assert sorted(issue.rule for issue in report.issues) == ["B105", "B106", "B107"]
    shown = json.dumps([(issue.title, issue.message, issue.aliases) for issue in report.issues])
    for part in ("head-", "mid7c", "tail4e2", "def-", "x9", "q8", "arg-", "y7", "w6"):
        assert part not in shown, part


def test_a_multi_line_result_spans_its_line_range() -> None:
    issue = bandit_issue({"test_id": "B110", "filename": "./x.py", "line_number": 77, "line_range": [77, 78],
                          "issue_severity": "LOW", "issue_confidence": "HIGH",
                          "issue_text": "Try, Except, Pass detected.",
                          "issue_cwe": {"id": 703, "link": "https://cwe.mitre.org/data/definitions/703.html"},
                          "code": "77  except Exception:\n78      pass\n", "test_name": "try_except_pass"})
    assert issue is not None
    assert (issue.start_line, issue.end_line, issue.severity, issue.title) == (77, 78, "low", "B110: Try, Except, Pass")
    assert "except Exception" not in issue.message  # bandit's code excerpt is never kept
