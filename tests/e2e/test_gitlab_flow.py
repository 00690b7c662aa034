"""GitLab end to end: web + worker + Redis as real processes, and a fake GitLab on 127.0.0.1 that serves the API and
the repository over smart HTTP, checks the token and records calls. No GitHub App is configured here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as redis_sync

from tests.e2e.conftest import ROOT, SampleRepo, api_key_headers, aqe_processes, finished_job, git
from tests.fakes.gitlab import FakeGitLab, hook_headers, merge_request_event, note_event, push_event
from tests.fakes.processes import free_port

PROJECT = "acme/platform/app"  # a nested group: only GitLab has such paths
TOKEN = "glpat-aqe-bot-token-for-tests"
HOOK_SECRET = "gitlab-hook-secret-for-tests"
AGENTS = "agents:\n  pull_request: [tests, coverage]\n  push: [tests, coverage]\n"
STATUS_NAMES = {"aqe/tests", "aqe/coverage"}
FINAL = {"success", "failed", "canceled", "skipped"}


@dataclass
class GitLabStack:
    web_url: str
    fake: FakeGitLab
    repo: SampleRepo
    env: dict[str, str]
    redis_url: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def deliver(self, event: str, payload: dict[str, Any], *, token: str | None = HOOK_SECRET,
                uuid: str | None = None) -> httpx.Response:
        return httpx.post(f"{self.web_url}/webhooks/gitlab", content=json.dumps(payload).encode(),
                          headers=hook_headers(event, token=token, uuid=uuid), timeout=10)

    def aqe(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "app.cli", *args], env=self.env, capture_output=True, text=True,
                              timeout=60, cwd=ROOT)

    def statuses_when_done(self, sha: str, names: set[str] = STATUS_NAMES,
                           timeout: float = 120.0) -> dict[str, dict[str, Any]]:
        """The latest status of each name on `sha`, once every one of `names` is in a final state."""

        def latest(fake: FakeGitLab) -> dict[str, dict[str, Any]]:
            return {s["name"]: s for s in sorted(fake.statuses_for(PROJECT, sha), key=lambda s: s["id"])}

        self.fake.wait_for(lambda f: names <= set(latest(f)) and all(latest(f)[n]["status"] in FINAL for n in names),
                           timeout=timeout)
        return latest(self.fake)

    def update(self) -> None:
        self.fake.update_project(PROJECT, self.repo.path)


@pytest.fixture
def gitlab(tmp_path: Path, redis_url: str) -> Iterator[GitLabStack]:
    with running_gitlab(tmp_path, redis_url) as st:
        yield st


@contextmanager
def running_gitlab(tmp_path: Path, redis_url: str, **settings: str) -> Iterator[GitLabStack]:
    """The fake GitLab with the sample project, and `aqe web` + `aqe worker` for it (with `settings` added)."""
    redis_sync.Redis.from_url(redis_url).flushdb()
    repo = SampleRepo(tmp_path / "sample")
    repo.write(".aqe.yml", AGENTS)
    repo.main_sha = repo.commit("AQE settings")
    fake = FakeGitLab(git_root=tmp_path / "git")
    fake.start()
    fake.add_token(TOKEN, username="aqe-bot")
    fake.add_project(PROJECT, repo.path)
    port = free_port()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "REDIS_URL": redis_url, "GITLAB_URL": fake.base_url,
           "GITLAB_TOKEN": TOKEN, "GITLAB_WEBHOOK_SECRET": f"old-secret,{HOOK_SECRET}",
           "AQE_PUBLIC_URL": f"http://127.0.0.1:{port}", "PORT": str(port), "AQE_DATA_DIR": str(tmp_path / "data"),
           "AQE_LOG_LEVEL": "INFO", "AQE_JWT_SECRET": "jwt-secret-never-in-tests", **settings}
    st = GitLabStack(f"http://127.0.0.1:{port}", fake, repo, env, redis_url)
    try:
        with aqe_processes(tmp_path, env, st.web_url) as st.processes:
            yield st
    finally:
        fake.stop()
    assert TOKEN not in (tmp_path / "stack.log").read_text(errors="replace"), "the GitLab token was logged"


def open_merge_request(st: GitLabStack, iid: int = 1) -> str:
    """A branch with a change (and a new, untested function) and a merge request of it into main."""
    st.repo.branch("feature/mul")
    st.repo.write("calc.py", (st.repo.path / "calc.py").read_text() + "\n\ndef mul(a: int, b: int) -> int:\n    return a * b\n")
    head = st.repo.commit("add mul")
    st.update()
    st.fake.add_merge_request(PROJECT, iid, source_branch="feature/mul", target_branch="main")
    return head


def test_a_merge_request_gets_a_status_per_agent_and_one_note_kept_up_to_date(gitlab: GitLabStack) -> None:
    head = open_merge_request(gitlab)
    answer = gitlab.deliver("Merge Request Hook", merge_request_event(gitlab.fake, PROJECT, 1, action="open"))
    assert answer.status_code == 202, answer.text
    statuses = gitlab.statuses_when_done(head)
    assert statuses["aqe/tests"]["status"] == "success"
    assert statuses["aqe/coverage"]["status"] == "success" and statuses["aqe/coverage"]["coverage"] is not None
    assert statuses["aqe/tests"]["ref"] == "feature/mul"
    assert statuses["aqe/tests"]["target_url"].startswith(f"{gitlab.web_url}/jobs/")
    [note] = gitlab.fake.wait_for(lambda f: f.notes_on(PROJECT, 1))
    assert note["body"].startswith("<!-- aqe:report -->") and head[:7] in note["body"]
    assert note["author"]["username"] == "aqe-bot"
    # every state went through GitLab's rules: pending, running, then the result; no 400 was left unhandled
    posted = gitlab.fake.calls_to("POST", r"/statuses/")
    assert posted and all(call.status in (201, 400) for call in posted)

    gitlab.repo.write("calc.py", (gitlab.repo.path / "calc.py").read_text() + "\n\ndef div(a, b):\n    return a / b\n")
    second = gitlab.repo.commit("add div")
    gitlab.update()
    gitlab.fake.add_merge_request(PROJECT, 1, source_branch="feature/mul", target_branch="main")
    pushed = merge_request_event(gitlab.fake, PROJECT, 1, action="update", oldrev=head)
    assert gitlab.deliver("Merge Request Hook", pushed).status_code == 202
    gitlab.statuses_when_done(second)
    [edited] = gitlab.fake.wait_for(lambda f: [n for n in f.notes_on(PROJECT, 1) if second[:7] in n["body"]])
    assert edited["id"] == note["id"] and len(gitlab.fake.notes_on(PROJECT, 1)) == 1  # edited in place


def test_a_redelivered_hook_starts_one_job_and_an_update_without_commits_none(gitlab: GitLabStack) -> None:
    head = open_merge_request(gitlab)
    event = merge_request_event(gitlab.fake, PROJECT, 1, action="open")
    first = gitlab.deliver("Merge Request Hook", event, uuid="delivery-1")
    again = gitlab.deliver("Merge Request Hook", event, uuid="delivery-1")
    assert first.status_code == 202 and again.json() == {"duplicate": True, "job_id": first.json()["job_ids"][0]}
    relabelled = gitlab.deliver("Merge Request Hook", merge_request_event(gitlab.fake, PROJECT, 1, action="update"))
    assert relabelled.status_code == 200 and "without new commits" in relabelled.json()["ignored"]
    gitlab.statuses_when_done(head)


def test_a_hook_with_a_wrong_token_is_refused_and_starts_nothing(gitlab: GitLabStack) -> None:
    open_merge_request(gitlab)
    answer = gitlab.deliver("Merge Request Hook", merge_request_event(gitlab.fake, PROJECT, 1), token="guess")
    assert answer.status_code == 401 and "X-Gitlab-Token does not match" in answer.json()["detail"]
    unsupported = gitlab.deliver("Pipeline Hook", {"object_kind": "pipeline"})
    assert unsupported.status_code == 200  # GitLab disables hooks that keep getting 4xx
    assert not gitlab.fake.calls_to("POST", r"/statuses/")


def test_a_push_to_the_default_branch_gets_statuses_and_no_note(gitlab: GitLabStack) -> None:
    gitlab.repo.write("calc.py", (gitlab.repo.path / "calc.py").read_text() + "\n\ndef neg(a):\n    return -a\n")
    after = gitlab.repo.commit("add neg")
    gitlab.update()
    event = push_event(gitlab.fake, PROJECT, before=gitlab.repo.main_sha, after=after)
    assert gitlab.deliver("Push Hook", event).status_code == 202
    statuses = gitlab.statuses_when_done(after)
    assert statuses["aqe/tests"]["ref"] == "main"
    redis = redis_sync.Redis.from_url(gitlab.redis_url)
    gitlab.fake.wait_for(lambda _: redis.get(f"aqe:baseline:gitlab:{PROJECT}:main"), description="the baseline")
    assert not gitlab.fake.calls_to("POST", r"/notes$")


def test_aqe_run_in_a_note_analyses_the_merge_requests_head(gitlab: GitLabStack) -> None:
    head = open_merge_request(gitlab)
    assert gitlab.deliver("Note Hook", note_event(gitlab.fake, PROJECT, 1, "/aqe run")).status_code == 202
    assert gitlab.statuses_when_done(head)["aqe/tests"]["status"] == "success"


def test_a_fork_merge_request_is_fetched_from_the_target_and_its_tests_are_held_back(gitlab: GitLabStack) -> None:
    fork = SampleRepo(gitlab.repo.path.parent / "fork")
    fork.write(".aqe.yml", AGENTS)
    fork.write("calc.py", "import os\n\n\ndef add(a, b):\n    return a + b\n")
    head = fork.commit("fork change")
    gitlab.fake.add_project("mallory/app", fork.path)
    gitlab.fake.add_merge_request(PROJECT, 2, source_branch="main", target_branch="main", sha=head,
                                  source_project="mallory/app")
    assert gitlab.deliver("Merge Request Hook", merge_request_event(gitlab.fake, PROJECT, 2)).status_code == 202
    statuses = gitlab.statuses_when_done(head)
    assert statuses["aqe/tests"]["status"] == "success" and "neutral" in statuses["aqe/tests"]["description"]
    assert statuses["aqe/tests"]["ref"] == "refs/merge-requests/2/head"  # the fork's branch is not the project's


def test_an_api_job_on_a_gitlab_project_path_clones_with_the_token_and_writes_nothing_to_gitlab(
        gitlab: GitLabStack) -> None:
    auth = api_key_headers(gitlab, "--scope", "jobs:write", "--scope", "jobs:read")
    answer = httpx.post(f"{gitlab.web_url}/api/v1/test/execute", headers=auth,
                        json={"repo": PROJECT, "ref": "main", "coverage": True}, timeout=10)
    assert answer.status_code == 202, answer.text
    record = finished_job(gitlab, answer.json()["job_id"], auth, timeout=120)
    assert record["status"] == "completed", record
    assert {r["agent"]: r["conclusion"] for r in record["result"]["agents"]}["tests"] == "success"
    clones = gitlab.fake.calls_to("GET", r"/acme/platform/app\.git/info/refs$")
    assert clones and all(call.status == 200 for call in clones)
    assert not gitlab.fake.calls_to("POST", r"/statuses/")  # an API job's results are on the job only
    unknown = httpx.post(f"{gitlab.web_url}/api/v1/test/execute", headers=auth,
                         json={"repo": "acme/other", "sha": "0" * 40, "forge": "github"}, timeout=10)
    assert unknown.status_code == 503 and "GitHub App is not configured" in unknown.json()["detail"]


def test_generate_tests_of_a_developer_opens_a_merge_request_with_the_kept_tests(gitlab: GitLabStack) -> None:
    head = open_merge_request(gitlab)
    gitlab.fake.add_member(PROJECT, "alice", 30)
    assert gitlab.deliver("Note Hook", note_event(gitlab.fake, PROJECT, 1, "/aqe generate-tests")).status_code == 202
    statuses = gitlab.statuses_when_done(head, {"aqe/tests", "aqe/test-generation"}, timeout=180)
    [note] = gitlab.fake.wait_for(lambda f: [n for n in f.notes_on(PROJECT, 1) if "aqe:report" in n["body"]])
    assert gitlab.fake.created_merge_requests, note["body"]
    [proposed] = gitlab.fake.created_merge_requests
    branch = "aqe/generated-tests/mr-1"
    assert (proposed["source_branch"], proposed["target_branch"]) == (branch, "feature/mul")
    assert proposed["author"]["username"] == "aqe-bot" and "!1" in proposed["title"]
    bare = gitlab.fake.repo_path(PROJECT)
    files = git(bare, "ls-tree", "-r", "--name-only", branch).splitlines()
    assert any(f.startswith("tests/generated/") for f in files) and "calc.py" in files
    assert git(bare, "rev-parse", f"{branch}^") == head  # on top of the merge request's head
    assert statuses["aqe/test-generation"]["status"] in ("success", "failed")
    assert f"The generated tests are proposed in {proposed['web_url']}." in note["body"]


def test_generate_tests_of_someone_who_may_not_push_proposes_nothing(gitlab: GitLabStack) -> None:
    head = open_merge_request(gitlab)
    gitlab.fake.add_member(PROJECT, "rita", 20)  # a reporter: may read, may not push
    note = note_event(gitlab.fake, PROJECT, 1, "/aqe generate-tests", user="rita")
    assert gitlab.deliver("Note Hook", note).status_code == 202
    gitlab.statuses_when_done(head, {"aqe/tests", "aqe/test-generation"}, timeout=180)
    [report] = gitlab.fake.wait_for(lambda f: [n for n in f.notes_on(PROJECT, 1) if "aqe:report" in n["body"]])
    assert "the author of the command may not push to the repository" in report["body"]
    assert not gitlab.fake.created_merge_requests and not gitlab.fake.calls_to("POST", r"/repository/commits$")
