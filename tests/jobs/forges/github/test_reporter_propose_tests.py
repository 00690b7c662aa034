"""`/aqe generate-tests`: the reporter puts generated tests on a branch and opens a pull request, against the fake
GitHub (a real HTTP server on 127.0.0.1 whose Git Data API writes real objects into a bare repository)."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from gidgethub import BadRequest
from redis.asyncio import Redis

from jobs.forges.github.auth import InstallationTokens
from jobs.forges.github.client import GitHubClient
from jobs.forges.github.reporter import (
    GitHubReporter,
    checked_files,
    path_problem,
    proposal_body,
    why_tests_cannot_be_proposed,
)
from jobs.model import RunRequest
from jobs.reporting.render import GITHUB_COMMENT_LIMIT
from tests.conftest import APP_ID
from tests.fakes.github import FakeGitHub

REPO = "acme/widgets"
INSTALLATION = 77
BRANCH = "aqe/generated-tests/pr-7"
JOB_URL = "http://aqe.test/jobs/000000000000000000000000?t=x"


def _git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", "-c", "user.name=A", "-c", "user.email=a@x", *args], cwd=cwd, check=True,
                          capture_output=True, text=True)
    return proc.stdout.strip()


def _commit(cwd: Path, name: str, text: str) -> str:
    (cwd / name).parent.mkdir(parents=True, exist_ok=True)
    (cwd / name).write_text(text)
    _git(cwd, "add", "-A")
    _git(cwd, "commit", "-q", "-m", f"add {name}")
    return _git(cwd, "rev-parse", "HEAD")


@pytest.fixture
def fake(tmp_path: Path, rsa_key_pair: tuple[bytes, bytes]) -> Iterator[FakeGitHub]:
    """acme/widgets: main, and PR #7 from branch `topic` (one commit ahead); PR #9 comes from a fork."""
    source = tmp_path / "src"
    source.mkdir()
    _git(source, "init", "-q", "-b", "main")
    main = _commit(source, "widgets/core.py", "def add(a, b):\n    return a + b\n")
    _git(source, "checkout", "-q", "-b", "topic")
    topic = _commit(source, "widgets/retry.py", "def retry():\n    pass\n")
    fake = FakeGitHub(APP_ID, rsa_key_pair[1], git_root=tmp_path / "git")
    fake.start()
    fake.add_repo(REPO, source)
    fake.install(INSTALLATION, [REPO])
    fake.add_pull(REPO, 7, head_sha=topic, base_sha=main, head_ref="topic")
    fake.add_pull(REPO, 9, head_sha=topic, base_sha=main, head_ref="patch-1", fork=True, head_repo="someone/widgets")
    fake.main, fake.topic = main, topic  # type: ignore[attr-defined]
    yield fake
    fake.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def _reporter(fake: FakeGitHub, http: httpx.AsyncClient, redis: Redis, private_key: bytes) -> GitHubReporter:
    tokens = InstallationTokens(APP_ID, private_key.decode())
    token = await tokens.token(GitHubClient(http, base_url=fake.url), INSTALLATION)
    gh = GitHubClient(http, base_url=fake.url, oauth_token=token)
    return GitHubReporter(gh, token, redis, repo=REPO, head_sha="", job_id="0" * 24, job_url=JOB_URL, app_slug="aqe")


@pytest.fixture
async def reporter(fake: FakeGitHub, http: httpx.AsyncClient, redis: Redis,
                   rsa_key_pair: tuple[bytes, bytes]) -> GitHubReporter:
    return await _reporter(fake, http, redis, rsa_key_pair[0])


def _request(fake: FakeGitHub, **fields: object) -> RunRequest:
    """What `/aqe generate-tests` on PR #7 becomes once the worker resolved the pull request."""
    head: str = fake.topic  # type: ignore[attr-defined]
    base: dict[str, object] = dict(forge="github", repo=REPO, clone_url=fake.clone_url(REPO), head_sha=head,
                                   trigger="issue_comment.created", agents=["test-generation"], pr_number=7,
                                   head_ref="topic", base_ref="main", trusted=True, propose_tests=True)
    return RunRequest(**{**base, **fields})  # type: ignore[arg-type]


def _show(fake: FakeGitHub, spec: str) -> bytes:
    return subprocess.run(["git", "--git-dir", str(fake.repo_path(REPO)), "show", spec], capture_output=True,
                          check=True).stdout


def _rev(fake: FakeGitHub, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", str(fake.repo_path(REPO)), "rev-parse", *args], capture_output=True,
                          check=True, text=True).stdout.strip()


TESTS = {
    "tests/test_retry_generated.py": b"from widgets.retry import retry\n\n\ndef test_retry():\n    retry()\n",
    "tests/test_core_generated.py": "def test_add():\n    assert 1 + 1 == 2  # ✓ café\n".encode(),
}


# ------------------------------------------------------------------------------------------------ with the fake
async def test_tests_land_on_a_branch_on_top_of_the_head_and_a_pull_request_into_it(fake, reporter) -> None:
    # As the worker does it: the comment carried no head; `resolve` learns it (and the head branch) from GitHub.
    request = await reporter.resolve(_request(fake, head_sha="", head_ref=None, base_ref=None))
    assert (request.head_sha, request.head_ref, request.fork) == (fake.topic, "topic", False)

    url = await reporter.propose_tests(request, dict(TESTS), "**2 tests** kept out of 3 written.")

    assert url == f"{fake.url}/{REPO}/pull/10"  # #7 and #9 exist
    for path, content in TESTS.items():
        assert _show(fake, f"{BRANCH}:{path}") == content
    assert _show(fake, f"{BRANCH}:widgets/retry.py") == b"def retry():\n    pass\n"  # the head's files are kept
    assert _rev(fake, f"{BRANCH}^@") == fake.topic  # one parent: the pull request's head
    author, _, message = _git(fake.repo_path(REPO), "log", "-1", "--format=%an%n%B", BRANCH).partition("\n")
    assert author == "aqe[bot]" and message.startswith("Add 2 generated test files for #7\n\n")

    [pull] = fake.created_pulls
    assert (pull["head"]["ref"], pull["head"]["sha"], pull["base"]["ref"]) == (BRANCH, _rev(fake, BRANCH), "topic")
    assert pull["title"] == "Generated tests for #7" and pull["user"]["login"] == "aqe[bot]"
    assert pull["body"].startswith("**2 tests** kept out of 3 written.")
    assert "`/aqe generate-tests`" in pull["body"] and fake.topic in pull["body"]
    assert "- `tests/test_core_generated.py`\n- `tests/test_retry_generated.py`" in pull["body"]
    assert fake.calls_to("POST", r"/git/blobs$") == []  # UTF-8 text goes inline in the tree
    writes = fake.calls_to("*", r"/git/|/pulls")
    assert writes and all(c.auth_kind == "token" and c.installation_id == INSTALLATION for c in writes)
    assert all("ghs_" not in c.path and not c.query.get("access_token") for c in fake.calls)


async def test_a_second_call_updates_the_branch_and_returns_the_same_pull_request(fake, reporter) -> None:
    request = _request(fake)
    first = await reporter.propose_tests(request, dict(TESTS), "first generation")
    first_commit = _rev(fake, BRANCH)
    again = {"tests/test_retry_generated.py": b"def test_retry_again():\n    pass\n"}

    second = await reporter.propose_tests(request, again, "second generation")

    assert second == first and len(fake.created_pulls) == 1
    assert _show(fake, f"{BRANCH}:tests/test_retry_generated.py") == again["tests/test_retry_generated.py"]
    assert _rev(fake, f"{BRANCH}^@") == fake.topic and _rev(fake, BRANCH) != first_commit  # replaced, not stacked
    pull = fake.created_pulls[0]
    assert pull["head"]["sha"] == _rev(fake, BRANCH)
    assert pull["body"].startswith("second generation") and "test_core_generated" not in pull["body"]
    assert [c.status for c in fake.calls_to("POST", r"/git/refs$")] == [201, 422]
    assert [c.json["force"] for c in fake.calls_to("PATCH", r"/git/refs/heads/aqe/generated-tests/pr-7$")] == [True]
    assert [c.status for c in fake.calls_to("POST", r"/pulls$")] == [201, 422]
    [lookup] = fake.calls_to("GET", r"/pulls$")
    assert lookup.query == {"head": f"acme:{BRANCH}", "base": "topic", "state": "open"}


async def test_a_fork_gets_none_and_nothing_is_created(fake, reporter, caplog: pytest.LogCaptureFixture) -> None:
    request = await reporter.resolve(_request(fake, pr_number=9, head_sha="", head_ref=None))
    assert request.fork

    with caplog.at_level(logging.INFO, logger="aqe.github.reporter"):
        url = await reporter.propose_tests(request, dict(TESTS), "summary")

    assert url is None
    assert "comes from a fork" in caplog.text and "patch-1" in caplog.text
    assert fake.calls_to("*", r"/git/") == [] and fake.calls_to("POST", r"/pulls$") == []
    assert fake.created_pulls == []


async def test_a_file_that_is_not_utf8_goes_through_a_blob(fake, reporter) -> None:
    binary = b"\x89PNG\r\n\x1a\n\x00\xff\xfe fixture"
    files = {"tests/fixtures/sample.png": binary, "tests/test_image.py": b"def test_image():\n    pass\n"}

    await reporter.propose_tests(_request(fake), files, "summary")

    assert _show(fake, f"{BRANCH}:tests/fixtures/sample.png") == binary
    assert _show(fake, f"{BRANCH}:tests/test_image.py") == files["tests/test_image.py"]
    [blob_call] = fake.calls_to("POST", r"/git/blobs$")
    assert blob_call.json["encoding"] == "base64"
    [tree_call] = fake.calls_to("POST", r"/git/trees$")
    entries = {e["path"]: e for e in tree_call.json["tree"]}
    png = entries["tests/fixtures/sample.png"]
    assert "content" not in png and png["sha"] == _rev(fake, f"{BRANCH}:tests/fixtures/sample.png")
    assert entries["tests/test_image.py"]["content"] == "def test_image():\n    pass\n"


async def test_github_errors_surface_with_githubs_message(fake, http, redis, rsa_key_pair) -> None:
    fake.permissions["contents"] = "read"  # an installation that has not accepted `contents: write` yet
    reporter = await _reporter(fake, http, redis, rsa_key_pair[0])

    with pytest.raises(BadRequest, match="Resource not accessible by integration"):
        await reporter.propose_tests(_request(fake), dict(TESTS), "summary")
    assert fake.created_pulls == [] and _branch_exists(fake) is False


async def test_an_unknown_head_commit_is_an_error_and_creates_nothing(fake, reporter) -> None:
    with pytest.raises(BadRequest, match="Not Found"):
        await reporter.propose_tests(_request(fake, head_sha="e" * 40), dict(TESTS), "summary")
    assert fake.created_pulls == [] and _branch_exists(fake) is False


async def test_bad_paths_are_refused_before_anything_is_sent(fake, reporter) -> None:
    files = {"../outside.py": b"", ".github/workflows/ci.yml": b"on: push\n", "tests/test_ok.py": b""}
    with pytest.raises(ValueError, match=r"`\.\./outside\.py` is not a relative path.*`\.github/workflows/ci\.yml`"):
        await reporter.propose_tests(_request(fake), files, "summary")
    assert fake.calls_to("*", r"/git/|/pulls$") == []


def _branch_exists(fake: FakeGitHub) -> bool:
    return subprocess.run(["git", "--git-dir", str(fake.repo_path(REPO)), "show-ref", "--verify", "--quiet",
                           f"refs/heads/{BRANCH}"]).returncode == 0


# ------------------------------------------------------------------------------------------------ plain functions
def _plain_request(**fields: object) -> RunRequest:
    base: dict[str, object] = dict(forge="github", repo=REPO, clone_url="u", head_sha="a" * 40, trigger="t",
                                   agents=[], pr_number=7, head_ref="topic")
    return RunRequest(**{**base, **fields})  # type: ignore[arg-type]


@pytest.mark.parametrize(("fields", "reason"), [
    ({}, None),
    ({"fork": True}, "pull request #7 comes from a fork, and AQE cannot push to a fork's branch (`topic`)"),
    ({"pr_number": None}, "the run is not of a pull request"),
    ({"head_ref": None}, "the run is not of a pull request"),
    ({"head_sha": ""}, "the head commit of pull request #7 is not known"),
])
def test_why_tests_cannot_be_proposed(fields: dict[str, object], reason: str | None) -> None:
    assert why_tests_cannot_be_proposed(_plain_request(**fields)) == reason


@pytest.mark.parametrize(("path", "ok"), [
    ("tests/test_a.py", True), ("test_a.py", True), ("tests/.hidden/test_a.py", True), (".github/CODEOWNERS", True),
    ("", False), ("/etc/passwd", False), ("tests/../x.py", False), ("./x.py", False), ("tests//x.py", False),
    ("tests/", False), (".git/hooks/pre-commit", False), ("sub/.GIT/config", False), ("a\\b.py", False),
    (".github/workflows/ci.yml", False),
])
def test_path_problem(path: str, ok: bool) -> None:
    assert (path_problem(path) is None) is ok


def test_checked_files_are_sorted_and_not_empty() -> None:
    assert list(checked_files({"b.py": b"", "a.py": b""})) == ["a.py", "b.py"]
    with pytest.raises(ValueError, match="no generated test files"):
        checked_files({})


def test_pull_body_fits_githubs_limit_and_keeps_the_explanation() -> None:
    paths = [f"tests/test_{i}.py" for i in range(150)]
    body = proposal_body(_plain_request(), BRANCH, paths, "x" * 200_000, JOB_URL)
    assert len(body) <= GITHUB_COMMENT_LIMIT
    assert "… truncated." in body and "**How this was made.**" in body and body.endswith("new generation.")
    assert "- `tests/test_99.py`\n- … and 50 more" in body
