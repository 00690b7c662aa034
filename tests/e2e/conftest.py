"""The whole bot as real processes: web (uvicorn) + arq worker + Redis + a fake GitHub on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
import time
from typing import Any, Protocol

import httpx
import pytest
import redis as redis_sync

from tests.conftest import APP_ID, WEBHOOK_SECRET
from tests.fakes.github import FakeGitHub
from tests.fakes.osv import FakeOSV, load_records
from tests.fakes.processes import free_port, wait_ready

REPO = "acme/widgets"
INSTALLATION_ID = 2311213
FIXTURES = Path(__file__).parents[1] / "fixtures" / "github"
CALLBACK_SECRET = "callback-secret-for-tests"
OSV_RECORDS = Path(__file__).parents[1] / "jobs" / "security" / "fixtures" / "osv"  # copies of real records
ROOT = Path(__file__).parents[2]


def git(cwd: Path, *args: str) -> str:
    env = {"PATH": os.environ["PATH"], "HOME": str(cwd), "GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.com",
           "GIT_COMMITTER_NAME": "Ada", "GIT_COMMITTER_EMAIL": "ada@example.com", "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


class SampleRepo:
    """A real git repository with a tiny Python project whose tests fail or pass on demand."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True)
        git(path, "init", "-q", "-b", "main")
        self.write("calc.py", "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n")
        self.write("tests/test_calc.py", "from calc import add, sub\n\n\ndef test_add():\n    assert add(2, 2) == 4\n\n\n"
                                         "def test_sub():\n    assert sub(5, 3) == 2\n")
        self.main_sha = self.commit("initial project")

    def write(self, rel: str, text: str) -> None:
        file = self.path / rel
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text)

    def commit(self, message: str) -> str:
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "-m", message)
        return git(self.path, "rev-parse", "HEAD")

    def branch(self, name: str) -> None:
        git(self.path, "checkout", "-q", "-B", name)


def fixture_payload(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def pull_request_payload(fake_url: str, action: str, number: int, head_sha: str, base_sha: str,
                         head_ref: str) -> dict[str, Any]:
    """A recorded pull_request delivery of `action`, pointed at REPO on the fake GitHub at `fake_url`."""
    payload = fixture_payload(f"pull_request.{action}.json")
    clone_url = f"{fake_url}/{REPO}.git"
    payload["action"] = action
    payload["number"] = number
    pr = payload["pull_request"]
    pr["number"], pr["draft"], pr["state"] = number, False, "open"
    pr["head"].update(sha=head_sha, ref=head_ref)
    pr["base"].update(sha=base_sha, ref="main")
    for repo in (payload["repository"], pr["head"]["repo"], pr["base"]["repo"]):
        repo.update(full_name=REPO, clone_url=clone_url, default_branch="main", fork=False)
    payload["installation"]["id"] = INSTALLATION_ID
    return payload


def signed_headers(body: bytes, event: str, delivery: str | None = None, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "X-Hub-Signature-256": signature, "Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/test"}


class RunsAqe(Protocol):
    web_url: str

    def aqe(self, *args: str) -> subprocess.CompletedProcess[str]: ...


def api_key_headers(stack: RunsAqe, *options: str) -> dict[str, str]:
    """The Authorization header of a new API key (`aqe api generate-key --name ci` and `options`). Its rate limit
    is raised: tests poll job status every 0.1-0.2 s, over the default 100 a minute while a job runs 10 s."""
    created = stack.aqe("api", "generate-key", "--name", "ci", "--rate-limit", "6000/minute", *options)
    assert created.returncode == 0, created.stderr
    return {"Authorization": f"Bearer {created.stdout.split()[-1]}"}


def finished_job(stack: RunsAqe, job_id: str, headers: dict[str, str], timeout: float = 240) -> dict[str, Any]:
    """The job's status once it has ended (or at the deadline), polled through the API."""
    deadline = time.monotonic() + timeout
    while True:
        answer = httpx.get(f"{stack.web_url}/api/v1/job/{job_id}/status", headers=headers, timeout=5)
        assert answer.status_code == 200, answer.text
        record: dict[str, Any] = answer.json()
        if record["status"] in ("completed", "failed", "cancelled") or time.monotonic() > deadline:
            return record
        time.sleep(0.1)


@dataclass
class Stack:
    web_url: str
    fake: FakeGitHub
    repo: SampleRepo
    env: dict[str, str]
    redis_url: str
    osv: FakeOSV
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def deliver(self, event: str, payload: dict[str, Any], *, delivery: str | None = None,
                secret: str = WEBHOOK_SECRET) -> httpx.Response:
        body = json.dumps(payload).encode()
        return httpx.post(f"{self.web_url}/webhooks/github", content=body,
                          headers=signed_headers(body, event, delivery, secret), timeout=10)

    def pull_request_payload(self, action: str, number: int, head_sha: str, base_sha: str, head_ref: str) -> dict[str, Any]:
        return pull_request_payload(self.fake.url, action, number, head_sha, base_sha, head_ref)

    def aqe(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "app.cli", *args], env=self.env, capture_output=True, text=True,
                              timeout=60, cwd=ROOT)

    def checks_when_done(self, sha: str, timeout: float = 120.0) -> dict[str, dict[str, Any]]:
        """The check runs of `sha` by name, once the job has created them all and every one is completed."""

        def done(fake: FakeGitHub) -> bool:
            runs = [r for r in fake.check_runs.values() if r["head_sha"] == sha]
            return any(r["name"] == "aqe/quality-gate" or r["name"] == "aqe/config" for r in runs) and all(
                r["status"] == "completed" for r in runs)

        self.fake.wait_for(done, timeout=timeout)
        return {r["name"]: r for r in self.fake.check_runs.values() if r["head_sha"] == sha}

    def wait_ready(self, timeout: float = 30.0) -> None:
        wait_ready(self.web_url, self.processes, timeout)


@pytest.fixture
def stack(tmp_path: Path, redis_url: str, private_key_file: Path, rsa_key_pair: tuple[bytes, bytes]) -> Iterator[Stack]:
    with running_stack(tmp_path, redis_url, private_key_file, rsa_key_pair) as st:
        yield st


@contextmanager
def running_stack(tmp_path: Path, redis_url: str, private_key_file: Path, rsa_key_pair: tuple[bytes, bytes],
                  **settings: str) -> Iterator[Stack]:
    """The fake GitHub and OSV, the sample repository, and `aqe web` + `aqe worker` (with `settings` added)."""
    redis_sync.Redis.from_url(redis_url).flushdb()
    repo = SampleRepo(tmp_path / "sample")
    fake = FakeGitHub(APP_ID, rsa_key_pair[1], git_root=tmp_path / "git")
    fake.start()
    fake.add_repo(REPO, repo.path)
    fake.install(INSTALLATION_ID, [REPO])
    osv = FakeOSV(load_records(OSV_RECORDS))
    osv.start()
    port = free_port()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "REDIS_URL": redis_url, "GITHUB_APP_ID": str(APP_ID),
           "GITHUB_PRIVATE_KEY_PATH": str(private_key_file), "GITHUB_WEBHOOK_SECRET": f"old-secret,{WEBHOOK_SECRET}",
           "GITHUB_API_URL": fake.url, "AQE_PUBLIC_URL": f"http://127.0.0.1:{port}", "PORT": str(port),
           "AQE_DATA_DIR": str(tmp_path / "data"), "AQE_LOG_LEVEL": "INFO", "AQE_OSV_URL": osv.url,
           # secrets of the worker's own environment that must never reach the code under test
           "AQE_JWT_SECRET": "jwt-secret-never-in-tests", "AQE_CALLBACK_SECRET": CALLBACK_SECRET, **settings}
    st = Stack(f"http://127.0.0.1:{port}", fake, repo, env, redis_url, osv)
    try:
        with aqe_processes(tmp_path, env, st.web_url) as st.processes:
            yield st
    finally:
        fake.stop()
        osv.stop()


@contextmanager
def aqe_processes(tmp_path: Path, env: dict[str, str], web_url: str) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`aqe web` and `aqe worker` run with `env`, ready to serve; stopped on exit, and the tail of their log
    (`tmp_path/stack.log`) printed for the test report."""
    log = open(tmp_path / "stack.log", "wb")
    processes = [subprocess.Popen([sys.executable, "-m", "app.cli", *role], env=env, cwd=ROOT, stdout=log,
                                  stderr=subprocess.STDOUT) for role in (["web", "--host", "127.0.0.1"], ["worker"])]
    try:
        wait_ready(web_url, processes, 30.0)
        yield processes
    finally:
        for proc in processes:
            proc.terminate()
        for proc in processes:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
        sys.stdout.write((tmp_path / "stack.log").read_text(errors="replace")[-6000:])
