"""The GitLab reporter against the fake GitLab (a real HTTP server on 127.0.0.1) and a real Redis: commit statuses
`aqe/<agent>` through GitLab's state machine, and the one merge request note kept up to date."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from jobs.forges.gitlab.client import GitLabClient, project_id
from jobs.forges.gitlab.reporter import GitLabReporter
from jobs.model import AgentResult, Conclusion, JobRecord, RunRequest
from jobs.reporting.render import COMMENT_MARKER
from tests.fakes.gitlab import FakeGitLab

PROJECT = "acme/platform/app"
FORK = "mallory/app"
TOKEN = "glpat-reporter-tests-token"
JOB_ID = "a" * 24
PUBLIC_URL = "http://aqe.test"
JOB_URL = f"{PUBLIC_URL}/jobs/{JOB_ID}?t=1234.sig"
CACHE_KEY = f"aqe:comment:gitlab:{PROJECT}:1"
GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "A", "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "A",
           "GIT_COMMITTER_EMAIL": "a@x", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, env=GIT_ENV, check=True, capture_output=True,
                          text=True).stdout.strip()


def commit(repo: Path, name: str, content: str) -> str:
    (repo / name).write_text(content)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"add {name}")
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeGitLab]:
    """main: base -> main; feature: base -> feature (MR !1 into main, so its merge base is `base`, not main's tip);
    a fork with branch fix (MR !2 into main)."""
    source = tmp_path / "src"
    source.mkdir()
    git(source, "init", "-q", "-b", "main")
    base = commit(source, "a.txt", "a\n")
    main = commit(source, "m.txt", "m\n")
    git(source, "checkout", "-q", "-b", "feature", base)
    feature = commit(source, "f.txt", "f\n")
    git(source, "checkout", "-q", "main")
    fork = tmp_path / "fork"
    git(tmp_path, "clone", "-q", str(source), str(fork))
    git(fork, "checkout", "-q", "-b", "fix")
    fix = commit(fork, "fix.txt", "fix\n")
    with FakeGitLab(git_root=tmp_path / "git") as gl:
        gl.add_token(TOKEN)
        gl.add_project(PROJECT, source)
        gl.add_project(FORK, fork)
        gl.add_merge_request(PROJECT, 1, source_branch="feature", target_branch="main")
        gl.add_merge_request(PROJECT, 2, source_branch="fix", target_branch="main", source_project=FORK)
        gl.shas = {"base": base, "main": main, "feature": feature, "fix": fix}  # type: ignore[attr-defined]
        gl.source = source  # type: ignore[attr-defined]
        yield gl


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


def sha(fake: FakeGitLab, name: str) -> str:
    return fake.shas[name]  # type: ignore[attr-defined, no-any-return]


def reporter_for(fake: FakeGitLab, http: httpx.AsyncClient, redis: Redis, *, head: str = "feature",
                 head_ref: str | None = "feature", fork: bool = False, mr_iid: int | None = 1,
                 refs: dict[str, int] | None = None, job_url: str = JOB_URL) -> GitLabReporter:
    gl = GitLabClient(http, api_url=f"{fake.base_url}/api/v4", token=TOKEN)
    return GitLabReporter(gl, redis, repo=PROJECT, head_sha=sha(fake, head), head_ref=head_ref, fork=fork,
                          job_id=JOB_ID, job_url=job_url, public_url=PUBLIC_URL, refs=refs, mr_iid=mr_iid)


def latest(fake: FakeGitLab, head: str, project: str = PROJECT) -> dict[str, dict[str, Any]]:
    """The newest status of each name on `head`."""
    return {s["name"]: s for s in fake.statuses_for(project, head)}


def status_posts(fake: FakeGitLab) -> list[tuple[str, str, int]]:
    return [(c.params["name"], c.params["state"], c.status) for c in fake.calls_to("POST", r"/statuses/")]


def result(agent: str, conclusion: Conclusion, title: str = "done", **extra: Any) -> AgentResult:
    return AgentResult(agent=agent, conclusion=conclusion, title=title, summary=f"{agent} summary", **extra)


def record(fake: FakeGitLab, results: list[AgentResult], pr_number: int = 1) -> JobRecord:
    request = RunRequest(forge="gitlab", repo=PROJECT, clone_url=fake.clone_url(PROJECT), head_sha=sha(fake, "feature"),
                         head_ref="feature", trigger="merge_request.open", agents=[r.agent for r in results],
                         pr_number=pr_number)
    return JobRecord(id=JOB_ID, status="running", request=request, created_at=0.0, results=results)


# --------------------------------------------------------------------------- resolve


async def test_resolve_fills_a_note_commands_request_from_the_merge_request(fake: FakeGitLab,
                                                                            http: httpx.AsyncClient,
                                                                            redis: Redis) -> None:
    reporter = reporter_for(fake, http, redis, head_ref=None)
    reporter.head_sha = ""
    resolved = await reporter.resolve(note_request(fake, 1, "feature"))
    assert (resolved.head_sha, resolved.head_ref) == (sha(fake, "feature"), "feature")
    assert (resolved.base_sha, resolved.base_ref) == (sha(fake, "base"), "main")  # the merge base, not main's tip
    assert resolved.fork is False and resolved.draft is False
    assert resolved.trusted is False  # carol is no member of the project
    assert (reporter.head_sha, reporter.head_ref, reporter.fork) == (sha(fake, "feature"), "feature", False)

    forked = await reporter_for(fake, http, redis, mr_iid=2).resolve(note_request(fake, 2, "fix", fork=False))
    assert forked.fork is True and (forked.head_sha, forked.head_ref) == (sha(fake, "fix"), "fix")
    assert forked.base_sha == sha(fake, "main")


def note_request(fake: FakeGitLab, iid: int, source_branch: str, sender: str = "carol", fork: bool = False
                 ) -> RunRequest:
    """What the webhook makes of a `/aqe run` note: no head sha, the author as sender (see gitlab/webhook.py)."""
    return RunRequest(forge="gitlab", repo=PROJECT, clone_url=fake.clone_url(PROJECT), head_sha="",
                      head_ref=source_branch, base_ref="main", trigger="note.create", agents=[], pr_number=iid,
                      fork=fork, sender=sender)


async def test_resolve_trusts_a_note_of_a_developer_only(fake: FakeGitLab, http: httpx.AsyncClient,
                                                         redis: Redis) -> None:
    fake.add_member(PROJECT, "dana", 30)
    fake.add_member(PROJECT, "olga", 50)
    fake.add_member(PROJECT, "rita", 20)
    fake.add_member(PROJECT, "danae", 10)  # "dana" matches her too: only the exact username counts
    trusted = {sender: (await reporter_for(fake, http, redis).resolve(note_request(fake, 1, "feature", sender))
                        ).trusted for sender in ("dana", "olga", "rita", "danae", "zed")}
    assert trusted == {"dana": True, "olga": True, "rita": False, "danae": False, "zed": False}
    assert {c.query.get("query") for c in fake.calls_to("GET", r"/members/all$")} == {
        "dana", "olga", "rita", "danae", "zed"}


async def test_resolve_keeps_a_hooks_head_and_reads_the_draft_flag(fake: FakeGitLab, http: httpx.AsyncClient,
                                                                   redis: Redis) -> None:
    fake.add_merge_request(PROJECT, 1, source_branch="feature", target_branch="main", draft=True)
    request = RunRequest(forge="gitlab", repo=PROJECT, clone_url=fake.clone_url(PROJECT), head_sha=sha(fake, "base"),
                         head_ref="feature", trigger="merge_request.update", agents=[], pr_number=1,
                         base_sha=sha(fake, "main"))
    resolved = await reporter_for(fake, http, redis).resolve(request)
    assert resolved.head_sha == sha(fake, "base") and resolved.base_sha == sha(fake, "main")  # given: kept
    assert resolved.draft is True and resolved.base_ref == "main"
    push = RunRequest(forge="gitlab", repo=PROJECT, clone_url="u", head_sha=sha(fake, "main"), head_ref="main",
                      trigger="push", agents=[])
    fake.reset_calls()
    assert await reporter_for(fake, http, redis, mr_iid=None).resolve(push) is push
    assert fake.calls == []  # a push has no merge request to read


# --------------------------------------------------------------------------- statuses


async def test_begin_posts_pending_once_and_a_retried_job_does_not_post_again(fake: FakeGitLab,
                                                                              http: httpx.AsyncClient,
                                                                              redis: Redis) -> None:
    reporter = reporter_for(fake, http, redis)
    await reporter.begin(["tests", "coverage"])
    statuses = latest(fake, sha(fake, "feature"))
    assert set(statuses) == {"aqe/tests", "aqe/coverage"}
    for status in statuses.values():
        assert (status["status"], status["ref"], status["description"]) == ("pending", "feature", "Queued")
        assert status["target_url"] == JOB_URL and status["author"]["username"] == "aqe-bot"
    assert reporter.refs == {"tests": statuses["aqe/tests"]["id"], "coverage": statuses["aqe/coverage"]["id"]}

    retried = reporter_for(fake, http, redis, refs=reporter.refs)
    await retried.begin(["tests", "coverage"])
    assert len(status_posts(fake)) == 2  # nothing new
    await retried.agent_started("tests")
    assert latest(fake, sha(fake, "feature"))["aqe/tests"]["status"] == "running"


async def test_running_twice_is_benign(fake: FakeGitLab, http: httpx.AsyncClient, redis: Redis) -> None:
    await reporter_for(fake, http, redis).begin(["tests"])
    again = reporter_for(fake, http, redis)  # e.g. the job record lost its refs
    await again.begin(["tests"])
    assert again.refs == {"tests": 0}
    await again.agent_started("tests")
    await again.agent_started("tests")
    assert status_posts(fake) == [("aqe/tests", "pending", 201), ("aqe/tests", "pending", 400),
                                  ("aqe/tests", "running", 201), ("aqe/tests", "running", 400)]
    assert fake.calls_to("POST", r"/statuses/")[-1].status == 400
    await again.agent_finished(result("tests", "success", "12 passed"))
    assert latest(fake, sha(fake, "feature"))["aqe/tests"]["status"] == "success"


async def test_conclusions_map_to_gitlab_states(fake: FakeGitLab, http: httpx.AsyncClient, redis: Redis) -> None:
    reporter = reporter_for(fake, http, redis)
    agents = ["tests", "coverage", "security", "quality", "performance"]
    await reporter.begin(agents)
    for agent in agents:
        await reporter.agent_started(agent)
    await reporter.agent_finished(result("tests", "neutral", "No tests found"))
    await reporter.agent_finished(result("coverage", "success", "87.5% covered", metrics={"total_percent": 87.5}))
    await reporter.agent_finished(result("security", "failure", "2 vulnerable dependencies",
                                         metrics={"total_percent": 50}))
    await reporter.agent_finished(result("quality", "timed_out", "Timed out"))
    await reporter.agent_finished(result("performance", "cancelled", "Cancelled"))
    statuses = latest(fake, sha(fake, "feature"))
    assert {name: s["status"] for name, s in statuses.items()} == {
        "aqe/tests": "success", "aqe/coverage": "success", "aqe/security": "failed", "aqe/quality": "failed",
        "aqe/performance": "canceled"}
    assert statuses["aqe/tests"]["description"] == "neutral: No tests found"
    assert statuses["aqe/coverage"]["description"] == "87.5% covered" and statuses["aqe/coverage"]["coverage"] == 87.5
    assert statuses["aqe/security"]["coverage"] is None  # only the coverage agent sends one
    assert statuses["aqe/security"]["description"] == "2 vulnerable dependencies"
    assert reporter.finished == set(agents)


async def test_a_check_skipped_after_it_started_ends(fake: FakeGitLab, http: httpx.AsyncClient,
                                                    redis: Redis) -> None:
    reporter = reporter_for(fake, http, redis)
    await reporter.begin(["tests"])
    await reporter.agent_started("tests")  # the pipeline starts every agent, then policy may skip it
    await reporter.agent_finished(result("tests", "skipped", "Draft pull request"))
    status = latest(fake, sha(fake, "feature"))["aqe/tests"]  # GitLab refuses :skip from :running
    assert (status["status"], status["description"]) == ("success", "skipped: Draft pull request")
    assert [state for _, state, _ in status_posts(fake)] == ["pending", "running", "skipped", "success"]

    await reporter.begin(["coverage"])
    await reporter.agent_started("coverage")
    await reporter.abort("skipped", "nothing to analyse")
    status = latest(fake, sha(fake, "feature"))["aqe/coverage"]
    assert (status["status"], status["description"]) == ("success", "Skipped: nothing to analyse")


async def test_a_check_skipped_before_it_started_is_skipped(fake: FakeGitLab, http: httpx.AsyncClient,
                                                            redis: Redis) -> None:
    reporter = reporter_for(fake, http, redis)
    await reporter.begin(["tests"])
    await reporter.agent_finished(result("tests", "skipped", "Draft pull request"))
    status = latest(fake, sha(fake, "feature"))["aqe/tests"]
    assert (status["status"], status["description"]) == ("skipped", "Draft pull request")


async def test_abort_ends_only_unfinished_agents(fake: FakeGitLab, http: httpx.AsyncClient, redis: Redis) -> None:
    reporter = reporter_for(fake, http, redis)
    await reporter.begin(["tests", "coverage", "security"])
    await reporter.agent_started("tests")
    await reporter.agent_finished(result("tests", "success", "12 passed"))
    await reporter.agent_started("coverage")
    reason = "The worker stopped:\n" + "out of memory " * 40  # newlines folded, cut to GitLab's 255 characters
    await reporter.abort("cancelled", reason)
    statuses = latest(fake, sha(fake, "feature"))
    assert {name: s["status"] for name, s in statuses.items()} == {
        "aqe/tests": "success", "aqe/coverage": "canceled", "aqe/security": "canceled"}
    description = statuses["aqe/coverage"]["description"]
    assert description.startswith("Cancelled: The worker stopped: out of memory") and len(description) == 255
    posted = len(status_posts(fake))
    await reporter.abort("timed_out", "again")  # everything has ended: nothing more
    assert len(status_posts(fake)) == posted
    assert [s for s in status_posts(fake) if s[0] == "aqe/tests"] == [
        ("aqe/tests", "pending", 201), ("aqe/tests", "running", 201), ("aqe/tests", "success", 201)]


async def test_abort_as_timed_out_fails_the_checks(fake: FakeGitLab, http: httpx.AsyncClient, redis: Redis) -> None:
    reporter = reporter_for(fake, http, redis)
    await reporter.begin(["tests"])
    await reporter.agent_started("tests")
    await reporter.abort("timed_out", "The job ran for more than 30 minutes")
    status = latest(fake, sha(fake, "feature"))["aqe/tests"]
    assert (status["status"], status["description"]) == ("failed", "Timed out: The job ran for more than 30 minutes")


async def test_a_long_job_link_is_shortened_to_the_job_page(fake: FakeGitLab, http: httpx.AsyncClient,
                                                            redis: Redis) -> None:
    long_url = f"{PUBLIC_URL}/jobs/{JOB_ID}?t=" + "x" * 300
    reporter = reporter_for(fake, http, redis, job_url=long_url)
    await reporter.begin(["tests"])
    assert latest(fake, sha(fake, "feature"))["aqe/tests"]["target_url"] == f"{PUBLIC_URL}/jobs/{JOB_ID}"
    assert reporter.job_url == long_url  # the note still links with the token


async def test_a_forks_statuses_go_to_the_merge_request_ref(fake: FakeGitLab, http: httpx.AsyncClient,
                                                            redis: Redis) -> None:
    reporter = reporter_for(fake, http, redis, head="fix", head_ref="fix", fork=True, mr_iid=2)
    await reporter.begin(["tests"])
    await reporter.agent_finished(result("tests", "success"))
    status = latest(fake, sha(fake, "fix"))["aqe/tests"]
    assert (status["status"], status["ref"]) == ("success", "refs/merge-requests/2/head")
    assert fake.statuses_for(FORK, sha(fake, "fix")) == []  # posted in the target project


async def test_a_push_posts_on_its_branch(fake: FakeGitLab, http: httpx.AsyncClient, redis: Redis) -> None:
    reporter = reporter_for(fake, http, redis, head="main", head_ref="main", mr_iid=None)
    await reporter.begin(["tests"])
    assert latest(fake, sha(fake, "main"))["aqe/tests"]["ref"] == "main"
    await reporter.summarise(record(fake, []), set())  # no merge request: no note
    assert fake.calls_to("*", r"/notes") == []


# --------------------------------------------------------------------------- the note


async def test_one_note_is_created_then_edited_even_by_another_reporter(fake: FakeGitLab, http: httpx.AsyncClient,
                                                                       redis: Redis) -> None:
    fake.add_note(PROJECT, 1, f"quoting the bot: {COMMENT_MARKER}", username="mallory")
    system = fake.add_note(PROJECT, 1, f"aqe-bot changed the description {COMMENT_MARKER}", username="aqe-bot",
                           system=True)
    reporter = reporter_for(fake, http, redis)
    await reporter.summarise(record(fake, [result("tests", "success", "12 passed")]), set())
    notes = fake.notes_on(PROJECT, 1)
    mine = [n for n in notes if n["author"]["username"] == "aqe-bot" and not n["system"]]
    assert len(mine) == 1 and mine[0]["body"].startswith(COMMENT_MARKER) and "12 passed" in mine[0]["body"]
    assert JOB_URL in mine[0]["body"]
    assert int(await redis.get(CACHE_KEY)) == mine[0]["id"]
    assert 0 < await redis.ttl(CACHE_KEY) <= 90 * 24 * 3600

    await reporter.summarise(record(fake, [result("tests", "failure", "3 failed")]), set())
    assert len(fake.calls_to("POST", r"/notes$")) == 1 and len(fake.calls_to("PUT", r"/notes/\d+$")) == 1

    for index in range(130):  # the bot's note is on the first page of 100, these push others along
        fake.add_note(PROJECT, 1, f"comment {index}", username="bob")
    await redis.delete(CACHE_KEY)  # another worker, or the cache expired
    other = reporter_for(fake, http, redis)
    await other.summarise(record(fake, [result("tests", "success", "all green now")]), set())
    assert len(fake.calls_to("POST", r"/notes$")) == 1
    edited = [n for n in fake.notes_on(PROJECT, 1) if n["id"] == mine[0]["id"]][0]
    assert "all green now" in edited["body"] and int(await redis.get(CACHE_KEY)) == mine[0]["id"]
    assert [n for n in fake.notes_on(PROJECT, 1) if n["id"] == system["id"]][0]["body"] == system["body"]
    assert all(c.status == 200 for c in fake.calls_to("PUT", r"/notes/\d+$"))


async def test_the_note_is_found_after_many_others(fake: FakeGitLab, http: httpx.AsyncClient, redis: Redis) -> None:
    for index in range(130):
        fake.add_note(PROJECT, 1, f"comment {index} {COMMENT_MARKER}", username="bob")
    await reporter_for(fake, http, redis).summarise(record(fake, [result("tests", "success")]), set())
    [mine] = [n for n in fake.notes_on(PROJECT, 1) if n["author"]["username"] == "aqe-bot"]
    await redis.delete(CACHE_KEY)
    fake.reset_calls()
    await reporter_for(fake, http, redis).summarise(record(fake, [result("tests", "failure", "broken")]), set())
    assert [c.query["page"] for c in fake.calls_to("GET", r"/notes$")] == ["1", "2"]  # found on page 2
    assert fake.calls_to("POST", r"/notes$") == []
    assert [c.path.rsplit("/", 1)[1] for c in fake.calls_to("PUT", r"/notes/\d+$")] == [str(mine["id"])]


async def test_a_deleted_note_is_written_again(fake: FakeGitLab, http: httpx.AsyncClient, redis: Redis) -> None:
    reporter = reporter_for(fake, http, redis)
    await reporter.summarise(record(fake, [result("tests", "success")]), set())
    [first] = fake.notes_on(PROJECT, 1)
    notes = f"{fake.base_url}/api/v4/projects/{project_id(PROJECT)}/merge_requests/1/notes"
    deleted = await http.delete(f"{notes}/{first['id']}", headers={"PRIVATE-TOKEN": TOKEN})
    assert deleted.status_code == 204
    await reporter.summarise(record(fake, [result("tests", "failure", "now failing")]), set())  # cached id: 404
    [second] = fake.notes_on(PROJECT, 1)
    assert second["id"] != first["id"] and "now failing" in second["body"]
    assert int(await redis.get(CACHE_KEY)) == second["id"]
    assert [c.status for c in fake.calls_to("PUT", r"/notes/\d+$")] == [404]

    await http.delete(f"{notes}/{second['id']}", headers={"PRIVATE-TOKEN": TOKEN})
    await redis.delete(CACHE_KEY)  # nothing cached and nothing to find: a new one too
    await reporter_for(fake, http, redis).summarise(record(fake, [result("tests", "success", "back")]), set())
    [third] = fake.notes_on(PROJECT, 1)
    assert "back" in third["body"] and int(await redis.get(CACHE_KEY)) == third["id"]


async def test_a_merge_request_that_moved_on_is_left_alone(fake: FakeGitLab, http: httpx.AsyncClient,
                                                           redis: Redis) -> None:
    reporter = reporter_for(fake, http, redis)
    await reporter.summarise(record(fake, [result("tests", "success", "old push")]), set())
    [note] = fake.notes_on(PROJECT, 1)
    source: Path = fake.source  # type: ignore[attr-defined]
    git(source, "checkout", "-q", "feature")
    newer = commit(source, "g.txt", "g\n")
    git(source, "checkout", "-q", "main")
    fake.update_project(PROJECT, source)
    assert fake.merge_request(PROJECT, 1)["sha"] == newer
    fake.reset_calls()
    await reporter.summarise(record(fake, [result("tests", "failure", "stale results")]), set())
    assert fake.notes_on(PROJECT, 1) == [note]
    assert fake.calls_to("POST", r"/notes") == [] and fake.calls_to("PUT", r"/notes") == []


async def test_extra_merge_requests_with_the_same_head_get_the_note_too(fake: FakeGitLab, http: httpx.AsyncClient,
                                                                        redis: Redis) -> None:
    fake.add_merge_request(PROJECT, 3, source_branch="feature", target_branch="other")
    await reporter_for(fake, http, redis).summarise(record(fake, [result("tests", "success")]), {3, 2})
    assert len(fake.notes_on(PROJECT, 1)) == 1 and len(fake.notes_on(PROJECT, 3)) == 1
    assert fake.notes_on(PROJECT, 2) == []  # the fork's MR has another head
    assert await redis.get(f"aqe:comment:gitlab:{PROJECT}:3") is not None


async def test_a_requeued_job_leaves_its_statuses_as_they_are(fake: FakeGitLab, http: httpx.AsyncClient,
                                                              redis: Redis) -> None:
    reporter = reporter_for(fake, http, redis)
    await reporter.begin(["tests"])
    await reporter.agent_started("tests")
    await reporter.requeue("the worker stopped")  # GitLab has no way back from running to pending
    assert [state for _, state, _ in status_posts(fake)] == ["pending", "running"]
    assert latest(fake, sha(fake, "feature"))["aqe/tests"]["status"] == "running"
