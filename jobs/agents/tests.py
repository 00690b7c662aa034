"""The "tests" agent: run the repository's tests in a sandbox and report them from JUnit XML.

Python repositories get pytest under coverage by default; any other command can be set as
`tests.command` in `.aqe.yml`. Every command runs in a per-job virtualenv with a scrubbed
environment, so that nothing of the worker's (tokens, Redis URL) reaches the code under test.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import shlex
import shutil
import site
import stat
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import msgspec

from jobs.agents.base import Progress, Workspace
from jobs.junit import (
    IGNORED_DIRS,
    JUnitError,
    JUnitSummary,
    Location,
    NotJUnitError,
    TestCase,
    failure_finding,
    first_line,
    head_text,
    located_failures,
    merge_junit,
    parse_junit,
    summarise,
    tail_text,
)
from jobs.model import AgentResult, Conclusion
from jobs.repo_config import TestsConfig
from jobs.reporting.markdown import code_span, plural
from jobs.sandbox import SandboxResult, run_sandboxed, scrubbed_env

PYTEST_NO_TESTS_COLLECTED = 5
MAX_LISTED_FAILURES = 20
SUMMARY_TAIL_LINES, SUMMARY_TAIL_CHARS = 20, 2000  # per failure: 20 of them must fit GitHub's 64 KiB
OUTPUT_TAIL_LINES, OUTPUT_TAIL_CHARS = 40, 4000
MAX_REPORT_BYTES = 50 * 1024 * 1024
VENV_TIMEOUT_S = 120.0
COVERAGE_XML_TIMEOUT_S = 120.0
DETECTION_MAX_ENTRIES = 20_000
WRAPPED_MODULES = ("pip", "pytest", "coverage")  # venv/bin scripts that run `python -m <module>`

PYTHON_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", "pytest.ini", "tox.ini")
_PYTHON_TEST_FILE = re.compile(r"^(test_.*|.*_test)\.py$")
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")

NO_TESTS_SUMMARY = """\
AQE found nothing to run: this repository has no Python project files or test files, and its \
`.aqe.yml` sets no `tests.command`.

To run your tests, set the command in `.aqe.yml` at the root of the repository:

```yaml
tests:
  command: npm test                # runs in a shell at the repository root
  setup: ["npm ci"]                # optional: commands run before it
  junit: ["reports/junit/*.xml"]   # optional: JUnit XML files it writes
```

The command can also write JUnit XML files into the directory named by `$AQE_REPORTS_DIR`; \
each test failure in them becomes an annotation on the line that failed.
"""


# ------------------------------------------------------------------------------------- plumbing


@dataclass(frozen=True, slots=True)
class JobDirs:
    """The agent's corner of the job's scratch space."""

    venv: Path
    home: Path
    tmp: Path
    reports: Path

    @classmethod
    def under(cls, scratch: Path) -> JobDirs:
        return cls(scratch / "venv", scratch / "home", scratch / "tmp", scratch / "reports")

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def create(self) -> None:
        """Make the directories; reports from an earlier attempt are removed."""
        shutil.rmtree(self.reports, ignore_errors=True)
        for path in (self.home, self.tmp, self.reports):
            path.mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True, slots=True)
class TestPlan:
    """What to run: pytest under coverage (argv) or the repository's own shell command."""

    __test__ = False

    command: str | list[str]
    display: str  # as shown in the summary
    is_pytest: bool


class Deadline:
    """The agent's single time budget (`tests.timeout`) shared by setup and tests."""

    def __init__(self, seconds: float) -> None:
        self.expires_at = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.expires_at - time.monotonic())


class TestsTimedOut(Exception):
    __test__ = False

    def __init__(self, step: str, output: str) -> None:
        super().__init__(step)
        self.step, self.output = step, output


class SetupFailed(Exception):
    def __init__(self, command: str, result: SandboxResult) -> None:
        super().__init__(command)
        self.command, self.result = command, result


# ------------------------------------------------------------------------------------ detection


def as_tests_config(config: TestsConfig | dict[str, Any] | None) -> TestsConfig:
    """Accept the parsed `tests` section, or its raw mapping (as the Agent protocol passes)."""
    if isinstance(config, TestsConfig):
        return config
    return msgspec.convert(config or {}, TestsConfig)


def is_python_repo(root: Path) -> bool:
    """Python project files at the root, or a `test_*.py` / `*_test.py` file anywhere."""
    if any((root / name).is_file() for name in PYTHON_MARKERS):
        return True
    if any(root.glob("requirements*.txt")):
        return True
    return has_python_test_file(root)


def has_python_test_file(root: Path, max_entries: int = DETECTION_MAX_ENTRIES) -> bool:
    seen = 0
    for _, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in IGNORED_DIRS]
        if any(_PYTHON_TEST_FILE.match(name) for name in filenames):
            return True
        seen += len(filenames) + len(dirnames)
        if seen > max_entries:
            return False
    return False


def pytest_argv(python: Path, reports: Path, parallel: int | str | None = None) -> list[str]:
    """pytest under `coverage run`; with `parallel`, pytest-xdist workers measured by pytest-cov (which
    follows the workers and writes the data to `COVERAGE_FILE`, see `job_env`)."""
    junit = ["-o", "junit_family=xunit1", f"--junitxml={reports / 'junit.xml'}", "-p", "no:cacheprovider", "-q"]
    if parallel is not None:
        return [str(python), "-m", "pytest", "-p", "xdist", "-p", "pytest_cov", "-n", str(parallel),
                "--cov", "--cov-branch", "--cov-report=", *junit]
    return [str(python), "-m", "coverage", "run", "--branch", f"--data-file={reports / '.coverage'}",
            "-m", "pytest", *junit]


def coverage_combine_argv(python: Path, reports: Path) -> list[str]:
    return [str(python), "-m", "coverage", "combine", "--append", "-q", f"--data-file={reports / '.coverage'}"]


def coverage_xml_argv(python: Path, reports: Path) -> list[str]:
    return [
        str(python), "-m", "coverage", "xml", f"--data-file={reports / '.coverage'}",
        "-o", str(reports / "coverage.xml"), "-i",
    ]  # fmt: skip


def plan_tests(root: Path, config: TestsConfig, dirs: JobDirs) -> TestPlan | None:
    """The configured command, else pytest for a Python repository, else None (nothing to run)."""
    if config.command:
        return TestPlan(config.command, config.command, is_pytest=False)
    if not is_python_repo(root):
        return None
    argv = pytest_argv(dirs.python, dirs.reports, config.parallel)
    display = shlex.join(["python", *argv[1:]]).replace(str(dirs.reports), "$AQE_REPORTS_DIR")
    return TestPlan(argv, display, is_pytest=True)


# ---------------------------------------------------------------------------------- environment


def worker_site_packages() -> list[Path]:
    """The worker's own site-packages: where pytest, coverage and pip are installed."""
    return [Path(p) for p in site.getsitepackages() if Path(p).is_dir()]


def venv_site_packages(venv: Path) -> Path:
    return venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def write_worker_pth(venv: Path) -> Path:
    """Append the worker's site-packages to the venv's path: they come after the venv's own, so what
    the repository installs wins over the worker's pytest/coverage/pip."""
    pth = venv_site_packages(venv) / "zz_aqe_worker.pth"
    pth.write_text("".join(f"{path}\n" for path in worker_site_packages()), encoding="utf-8")
    return pth


def write_module_wrappers(venv: Path) -> list[Path]:
    """`venv/bin/pip` (and pytest, coverage) as `exec python -m <module>` shell wrappers."""
    written = []
    for module in WRAPPED_MODULES:
        script = venv / "bin" / module
        script.write_text(f'#!/bin/sh\nexec "$(dirname "$0")/python" -m {module} "$@"\n', encoding="utf-8")
        script.chmod(0o755)
        written.append(script)
    return written


def job_env(dirs: JobDirs, variables: dict[str, str] | None = None, parallel: bool = False) -> dict[str, str]:
    """The sandbox's environment, with `tests.env` (validated: none of the variables the sandbox sets)."""
    ours = {"AQE_REPORTS_DIR": str(dirs.reports), "VIRTUAL_ENV": str(dirs.venv)}
    if parallel:
        ours["COVERAGE_FILE"] = str(dirs.reports / ".coverage")  # where pytest-cov writes the workers' data
    return scrubbed_env(dirs.home, [dirs.venv / "bin"], {**(variables or {}), **ours}, tmpdir=dirs.tmp)


async def create_venv(dirs: JobDirs, env: dict[str, str], memory_mb: int) -> None:
    """`python -m venv --without-pip`, then the .pth file and the module wrappers."""
    argv = [sys.executable, "-m", "venv", "--without-pip", str(dirs.venv)]
    result = await run_sandboxed(
        argv, cwd=dirs.home, env=env, timeout_s=VENV_TIMEOUT_S, memory_mb=max(memory_mb, 1024)
    )
    if result.returncode != 0:
        raise RuntimeError(f"could not create the test virtualenv: {tail_text(result.output)}")
    write_worker_pth(dirs.venv)
    write_module_wrappers(dirs.venv)


# -------------------------------------------------------------------------------------- reports


class UnsafeFileError(OSError):
    """A file that is not read: a symbolic link, not a regular file (FIFO, device...), or too large."""


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """The content of a regular file of at most `max_bytes`. The code under test can leave anything in
    the reports directory (a link to `/proc/self/environ`, a FIFO): the last component is opened with
    O_NOFOLLOW (O_NONBLOCK, so a FIFO does not block) and the *opened* file is checked with fstat, so
    what is checked is what is read. UnsafeFileError for those, OSError when it cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFileError("a symbolic link, not followed") from None
        raise
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFileError("not a regular file")
        if info.st_size > max_bytes:
            raise UnsafeFileError(f"larger than {max_bytes / (1024 * 1024):g} MiB")
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:  # it grew after fstat
        raise UnsafeFileError(f"larger than {max_bytes / (1024 * 1024):g} MiB")
    return data


def write_new_file(path: Path, data: bytes) -> None:
    """Replace `path` with a new file, never writing through a link planted there (O_EXCL|O_NOFOLLOW)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "wb") as file:
        file.write(data)


def reports_matching(root: Path, globs: list[str]) -> list[Path]:
    """Regular files matching the globs, resolved, kept only when they resolve inside `root` (the work
    tree, or the reports directory): a link pointing out of it is never a report."""
    root = root.resolve()
    found: list[Path] = []
    for pattern in globs:
        for path in _safe_glob(root, pattern):
            if _inside(path, root) and _is_regular(path) and path not in found:
                found.append(path)
    return found


def _safe_glob(root: Path, pattern: str) -> list[Path]:
    try:
        return sorted(p.resolve() for p in root.glob(pattern))
    except (ValueError, NotImplementedError, OSError, RuntimeError):  # absolute/malformed patterns, link loops
        return []


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


def junit_candidates(root: Path, config: TestsConfig, reports: Path) -> list[Path]:
    """`tests.junit` globs, then every XML file under the reports directory."""
    found = reports_matching(root, config.junit)
    extra = [p for p in reports_matching(reports, ["**/*.xml"]) if p not in found]
    return found + extra


def coverage_candidates(root: Path, config: TestsConfig, reports: Path) -> list[Path]:
    """`tests.coverage` globs (inside the work tree), then `coverage.xml` of the reports directory (inside it)."""
    found = reports_matching(root, config.coverage)
    return found + [p for p in reports_matching(reports, ["coverage.xml"]) if p not in found]


def read_junit_files(paths: list[Path]) -> tuple[list[TestCase], list[Path], list[str]]:
    """Test cases of every readable JUnit file, the files they came from, and why others were
    skipped (XML files that are simply not JUnit reports are skipped silently)."""
    cases: list[TestCase] = []
    used: list[Path] = []
    problems: list[str] = []
    for path in paths:
        try:
            cases += _read_junit_file(path)
            used.append(path)
        except NotJUnitError:
            continue
        except (JUnitError, OSError) as exc:
            problems.append(f"{path.name}: {exc}")
    return cases, used, problems


def _read_junit_file(path: Path) -> list[TestCase]:
    return parse_junit(read_regular_file(path, MAX_REPORT_BYTES))


def merged_junit(paths: list[Path], reports: Path) -> Path | None:
    """The one JUnit file, or several wrapped into `<testsuites>` in the reports directory (None when
    they cannot be read again, e.g. replaced by a link since)."""
    if len(paths) <= 1:
        return paths[0] if paths else None
    merged = reports / "aqe-junit-merged.xml"
    try:
        write_new_file(merged, merge_junit([read_regular_file(path, MAX_REPORT_BYTES) for path in paths]))
    except OSError:
        return None
    return merged


# ---------------------------------------------------------------------------------- the results


def strip_ansi(text: str) -> str:
    return _ANSI_ESCAPE.sub("", text)


def output_tail(output: str) -> str:
    return tail_text(strip_ansi(output), OUTPUT_TAIL_LINES, OUTPUT_TAIL_CHARS)


def fenced(text: str, info: str = "text") -> str:
    """A fenced Markdown code block whose fence is longer than any backtick run in `text`."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"






def counts_title(counts: JUnitSummary) -> str:
    """"1 failed, 11 passed, 2 skipped, 1 error" (zero counts left out)."""
    parts = [
        f"{counts.failed} failed" if counts.failed else "",
        f"{counts.passed} passed" if counts.passed else "",
        f"{counts.skipped} skipped" if counts.skipped else "",
        plural(counts.errors, "error", "errors") if counts.errors else "",
    ]
    return ", ".join(part for part in parts if part) or "No tests ran"


def counts_table(counts: JUnitSummary) -> str:
    return (
        "| Passed | Failed | Errors | Skipped | Total |\n"
        "|---:|---:|---:|---:|---:|\n"
        f"| {counts.passed} | {counts.failed} | {counts.errors} | {counts.skipped} | {counts.total} |"
    )


def run_conclusion(returncode: int, counts: JUnitSummary) -> Conclusion:
    return "success" if returncode == 0 and counts.failed == 0 and counts.errors == 0 else "failure"


def run_title(returncode: int, counts: JUnitSummary) -> str:
    if counts.total == 0:
        return "Tests passed" if returncode == 0 else f"Tests failed (exit code {returncode})"
    title = counts_title(counts)
    if returncode != 0 and counts.failed == 0 and counts.errors == 0:
        return f"{title}; the command exited with {returncode}"
    return title


def failure_section(case: TestCase, location: Location | None) -> str:
    where = code_span(f"{location.path}:{location.line}") if location else "location unknown"
    message = head_text(first_line(case.message) or case.kind or case.status, 300)
    text = strip_ansi("\n".join(part for part in (case.details, case.output) if part))
    tail = tail_text(text, SUMMARY_TAIL_LINES, SUMMARY_TAIL_CHARS)
    body = f"#### {code_span(case.id)}\n{where}: {code_span(message)}"
    return f"{body}\n\n{fenced(tail)}" if tail else body


def failures_markdown(located: list[tuple[TestCase, Location | None]]) -> str:
    if not located:
        return ""
    sections = [failure_section(case, loc) for case, loc in located[:MAX_LISTED_FAILURES]]
    more = len(located) - MAX_LISTED_FAILURES
    if more > 0:
        sections.append(f"…and {plural(more, 'more failure', 'more failures')}, annotated in the files.")
    return "### Failures\n\n" + "\n\n".join(sections)


def metrics_of(counts: JUnitSummary) -> dict[str, float | int | str]:
    return {
        "tests_total": counts.total,
        "tests_passed": counts.passed,
        "tests_failed": counts.failed,
        "tests_errors": counts.errors,
        "tests_skipped": counts.skipped,
        "duration_s": counts.duration_s,
    }


@dataclass(frozen=True, slots=True)
class TestRun:
    """Everything known after the tests ran, for the result to be built from."""

    __test__ = False

    plan: TestPlan
    result: SandboxResult
    cases: list[TestCase]
    located: list[tuple[TestCase, Location | None]]
    report_problems: list[str]
    wall_s: float


def run_summary(run: TestRun, counts: JUnitSummary) -> str:
    parts = [
        counts_table(counts),
        f"**Duration:** {counts.duration_s:.2f} s of tests, {run.wall_s:.1f} s in all  \n"
        f"**Command:** {code_span(run.plan.display)} (exit code {run.result.returncode})",
    ]
    if not run.cases:
        parts.append("No JUnit XML report was found, so there are no per-test results. Output:\n\n"
                     + fenced(output_tail(run.result.output)))  # fmt: skip
    parts += [failures_markdown(run.located), _report_problems_markdown(run.report_problems)]
    return "\n\n".join(part for part in parts if part)


def _report_problems_markdown(problems: list[str]) -> str:
    if not problems:
        return ""
    return "Reports that could not be read:\n" + "\n".join(f"- {code_span(p)}" for p in problems)


def run_result(name: str, run: TestRun) -> AgentResult:
    if run.plan.is_pytest and run.result.returncode == PYTEST_NO_TESTS_COLLECTED and not run.cases:
        summary = f"pytest collected no tests.\n\n{fenced(output_tail(run.result.output))}"
        return _result(name, "neutral", "No tests collected", summary, run.wall_s)
    counts = summarise(run.cases)
    return AgentResult(
        agent=name,
        conclusion=run_conclusion(run.result.returncode, counts),
        title=run_title(run.result.returncode, counts),
        summary=run_summary(run, counts),
        metrics=metrics_of(counts),
        findings=[failure_finding(case, loc) for case, loc in run.located if loc is not None],
        duration_s=run.wall_s,
    )


def _result(
    name: str, conclusion: Conclusion, title: str, summary: str, duration_s: float = 0.0
) -> AgentResult:
    return AgentResult(agent=name, conclusion=conclusion, title=title, summary=summary, duration_s=duration_s)


def timed_out_result(name: str, timeout_s: float, error: TestsTimedOut, wall_s: float) -> AgentResult:
    summary = (
        f"The tests did not finish within {timeout_s:g} s (`tests.timeout` in `.aqe.yml`, for setup and "
        f"tests together); {error.step} was stopped.\n\nLast output:\n\n{fenced(output_tail(error.output))}"
    )
    return _result(name, "timed_out", f"Tests timed out after {timeout_s:g} s", summary, wall_s)


def setup_failed_result(name: str, error: SetupFailed, wall_s: float) -> AgentResult:
    summary = (
        f"The setup command {code_span(error.command)} exited with {error.result.returncode}, "
        f"so the tests did not run.\n\n{fenced(output_tail(error.result.output))}"
    )
    return _result(name, "failure", f"Setup failed: {head_text(error.command, 100)}", summary, wall_s)


# ------------------------------------------------------------------------------------ the agent


@dataclass(frozen=True, slots=True)
class StepRunner:
    """Runs the job's commands in the sandbox, at the work tree, within the one time budget."""

    root: Path
    env: dict[str, str]
    deadline: Deadline
    memory_mb: int

    async def run(self, command: str | list[str], step: str) -> SandboxResult:
        """TestsTimedOut when the budget runs out before or during the command."""
        if self.deadline.remaining() <= 0:
            raise TestsTimedOut(step, "")
        result = await self.run_within(command, self.deadline.remaining())
        if result.timed_out:
            raise TestsTimedOut(step, result.output)
        return result

    async def run_within(self, command: str | list[str], timeout_s: float) -> SandboxResult:
        return await run_sandboxed(
            command, cwd=self.root, env=self.env, timeout_s=timeout_s, memory_mb=self.memory_mb
        )


class TestsAgent:
    """Runs the repository's tests (pytest by default, or `tests.command`) and reports each failure."""

    __test__ = False
    name = "tests"
    # The repository's code runs here and can write to the work tree: the agents that read the tree (and
    # trust what they find there) run first, so the code under test cannot change their findings.
    needs = ("security", "quality")

    def applies_to(self, workspace: Workspace, config: Any) -> bool:
        return True  # a repository without tests gets a neutral "No tests found"

    async def run(
        self, workspace: Workspace, config: TestsConfig | dict[str, Any], progress: Progress
    ) -> AgentResult:
        started, cfg = time.monotonic(), as_tests_config(config)
        dirs = JobDirs.under(workspace.scratch)
        plan = await asyncio.to_thread(plan_tests, workspace.root, cfg, dirs)
        if plan is None:
            return _result(self.name, "neutral", "No tests found", NO_TESTS_SUMMARY)
        try:
            run = await _run_plan(workspace, cfg, dirs, plan, progress)
        except TestsTimedOut as exc:
            return timed_out_result(self.name, cfg.timeout, exc, _since(started))
        except SetupFailed as exc:
            return setup_failed_result(self.name, exc, _since(started))
        return run_result(self.name, replace(run, wall_s=_since(started)))


async def _run_plan(
    workspace: Workspace, cfg: TestsConfig, dirs: JobDirs, plan: TestPlan, progress: Progress
) -> TestRun:
    """Environment, setup, tests, coverage report, then the results read back."""
    runner = StepRunner(workspace.root, job_env(dirs, cfg.env, cfg.parallel is not None), Deadline(cfg.timeout),
                        cfg.memory_mb)
    await progress(0.05, "Creating environment")
    dirs.create()
    await create_venv(dirs, runner.env, cfg.memory_mb)
    workspace.artifacts["venv"] = dirs.venv  # later agents (test generation) import the code from it
    await _run_setup(runner, cfg.setup, progress)
    await progress(0.35, "Running tests")
    result = await runner.run(plan.command, "the test command")
    if plan.is_pytest:
        await _write_coverage_xml(runner, dirs)
    await progress(0.9, "Reading results")
    return await asyncio.to_thread(_collect, workspace, cfg, dirs, plan, result)  # parsing may take a while


async def _run_setup(runner: StepRunner, commands: list[str], progress: Progress) -> None:
    for index, command in enumerate(commands):
        await progress(0.1 + 0.25 * index / len(commands), f"Running setup: {head_text(command, 200)}")
        result = await runner.run(command, f"the setup command {code_span(command)}")
        if result.returncode != 0:
            raise SetupFailed(command, result)


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)


async def _write_coverage_xml(runner: StepRunner, dirs: JobDirs) -> None:
    """Cobertura XML from the coverage data; a failure here only means no coverage artifact. A project
    whose coverage config says `parallel = true` (or whose tests start subprocesses under coverage) leaves
    `.coverage.<host>.<pid>` files: they are combined first, with the project's `[paths]` mapping."""
    if runner.deadline.remaining() <= 0:
        return
    if any(dirs.reports.glob(".coverage.*")):
        await runner.run_within(coverage_combine_argv(dirs.python, dirs.reports),
                                min(runner.deadline.remaining(), COVERAGE_XML_TIMEOUT_S))
    if (dirs.reports / ".coverage").is_file() and runner.deadline.remaining() > 0:
        timeout = min(runner.deadline.remaining(), COVERAGE_XML_TIMEOUT_S)
        await runner.run_within(coverage_xml_argv(dirs.python, dirs.reports), timeout)


def _collect(workspace: Workspace, cfg: TestsConfig, dirs: JobDirs, plan: TestPlan, result: SandboxResult) -> TestRun:
    """Read the reports, locate the failures and record the artifacts."""
    cases, used, problems = read_junit_files(junit_candidates(workspace.root, cfg, dirs.reports))
    coverage = coverage_candidates(workspace.root, cfg, dirs.reports)
    _record_artifacts(workspace, merged_junit(used, dirs.reports), coverage)
    return TestRun(plan, result, cases, located_failures(cases, workspace.root), problems, wall_s=0.0)


def _record_artifacts(workspace: Workspace, junit: Path | None, coverage: list[Path]) -> None:
    if junit is not None:
        workspace.artifacts["junit"] = junit
    if coverage:
        workspace.artifacts["coverage.cobertura"] = coverage[0]
