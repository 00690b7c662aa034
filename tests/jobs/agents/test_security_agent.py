"""The security agent on real git repositories in tmp_path with planted issues, against a fake OSV on loopback.

Planted: an AWS access key in a Python file, `subprocess.run(cmd, shell=True)`, `requests==2.19.0` in
requirements.txt, lodash 4.17.15 in package-lock.json and golang.org/x/text v0.3.2 in go.sum.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from jobs.agents.base import AgentOptions, Workspace
from jobs.agents.security import SecurityAgent
from jobs.coverage.diff import changed_lines_between
from jobs.forges.github.reporter import annotation_batches
from jobs.model import AgentResult, JobRecord, RunRequest
from jobs.reporting import render
from jobs.security.semgrep import find_semgrep
from tests.fakes.osv import FakeOSV, load_records

OSV_RECORDS = Path(__file__).parents[1] / "security" / "fixtures" / "osv"
AWS_KEY = "AKIAQX7RWT5ZU3IOP9LB"
AWS_KEY_TAIL = AWS_KEY[-10:]  # a distinctive part of it

BASE_FILES = {
    "app/__init__.py": "",
    "app/tasks.py": (
        'import subprocess\n\n\ndef archive(name):\n    return subprocess.run(["tar", "czf", name, "data"])\n'
    ),
    "requirements.txt": "click==8.1.7\n",
    "tests/test_tasks.py": "def test_archive():\n    assert True\n",
}
HEAD_FILES = {
    "app/settings.py": f'import os\n\nAWS_SECRET = "{AWS_KEY}"\nREGION = os.environ.get("REGION", "eu-west-1")\n',
    "app/tasks.py": (
        'import subprocess\n\n\ndef archive(name):\n    return subprocess.run(["tar", "czf", name, "data"])\n\n\n'
        "def run(cmd):\n    return subprocess.run(cmd, shell=True)\n"
    ),
    "requirements.txt": "click==8.1.7\nrequests==2.19.0\n",
    "web/package-lock.json": json.dumps({
        "name": "web", "lockfileVersion": 3, "requires": True,
        "packages": {"": {"name": "web"}, "node_modules/lodash": {"version": "4.17.15"}},
    }, indent=2),  # fmt: skip
    "go.sum": "golang.org/x/text v0.3.2 h1:tW2bmiBqwgJj/UpqtC8EpXEZVYOwU0yG4iWbprSVAcs=\n"
              "golang.org/x/text v0.3.2/go.mod h1:bEr9sfX3Q8Zfm5fL9x+3itogRgK3+ptLWKqgva+5dAk=\n",
}


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args], cwd=root, check=True,
                          capture_output=True, text=True).stdout.strip()


def commit(root: Path, files: dict[str, str], message: str) -> str:
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)
    return git(root, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    commit(root, BASE_FILES, "base")
    commit(root, HEAD_FILES, "head")
    return root


@pytest.fixture
def osv() -> Iterator[FakeOSV]:
    with FakeOSV(load_records(OSV_RECORDS)) as server:
        yield server


def workspace(root: Path, osv_url: str, changed: dict[str, set[int]] | None = None) -> Workspace:
    return Workspace(root=root, scratch=root.parent / "scratch", head_sha=git(root, "rev-parse", "HEAD"),
                     changed_lines=changed, options=AgentOptions(osv_url=osv_url, http_timeout_s=5.0))


async def run(ws: Workspace, config: dict[str, Any] | None = None) -> AgentResult:
    async def progress(fraction: float, message: str) -> None:
        assert 0.0 <= fraction <= 1.0 and message

    agent = SecurityAgent(semgrep=lambda: None, osv_retries=1, osv_backoff_s=0.01)
    return await agent.run(ws, config, progress)


def places(result: AgentResult) -> list[tuple[str, str, int, str]]:
    return [(f.rule, f.path, f.start_line, f.level) for f in result.findings]


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), start=1) if needle in line)


async def test_planted_issues_fail_the_check_when_everything_is_new(repo: Path, osv: FakeOSV) -> None:
    result = await run(workspace(repo, osv.url))
    assert result.conclusion == "failure"
    assert result.title == "10 new security issues (4 high, 2 medium, 4 low)"
    assert places(result) == [
        ("AWSKeyDetector", "app/settings.py", 3, "failure"),
        ("B602", "app/tasks.py", 9, "failure"),
        ("GHSA-x84v-xcm2-53pg", "requirements.txt", 2, "failure"),
        ("GHSA-p6mc-m468-83gw", "web/package-lock.json", line_of(HEAD_FILES["web/package-lock.json"], "4.17.15"),
         "failure"),
        ("GHSA-5rcv-m4m3-hfh7", "go.sum", 1, "warning"),  # GitHub rates it MODERATE (its CVSS says 7.5)
        ("GHSA-j8r2-6x86-q33q", "requirements.txt", 2, "warning"),
        ("B105", "app/settings.py", 3, "notice"),
        ("B404", "app/tasks.py", 1, "notice"),
        ("B603", "app/tasks.py", 5, "notice"),
        ("B607", "app/tasks.py", 5, "notice"),
    ]
    assert result.metrics == {
        "new_critical": 0, "new_high": 4, "new_medium": 2, "new_low": 4, "new_total": 10, "existing_total": 0,
        "ignored": 0, "failing": 4, "findings_total": 10, "secrets": 1, "sast": 5, "dependency_vulns": 4,
        "packages_scanned": 4, "packages_unpinned": 0, "dependency_files": 3, "dependency_scan": "ok",
        "files_scanned": 7,
    }  # fmt: skip
    secret = result.findings[0]
    assert secret.title == "AWS Access Key"
    assert secret.message.startswith("AWS Access Key committed in app/settings.py line 3: remove it, rotate the key")
    requests = result.findings[2]
    assert requests.title == "GHSA-x84v-xcm2-53pg: requests 2.19.0 (fixed in 2.20.0)"
    assert "CVE-2018-18074" in requests.message and "PYSEC-2018-28" in requests.message  # one finding for both
    assert requests.raw_details == "https://osv.dev/vulnerability/GHSA-x84v-xcm2-53pg"


async def test_the_summary_tables_scanners_dependencies_and_new_findings(repo: Path, osv: FakeOSV) -> None:
    summary = (await run(workspace(repo, osv.url))).summary
    assert summary.startswith(
        "| Scanner | New | Existing | Ignored |\n| --- | --- | --- | ---: |\n"
        "| Secrets (detect-secrets) | **1 high** | 0 | 0 |\n"
        "| Code (bandit) | **1 high, 4 low** | 0 | 0 |\n"
        "| Dependencies (OSV) | **2 high, 2 medium** | 0 | 0 |\n\n"
        "**Dependency scan:** 4 packages from 3 files checked against the OSV database.\n\n"
        "### New findings\n\n| Severity | Rule | Where | Finding |\n| --- | --- | --- | --- |\n"
        "| ❌ high | `AWSKeyDetector` | `app/settings.py:3` | AWS Access Key |\n"
        "| ❌ high | `B602` | `app/tasks.py:9` | B602: subprocess call with shell=True |\n"
    )
    assert "| medium | `GHSA-j8r2-6x86-q33q` | `requirements.txt:2` | GHSA-j8r2-6x86-q33q: requests 2.19.0 (fixed " \
           "in 2.31.0) |" in summary
    assert summary.endswith("Findings of severity high or above on changed lines (for a dependency: its line in the "
                            "lock file) fail this check; set `security.fail_on`, `security.new_code_only` and ignores "
                            "(`ignore_paths`, `ignore_rules`, `# aqe: ignore[rule]`) in `.aqe.yml`.")


async def test_only_findings_on_changed_lines_are_new(repo: Path, osv: FakeOSV) -> None:
    changed = await changed_lines_between(repo, "HEAD~1", "HEAD")
    result = await run(workspace(repo, osv.url, changed))
    existing = [(f.rule, f.start_line, f.level) for f in result.findings
                if f.message.startswith("(not on a changed line) ")]
    assert existing == [("B404", 1, "notice"), ("B603", 5, "notice"), ("B607", 5, "notice")]  # in the base already
    assert (result.metrics["new_total"], result.metrics["existing_total"]) == (7, 3)
    assert result.conclusion == "failure"


async def test_an_unchanged_vulnerable_pin_is_counted_but_does_not_fail(repo: Path, osv: FakeOSV) -> None:
    commit(repo, {"README.md": "docs\n"}, "docs only")
    changed = await changed_lines_between(repo, "HEAD~1", "HEAD")
    assert changed == {"README.md": {1}}
    result = await run(workspace(repo, osv.url, changed))
    assert result.conclusion == "success"
    assert result.title == "No new security issues"
    metrics = result.metrics
    assert (metrics["new_total"], metrics["existing_total"], metrics["findings_total"]) == (0, 10, 10)
    assert {f.level for f in result.findings} == {"warning", "notice"}
    assert "| Dependencies (OSV) | 0 | 2 high, 2 medium | 0 |" in result.summary


async def test_a_version_bump_is_a_change_of_the_dependency(repo: Path, osv: FakeOSV) -> None:
    commit(repo, {"requirements.txt": "click==8.1.7\nrequests==2.19.1\n"}, "bump")
    changed = await changed_lines_between(repo, "HEAD~1", "HEAD")
    result = await run(workspace(repo, osv.url, changed))
    assert [(f.rule, f.level) for f in result.findings if f.path == "requirements.txt"] == [
        ("GHSA-x84v-xcm2-53pg", "failure"), ("GHSA-j8r2-6x86-q33q", "warning")]  # fmt: skip
    assert result.metrics["new_total"] == 2


async def test_new_code_only_off_fails_on_existing_findings_too(repo: Path, osv: FakeOSV) -> None:
    commit(repo, {"README.md": "docs\n"}, "docs only")
    changed = await changed_lines_between(repo, "HEAD~1", "HEAD")
    result = await run(workspace(repo, osv.url, changed), {"new_code_only": False})
    assert result.conclusion == "failure"
    assert result.title == "10 security issues (4 high, 2 medium, 4 low)"
    assert result.metrics["new_high"] == 0 and result.metrics["failing"] == 4


async def test_ignored_findings_are_counted_not_annotated(repo: Path, osv: FakeOSV) -> None:
    commit(repo, {"app/tasks.py": HEAD_FILES["app/tasks.py"].replace("shell=True)", "shell=True)  # aqe: ignore[B602]"),
                  "requirements.txt": "click==8.1.7\n# aqe: ignore[CVE-2023-32681]\nrequests==2.19.0\n"}, "ignores")
    config = {"ignore_paths": ["web/"],
              "ignore_rules": ["ghsa-5rcv-m4m3-hfh7", "B404", "B603", "B607", "hardcoded_password_string"]}
    result = await run(workspace(repo, osv.url), config)
    assert places(result) == [("AWSKeyDetector", "app/settings.py", 3, "failure"),
                              ("GHSA-x84v-xcm2-53pg", "requirements.txt", 3, "failure")]
    assert result.metrics["ignored"] == 8
    assert "| Code (bandit) | 0 | 0 | 5 |" in result.summary
    assert "| Dependencies (OSV) | **1 high** | 0 | 3 |" in result.summary


async def test_fail_on_and_severity_overrides(repo: Path, osv: FakeOSV) -> None:
    config = {"fail_on": "critical", "severity": {"B602": "critical", "AWS Access Key": "medium"}}
    result = await run(workspace(repo, osv.url), config)
    assert [(f.rule, f.level) for f in result.findings if f.level == "failure"] == [("B602", "failure")]
    assert next(f for f in result.findings if f.rule == "AWSKeyDetector").level == "warning"
    assert (result.metrics["new_critical"], result.metrics["new_high"], result.metrics["new_medium"]) == (1, 2, 3)


async def test_osv_down_makes_the_dependency_scan_unavailable_never_a_pass(repo: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once the socket is closed
    result = await run(workspace(repo, f"http://127.0.0.1:{port}"), {"scanners": ["dependencies"]})
    assert result.conclusion == "neutral"
    assert result.title == "No new security issues; dependency scan unavailable"
    assert result.metrics["dependency_scan"] == "unavailable"
    assert result.metrics["packages_scanned"] == 4 and result.metrics["dependency_vulns"] == 0
    assert "| Dependencies (OSV) | unavailable | | |" in result.summary
    assert (f"⚠️ **Dependency scan unavailable:** http://127.0.0.1:{port} could not be reached (ConnectError) "
            "after 2 attempts. Known vulnerabilities of the dependencies were not checked, so this check cannot pass."
            ) in result.summary


async def test_osv_failing_with_500s_is_unavailable_but_other_failures_still_fail(repo: Path, osv: FakeOSV) -> None:
    osv.fail_next(10, status=500)
    result = await run(workspace(repo, osv.url))
    assert result.conclusion == "failure"  # the secret and the shell injection
    assert result.title == "6 new security issues (2 high, 4 low); dependency scan unavailable"
    assert "answered HTTP 500 after 2 attempts" in result.summary
    assert [call.status for call in osv.calls] == [500, 500]


async def test_osv_answering_garbage_is_unavailable(repo: Path, osv: FakeOSV) -> None:
    osv.garbage = True
    result = await run(workspace(repo, osv.url), {"scanners": ["dependencies"]})
    assert (result.conclusion, result.metrics["dependency_scan"]) == ("neutral", "unavailable")
    assert "with something that is not JSON" in result.summary


async def test_the_secret_value_appears_nowhere(repo: Path, osv: FakeOSV, caplog: pytest.LogCaptureFixture) -> None:
    """Not in the result (the job record), the check run (title, summary, annotations), the PR comment, the logs."""
    caplog.set_level(logging.DEBUG)
    result = await run(workspace(repo, osv.url))
    assert "AWSKeyDetector" in [f.rule for f in result.findings]
    assert "B105" in [f.rule for f in result.findings]  # bandit quotes the value of a "hardcoded password"
    request = RunRequest(forge="github", repo="o/r", clone_url="https://example.invalid/o/r.git", head_sha="a" * 40,
                         trigger="pull_request.opened", agents=["security"], pr_number=1)
    record = JobRecord(id="j1", status="completed", request=request, created_at=0.0, results=[result])
    published = [
        msgspec.json.encode(record).decode(),
        render.check_title(result), render.check_summary(result, "http://aqe.test/job/j1"),
        json.dumps(annotation_batches(list(result.findings))[0]),
        render.comment_body(record, "http://aqe.test/job/j1", "a" * 40),
        caplog.text + "".join(str(log_record.args) for log_record in caplog.records),
    ]
    for text in published:
        assert AWS_KEY not in text
        assert AWS_KEY_TAIL not in text
    assert "security scan:" in caplog.text  # the agent did log


async def test_scanners_can_be_switched_off(repo: Path, osv: FakeOSV) -> None:
    result = await run(workspace(repo, osv.url), {"scanners": ["secrets"]})
    assert [f.rule for f in result.findings] == ["AWSKeyDetector"]
    assert result.metrics["dependency_scan"] == "disabled"
    assert "| Code (bandit) | not run | | |" in result.summary
    assert "**Dependency scan:** disabled by `security.scanners`." in result.summary
    assert osv.calls == []


async def test_unpinned_and_unregistered_dependencies_are_counted(repo: Path, osv: FakeOSV) -> None:
    commit(repo, {"requirements-dev.txt": "-r requirements.txt\npytest>=7\nflake8\n-e .\n"}, "dev requirements")
    result = await run(workspace(repo, osv.url), {"scanners": ["dependencies"]})
    assert (result.metrics["packages_unpinned"], result.metrics["dependency_files"]) == (2, 4)
    assert ("**Dependency scan:** 4 packages from 4 files checked against the OSV database. Not checked: "
            "2 unpinned requirements, 1 dependency from git, a path or a URL.") in result.summary


async def test_no_scanner_at_all_is_neutral(repo: Path, osv: FakeOSV) -> None:
    result = await run(workspace(repo, osv.url), {"scanners": []})
    assert (result.conclusion, result.title, result.findings) == (
        "neutral", "No security scan: `security.scanners` is empty", [])


async def test_no_lock_files_and_malformed_ones_are_said(tmp_path: Path, osv: FakeOSV) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    commit(root, {"main.py": "print('hello')\n"}, "one")
    result = await run(workspace(root, osv.url))
    assert (result.conclusion, result.title, result.metrics["dependency_scan"]) == (
        "success", "No new security issues", "no lock files")
    commit(root, {"poetry.lock": "[[package]\nname = 'x'\n"}, "broken lock")
    result = await run(workspace(root, osv.url))
    assert result.metrics["dependency_scan"] == "ok" and result.metrics["packages_scanned"] == 0
    assert "- poetry.lock: not valid TOML (" in result.summary
    assert osv.calls == []


async def test_python_tests_are_not_analysed_by_default_but_can_be(repo: Path, osv: FakeOSV) -> None:
    commit(repo, {"tests/test_shell.py": "import os\n\n\ndef test_it():\n    os.system('ls ' + 'x')\n"}, "test")
    default = await run(workspace(repo, osv.url), {"scanners": ["sast"]})
    assert not any(f.path.startswith("tests/") for f in default.findings)
    everything = await run(workspace(repo, osv.url), {"scanners": ["sast"], "sast_exclude": []})
    assert {"B605", "B101"} <= {f.rule for f in everything.findings if f.path.startswith("tests/")}


async def test_javascript_without_semgrep_is_a_note(repo: Path, osv: FakeOSV) -> None:
    commit(repo, {"web/app.js": "eval(location.hash);\n"}, "js")
    result = await run(workspace(repo, osv.url), {"scanners": ["sast"]})
    assert ("- semgrep is not installed: 1 JavaScript, TypeScript or Go file not analysed (install AQE's "
            "`semgrep` extra)") in result.summary


def semgrep_executable() -> Path | None:
    explicit = os.environ.get("AQE_TEST_SEMGREP")  # e.g. /tmp/semgrep-venv/bin/semgrep, outside AQE's venv
    return Path(explicit) if explicit else find_semgrep()


@pytest.mark.skipif(semgrep_executable() is None, reason="semgrep is not installed (optional extra)")
async def test_semgrep_analyses_javascript_and_go_when_installed(repo: Path, osv: FakeOSV) -> None:
    commit(repo, {"web/app.js": "const x = 1;\neval(location.hash);\n",
                  "cmd/main.go": 'package main\n\nimport "os/exec"\n\nfunc run(name string) {\n'
                                 '\texec.Command("sh", "-c", "ls "+name).Run()\n}\n'}, "js and go")
    changed = await changed_lines_between(repo, "HEAD~1", "HEAD")
    agent = SecurityAgent(semgrep=semgrep_executable, osv_retries=1, osv_backoff_s=0.01)

    async def progress(fraction: float, message: str) -> None:
        pass

    result = await agent.run(workspace(repo, osv.url, changed), {"scanners": ["sast"]}, progress)
    assert [(f.rule, f.path, f.start_line, f.level) for f in result.findings if f.path.endswith((".js", ".go"))] == [
        ("aqe.go.exec-shell-dynamic", "cmd/main.go", 6, "failure"),
        ("aqe.js.eval-dynamic", "web/app.js", 2, "warning"),
    ]
    assert "| Code (bandit, semgrep) | **1 high, 1 medium** |" in result.summary


def test_the_agent_follows_the_protocol() -> None:
    agent = SecurityAgent()
    assert (agent.name, agent.needs) == ("security", ())
    assert agent.applies_to(Workspace(root=Path("."), scratch=Path("."), head_sha="x"), None)
