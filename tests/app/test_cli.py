"""The `aqe` command as users run it: `aqe run` with nothing configured, and the API key commands."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.fakes.processes import free_port, wait_ready

ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize("web_processes", ["1", "2"])
def test_aqe_run_starts_everything_without_github_settings(tmp_path: Path, web_processes: str) -> None:
    """No REDIS_URL and no GitHub settings: embedded Redis + web (one process or several) + worker start; the
    gap is said once; SIGTERM stops every process."""
    port = free_port()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PORT": str(port), "AQE_DATA_DIR": str(tmp_path / "d"),
           "AQE_WEB_PROCESSES": web_processes}
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "run"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, [proc])
        pidfile = tmp_path / "d" / "redis" / "valkey.pid"
        redis_pid = int(pidfile.read_text())
        body = b'{"zen": "x"}'
        answer = httpx.post(f"{url}/webhooks/github", content=body, headers={"X-GitHub-Event": "ping"})
        assert answer.status_code == 503 and "GITHUB_WEBHOOK_SECRET" in answer.json()["detail"]
        key = subprocess.run([sys.executable, "-m", "app.cli", "api", "generate-key", "--name", "local"], env=env,
                             cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert key.returncode == 0 and key.stdout.startswith("aqe_"), key.stderr
        listed = subprocess.run([sys.executable, "-m", "app.cli", "api", "list-keys"], env=env, cwd=tmp_path,
                                capture_output=True, text=True, timeout=60)
        assert listed.stdout.startswith("local\t" + key.stdout[:8])
        everything = descendants(proc.pid)
        web_roles = [pid for pid in everything if b"\0web\0" in Path(f"/proc/{pid}/cmdline").read_bytes() + b"\0"]
        assert len(web_roles) == (1 if web_processes == "1" else 3)  # a supervisor and its processes
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    assert not [pid for pid in everything if Path(f"/proc/{pid}").exists()
                and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]]
    assert output.count("GitHub is not configured yet (missing: GITHUB_APP_ID") == 1, output
    assert not pidfile.exists()
    assert not Path(f"/proc/{redis_pid}").exists() or "Z" in Path(f"/proc/{redis_pid}/stat").read_text().split()[2]
    assert (tmp_path / "d" / "redis" / "appendonlydir").is_dir()


def descendants(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children] + [d for c in children for d in descendants(int(c))]


def test_invalid_settings_stop_with_the_variable_named(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GITHUB_PRIVATE_KEY_PATH": str(tmp_path / "missing.pem"),
           "AQE_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "app.cli", "run"], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "GITHUB_PRIVATE_KEY_PATH: cannot read" in done.stderr


def test_generate_key_needs_a_name(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "AQE_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "app.cli", "api", "generate-key", "--name", "  "], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--name" in done.stderr


def _aqe(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", "api", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=60)


def test_api_key_token_and_audit_commands(tmp_path: Path, redis_url: str) -> None:
    import jwt
    import redis as redis_sync

    redis_sync.Redis.from_url(redis_url).flushdb()
    secret = "cli-test-secret-" + "z" * 32
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "AQE_DATA_DIR": str(tmp_path), "REDIS_URL": redis_url,
           "AQE_JWT_SECRET": secret}
    made = _aqe(env, tmp_path, "generate-key", "--name", "jenkins", "--expires-in", "90d", "--rate-limit",
                "200/minute", "--scope", "jobs:read", "--scope", "fleet:read", "--repo", "acme/*")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("aqe_") and len(key) == 36
    [row] = _aqe(env, tmp_path, "list-keys").stdout.splitlines()
    name, hint, scopes, repos, rate, _created, expires, last_used, state = row.split("\t")
    assert (name, hint, scopes, repos, rate, last_used, state) == (
        "jenkins", key[:8] + "…", "fleet:read,jobs:read", "acme/*", "200/minute", "-", "active")
    assert expires.endswith("Z")
    issued = _aqe(env, tmp_path, "issue-token", "--sub", "ci-bot", "--scope", "jobs:read", "--expires-in", "1h")
    assert issued.returncode == 0, issued.stderr
    claims = jwt.decode(issued.stdout.strip(), secret, algorithms=["HS256"])
    assert claims["sub"] == "ci-bot" and claims["scope"] == "jobs:read" and claims["exp"] - claims["iat"] == 3600
    revoked = _aqe(env, tmp_path, "revoke-key", "jenkins")
    assert revoked.returncode == 0 and _aqe(env, tmp_path, "list-keys").stdout == ""
    log = _aqe(env, tmp_path, "audit").stdout
    assert [line.split("\t")[2] for line in log.splitlines()] == ["key.revoked", "token.issued", "key.created"]
    assert f"jenkins ({key[:8]}…)" in log and "ci-bot (jti " in log and "\tlocal\t" in log
    assert key not in log and issued.stdout.strip() not in log
    assert len(_aqe(env, tmp_path, "audit", "--limit", "1").stdout.splitlines()) == 1


def test_api_commands_refuse_bad_options(tmp_path: Path, redis_url: str) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "AQE_DATA_DIR": str(tmp_path), "REDIS_URL": redis_url}
    for args, words in ((("generate-key", "--name", "x", "--expires-in", "soon"), "not a duration"),
                        (("generate-key", "--name", "x", "--rate-limit", "fast"), "not a rate"),
                        (("generate-key", "--name", "x", "--scope", "root"), "'root' is not one of"),
                        (("issue-token", "--sub", "x", "--repo", "acme"), "not an 'owner/name' glob"),
                        (("revoke-key", "nobody-by-that-name"), "no key named")):
        done = _aqe(env, tmp_path, *args)
        assert done.returncode == 2 and words in done.stderr, (args, done.stderr)
