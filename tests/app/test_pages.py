"""The job page, the login session and the dashboard through the real app, the real Redis and TestClient."""

from __future__ import annotations

import html
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

import msgspec
import redis as redis_sync
from redis.asyncio import Redis
from starlette.testclient import TestClient

from app.session import COOKIE, session_claims
from jobs import apikeys, audit, fleet
from jobs.links import job_link_token, job_link_valid
from jobs.model import AgentResult, Finding, JobRecord, RunRequest
from jobs.store import JobStore
from jobs.tokens import issue_token
from tests.app.conftest import JWT_SECRET, make_key, with_redis

HOSTILE = "<script>alert('x')</script>"


def make_job(redis_url: str, repo: str = "acme/widgets", pr_number: int | None = 7,
             change: Callable[[JobRecord], None] | None = None, sha: str | None = None, forge: str = "github") -> str:
    request = RunRequest(forge=forge, repo=repo, clone_url="u", head_sha=sha or secrets.token_hex(20),
                         trigger="pull_request.opened",
                         agents=["tests", "security"], pr_number=pr_number, head_ref="feature")

    async def enqueue(redis: Redis) -> str:
        store = JobStore(redis)
        job_id = (await store.enqueue(request, delivery_key=f"aqe:delivery:{repo}:{time.time_ns()}")).job_id
        if change is not None:
            record = await store.get(job_id)
            assert record is not None
            change(record)
            await store.save(record, "progress", {"progress": record.progress, "status": record.status})
        return job_id

    return with_redis(enqueue, redis_url)


def finished(record: JobRecord) -> None:
    record.status, record.progress, record.conclusion = "completed", 100.0, "failure"
    record.results = [AgentResult(agent="security", conclusion="failure", title=f"1 finding {HOSTILE}",
                                  summary="found <b>one</b>",
                                  findings=[Finding(path="src/<img src=x onerror=alert(1)>.py", start_line=3,
                                                    end_line=5, level="failure", rule="B105",
                                                    message=f"hard-coded password {HOSTILE}", title=HOSTILE)])]


def login(client: TestClient, key: str, next_path: str = "/") -> Any:
    return client.post("/login", data={"key": key, "next": next_path}, follow_redirects=False)


def assert_page_headers(answer: Any, referrer: str = "no-referrer") -> None:
    csp = answer.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert answer.headers["referrer-policy"] == referrer
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-store"


# --- the signed link ------------------------------------------------------------------------------------------

def test_a_valid_link_shows_the_page_an_expired_or_another_job_s_link_does_not(client: TestClient,
                                                                               redis_url: str) -> None:
    job_id, other = make_job(redis_url), make_job(redis_url, pr_number=8)
    page = client.get(f"/jobs/{job_id}?t={job_link_token(JWT_SECRET, job_id)}")
    assert page.status_code == 200 and "acme/widgets" in page.text and "pull request #7" in page.text
    assert_page_headers(page)
    expired = job_link_token(JWT_SECRET, job_id, ttl_s=60, now=time.time() - 3600)
    for url in (f"/jobs/{job_id}?t={expired}", f"/jobs/{job_id}?t={job_link_token(JWT_SECRET, other)}",
                f"/jobs/{job_id}?t=garbage", f"/jobs/{job_id}", f"/jobs/{'f' * 24}"):
        denied = client.get(url)
        assert denied.status_code == 403 and "acme/widgets" not in denied.text, url
        assert "/login?next=%2Fjobs%2F" in denied.text
        assert_page_headers(denied)


def test_the_page_follows_the_job_with_the_same_token_and_links_back_to_the_pull_request(
        app_client: Callable[..., TestClient], redis_url: str) -> None:
    client = app_client(GITHUB_API_URL="https://ghe.example.com/api/v3")
    job_id = make_job(redis_url, change=lambda r: setattr(r, "status", "running"), sha="ab12" * 10)
    token = job_link_token(JWT_SECRET, job_id)
    page = client.get(f"/jobs/{job_id}?t={token}").text
    main = re.search(r"<main id=job [^>]*>", page)
    assert main and "data-live='1'" in main.group(0)
    assert f"data-events='/api/v1/job/{job_id}/events?t={token}'" in main.group(0)
    assert "<script src='/static/job.js' defer></script>" in page and "<script>" not in page
    assert "href='https://ghe.example.com/acme/widgets/pull/7'" in page
    assert f"href='https://ghe.example.com/acme/widgets/commit/{'ab12' * 10}'" in page
    assert "<progress id=progress max=100" in page


def test_hostile_finding_text_is_escaped_and_linked_to_its_line(client: TestClient, redis_url: str) -> None:
    job_id = make_job(redis_url, change=finished, sha="ab12" * 10)
    answer = client.get(f"/jobs/{job_id}?t={job_link_token(JWT_SECRET, job_id)}")
    page = answer.text
    assert HOSTILE not in page and "<img src=x" not in page and "<b>one</b>" not in page
    assert "hard-coded password &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "src/&lt;img src=x onerror=alert(1)&gt;.py:3–5" in page
    assert "B105" in page and "class='level failure'" in page
    assert "https://github.com/acme/widgets/blob/" + "ab12" * 10 + "/src/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E.py#L3-L5" in page
    assert "data-live='0'" in page  # ended: nothing to follow
    assert page.count("<script") == 1  # only /static/job.js


def test_a_gitlab_jobs_page_links_to_its_merge_request_commit_and_lines_on_the_gitlab_instance(
        client: TestClient, redis_url: str) -> None:
    job_id = make_job(redis_url, repo="acme/platform/app", change=finished, sha="cd34" * 10, forge="gitlab")
    page = client.get(f"/jobs/{job_id}?t={job_link_token(JWT_SECRET, job_id)}").text
    project = "https://gitlab.com/acme/platform/app"  # GITLAB_URL's default
    assert "<h1>acme/platform/app: merge request !7</h1>" in page
    assert f"href='{project}/-/merge_requests/7'" in page and f"href='{project}/-/commit/{'cd34' * 10}'" in page
    assert f"{project}/-/blob/{'cd34' * 10}/src/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E.py#L3-5" in page


def test_static_assets_are_served_with_their_types(client: TestClient) -> None:
    for path, kind in (("/static/job.js", "javascript"), ("/static/dashboard.js", "javascript"),
                       ("/static/aqe.css", "text/css"), ("/static/favicon.svg", "image/svg+xml")):
        answer = client.get(path)
        assert answer.status_code == 200 and kind in answer.headers["content-type"], path
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert "innerHTML" not in client.get("/static/job.js").text + client.get("/static/dashboard.js").text
    assert client.get("/static/").status_code == 404 and client.get("/static/../pages.py").status_code == 404


# --- the browser session --------------------------------------------------------------------------------------

def test_login_sets_a_signed_session_cookie_never_the_key(client: TestClient, redis_url: str) -> None:
    key, job_id = make_key(redis_url, "alice"), make_job(redis_url)
    form = client.get(f"/login?next=/jobs/{job_id}")
    assert form.status_code == 200 and "name=key" in form.text and f"value='/jobs/{job_id}'" in form.text
    assert_page_headers(form, "same-origin")  # no token in its URL; a real Origin on the form's POST
    answer = login(client, key, f"/jobs/{job_id}")
    assert answer.status_code == 303 and answer.headers["location"] == f"/jobs/{job_id}"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Max-Age=43200" in cookie and "Secure" not in cookie  # http public URL
    value = client.cookies[COOKIE]
    assert key not in value and key[4:] not in cookie
    claims = session_claims(JWT_SECRET, value)
    assert claims is not None and claims["sub"] == apikeys.key_hash(key) and claims["exp"] - claims["iat"] == 43200

    page = client.get(f"/jobs/{job_id}")
    assert page.status_code == 200 and "acme/widgets" in page.text
    events = re.search(r"data-events='/api/v1/job/[0-9a-f]{24}/events\?t=([^']+)'", page.text)
    assert events and job_link_valid(JWT_SECRET, job_id, events.group(1))  # a fresh token for the live view
    assert f"?t={events.group(1)}" not in page.text.replace(f"events?t={events.group(1)}", "")
    assert client.get("/login", follow_redirects=False).headers["location"] == "/"  # already logged in


def test_the_cookie_is_secure_behind_https(app_client: Callable[..., TestClient], redis_url: str) -> None:
    client = app_client(AQE_PUBLIC_URL="https://aqe.example.com")
    assert "Secure" in login(client, make_key(redis_url, "alice")).headers["set-cookie"]


def test_bad_keys_do_not_log_in_and_are_not_echoed(client: TestClient, redis_url: str) -> None:
    fleet_only = make_key(redis_url, "grafana", scopes=["fleet:read"])
    expired = make_key(redis_url, "old", expires_in_s=3600)
    with_redis(lambda r: r.hset(apikeys.KEYS_HASH, apikeys.key_hash(expired), msgspec.json.encode(
        {**msgspec.json.decode(redis_sync.Redis.from_url(redis_url).hget(apikeys.KEYS_HASH,
                                                                         apikeys.key_hash(expired)) or b"{}"),
         "expires_at": time.time() - 1})), redis_url)
    for key, why in (("aqe_" + "Z" * 32, "unknown or revoked"), ("nonsense", "unknown or revoked"),
                     (fleet_only, "lacks the scope 'jobs:read'"), (expired, "has expired")):
        answer = login(client, key)
        assert answer.status_code == 401 and html.escape(why) in answer.text and COOKIE not in answer.headers.get("set-cookie", "")
        assert key not in answer.text
        assert_page_headers(answer, "same-origin")


def test_a_cross_site_login_post_and_foreign_next_are_refused(client: TestClient, redis_url: str) -> None:
    key = make_key(redis_url, "alice")
    answer = client.post("/login", data={"key": key}, headers={"Origin": "https://evil.example"},
                         follow_redirects=False)
    assert answer.status_code == 403 and "set-cookie" not in answer.headers
    answer = client.post("/login", data={"key": key}, headers={"Sec-Fetch-Site": "cross-site"}, follow_redirects=False)
    assert answer.status_code == 403
    for target in ("//evil.example/x", "https://evil.example", "/\\evil.example", "javascript:alert(1)"):
        assert login(client, key, target).headers["location"] == "/", target
    same = client.post("/login", data={"key": key, "next": "/"}, headers={"Origin": "http://testserver"},
                       follow_redirects=False)
    assert same.status_code == 303


def test_logout_ends_the_session_even_for_a_copied_cookie(client: TestClient, redis_url: str) -> None:
    key, job_id = make_key(redis_url, "alice"), make_job(redis_url)
    login(client, key)
    copied = client.cookies[COOKIE]
    assert client.get(f"/jobs/{job_id}").status_code == 200
    answer = client.post("/logout", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert f'{COOKIE}=""' in answer.headers["set-cookie"] and "Max-Age=0" in answer.headers["set-cookie"]
    assert client.get(f"/jobs/{job_id}").status_code == 403
    client.cookies.set(COOKIE, copied)
    assert client.get(f"/jobs/{job_id}").status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 303


def test_logins_refusals_and_logouts_are_audited_without_the_key(client: TestClient, redis_url: str) -> None:
    key, scopeless = make_key(redis_url, "alice"), make_key(redis_url, "grafana", scopes=["fleet:read"])
    login(client, "aqe_" + "Z" * 32)
    login(client, scopeless)
    login(client, key)
    client.post("/logout", follow_redirects=False)
    client.post("/logout", follow_redirects=False)  # no session any more: nothing to audit
    entries = list(reversed(with_redis(lambda r: audit.recent(r), redis_url)))
    assert [(e.actor, e.action, e.target) for e in entries] == [
        ("anonymous", "session.refused", "dashboard"), ("key:grafana", "session.refused", "dashboard"),
        ("key:alice", "session.started", "dashboard"), ("key:alice", "session.ended", "dashboard")]
    assert "unknown or revoked" in entries[0].detail and "lacks the scope 'jobs:read'" in entries[1].detail
    assert entries[2].detail == f"alice ({key[:8]}…)" and all(e.ip for e in entries)
    assert not any(secret in str(msgspec.to_builtins(e)) for e in entries for secret in (key, scopeless, "Z" * 32))


def test_login_attempts_are_limited_per_address(client: TestClient, redis_url: str) -> None:
    key = make_key(redis_url, "alice")
    answers = [login(client, "aqe_" + "Z" * 32) for _ in range(10)]
    assert {a.status_code for a in answers} == {401}
    refused = login(client, key)  # the right key too: the address is over its limit, the key is not looked at
    assert refused.status_code == 429 and "Too many login attempts" in refused.text
    assert int(refused.headers["retry-after"]) > 0 and refused.headers["x-ratelimit-remaining"] == "0"
    assert COOKIE not in refused.headers.get("set-cookie", "")
    actions = [e.action for e in with_redis(lambda r: audit.recent(r), redis_url)]
    assert actions == ["session.refused"] * 10  # the refused attempts past the limit are not audited one by one


def test_a_revoked_or_expired_key_s_session_is_refused_from_the_next_request(client: TestClient,
                                                                            redis_url: str) -> None:
    job_id = make_job(redis_url)
    key = make_key(redis_url, "bob")
    login(client, key)
    assert client.get(f"/jobs/{job_id}").status_code == 200
    with_redis(lambda r: apikeys.revoke_key(r, "bob"), redis_url)
    assert client.get(f"/jobs/{job_id}").status_code == 403
    assert client.get("/", follow_redirects=False).headers["location"] == "/login?next=%2F"

    key = make_key(redis_url, "carol", expires_in_s=3600)
    login(client, key)
    assert client.get("/", follow_redirects=False).status_code == 200
    raw = redis_sync.Redis.from_url(redis_url).hget(apikeys.KEYS_HASH, apikeys.key_hash(key))
    redis_sync.Redis.from_url(redis_url).hset(apikeys.KEYS_HASH, apikeys.key_hash(key), msgspec.json.encode(
        {**msgspec.json.decode(raw or b"{}"), "expires_at": time.time() - 1}))
    assert client.get(f"/jobs/{job_id}").status_code == 403


def test_a_repository_limited_key_sees_its_repositories_only(client: TestClient, redis_url: str) -> None:
    mine, theirs = make_job(redis_url, "acme/widgets"), make_job(redis_url, "other/secret-project")
    login(client, make_key(redis_url, "acme", repos=["acme/*"]))
    assert client.get(f"/jobs/{mine}").status_code == 200
    assert client.get(f"/jobs/{theirs}").status_code == 403
    board = client.get("/").text
    assert mine in board and theirs not in board and "secret-project" not in board
    # a signed link is for whoever holds it, logged in or not
    assert client.get(f"/jobs/{theirs}?t={job_link_token(JWT_SECRET, theirs)}").status_code == 200


def test_sessions_and_api_credentials_are_not_interchangeable(client: TestClient, redis_url: str) -> None:
    key, job_id = make_key(redis_url, "alice"), make_job(redis_url)
    login(client, key)
    session = client.cookies[COOKIE]
    api = client.get(f"/api/v1/job/{job_id}/status", headers={"Authorization": f"Bearer {session}"})
    assert api.status_code == 401
    client.cookies.clear()
    assert client.get(f"/api/v1/job/{job_id}/status").status_code == 401  # no cookie auth on the API
    token, _ = issue_token(JWT_SECRET, "ci", 600)
    client.cookies.set(COOKIE, token)
    assert client.get(f"/jobs/{job_id}").status_code == 403
    assert client.get(f"/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"}).status_code == 200


# --- the dashboard --------------------------------------------------------------------------------------------

def test_the_dashboard_needs_a_login_and_shows_the_fleet_and_recent_jobs(client: TestClient, redis_url: str) -> None:
    answer = client.get("/", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login?next=%2F"
    running = make_job(redis_url, change=lambda r: setattr(r, "status", "running"))
    done = make_job(redis_url, pr_number=None, change=finished)
    with_redis(lambda r: fleet.beat(r, "worker-1:42", time.time() - 30, 1, 4), redis_url)
    with_redis(lambda r: fleet.record_agent_run(r, AgentResult(agent="tests", conclusion="success", title="t",
                                                         summary="s", duration_s=2.0), time.time()), redis_url)
    assert login(client, make_key(redis_url, "ops", scopes=["jobs:read", "fleet:read"])).headers["location"] == "/"
    board = client.get("/")
    assert board.status_code == 200
    assert_page_headers(board, "same-origin")
    text = board.text
    assert "<span id=workers-alive>1</span>" in text and "worker-1:42" in text and "<span id=queue-depth>" in text
    assert "<tr data-agent='tests'><td>tests</td><td>1</td><td>2.0 s</td><td>2.0 s</td>" in text
    for job_id in (running, done):
        link = re.search(rf"href='/jobs/{job_id}\?t=([^']+)'", text)
        assert link and job_link_valid(JWT_SECRET, job_id, link.group(1))
    assert text.index(done) < text.index(running)  # newest first
    assert HOSTILE not in text
    assert "<script src='/static/dashboard.js' defer></script>" in text

    client.post("/logout")
    login(client, make_key(redis_url, "dev"))  # jobs:read, no fleet:read
    text = client.get("/").text
    assert "lacks the scope <code>fleet:read</code>" in text and "worker-1:42" not in text and running in text
