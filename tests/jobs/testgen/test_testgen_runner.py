"""Sandboxed pytest runs of generated tests: a hanging test is named and the others still run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from jobs.agents.tests import JobDirs
from jobs.testgen.runner import Deadline, PythonSandbox, prepare_run_dir, python_env, run_pytest

TESTS = """\
import time

import slowmod


def test_quick():
    assert slowmod.VALUE == 1


def test_hangs():
    while True:
        time.sleep(0.05)


def test_fails():
    assert slowmod.VALUE == 2
"""


def sandbox(tmp_path: Path, roots: list[Path]) -> PythonSandbox:
    dirs = JobDirs.under(tmp_path / "work")
    dirs.home.mkdir(parents=True)
    dirs.tmp.mkdir(parents=True)
    venv = Path(sys.executable).parent.parent  # the worker's virtualenv: pytest and hypothesis are there
    return PythonSandbox(Path(sys.executable), python_env(dirs, venv, roots))


async def test_a_hanging_test_is_stopped_and_the_rest_run_again(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "slowmod.py").write_text("VALUE = 1\n")
    run_dir = tmp_path / "run"
    prepare_run_dir(run_dir, per_test_timeout_s=1.0)
    (run_dir / "test_slow.py").write_text(TESTS)
    run = await run_pytest(sandbox(tmp_path, [repo]), run_dir, ["test_slow.py"], Deadline(60))
    assert run.problem == ""
    assert run.hung == ["test_slow.py::test_hangs"]
    assert {(c.name, c.status) for c in run.cases} == {("test_quick", "passed"), ("test_fails", "failed")}


async def test_the_sandbox_has_no_worker_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AQE_LLM_API_KEY", "sk-must-not-leak")
    run_dir = tmp_path / "run"
    prepare_run_dir(run_dir, per_test_timeout_s=10.0)
    (run_dir / "test_env.py").write_text(
        "import os\n\ndef test_env():\n    leaked = [k for k in os.environ if k.startswith('AQE_') or "
        "'sk-must-not-leak' in os.environ[k]]\n    assert leaked == []\n"
    )
    run = await run_pytest(sandbox(tmp_path, []), run_dir, ["test_env.py"], Deadline(60))
    assert [(c.name, c.status) for c in run.cases] == [("test_env", "passed")]


async def test_no_report_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    prepare_run_dir(run_dir, per_test_timeout_s=10.0)
    (run_dir / "conftest.py").write_text("import os\nos._exit(3)\n")  # pytest dies before writing a report
    run = await run_pytest(sandbox(tmp_path, []), run_dir, ["test_none.py"], Deadline(60))
    assert run.cases == [] and run.problem == "pytest wrote no report (exit code 3)"
