"""jobs.sandbox with real processes: limits, deadlines, process groups and a clean environment."""

from __future__ import annotations

import asyncio
import os
import subprocess
import textwrap
import sys
import time
from pathlib import Path

import pytest

from jobs.sandbox import run_sandboxed, scrubbed_env, shell_argv

PY = sys.executable


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())


async def wait_dead(pid: int, within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "home" / "tmp").mkdir(parents=True)
    return scrubbed_env(tmp_path / "home", [], {})


# -------------------------------------------------------------------------------- environment


def test_scrubbed_env_has_only_the_allowed_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GITHUB_TOKEN", "AQE_SECRET", "REDIS_URL", "GITHUB_APP_PRIVATE_KEY", "VIRTUAL_ENV"):
        monkeypatch.setenv(name, "leak")
    env = scrubbed_env(tmp_path / "home", [tmp_path / "venv" / "bin"], {"AQE_REPORTS_DIR": "/r"})
    assert set(env) == {
        "PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONDONTWRITEBYTECODE", "PIP_DISABLE_PIP_VERSION_CHECK",
        "CI", "GIT_CONFIG_NOSYSTEM", "GIT_TERMINAL_PROMPT", "AQE_REPORTS_DIR",
    }  # fmt: skip
    assert env["PATH"] == f"{tmp_path}/venv/bin:/usr/local/bin:/usr/bin:/bin"
    assert env["HOME"] == str(tmp_path / "home")
    assert env["TMPDIR"] == str(tmp_path / "home" / "tmp")
    assert (env["LANG"], env["LC_ALL"], env["CI"], env["GIT_TERMINAL_PROMPT"]) == ("C.UTF-8", "C.UTF-8", "true", "0")
    assert "leak" not in env.values()


def test_scrubbed_env_tmpdir_can_be_chosen(tmp_path: Path) -> None:
    assert scrubbed_env(tmp_path, [], {}, tmpdir=tmp_path / "t")["TMPDIR"] == str(tmp_path / "t")


def test_shell_argv() -> None:
    assert shell_argv("echo hi && false") == ["/bin/sh", "-c", "echo hi && false"]
    assert shell_argv(("ls", "-l")) == ["ls", "-l"]


@pytest.mark.asyncio
async def test_the_worker_environment_does_not_reach_the_command(
    tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_secret")
    monkeypatch.setenv("AQE_SECRET", "s3cret")
    result = await run_sandboxed("env", cwd=tmp_path, env=env, timeout_s=10, memory_mb=256)
    names = {line.split("=", 1)[0] for line in result.output.splitlines() if "=" in line}
    assert "GITHUB_TOKEN" not in names and "AQE_SECRET" not in names
    assert "ghs_secret" not in result.output and "s3cret" not in result.output


# ------------------------------------------------------------------------------------ running


@pytest.mark.asyncio
async def test_shell_command_output_and_exit_code(tmp_path: Path, env: dict[str, str]) -> None:
    command = "echo out; echo err >&2; pwd; exit 3"
    result = await run_sandboxed(command, cwd=tmp_path, env=env, timeout_s=10, memory_mb=256)
    assert result.returncode == 3 and not result.timed_out
    assert result.output.splitlines() == ["out", "err", str(tmp_path)]
    assert result.duration_s >= 0 and not result.output_truncated


@pytest.mark.asyncio
async def test_argv_is_not_run_through_a_shell(tmp_path: Path, env: dict[str, str]) -> None:
    result = await run_sandboxed([PY, "-c", "import sys; print(sys.argv[1:])", "$HOME", "a b"],
                                 cwd=tmp_path, env=env, timeout_s=10, memory_mb=256)  # fmt: skip
    assert result.returncode == 0
    assert result.output.strip() == "['$HOME', 'a b']"


@pytest.mark.asyncio
async def test_runs_in_its_own_session_without_core_dumps_and_under_the_memory_limit(
    tmp_path: Path, env: dict[str, str]
) -> None:
    code = (
        "import os, resource\n"
        "print(os.getsid(0) == os.getpid(), os.getpgid(0) == os.getpid())\n"
        "print(resource.getrlimit(resource.RLIMIT_CORE))\n"
        "print(resource.getrlimit(resource.RLIMIT_AS))\n"
    )
    result = await run_sandboxed([PY, "-c", code], cwd=tmp_path, env=env, timeout_s=10, memory_mb=300)
    limit = 300 * 1024 * 1024
    assert result.output.splitlines() == ["True True", "(0, 0)", f"({limit}, {limit})"]


@pytest.mark.asyncio
async def test_allocating_past_the_memory_limit_fails(tmp_path: Path, env: dict[str, str]) -> None:
    code = "b = bytearray(2 * 1024 ** 3)\nprint('allocated')"
    result = await run_sandboxed([PY, "-c", code], cwd=tmp_path, env=env, timeout_s=30, memory_mb=256)
    assert result.returncode != 0
    assert "MemoryError" in result.output and "allocated" not in result.output


@pytest.mark.asyncio
async def test_only_the_tail_of_long_output_is_kept(tmp_path: Path, env: dict[str, str]) -> None:
    code = "for i in range(20000): print(f'line {i}')"
    result = await run_sandboxed([PY, "-c", code], cwd=tmp_path, env=env, timeout_s=30, memory_mb=256,
                                 output_limit_bytes=1000)  # fmt: skip
    assert len(result.output.encode()) <= 1000
    assert result.output.endswith("line 19999\n")
    assert result.output_truncated and result.returncode == 0


# ----------------------------------------------------------------------------- process groups


@pytest.mark.asyncio
async def test_timeout_kills_the_whole_process_group(tmp_path: Path, env: dict[str, str]) -> None:
    pidfile = tmp_path / "child.pid"
    started = time.monotonic()
    result = await run_sandboxed(f"sleep 60 & echo $! > {pidfile}; echo started; wait", cwd=tmp_path, env=env,
                                 timeout_s=0.5, memory_mb=256)  # fmt: skip
    assert result.timed_out and result.returncode != 0
    assert "started" in result.output
    assert time.monotonic() - started < 5
    assert await wait_dead(int(pidfile.read_text()))


@pytest.mark.asyncio
async def test_processes_ignoring_sigterm_get_sigkill_after_the_grace(tmp_path: Path, env: dict[str, str]) -> None:
    started = time.monotonic()
    result = await run_sandboxed("trap '' TERM; sleep 60", cwd=tmp_path, env=env, timeout_s=0.3, memory_mb=256,
                                 kill_grace_s=0.5)  # fmt: skip
    elapsed = time.monotonic() - started
    assert result.timed_out
    assert 0.7 <= elapsed < 5


@pytest.mark.asyncio
async def test_leftover_background_processes_are_killed_when_the_command_exits(
    tmp_path: Path, env: dict[str, str]
) -> None:
    pidfile = tmp_path / "bg.pid"
    started = time.monotonic()
    result = await run_sandboxed(f"sleep 60 & echo $! > {pidfile}; echo done", cwd=tmp_path, env=env,
                                 timeout_s=30, memory_mb=256)  # fmt: skip
    assert result.returncode == 0 and not result.timed_out
    assert result.output.strip() == "done"
    assert time.monotonic() - started < 5
    assert await wait_dead(int(pidfile.read_text()))


@pytest.mark.asyncio
async def test_cancelling_the_caller_kills_the_process_group(tmp_path: Path, env: dict[str, str]) -> None:
    pidfile = tmp_path / "c.pid"
    task = asyncio.create_task(
        run_sandboxed(f"sleep 60 & echo $! > {pidfile}; wait", cwd=tmp_path, env=env, timeout_s=60, memory_mb=256)
    )
    for _ in range(100):
        if pidfile.exists() and pidfile.read_text().strip():
            break
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_dead(int(pidfile.read_text()))


@pytest.mark.asyncio
async def test_a_process_that_left_the_group_cannot_hold_the_run_open(tmp_path: Path, env: dict[str, str]) -> None:
    pidfile = tmp_path / "escaped.pid"
    escape = f"import os, time; os.setsid(); open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    started = time.monotonic()
    try:
        spawn = f"import subprocess, sys; subprocess.Popen([sys.executable, '-c', {escape!r}]); print('bye')"
        result = await run_sandboxed([PY, "-c", spawn], cwd=tmp_path, env=env, timeout_s=30, memory_mb=512)
        assert result.returncode == 0 and not result.timed_out
        assert result.output.strip() == "bye"
        assert time.monotonic() - started < 10
    finally:
        for _ in range(100):
            if pidfile.exists() and pidfile.read_text():
                os.kill(int(pidfile.read_text()), 9)
                break
            await asyncio.sleep(0.05)


def test_sandboxed_code_cannot_read_the_workers_environment(tmp_path: Path) -> None:
    """A hardened (non-dumpable) worker's /proc/<pid>/environ is closed to the code it runs, even as root."""
    script = textwrap.dedent(f"""
        import asyncio, os, sys
        from pathlib import Path
        from jobs.sandbox import harden_process, run_sandboxed
        os.environ["GITHUB_PRIVATE_KEY"] = "very-secret-value"
        assert harden_process()
        command = "cat /proc/{{}}/environ; grep CapEff /proc/self/status".format(os.getpid())
        result = asyncio.run(run_sandboxed(command, cwd=Path({str(tmp_path)!r}), env={{"PATH": "/usr/bin:/bin"}},
                                           timeout_s=30, memory_mb=512))
        print(result.output)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr
    assert "very-secret-value" not in done.stdout
    assert "Permission denied" in done.stdout
    assert "CapEff:\t0000000000000000" in done.stdout
