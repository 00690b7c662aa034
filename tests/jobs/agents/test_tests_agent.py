"""The tests agent against real sample repositories built in tmp_path."""

from __future__ import annotations

import json
import os
import sys
import re
import textwrap
from pathlib import Path

import pytest

from jobs.agents.base import Workspace
from jobs.agents.tests import (
    TestsAgent,
    UnsafeFileError,
    counts_title,
    fenced,
    is_python_repo,
    read_regular_file,
    run_title,
)
from jobs.junit import JUnitSummary
from jobs.model import AgentResult
from jobs.repo_config import ConfigError, TestsConfig, parse_config

CALC = "def add(a, b):\n    return a + b\n"

FAILING_TESTS = """\
from calc import add


def test_add():
    assert add(1, 2) == 4


def test_add_zero():
    assert add(0, 0) == 0


def test_add_negative():
    assert add(-1, 1) == 0
"""

PASSING_TESTS = """\
import pytest
from calc import add


@pytest.mark.parametrize("a,b,total", [(1, 2, 3), (2, 2, 4), (0, 0, 0)])
def test_add(a, b, total):
    assert add(a, b) == total


@pytest.mark.skip(reason="later")
def test_later():
    pass
"""

FIXTURE_ERROR_TESTS = """\
import pytest
from calc import add


@pytest.fixture
def numbers():
    raise RuntimeError("database unavailable")


def test_add(numbers):
    assert add(*numbers) == 3


def test_add_plain():
    assert add(1, 2) == 3
"""

SUREFIRE_REPORT = """\
<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="calc" tests="2" failures="1" time="0.2">
    <testcase classname="calc" name="adds" time="0.1">
      <failure message="expected 4, got 3">AssertionError: expected 4, got 3
    at $PWD/check.sh:4:1</failure>
    </testcase>
    <testcase classname="calc" name="subtracts" time="0.1"/>
  </testsuite>
</testsuites>
"""


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []

    async def __call__(self, fraction: float, message: str) -> None:
        self.calls.append((fraction, message))


def make_repo(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text) if rel.endswith(".sh") else text)
    return root


def line_of(source: str, needle: str) -> int:
    return next(i for i, line in enumerate(source.splitlines(), 1) if needle in line)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    (tmp_path / "repo").mkdir()
    (tmp_path / "scratch").mkdir()
    return Workspace(root=tmp_path / "repo", scratch=tmp_path / "scratch", head_sha="0" * 40)


async def run_agent(
    workspace: Workspace, config: TestsConfig | None = None, progress: Recorder | None = None
) -> AgentResult:
    return await TestsAgent().run(workspace, config or TestsConfig(timeout=120), progress or Recorder())


# ---------------------------------------------------------------------------------- pytest repos


@pytest.mark.asyncio
async def test_a_failing_assertion(workspace: Workspace) -> None:
    make_repo(workspace.root, {"calc.py": CALC, "tests/test_calc.py": FAILING_TESTS})
    progress = Recorder()
    result = await run_agent(workspace, progress=progress)

    assert (result.agent, result.conclusion, result.title) == ("tests", "failure", "1 failed, 2 passed")
    assert result.metrics["tests_total"] == 3 and result.metrics["tests_failed"] == 1
    assert result.metrics["tests_passed"] == 2 and result.metrics["tests_errors"] == 0
    (finding,) = result.findings
    line = line_of(FAILING_TESTS, "assert add(1, 2) == 4")
    assert (finding.path, finding.start_line, finding.end_line) == ("tests/test_calc.py", line, line)
    assert (finding.level, finding.rule, finding.title) == ("failure", "test-failure", "tests.test_calc.test_add")
    assert "assert 3 == 4" in finding.message
    assert f"`tests/test_calc.py:{line}`" in result.summary
    assert "| 2 | 1 | 0 | 0 | 3 |" in result.summary
    assert "`python -m coverage run --branch" in result.summary
    assert "AssertionError" in result.summary
    assert workspace.artifacts["junit"].name == "junit.xml" and workspace.artifacts["junit"].is_file()
    assert [message for _, message in progress.calls] == ["Creating environment", "Running tests", "Reading results"]
    assert [fraction for fraction, _ in progress.calls] == sorted(fraction for fraction, _ in progress.calls)


@pytest.mark.asyncio
async def test_a_passing_suite_with_coverage(workspace: Workspace) -> None:
    make_repo(workspace.root, {"calc.py": CALC, "tests/test_calc.py": PASSING_TESTS})
    result = await run_agent(workspace)

    assert (result.conclusion, result.title) == ("success", "3 passed, 1 skipped")
    assert result.findings == []
    assert result.metrics["tests_skipped"] == 1
    coverage = workspace.artifacts["coverage.cobertura"]
    assert coverage.name == "coverage.xml"
    assert 'filename="calc.py"' in coverage.read_text()


@pytest.mark.asyncio
async def test_parallel_coverage_data_is_combined(workspace: Workspace) -> None:
    """`parallel = true` in the project's coverage config (attrs, many others) leaves .coverage.<host>.<pid>."""
    make_repo(workspace.root, {"calc.py": CALC, "tests/test_calc.py": PASSING_TESTS,
                               "pyproject.toml": "[tool.coverage.run]\nparallel = true\n"})
    result = await run_agent(workspace)

    assert result.conclusion == "success"
    coverage = workspace.artifacts["coverage.cobertura"]
    assert 'filename="calc.py"' in coverage.read_text()


@pytest.mark.asyncio
async def test_an_error_in_a_fixture(workspace: Workspace) -> None:
    make_repo(workspace.root, {"calc.py": CALC, "tests/test_calc.py": FIXTURE_ERROR_TESTS})
    result = await run_agent(workspace)

    assert (result.conclusion, result.title) == ("failure", "1 passed, 1 error")
    (finding,) = result.findings
    assert finding.rule == "test-error"
    assert finding.start_line == line_of(FIXTURE_ERROR_TESTS, 'raise RuntimeError("database unavailable")')
    assert "database unavailable" in finding.message


@pytest.mark.asyncio
async def test_a_repository_without_tests(workspace: Workspace) -> None:
    make_repo(workspace.root, {"README.md": "# hello\n", "src/index.js": "console.log(1)\n"})
    result = await run_agent(workspace)
    assert (result.conclusion, result.title) == ("neutral", "No tests found")
    assert "tests:" in result.summary and "command:" in result.summary and ".aqe.yml" in result.summary
    assert not (workspace.scratch / "venv").exists()


@pytest.mark.asyncio
async def test_a_python_project_without_tests(workspace: Workspace) -> None:
    make_repo(workspace.root, {"pyproject.toml": "[project]\nname = 'x'\nversion = '0'\n", "calc.py": CALC})
    result = await run_agent(workspace)
    assert (result.conclusion, result.title) == ("neutral", "No tests collected")


@pytest.mark.asyncio
async def test_a_timeout_stops_the_tests(workspace: Workspace) -> None:
    tests = "import time\n\n\ndef test_slow():\n    time.sleep(60)\n"
    make_repo(workspace.root, {"tests/test_slow.py": tests})
    result = await run_agent(workspace, TestsConfig(timeout=3))
    assert (result.conclusion, result.title) == ("timed_out", "Tests timed out after 3 s")
    assert "the test command" in result.summary
    assert result.duration_s < 20


@pytest.mark.asyncio
async def test_the_memory_limit_fails_a_greedy_test(workspace: Workspace) -> None:
    tests = "def test_greedy():\n    data = bytearray(2 * 1024 ** 3)\n    assert data\n"
    make_repo(workspace.root, {"tests/test_greedy.py": tests})
    result = await run_agent(workspace, TestsConfig(timeout=120, memory_mb=256))
    assert (result.conclusion, result.title) == ("failure", "1 failed")
    (finding,) = result.findings
    assert "MemoryError" in finding.message
    assert (finding.path, finding.start_line) == ("tests/test_greedy.py", 2)


ENV_PROBE = """\
import json
import os
import sys
import sysconfig

import pytest


def test_environment():
    reports = os.environ["AQE_REPORTS_DIR"]
    with open(os.path.join(reports, "env.json"), "w") as fh:
        json.dump({"environ": dict(os.environ), "prefix": sys.prefix, "path": sys.path,
                   "purelib": sysconfig.get_paths()["purelib"], "pytest": pytest.__file__}, fh)
    assert "GITHUB_TOKEN" not in os.environ
    assert "AQE_SECRET" not in os.environ
"""


@pytest.mark.asyncio
async def test_the_worker_environment_does_not_reach_the_tests(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {"GITHUB_TOKEN": "ghs_token", "AQE_SECRET": "s3cret", "REDIS_URL": "redis://x"}.items():
        monkeypatch.setenv(name, value)
    make_repo(workspace.root, {"tests/test_env.py": ENV_PROBE})
    result = await run_agent(workspace)
    assert (result.conclusion, result.title) == ("success", "1 passed")

    probe = json.loads((workspace.scratch / "reports" / "env.json").read_text())
    environ = probe["environ"]
    assert not {"GITHUB_TOKEN", "AQE_SECRET", "REDIS_URL"} & set(environ)
    assert not [value for value in environ.values() if value in {"ghs_token", "s3cret", "redis://x"}]
    assert environ["HOME"] == str(workspace.scratch / "home")
    assert environ["PATH"].startswith(str(workspace.scratch / "venv" / "bin") + ":")
    assert environ["CI"] == "true"
    # the job's own virtualenv, whose site-packages come before the worker's (appended by a .pth file)
    assert probe["prefix"] == str(workspace.scratch / "venv")
    worker = [p for p in probe["path"] if p.startswith(sys.prefix)]
    assert worker and probe["path"].index(probe["purelib"]) < probe["path"].index(worker[0])
    assert probe["pytest"].startswith(sys.prefix)


# ----------------------------------------------------------------------- setup and custom commands


@pytest.mark.asyncio
async def test_setup_runs_first_with_pip_available(workspace: Workspace) -> None:
    tests = "from pathlib import Path\n\n\ndef test_generated():\n    assert Path('generated.txt').read_text() == '42\\n'\n"
    make_repo(workspace.root, {"tests/test_gen.py": tests})
    progress = Recorder()
    config = TestsConfig(timeout=120, setup=["pip --version", "echo 42 > generated.txt"])
    result = await run_agent(workspace, config, progress)
    assert (result.conclusion, result.title) == ("success", "1 passed")
    messages = [message for _, message in progress.calls]
    assert messages[:3] == [
        "Creating environment", "Running setup: pip --version", "Running setup: echo 42 > generated.txt"
    ]


@pytest.mark.asyncio
async def test_a_failing_setup_command(workspace: Workspace) -> None:
    make_repo(workspace.root, {"tests/test_x.py": "def test_x():\n    pass\n"})
    config = TestsConfig(timeout=120, setup=["echo installing; echo 'no such package' >&2; exit 7"])
    result = await run_agent(workspace, config)
    assert result.conclusion == "failure"
    assert result.title == "Setup failed: echo installing; echo 'no such package' >&2; exit 7"
    assert "exited with 7" in result.summary and "no such package" in result.summary


@pytest.mark.asyncio
async def test_a_setup_command_that_runs_out_of_time(workspace: Workspace) -> None:
    make_repo(workspace.root, {"tests/test_x.py": "def test_x():\n    pass\n"})
    result = await run_agent(workspace, TestsConfig(timeout=2, setup=["echo fetching; sleep 30"]))
    assert (result.conclusion, result.title) == ("timed_out", "Tests timed out after 2 s")
    assert "fetching" in result.summary and "setup command" in result.summary


CHECK_SH = """\
#!/bin/sh
# a test runner of its own that writes a JUnit report
sed "s|\\$PWD|$PWD|" junit-template.xml > "$AQE_REPORTS_DIR/results.xml"
echo "1 of 2 checks failed"
exit 1
"""


@pytest.mark.asyncio
async def test_a_custom_command_writing_junit_to_the_reports_dir(workspace: Workspace) -> None:
    make_repo(workspace.root, {"check.sh": CHECK_SH, "junit-template.xml": SUREFIRE_REPORT})
    result = await run_agent(workspace, TestsConfig(timeout=60, command="sh check.sh"))
    assert (result.conclusion, result.title) == ("failure", "1 failed, 1 passed")
    (finding,) = result.findings
    assert (finding.path, finding.start_line, finding.title) == ("check.sh", 4, "calc.adds")
    assert "`sh check.sh`" in result.summary
    assert workspace.artifacts["junit"].name == "results.xml"
    assert "coverage.cobertura" not in workspace.artifacts


@pytest.mark.asyncio
async def test_a_custom_command_with_junit_and_coverage_globs(workspace: Workspace) -> None:
    report = SUREFIRE_REPORT.replace('failures="1"', 'failures="0"').split("<failure")[0] + "</testcase>\n"
    report += '    <testcase classname="calc" name="subtracts" time="0.1"/>\n  </testsuite>\n</testsuites>\n'
    make_repo(workspace.root, {
        "build/test-results/TEST-calc.xml": report,
        "build/coverage/cobertura.xml": '<?xml version="1.0" ?><coverage version="1"></coverage>',
        "other.xml": "<testsuites/>",
    })  # fmt: skip
    config = TestsConfig(timeout=60, command="true", junit=["build/test-results/*.xml", "../*.xml", "/etc/*.xml"],
                         coverage=["build/coverage/*.xml"])  # fmt: skip
    result = await run_agent(workspace, config)
    assert (result.conclusion, result.title) == ("success", "2 passed")
    assert workspace.artifacts["junit"] == (workspace.root / "build/test-results/TEST-calc.xml").resolve()
    assert workspace.artifacts["coverage.cobertura"] == (workspace.root / "build/coverage/cobertura.xml").resolve()


@pytest.mark.asyncio
async def test_several_junit_files_are_merged(workspace: Workspace) -> None:
    one = '<testsuite name="a"><testcase classname="a" name="x"/></testsuite>'
    two = '<testsuites><testsuite name="b"><testcase classname="b" name="y"/></testsuite></testsuites>'
    make_repo(workspace.root, {"r/one.xml": one, "r/two.xml": two})
    result = await run_agent(workspace, TestsConfig(timeout=60, command="true", junit=["r/*.xml"]))
    assert result.title == "2 passed"
    assert workspace.artifacts["junit"].name == "aqe-junit-merged.xml"


@pytest.mark.asyncio
async def test_a_custom_command_without_junit(workspace: Workspace) -> None:
    result = await run_agent(workspace, TestsConfig(timeout=60, command="echo all good"))
    assert (result.conclusion, result.title) == ("success", "Tests passed")
    assert "No JUnit XML report was found" in result.summary and "all good" in result.summary

    result = await run_agent(workspace, TestsConfig(timeout=60, command="echo broken; exit 3"))
    assert (result.conclusion, result.title) == ("failure", "Tests failed (exit code 3)")
    assert "broken" in result.summary


@pytest.mark.asyncio
async def test_an_unreadable_junit_file_is_reported(workspace: Workspace) -> None:
    make_repo(workspace.root, {"out/junit.xml": "<testsuites><testsuite>"})
    result = await run_agent(workspace, TestsConfig(timeout=60, command="true", junit=["out/*.xml"]))
    assert "Reports that could not be read" in result.summary and "junit.xml" in result.summary


@pytest.mark.asyncio
async def test_a_raw_config_mapping_is_accepted(workspace: Workspace) -> None:
    result = await TestsAgent().run(workspace, {"command": "true", "timeout": 30}, Recorder())
    assert result.conclusion == "success"


# ------------------------------------------------------------------------------------- the parts


def test_python_repository_detection(tmp_path: Path) -> None:
    assert not is_python_repo(tmp_path)
    (tmp_path / "lib" / "pkg").mkdir(parents=True)
    (tmp_path / "lib" / "pkg" / "calc_test.py").write_text("")
    assert is_python_repo(tmp_path)
    for marker in ("requirements-dev.txt", "setup.cfg", "tox.ini"):
        other = tmp_path / marker.replace(".", "_")
        other.mkdir()
        (other / marker).write_text("")
        assert is_python_repo(other)


def test_tests_in_dependency_directories_do_not_count(tmp_path: Path) -> None:
    (tmp_path / "node_modules" / "x").mkdir(parents=True)
    (tmp_path / "node_modules" / "x" / "test_thing.py").write_text("")
    assert not is_python_repo(tmp_path)


def counts(passed: int = 0, failed: int = 0, errors: int = 0, skipped: int = 0) -> JUnitSummary:
    return JUnitSummary(passed, failed, errors, skipped, passed + failed + errors + skipped, 0.0)


def test_titles() -> None:
    assert counts_title(counts(passed=11, failed=1)) == "1 failed, 11 passed"
    assert counts_title(counts(passed=12)) == "12 passed"
    assert counts_title(counts(passed=10, skipped=2, errors=2)) == "10 passed, 2 skipped, 2 errors"
    assert counts_title(counts(errors=1)) == "1 error"
    assert run_title(2, counts(passed=3)) == "3 passed; the command exited with 2"
    assert run_title(0, counts()) == "Tests passed"


def test_fenced_output_survives_backticks() -> None:
    assert fenced("a ``` b").startswith("````text\n")


@pytest.mark.asyncio
async def test_configured_variables_reach_setup_and_tests(workspace: Workspace) -> None:
    make_repo(workspace.root, {"calc.py": CALC, "tests/test_env.py":
                               "import os\n\n\ndef test_env():\n    assert os.environ['GREETING'] == 'hello'\n"
                               "    assert os.environ['AQE_REPORTS_DIR'].endswith('reports')\n"})
    result = await run_agent(workspace, TestsConfig(timeout=120, env={"GREETING": "hello"}))
    assert (result.conclusion, result.title) == ("success", "1 passed")


def test_variables_the_sandbox_sets_cannot_be_configured() -> None:
    for name in ("PATH", "LD_PRELOAD", "AQE_REPORTS_DIR", "1BAD", "A-B"):
        with pytest.raises(ConfigError) as caught:
            parse_config(f"tests:\n  env:\n    {name}: x\n")
        assert "tests.env" in str(caught.value) and "line 2" in str(caught.value)
    assert parse_config("tests:\n  env:\n    GREETING: hello\n").tests.env == {"GREETING": "hello"}


@pytest.mark.asyncio
async def test_tests_in_parallel_workers_report_every_test_and_the_same_coverage(workspace: Workspace) -> None:
    """`tests.parallel`: pytest-xdist workers; the counts, failures and coverage equal a one-process run."""
    branchy = CALC + "\n\ndef sign(x):\n    if x < 0:\n        return -1\n    return 1\n"
    make_repo(workspace.root, {"calc.py": branchy, "tests/test_calc.py": FAILING_TESTS,
                               "tests/test_sign.py": "from calc import sign\n\n\ndef test_sign():\n"
                                                     "    assert sign(5) == 1\n"})
    single = await run_agent(workspace)
    single_xml = workspace.artifacts["coverage.cobertura"].read_text()
    result = await run_agent(workspace, TestsConfig(timeout=120, parallel=2))

    assert "-n 2" in result.summary and "pytest_cov" in result.summary
    assert (result.conclusion, result.title) == ("failure", "1 failed, 3 passed") == (single.conclusion, single.title)
    assert [(f.path, f.start_line) for f in result.findings] == [(f.path, f.start_line) for f in single.findings]
    parallel_xml = workspace.artifacts["coverage.cobertura"].read_text()
    rates = [re.search(r'<coverage[^>]* line-rate="([0-9.]+)"[^>]* branch-rate="([0-9.]+)"', xml).groups()
             for xml in (single_xml, parallel_xml)]
    assert rates[0] == rates[1] and 'filename="calc.py"' in parallel_xml
    assert not (workspace.root / ".coverage").exists()  # the data went to the reports directory


def test_parallel_is_checked() -> None:
    assert parse_config("tests:\n  parallel: auto\n").tests.parallel == "auto"
    with pytest.raises(ConfigError, match="tests.parallel"):
        parse_config("tests:\n  parallel: 0\n")
    with pytest.raises(ConfigError, match="put the option in the command"):
        parse_config("tests:\n  parallel: 2\n  command: make test\n")


# ------------------------------------------------------------- links and FIFOs left by the code under test


@pytest.mark.asyncio
@pytest.mark.parametrize("outside", ["worker.env", "/proc/self/environ"])
async def test_a_coverage_xml_linked_out_of_the_reports_dir_is_not_taken(
    workspace: Workspace, tmp_path: Path, outside: str
) -> None:
    secret = tmp_path / "worker.env"
    secret.write_text("GITHUB_APP_PRIVATE_KEY=aqe-worker-secret-5d1c\n")
    target = secret if outside == "worker.env" else Path(outside)
    command = f'ln -s {target} "$AQE_REPORTS_DIR/coverage.xml"'
    result = await run_agent(workspace, TestsConfig(timeout=60, command=command))
    assert result.conclusion == "success"
    assert "coverage.cobertura" not in workspace.artifacts


@pytest.mark.asyncio
async def test_a_coverage_xml_linked_within_the_reports_dir_is_taken(workspace: Workspace) -> None:
    command = ('echo \'<?xml version="1.0" ?><coverage version="1"></coverage>\' > "$AQE_REPORTS_DIR/cov.xml" && '
               'ln -s cov.xml "$AQE_REPORTS_DIR/coverage.xml"')
    await run_agent(workspace, TestsConfig(timeout=60, command=command))
    assert workspace.artifacts["coverage.cobertura"].name == "cov.xml"


@pytest.mark.asyncio
async def test_a_link_where_the_merged_junit_goes_is_not_written_through(workspace: Workspace, tmp_path: Path) -> None:
    victim = tmp_path / "worker-file.txt"
    victim.write_text("the worker's\n")
    one = '<testsuite name="a"><testcase classname="a" name="x"/></testsuite>'
    two = '<testsuite name="b"><testcase classname="b" name="y"/></testsuite>'
    make_repo(workspace.root, {"r/one.xml": one, "r/two.xml": two})
    command = f'ln -s {victim} "$AQE_REPORTS_DIR/aqe-junit-merged.xml"'
    result = await run_agent(workspace, TestsConfig(timeout=60, command=command, junit=["r/*.xml"]))
    assert result.title == "2 passed"
    assert victim.read_text() == "the worker's\n"
    merged = workspace.artifacts["junit"]
    assert merged.name == "aqe-junit-merged.xml" and not merged.is_symlink() and 'name="y"' in merged.read_text()


@pytest.mark.asyncio
async def test_link_loops_and_fifos_in_the_reports_dir_are_skipped(workspace: Workspace) -> None:
    command = ('ln -s loop.xml "$AQE_REPORTS_DIR/loop.xml" && ln -s loop.xml "$AQE_REPORTS_DIR/coverage.xml" && '
               'mkfifo "$AQE_REPORTS_DIR/fifo.xml"')
    result = await run_agent(workspace, TestsConfig(timeout=60, command=command))
    assert (result.conclusion, result.title) == ("success", "Tests passed")
    assert "coverage.cobertura" not in workspace.artifacts and "junit" not in workspace.artifacts


def test_reports_are_read_from_regular_files_only(tmp_path: Path) -> None:
    report = tmp_path / "ok.xml"
    report.write_bytes(b"<testsuites/>")
    assert read_regular_file(report, 100) == b"<testsuites/>"
    (tmp_path / "link.xml").symlink_to(report)
    os.mkfifo(tmp_path / "fifo.xml")  # opening it for reading must not wait for a writer
    for name, reason in [("link.xml", "symbolic link"), ("fifo.xml", "not a regular file")]:
        with pytest.raises(UnsafeFileError, match=reason):
            read_regular_file(tmp_path / name, 100)
    with pytest.raises(UnsafeFileError, match="larger than"):
        read_regular_file(report, 5)
    with pytest.raises(FileNotFoundError):
        read_regular_file(tmp_path / "missing.xml", 100)
