"""The GitHub reporter and App auth against the fake GitHub (a real HTTP server on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from jobs.forges.github.auth import InstallationTokens
from jobs.forges.github.client import GitHubClient
from jobs.forges.github.reporter import GitHubReporter
from jobs.model import AgentResult, Finding, JobRecord, RunRequest
from tests.conftest import APP_ID
from tests.fakes.github import FakeGitHub

REPO = "acme/widgets"
INSTALLATION = 77


@pytest.fixture
def fake(tmp_path: Path, rsa_key_pair: tuple[bytes, bytes]) -> Iterator[FakeGitHub]:
    source = tmp_path / "src"
    source.mkdir()
    run = lambda *a: subprocess.run(["git", "-c", "user.name=A", "-c", "user.email=a@x", *a], cwd=source, check=True,
                                    capture_output=True)
    run("init", "-q", "-b", "main")
    (source / "a.txt").write_text("a\n")
    run("add", "-A")
    run("commit", "-q", "-m", "one")
    fake = FakeGitHub(APP_ID, rsa_key_pair[1], git_root=tmp_path / "git")
    fake.start()
    fake.add_repo(REPO, source)
    fake.install(INSTALLATION, [REPO])
    fake.sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True).stdout.strip()  # type: ignore[attr-defined]
    fake.add_pull(REPO, 7, head_sha=fake.sha, base_sha=fake.sha, head_ref="topic")  # type: ignore[attr-defined]
    yield fake
    fake.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def tokens(rsa_key_pair: tuple[bytes, bytes]) -> InstallationTokens:
    return InstallationTokens(APP_ID, rsa_key_pair[0].decode())


async def _reporter(fake: FakeGitHub, http: httpx.AsyncClient, tokens: InstallationTokens, redis: Redis,
                    job_id: str = "0" * 24) -> GitHubReporter:
    token = await tokens.token(GitHubClient(http, base_url=fake.url), INSTALLATION)
    gh = GitHubClient(http, base_url=fake.url, oauth_token=token)
    return GitHubReporter(gh, token, redis, repo=REPO, head_sha=fake.sha, job_id=job_id,  # type: ignore[attr-defined]
                          job_url=f"http://aqe.test/jobs/{job_id}?t=x", app_slug="aqe")


def _record(fake: FakeGitHub, results: list[AgentResult]) -> JobRecord:
    request = RunRequest(forge="github", repo=REPO, clone_url="u", head_sha=fake.sha, trigger="pull_request.opened",  # type: ignore[attr-defined]
                         agents=["tests"], pr_number=7)
    return JobRecord(id="0" * 24, status="running", request=request, created_at=0.0, results=results)


def _findings(n: int) -> list[Finding]:
    return [Finding(path="a.txt", start_line=1, end_line=1, level="failure" if i % 3 else "warning", rule="r",
                    message=f"finding {i}") for i in range(n)]


async def test_token_is_cached_and_shared(fake: FakeGitHub, http: httpx.AsyncClient, tokens: InstallationTokens) -> None:
    gh = GitHubClient(http, base_url=fake.url)
    first, second = await asyncio.gather(tokens.token(gh, INSTALLATION), tokens.token(gh, INSTALLATION))
    assert first == second and await tokens.token(gh, INSTALLATION) == first
    assert len(fake.calls_to("POST", r"/app/installations/\d+/access_tokens")) == 1


async def test_120_annotations_take_3_requests(fake, http, tokens, redis) -> None:
    reporter = await _reporter(fake, http, tokens, redis)
    await reporter.begin(["tests"])
    await reporter.agent_started("tests")
    fake.reset_calls()
    result = AgentResult(agent="tests", conclusion="failure", title="120 failed", summary="s", findings=_findings(120))
    await reporter.agent_finished(result)
    patches = fake.calls_to("PATCH", r"/check-runs/\d+$")
    assert [len(c.json["output"]["annotations"]) for c in patches] == [50, 50, 20]
    assert [c.json.get("status") for c in patches] == [None, None, "completed"]
    run = fake.check_runs[reporter.refs["tests"]]
    assert run["conclusion"] == "failure" and len(run["annotations"]) == 120
    assert [a["annotation_level"] for a in run["annotations"][:80]] == ["failure"] * 80  # most important first


async def test_annotation_cap_is_said_in_the_summary(fake, http, tokens, redis) -> None:
    reporter = await _reporter(fake, http, tokens, redis)
    await reporter.begin(["tests"])
    await reporter.agent_finished(AgentResult(agent="tests", conclusion="failure", title="t", summary="s",
                                              findings=_findings(230)))
    run = fake.check_runs[reporter.refs["tests"]]
    assert len(run["annotations"]) == 200
    assert "30 more findings are not annotated here (at most 200 per check" in run["output"]["summary"]
    assert "lists them all" in run["output"]["summary"]


async def test_annotation_cap_comes_from_the_config(fake, http, tokens, redis) -> None:
    reporter = await _reporter(fake, http, tokens, redis)
    await reporter.begin(["tests"])
    findings = _findings(60)
    await reporter.agent_finished(AgentResult(agent="tests", conclusion="failure", title="t", summary="s",
                                              findings=findings), max_annotations=55)
    run = fake.check_runs[reporter.refs["tests"]]
    kept = [f.message for f in sorted(findings, key=lambda f: f.level != "failure")[:55]]
    assert [a["message"] for a in run["annotations"]] == kept
    assert "5 more findings are not annotated here (at most 55 per check" in run["output"]["summary"]


async def test_comment_is_found_across_pages_and_edited(fake, http, tokens, redis) -> None:
    for i in range(250):
        fake.add_comment(REPO, 7, f"comment {i}")
    reporter = await _reporter(fake, http, tokens, redis)
    record = _record(fake, [AgentResult(agent="tests", conclusion="success", title="2 passed", summary="ok")])
    await reporter.summarise(record, set())
    await redis.flushdb()  # forget the cached id: the second run must find the comment by listing every page
    record.results[0].title = "3 passed"
    await reporter.summarise(record, set())
    ours = [c for c in fake.comments.values() if "<!-- aqe:report -->" in c["body"]]
    assert len(ours) == 1 and "3 passed" in ours[0]["body"]
    assert len(fake.calls_to("POST", r"/issues/7/comments$")) == 1
    assert len(fake.calls_to("PATCH", r"/issues/comments/\d+$")) == 1
    assert len(fake.calls_to("GET", r"/issues/7/comments")) >= 3  # 251 comments, 100 per page


async def test_concurrent_jobs_write_one_comment(fake, http, tokens, redis) -> None:
    reporters = [await _reporter(fake, http, tokens, redis, job_id=f"{i:024x}") for i in range(4)]
    record = _record(fake, [AgentResult(agent="tests", conclusion="success", title="ok", summary="ok")])
    await asyncio.gather(*(r.summarise(record, set()) for r in reporters))
    assert len([c for c in fake.comments.values() if "<!-- aqe:report -->" in c["body"]]) == 1


async def test_stale_head_does_not_overwrite_the_comment(fake, http, tokens, redis) -> None:
    reporter = await _reporter(fake, http, tokens, redis)
    source = Path(fake.repo_path(REPO)).parent.parent.parent / "src"
    (source / "b.txt").write_text("b\n")
    subprocess.run(["git", "add", "-A"], cwd=source, check=True)
    subprocess.run(["git", "-c", "user.name=A", "-c", "user.email=a@x", "commit", "-qm", "two"], cwd=source, check=True)
    newer = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True).stdout.strip()
    fake.update_repo(REPO, source)
    fake.add_pull(REPO, 7, head_sha=newer, base_sha=fake.sha, head_ref="topic")  # type: ignore[attr-defined]
    record = _record(fake, [AgentResult(agent="tests", conclusion="success", title="ok", summary="ok")])
    await reporter.summarise(record, set())
    assert fake.comments == {}


async def test_server_errors_and_rate_limits_are_retried(fake, http, tokens, redis) -> None:
    reporter = await _reporter(fake, http, tokens, redis)
    fake.fail_next("POST", r"/check-runs$", 502)
    fake.fail_next("POST", r"/check-runs$", 429, headers={"Retry-After": "1"})
    await reporter.begin(["tests"])
    assert len(fake.calls_to("POST", r"/check-runs$")) == 3
    assert fake.check_runs[reporter.refs["tests"]]["status"] == "queued"


async def test_secondary_rate_limit_is_retried(fake, http, tokens, redis) -> None:
    reporter = await _reporter(fake, http, tokens, redis)
    fake.fail_next("POST", r"/check-runs$", 403, headers={"Retry-After": "0"},
                   body={"message": "You have exceeded a secondary rate limit."})
    await reporter.begin(["tests"])
    assert len(fake.calls_to("POST", r"/check-runs$")) == 2


async def test_abort_completes_every_unfinished_run(fake, http, tokens, redis) -> None:
    reporter = await _reporter(fake, http, tokens, redis)
    await reporter.begin(["tests", "other"])
    await reporter.agent_finished(AgentResult(agent="tests", conclusion="success", title="ok", summary="ok"))
    await reporter.abort("cancelled", "the job was cancelled")
    runs = {r["name"]: r for r in fake.check_runs.values()}
    assert runs["aqe/tests"]["conclusion"] == "success"
    assert runs["aqe/other"]["conclusion"] == "cancelled" and runs["aqe/other"]["status"] == "completed"
    assert "the job was cancelled" in runs["aqe/other"]["output"]["summary"]


async def test_check_suite_requests_learn_draft_and_fork_from_the_pull_request(fake, http, tokens, redis) -> None:
    """Policy must not depend on whether the check_suite or the pull_request event arrived first."""
    fake.add_pull(REPO, 9, head_sha=fake.sha, base_sha=fake.sha, head_ref="topic", draft=True, fork=True,  # type: ignore[attr-defined]
                  head_repo="someone/widgets")
    reporter = await _reporter(fake, http, tokens, redis)
    request = RunRequest(forge="github", repo=REPO, clone_url="u", head_sha=fake.sha, trigger="check_suite.requested",  # type: ignore[attr-defined]
                         agents=["tests"], pr_number=9)
    resolved = await reporter.resolve(request)
    assert resolved.draft and resolved.fork and resolved.base_ref == "main"


async def test_comment_requests_learn_the_head_sha(fake, http, tokens, redis) -> None:
    reporter = await _reporter(fake, http, tokens, redis)
    request = RunRequest(forge="github", repo=REPO, clone_url="u", head_sha="", trigger="issue_comment.created",
                         agents=["tests"], pr_number=7, trusted=True)
    resolved = await reporter.resolve(request)
    assert resolved.head_sha == fake.sha and resolved.head_ref == "topic" and not resolved.fork  # type: ignore[attr-defined]
