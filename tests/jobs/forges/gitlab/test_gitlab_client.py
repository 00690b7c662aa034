"""The GitLab API client against the fake GitLab (a real HTTP server on 127.0.0.1): what is retried, what raises
with GitLab's own message, `x-next-page` pagination and the rate-limit headers handed to `on_response`."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from jobs import forge_metrics
from jobs.forges.gitlab import client as client_module
from jobs.forges.gitlab.client import MAX_ATTEMPTS, PER_PAGE, GitLabClient, GitLabError, project_id
from tests.fakes.gitlab import FakeGitLab

PROJECT = "acme/platform/app"
TOKEN = "glpat-client-tests-token"
P = f"/projects/{project_id(PROJECT)}"


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeGitLab]:
    source = tmp_path / "src"
    source.mkdir()

    def run(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=A", "-c", "user.email=a@x", *args], cwd=source, check=True,
                       capture_output=True)

    run("init", "-q", "-b", "main")
    (source / "a.txt").write_text("a\n")
    run("add", "-A")
    run("commit", "-q", "-m", "one")
    run("checkout", "-q", "-b", "feature")
    (source / "b.txt").write_text("b\n")
    run("add", "-A")
    run("commit", "-q", "-m", "two")
    with FakeGitLab(git_root=tmp_path / "git") as gl:
        gl.add_token(TOKEN)
        gl.add_project(PROJECT, source)
        gl.add_merge_request(PROJECT, 1, source_branch="feature", target_branch="main")
        yield gl


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries without a Retry-After wait a random share of BASE_DELAY_S * 2**n: keep the tests fast."""
    monkeypatch.setattr(client_module, "BASE_DELAY_S", 0.01)


Seen = list[tuple[str, int, dict[str, str]]]


def client_for(fake: FakeGitLab, http: httpx.AsyncClient, token: str = TOKEN, seen: Seen | None = None
               ) -> GitLabClient:
    async def on_response(method: str, status: int, headers: Mapping[str, str]) -> None:
        if seen is not None:
            seen.append((method, status, {k.lower(): v for k, v in headers.items()}))

    return GitLabClient(http, api_url=f"{fake.base_url}/api/v4/", token=token, on_response=on_response)


async def test_a_429_with_retry_after_is_retried_then_succeeds(fake: FakeGitLab, http: httpx.AsyncClient) -> None:
    fake.fail_next("GET", r"^/api/v4/user$", 429, headers={"Retry-After": "0"})
    seen: Seen = []
    me = await client_for(fake, http, seen=seen).get("/user")
    assert me["username"] == "aqe-bot"
    assert [c.status for c in fake.calls_to("GET", r"^/api/v4/user$")] == [429, 200]
    assert [(method, status) for method, status, _ in seen] == [("GET", 429), ("GET", 200)]
    assert seen[0][2]["retry-after"] == "0"


async def test_a_502_is_retried_then_the_post_succeeds_once(fake: FakeGitLab, http: httpx.AsyncClient) -> None:
    fake.fail_next("POST", r"/merge_requests/1/notes$", 502, times=2)
    note = await client_for(fake, http).post(f"{P}/merge_requests/1/notes", {"body": "hello"})
    assert note["body"] == "hello"
    assert [c.status for c in fake.calls_to("POST", r"/notes$")] == [502, 502, 201]
    assert [n["body"] for n in fake.notes_on(PROJECT, 1)] == ["hello"]
    assert all(c.headers.get("private-token") == "[masked]" and c.headers.get("user-agent") == "aqe-bot"
               for c in fake.calls_to("POST", r"/notes$"))


async def test_server_errors_stop_after_max_attempts(fake: FakeGitLab, http: httpx.AsyncClient) -> None:
    fake.fail_next("GET", r"^/api/v4/user$", 503, times=MAX_ATTEMPTS + 1)
    with pytest.raises(GitLabError) as raised:
        await client_for(fake, http).get("/user")
    assert (raised.value.status_code, raised.value.message) == (503, "503 Service Unavailable")
    assert len(fake.calls_to("GET", r"^/api/v4/user$")) == MAX_ATTEMPTS


async def test_a_404_raises_with_gitlabs_message_and_is_not_retried(fake: FakeGitLab,
                                                                    http: httpx.AsyncClient) -> None:
    gl = client_for(fake, http)
    with pytest.raises(GitLabError) as raised:
        await gl.get(f"{P}/merge_requests/99")
    assert (raised.value.status_code, raised.value.message) == (404, "404 Not found")
    assert "GitLab answered 404: 404 Not found" in str(raised.value)
    with pytest.raises(GitLabError) as hidden:
        await gl.get(f"/projects/{project_id('acme/secret')}")
    assert hidden.value.message == "404 Project Not Found"
    assert len(fake.calls_to("GET", r"/merge_requests/99$")) == 1


async def test_grape_errors_carry_the_error_field(fake: FakeGitLab, http: httpx.AsyncClient) -> None:
    sha = fake.merge_request(PROJECT, 1)["sha"]
    with pytest.raises(GitLabError) as raised:
        await client_for(fake, http).post(f"{P}/statuses/{sha}", {"state": "exploded"})
    assert (raised.value.status_code, raised.value.message) == (400, "state does not have a valid value")


async def test_a_wrong_token_gets_401_once(fake: FakeGitLab, http: httpx.AsyncClient) -> None:
    seen: Seen = []
    with pytest.raises(GitLabError) as raised:
        await client_for(fake, http, token="glpat-wrong", seen=seen).get(f"{P}/merge_requests/1")
    assert (raised.value.status_code, raised.value.message) == (401, "401 Unauthorized")
    assert len(fake.calls_to("GET", r"/merge_requests/1$")) == 1 and [s for _, s, _ in seen] == [401]
    assert "glpat-wrong" not in str(raised.value)


async def test_pages_follow_x_next_page(fake: FakeGitLab, http: httpx.AsyncClient) -> None:
    for index in range(130):
        fake.add_note(PROJECT, 1, f"note {index}", username="bob")
    gl = client_for(fake, http)
    notes = [note async for note in gl.pages(f"{P}/merge_requests/1/notes", sort="asc", order_by="created_at")]
    assert [n["body"] for n in notes] == [f"note {index}" for index in range(130)]
    calls = fake.calls_to("GET", r"/merge_requests/1/notes$")
    assert [(c.query["page"], c.query["per_page"], c.query["sort"]) for c in calls] == [
        ("1", str(PER_PAGE), "asc"), ("2", str(PER_PAGE), "asc")]

    for index in range(130, 200):  # exactly two full pages: the second says there is no next one
        fake.add_note(PROJECT, 1, f"note {index}", username="bob")
    fake.reset_calls()
    assert len([note async for note in gl.pages(f"{P}/merge_requests/1/notes")]) == 200
    assert [c.query["page"] for c in fake.calls_to("GET", r"/notes$")] == ["1", "2"]


async def test_pages_of_an_empty_listing(fake: FakeGitLab, http: httpx.AsyncClient) -> None:
    sha = fake.merge_request(PROJECT, 1)["sha"]
    assert [s async for s in client_for(fake, http).pages(f"{P}/repository/commits/{sha}/statuses")] == []
    assert len(fake.calls_to("GET", r"/statuses$")) == 1


async def test_on_response_gets_gitlabs_rate_limit_headers(fake: FakeGitLab, http: httpx.AsyncClient,
                                                           redis: Redis) -> None:
    seen: Seen = []
    gl = client_for(fake, http, seen=seen)
    await gl.get("/user")
    await gl.put(f"{P}/merge_requests/1/notes/{(await gl.post(f'{P}/merge_requests/1/notes', {'body': 'x'}))['id']}",
                 {"body": "y"})
    assert [(m, s) for m, s, _ in seen] == [("GET", 200), ("POST", 201), ("PUT", 200)]
    for _, _, headers in seen:
        assert int(headers["ratelimit-limit"]) == int(headers["ratelimit-remaining"]) + int(
            headers["ratelimit-observed"])
        assert int(headers["ratelimit-reset"]) > 1_700_000_000 and headers["ratelimit-resettime"].endswith("GMT")
    # what the forge wiring does with them: counted in Redis for /metrics
    metered = GitLabClient(http, api_url=f"{fake.base_url}/api/v4", token=TOKEN,
                           on_response=lambda m, s, h: forge_metrics.record_call(redis, "gitlab", m, s, h))
    await metered.get("/user")
    calls, limits = await forge_metrics.forge_facts(redis)
    assert calls[("gitlab", "GET", "200")] == 1
    remaining, limit = limits[("gitlab", "core")]
    assert limit == 2000 and 0 < remaining < limit


async def test_transport_errors_are_retried_then_raised(http: httpx.AsyncClient) -> None:
    gl = GitLabClient(http, api_url="http://127.0.0.1:9/api/v4", token=TOKEN)  # nothing listens on port 9
    with pytest.raises(httpx.TransportError):
        await gl.get("/user")
