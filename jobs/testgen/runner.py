"""The sandboxed processes of test generation: the ghostwriter driver, pytest runs, JavaScript test runners.

Each runs through `jobs.sandbox.run_sandboxed` with an environment built from nothing (`scrubbed_env`): no
token, API key or AQE_* variable of the worker reaches repository code. The Python interpreter is the tests
agent's virtualenv when it ran (it has the repository's dependencies), else one made like it in the scratch
directory (the worker's site-packages on its path: hypothesis, black, pytest).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from jobs.agents.tests import JobDirs, create_venv
from jobs.junit import JUnitError, TestCase, parse_junit
from jobs.sandbox import SandboxResult, run_sandboxed, scrubbed_env
from jobs.testgen.config import Framework
from jobs.testgen.validate import CURRENT_TEST_FILE, PYTEST_INI, pytest_argv, watchdog_conftest

MEMORY_MB = 4096
MAX_HUNG_RERUNS = 3
MAX_JUNIT_BYTES = 20 * 1024 * 1024
RUNNER_ARGS: dict[str, list[str]] = {
    "jest": ["jest", "--ci", "--runTestsByPath"],
    "vitest": ["vitest", "run"],
    "mocha": ["mocha"],
}
COPY_IGNORED = (".git", "node_modules", ".venv", "venv", "__pycache__")


class Deadline:
    """The agent's one time budget (`test_generation.timeout`)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expires_at = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.expires_at - time.monotonic())


@dataclass(frozen=True, slots=True)
class PythonSandbox:
    """Runs Python in the sandbox: `python` of a virtualenv, the repository's import roots on PYTHONPATH."""

    python: Path
    env: dict[str, str]
    memory_mb: int = MEMORY_MB

    async def run(self, argv: list[str], cwd: Path, timeout_s: float) -> SandboxResult:
        return await run_sandboxed(argv, cwd=cwd, env=self.env, timeout_s=max(timeout_s, 0.1),
                                   memory_mb=self.memory_mb)  # fmt: skip


def python_env(dirs: JobDirs, venv: Path, import_paths: list[Path]) -> dict[str, str]:
    return scrubbed_env(
        dirs.home,
        [venv / "bin"],
        {
            "VIRTUAL_ENV": str(venv),
            "PYTHONPATH": ":".join(str(path) for path in import_paths),
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
            "PYTHONHASHSEED": "0",
        },
        tmpdir=dirs.tmp,
    )


async def python_sandbox(tests_venv: Path | None, dirs: JobDirs, import_paths: list[Path]) -> PythonSandbox:
    """The tests agent's virtualenv when there is one, else a new one under `dirs` (as the tests agent makes it)."""
    for path in (dirs.home, dirs.tmp):
        path.mkdir(parents=True, exist_ok=True)
    venv = tests_venv if tests_venv is not None and (tests_venv / "bin" / "python").exists() else dirs.venv
    env = python_env(dirs, venv, import_paths)
    if venv == dirs.venv and not (venv / "bin" / "python").exists():
        await create_venv(dirs, env, MEMORY_MB)
    return PythonSandbox(venv / "bin" / "python", env)


# ------------------------------------------------------------------------------------- pytest runs


@dataclass(frozen=True, slots=True)
class PytestRun:
    cases: list[TestCase]
    hung: list[str]  # node ids of tests stopped by the per-test limit (not in `cases`)
    problem: str  # why the run gave no report, "" when it did
    output: str


def prepare_run_dir(run_dir: Path, per_test_timeout_s: float) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "pytest.ini").write_text(PYTEST_INI, encoding="utf-8")
    (run_dir / "conftest.py").write_text(watchdog_conftest(per_test_timeout_s), encoding="utf-8")


async def run_pytest(sandbox: PythonSandbox, run_dir: Path, files: list[str], deadline: Deadline) -> PytestRun:
    """pytest over `files` (relative to `run_dir`); a test that hangs is noted and the rest run again."""
    hung: list[str] = []
    junit = run_dir / "junit.xml"
    result: SandboxResult | None = None
    for _ in range(MAX_HUNG_RERUNS + 1):
        if deadline.remaining() <= 1:
            break
        junit.unlink(missing_ok=True)
        (run_dir / CURRENT_TEST_FILE).unlink(missing_ok=True)
        result = await sandbox.run(pytest_argv(sandbox.python, files, junit, hung), run_dir, deadline.remaining())
        stuck = _stuck_test(run_dir)
        if result.timed_out or stuck is None or stuck in hung:
            break
        hung.append(stuck)
    if result is None:
        return PytestRun([], hung, "the time for the agent ran out before the tests could run", "")
    if result.timed_out:
        return PytestRun([], hung, f"the run did not finish within the agent's time ({deadline.seconds:g} s)",
                         result.output)  # fmt: skip
    return _read_report(junit, hung, result)


def _stuck_test(run_dir: Path) -> str | None:
    """The node id the watchdog left behind: the test that was running when the process ended."""
    try:
        text = (run_dir / CURRENT_TEST_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return text or None


def _read_report(junit: Path, hung: list[str], result: SandboxResult) -> PytestRun:
    try:
        if junit.stat().st_size > MAX_JUNIT_BYTES:
            return PytestRun([], hung, "pytest's report is too large to read", result.output)
        return PytestRun(parse_junit(junit.read_bytes()), hung, "", result.output)
    except FileNotFoundError:
        return PytestRun([], hung, f"pytest wrote no report (exit code {result.returncode})", result.output)
    except (JUnitError, OSError) as exc:
        return PytestRun([], hung, f"pytest's report cannot be read: {exc}", result.output)


# ------------------------------------------------------------------------------------ JavaScript


def js_runner_missing(root: Path, framework: Framework) -> str | None:
    """Why a JavaScript test cannot be run here, or None when node and the runner are installed."""
    if shutil.which("node") is None:
        return "node is not installed on the worker"
    binary = RUNNER_ARGS[framework][0]
    if not (root / "node_modules" / ".bin" / binary).exists():
        return f"`{binary}` is not installed in the repository's `node_modules` (run `npm ci` in `tests.setup`)"
    return None


def copy_tree(root: Path, dest: Path) -> None:
    """A copy of the work tree to run JavaScript tests in (node_modules linked, not copied)."""
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(root, dest, symlinks=True, ignore=shutil.ignore_patterns(*COPY_IGNORED))
    if (root / "node_modules").is_dir():
        (dest / "node_modules").symlink_to(root / "node_modules", target_is_directory=True)


def js_env(dirs: JobDirs) -> dict[str, str]:
    return scrubbed_env(dirs.home, [], {"NODE_ENV": "test", "npm_config_update_notifier": "false"}, tmpdir=dirs.tmp)


async def run_js_test(tree: Path, test_path: str, framework: Framework, env: dict[str, str],
                      timeout_s: float) -> SandboxResult:  # fmt: skip
    argv = ["npx", "--no-install", *RUNNER_ARGS[framework], test_path]
    return await run_sandboxed(argv, cwd=tree, env=env, timeout_s=max(timeout_s, 0.1), memory_mb=MEMORY_MB)
