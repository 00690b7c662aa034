"""Authentication, scopes, repositories and the rate limit through the real app, the real Redis and TestClient."""

from __future__ import annotations

import json

import time
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest
import redis as redis_sync
from redis.asyncio import Redis
from starlette.testclient import TestClient

from app.api.jobs import read_job_id
from jobs import apikeys
from jobs.links import job_link_token
from jobs.model import RunRequest
from jobs.store import JobStore
from jobs.tokens import issue_token
from tests.app.conftest import JWT_SECRET, make_key, with_redis

RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")


def make_job(redis_url: str, repo: str = "acme/widgets", forge: str = "github") -> str:
    request = RunRequest(forge=forge, repo=repo, clone_url="u", head_sha="a" * 40, trigger="push", agents=["tests"])

    async def enqueue(redis: Redis) -> str:
        return (await JobStore(redis).enqueue(request, delivery_key=f"aqe:delivery:{forge}:{repo}")).job_id

    return with_redis(enqueue, redis_url)


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def test_a_valid_key_reads_a_job_and_every_answer_has_the_rate_headers(client: TestClient, redis_url: str) -> None:
    key, job_id = make_key(redis_url), make_job(redis_url)
    url = f"/api/v1/job/{job_id}/status"
    ok = client.get(url, headers=bearer(key))
    assert ok.status_code == 200 and ok.json()["id"] == job_id
    assert (ok.headers["x-ratelimit-limit"], ok.headers["x-ratelimit-remaining"]) == ("100", "99")
    assert 1 <= int(ok.headers["x-ratelimit-reset"]) <= 60 and "retry-after" not in ok.headers
    for answer in (client.get(url), client.get("/api/v1/job/ffffffffffffffffffffffff/status", headers=bearer(key)),
                   client.get("/api/v1/no-such-route", headers=bearer(key)),
                   client.delete(url, headers=bearer(key))):
        assert answer.status_code in (401, 404, 405) and all(h in answer.headers for h in RATE_HEADERS), answer
        assert answer.headers["content-type"] == "application/problem+json"
    assert "x-ratelimit-limit" not in client.get("/healthz").headers


def test_missing_and_malformed_credentials_are_401_with_www_authenticate(client: TestClient,
                                                                         redis_url: str) -> None:
    url = f"/api/v1/job/{make_job(redis_url)}/status"
    for headers in ({}, {"Authorization": "Basic abc"}, bearer("aqe_" + "A" * 32), bearer("not-a-key")):
        answer = client.get(url, headers=headers)
        assert answer.status_code == 401 and answer.headers["www-authenticate"].startswith("Bearer"), headers


def test_an_expired_key_is_refused_from_the_next_request(client: TestClient, redis_url: str) -> None:
    key, job_id = make_key(redis_url, expires_in_s=3600), make_job(redis_url)
    url = f"/api/v1/job/{job_id}/status"
    assert client.get(url, headers=bearer(key)).status_code == 200

    async def expire(redis: Redis) -> None:
        raw = await redis.hget(apikeys.KEYS_HASH, apikeys.key_hash(key))
        record = msgspec.json.decode(raw or b"{}")
        await redis.hset(apikeys.KEYS_HASH, apikeys.key_hash(key),
                         msgspec.json.encode({**record, "expires_at": time.time() - 1}))

    with_redis(expire, redis_url)
    answer = client.get(url, headers=bearer(key))
    assert answer.status_code == 401 and "has expired" in answer.json()["detail"]


def test_a_revoked_key_is_refused_from_the_next_request(client: TestClient, redis_url: str) -> None:
    key, job_id = make_key(redis_url), make_job(redis_url)
    url = f"/api/v1/job/{job_id}/status"
    assert client.get(url, headers=bearer(key)).status_code == 200
    with_redis(lambda r: apikeys.revoke_key(r, "ci"), redis_url)
    answer = client.get(url, headers=bearer(key))
    assert answer.status_code == 401 and answer.json()["code"] == "invalid_credentials"


def test_a_key_without_the_scope_gets_403(client: TestClient, redis_url: str) -> None:
    job_id = make_job(redis_url)
    fleet_only, reader = make_key(redis_url, "f", scopes=["fleet:read"]), make_key(redis_url, "r", scopes=["jobs:read"])
    denied = client.get(f"/api/v1/job/{job_id}/status", headers=bearer(fleet_only))
    assert denied.status_code == 403 and denied.json()["code"] == "insufficient_scope"
    assert "'jobs:read'" in denied.json()["detail"] and "www-authenticate" not in denied.headers
    assert client.get("/api/v1/fleet/status", headers=bearer(fleet_only)).status_code == 200
    assert client.get(f"/api/v1/job/{job_id}/status", headers=bearer(reader)).status_code == 200
    cancel = client.post(f"/api/v1/job/{job_id}/cancel", headers=bearer(reader))
    assert cancel.status_code == 403 and "'jobs:write'" in cancel.json()["detail"]
    admin = make_key(redis_url, "a", scopes=["admin"])
    assert client.post(f"/api/v1/job/{job_id}/cancel", headers=bearer(admin)).status_code == 202


def test_a_key_from_before_scopes_reads_and_writes_jobs(client: TestClient, redis_url: str) -> None:
    key, job_id = apikeys.new_key(), make_job(redis_url)
    redis_sync.Redis.from_url(redis_url).hset(apikeys.KEYS_HASH, apikeys.key_hash(key),
                                              b'{"name":"old","created_at":1700000000.0,"hint":"aqe_abcd"}')
    assert client.get(f"/api/v1/job/{job_id}/status", headers=bearer(key)).status_code == 200
    assert client.post(f"/api/v1/job/{job_id}/cancel", headers=bearer(key)).status_code == 202
    assert client.get("/api/v1/fleet/status", headers=bearer(key)).status_code == 403


def test_a_job_of_another_repository_is_not_found(client: TestClient, redis_url: str) -> None:
    job_id = make_job(redis_url, "acme/widgets")
    other, acme = make_key(redis_url, "o", repos=["other/*"]), make_key(redis_url, "a", repos=["acme/*"])
    hidden = client.get(f"/api/v1/job/{job_id}/status", headers=bearer(other))
    missing = client.get("/api/v1/job/ffffffffffffffffffffffff/status", headers=bearer(other))
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"] == missing.json()["detail"].replace("f" * 24, job_id)
    assert client.get(f"/api/v1/job/{job_id}/status", headers=bearer(acme)).status_code == 200


@pytest.fixture
def own_reads(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The jobs the endpoints read from the store on their own (not in the call that looks the caller's key up)."""
    store, reads = client.app.state.store, []  # type: ignore[attr-defined]
    read = store.get

    async def get(job_id: str) -> Any:
        reads.append(job_id)
        return await read(job_id)

    monkeypatch.setattr(store, "get", get)
    return reads


def test_a_status_request_gets_the_job_in_the_call_that_counts_it(
        client: TestClient, redis_url: str, own_reads: list[str]) -> None:
    """With a key, the call that looks the key up; with a token, the call that counts it: the endpoint reads
    nothing itself."""
    key, job_id = make_key(redis_url, repos=["acme/*"]), make_job(redis_url)
    url = f"/api/v1/job/{job_id}/status"
    answer = client.get(url, headers=bearer(key))
    assert answer.status_code == 200 and answer.json()["id"] == job_id and answer.json()["status"] == "queued"
    assert own_reads == []
    missing = client.get("/api/v1/job/ffffffffffffffffffffffff/status", headers=bearer(key))
    assert missing.status_code == 404 and missing.json()["code"] == "job_not_found" and own_reads == []
    token, _ = issue_token(JWT_SECRET, "ci-bot", 600, ["jobs:read"])
    assert client.get(url, headers=bearer(token)).json() == answer.json() and own_reads == []
    other, _ = issue_token(JWT_SECRET, "ci-bot", 600, ["jobs:read"], repos=["other/*"])
    assert client.get(url, headers=bearer(other)).status_code == 404 and own_reads == []  # read, and not shown


@pytest.mark.parametrize(("path", "job_id"), [
    ("/api/v1/job/0123456789abcdef01234567/status", "0123456789abcdef01234567"),
    ("/api/v1/job/0123456789abcdef01234567/events", "0123456789abcdef01234567"),
    ("/api/v1/job/0123456789abcdef01234567/stream", "0123456789abcdef01234567"),
    ("/api/v1/job/0123456789abcdef01234567/cancel", None),
    ("/api/v1/job/0123456789abcdef01234567/status/more", None),
    ("/api/v1/job/0123456789ABCDEF01234567/status", None),
    ("/api/v1/jobs", None)])
def test_requests_that_read_one_job_are_told_apart_by_their_path(path: str, job_id: str | None) -> None:
    assert read_job_id({"type": "http", "method": "GET", "path": path}) == job_id


def finish(redis_url: str, job_id: str) -> None:
    async def complete(redis: Redis) -> None:
        store = JobStore(redis)
        record = await store.get(job_id)
        assert record is not None
        record.status, record.progress, record.conclusion = "completed", 100.0, "success"
        await store.save(record, "complete", {"status": "completed", "progress": 100.0, "conclusion": "success"})

    with_redis(complete, redis_url)


def test_a_job_s_stream_gets_its_record_in_the_call_that_looks_the_key_up(client: TestClient, redis_url: str,
                                                                          own_reads: list[str]) -> None:
    key, job_id = make_key(redis_url), make_job(redis_url)
    finish(redis_url, job_id)  # an ended job's stream replays its events and reads nothing more
    with client.websocket_connect(f"/api/v1/job/{job_id}/stream", headers=bearer(key)) as ws:
        assert [ws.receive_json()["type"], ws.receive_json()["type"]] == ["progress", "complete"]
    events = client.get(f"/api/v1/job/{job_id}/events", headers=bearer(key))
    assert events.status_code == 200 and "event: complete" in events.text and own_reads == []
    with client.websocket_connect(f"/api/v1/job/{job_id}/stream?t={job_link_token(JWT_SECRET, job_id)}") as ws:
        assert ws.receive_json()["type"] == "progress"  # a signed link, no key: the endpoint reads the job itself
    assert own_reads == [job_id]


def test_a_key_that_may_not_see_the_job_gets_none_of_it(client: TestClient, redis_url: str) -> None:
    job_id = make_job(redis_url, "acme/widgets")
    url = f"/api/v1/job/{job_id}/status"
    revoked, expired = make_key(redis_url, "revoked"), apikeys.new_key()
    with_redis(lambda r: apikeys.revoke_key(r, "revoked"), redis_url)
    redis_sync.Redis.from_url(redis_url).hset(apikeys.KEYS_HASH, apikeys.key_hash(expired), msgspec.json.encode(
        {"name": "expired", "created_at": 1700000000.0, "hint": expired[:8], "expires_at": time.time() - 1}))
    limited = make_key(redis_url, "limited", rate_limit="1/minute")
    assert client.get(url, headers=bearer(limited)).status_code == 200
    expected = {revoked: 401, expired: 401, make_key(redis_url, "fleet", scopes=["fleet:read"]): 403,
                make_key(redis_url, "other", repos=["other/*"]): 404, limited: 429}
    for key, status in expected.items():
        answer = client.get(url, headers=bearer(key))
        assert answer.status_code == status and answer.headers["content-type"] == "application/problem+json"
        assert "acme/widgets" not in answer.text and "queued" not in answer.text, answer.text


def test_jwt_tokens_authenticate_and_bad_ones_are_401(client: TestClient, redis_url: str,
                                                      rsa_key_pair: tuple[bytes, bytes]) -> None:
    import jwt

    job_id = make_job(redis_url)
    url = f"/api/v1/job/{job_id}/status"
    token, _ = issue_token(JWT_SECRET, "ci-bot", 600, ["jobs:read"])
    ok = client.get(url, headers=bearer(token))
    assert ok.status_code == 200 and ok.headers["x-ratelimit-remaining"] == "99"
    assert client.post(f"/api/v1/job/{job_id}/cancel", headers=bearer(token)).status_code == 403
    other_repo, _ = issue_token(JWT_SECRET, "ci-bot", 600, ["jobs:read"], ["other/*"])
    assert client.get(url, headers=bearer(other_repo)).status_code == 404
    forged, _ = issue_token("another-secret-" + "y" * 32, "ci-bot", 600, ["admin"])
    expired, _ = issue_token(JWT_SECRET, "ci-bot", 60, ["jobs:read"], at=time.time() - 3600)
    claims = {"iss": "aqe", "sub": "ci-bot", "iat": int(time.time()), "exp": int(time.time()) + 60, "scope": "admin"}
    unsigned = jwt.encode(claims, None, algorithm="none")
    rs256 = jwt.encode(claims, rsa_key_pair[0], algorithm="RS256")
    for bad, why in ((forged, "signature"), (expired, "expired"), (unsigned, "HS256"), (rs256, "HS256")):
        answer = client.get(url, headers=bearer(bad))
        assert answer.status_code == 401 and why in answer.json()["detail"], why
        assert answer.headers["www-authenticate"].startswith("Bearer")


def test_the_101st_request_in_a_minute_gets_429(client: TestClient, redis_url: str) -> None:
    key, job_id = make_key(redis_url), make_job(redis_url)
    url = f"/api/v1/job/{job_id}/status"
    answers = [client.get(url, headers=bearer(key)) for _ in range(101)]
    assert [a.status_code for a in answers] == [200] * 100 + [429]
    assert [int(a.headers["x-ratelimit-remaining"]) for a in answers[:100]] == list(range(99, -1, -1))
    refused = answers[100]
    assert refused.headers["content-type"] == "application/problem+json" and refused.json()["code"] == "rate_limited"
    assert refused.headers["x-ratelimit-limit"] == "100" and refused.headers["x-ratelimit-remaining"] == "0"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["retry-after"] == refused.headers["x-ratelimit-reset"]
    assert client.get(url, headers=bearer(make_key(redis_url, "other"))).status_code == 200  # its own count


def test_a_key_s_own_rate_limit_applies(client: TestClient, redis_url: str) -> None:
    key, job_id = make_key(redis_url, rate_limit="5/minute"), make_job(redis_url)
    answers = [client.get(f"/api/v1/job/{job_id}/status", headers=bearer(key)) for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert {a.headers["x-ratelimit-limit"] for a in answers} == {"5"}
    assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["4", "3", "2", "1", "0", "0"]


def test_requests_without_valid_credentials_are_limited_per_address(app_client: Callable[..., TestClient],
                                                                    redis_url: str) -> None:
    client = app_client(AQE_RATE_LIMIT="3/minute")
    job_id = make_job(redis_url)
    url = f"/api/v1/job/{job_id}/status"
    answers = [client.get(url, headers={**bearer("aqe_" + "B" * 32), "X-Forwarded-For": f"10.0.0.{n}"})
               for n in range(4)]
    assert [a.status_code for a in answers] == [401, 401, 401, 429]  # X-Forwarded-For is not believed
    assert answers[3].headers["x-ratelimit-limit"] == "3" and "retry-after" in answers[3].headers
    key = make_key(redis_url)
    assert client.get(url, headers=bearer(key)).status_code == 200  # a key is counted on its own


def test_a_request_marks_the_key_used_once_a_minute(client: TestClient, redis_url: str) -> None:
    key, job_id = make_key(redis_url), make_job(redis_url)
    before = time.time()
    client.get(f"/api/v1/job/{job_id}/status", headers=bearer(key))
    [listed] = with_redis(apikeys.list_keys, redis_url)
    assert listed.last_used_at is not None and listed.last_used_at >= before - 1
    client.get(f"/api/v1/job/{job_id}/status", headers=bearer(key))
    [again] = with_redis(apikeys.list_keys, redis_url)
    assert again.last_used_at == listed.last_used_at  # not rewritten within the minute: one write less per request


def test_the_job_page_s_key_fallback_honours_scopes_and_repositories(client: TestClient, redis_url: str) -> None:
    job_id = make_job(redis_url, "acme/widgets")
    assert client.get(f"/jobs/{job_id}", headers=bearer(make_key(redis_url, "a", repos=["acme/*"]))).status_code == 200
    for key in (make_key(redis_url, "o", repos=["other/*"]), make_key(redis_url, "f", scopes=["fleet:read"])):
        page = client.get(f"/jobs/{job_id}", headers=bearer(key))
        assert page.status_code == 403 and "x-ratelimit-limit" not in page.headers


def test_counters_are_named_by_hash_never_by_the_key(client: TestClient, redis_url: str) -> None:
    key, job_id = make_key(redis_url), make_job(redis_url)
    client.get(f"/api/v1/job/{job_id}/status", headers=bearer(key))
    names = [name.decode() for name in redis_sync.Redis.from_url(redis_url).keys("aqe:ratelimit:*")]
    assert names == [f"aqe:ratelimit:key:{apikeys.key_hash(key)}"]


def test_a_repository_limited_key_starts_jobs_on_its_repositories_only(client: TestClient, redis_url: str) -> None:
    acme = make_key(redis_url, "acme-ci", repos=["acme/*"])
    body = {"repo": "other/app", "sha": "b" * 40}
    refused = client.post("/api/v1/security/scan", json=body, headers=bearer(acme))
    assert refused.status_code == 403 and refused.json()["code"] == "repo_not_allowed"
    started = client.post("/api/v1/security/scan", json={**body, "repo": "acme/app"}, headers=bearer(acme))
    assert started.status_code == 202
    assert client.get(started.json()["status_url"].removeprefix("http://aqe.test"),
                      headers=bearer(acme)).status_code == 200


def test_the_job_list_shows_only_jobs_the_credential_may_see(client: TestClient, redis_url: str) -> None:
    mine, theirs = make_job(redis_url, "acme/widgets"), make_job(redis_url, "other/app")
    acme, everyone = make_key(redis_url, "a", repos=["acme/*"]), make_key(redis_url, "all")
    listed = {j["id"] for j in client.get("/api/v1/jobs", headers=bearer(acme)).json()["jobs"]}
    assert listed == {mine}
    assert {j["id"] for j in client.get("/api/v1/jobs", headers=bearer(everyone)).json()["jobs"]} == {mine, theirs}


def test_a_job_started_through_the_api_is_audited_with_who_and_from_where(client: TestClient, redis_url: str) -> None:
    from jobs import audit

    key = make_key(redis_url, "jenkins")
    job_id = client.post("/api/v1/test/execute", json={"repo": "acme/app", "ref": "main"},
                         headers=bearer(key)).json()["job_id"]
    entries = with_redis(lambda r: audit.recent(r, 5), redis_url)
    started = [e for e in entries if e.action == "job.started"]
    assert [(e.actor, e.target, e.detail) for e in started] == [("key:jenkins", job_id, "api.test-execute acme/app")]
    assert started[0].ip == "testclient" and key not in repr(entries)


@pytest.fixture
def issuer() -> Iterator[Any]:
    from tests.fakes.oidc import FakeIssuer

    with FakeIssuer() as fake:
        yield fake


def test_a_ci_oidc_token_starts_and_reads_jobs_of_its_own_repository_only(app_client: Callable[..., TestClient],
                                                                         issuer: Any, redis_url: str) -> None:
    client = app_client(AQE_OIDC_ISSUERS=issuer.issuer, AQE_OIDC_REFS="refs/heads/main")
    token = issuer.token()  # GitHub Actions: repository acme/widgets, ref refs/heads/main
    body = {"repo": "acme/widgets", "sha": "c" * 40}
    started = client.post("/api/v1/security/scan", json=body, headers=bearer(token))
    assert started.status_code == 202, started.text
    job_id = started.json()["job_id"]
    assert client.get(f"/api/v1/job/{job_id}/status", headers=bearer(token)).status_code == 200
    other = client.post("/api/v1/security/scan", json={**body, "repo": "acme/other"}, headers=bearer(token))
    assert other.status_code == 403 and other.json()["code"] == "repo_not_allowed"
    assert client.get(f"/api/v1/job/{make_job(redis_url, 'acme/other')}/status", headers=bearer(token)).status_code == 404
    assert client.get("/api/v1/fleet/status", headers=bearer(token)).status_code == 403
    from jobs import audit

    [entry] = [e for e in with_redis(lambda r: audit.recent(r, 5), redis_url) if e.action == "job.started"]
    assert entry.actor == "oidc:repo:acme/widgets:ref:refs/heads/main" and token not in repr(entry)


def test_a_gitlab_ci_token_acts_on_its_gitlab_project_never_on_a_github_repository_of_the_same_name(
        app_client: Callable[..., TestClient], issuer: Any, redis_url: str) -> None:
    client = app_client(AQE_OIDC_ISSUERS=issuer.issuer, GITLAB_TOKEN="glpat-for-clones")
    token = issuer.token(repository=None, project_path="acme/widgets", ref="main", ref_path="refs/heads/main")
    started = client.post("/api/v1/security/scan", json={"repo": "acme/widgets", "sha": "c" * 40}, headers=bearer(token))
    assert started.status_code == 202, started.text  # GitHub is configured too: the token says which forge
    mine = client.get(f"/api/v1/job/{started.json()['job_id']}/status", headers=bearer(token)).json()
    assert (mine["request"]["forge"], mine["request"]["repo"]) == ("gitlab", "acme/widgets")
    github_job = make_job(redis_url, "acme/widgets", forge="github")
    assert client.get(f"/api/v1/job/{github_job}/status", headers=bearer(token)).status_code == 404
    assert github_job not in {j["id"] for j in client.get("/api/v1/jobs", headers=bearer(token)).json()["jobs"]}
    on_github = client.post("/api/v1/security/scan", json={"repo": "acme/widgets", "sha": "c" * 40, "forge": "github"},
                            headers=bearer(token))
    assert on_github.status_code == 403 and "may on gitlab repositories acme/widgets" in on_github.json()["detail"]


POLICY = json.dumps([
    {"repository": "acme/release", "ref": "refs/tags/*", "same_commit": True},
    {"repository": "acme/*", "ref": "refs/heads/main", "run": ["security/scan", "quality/gate"]},
    {"repository": "acme/*", "ref": "refs/pull/*", "scopes": ["jobs:read"]},
])


def test_the_oidc_policy_decides_by_repository_and_ref_what_a_token_may_do(
        app_client: Callable[..., TestClient], issuer: Any, redis_url: str) -> None:
    client = app_client(AQE_OIDC_ISSUERS=issuer.issuer, AQE_OIDC_POLICY=POLICY)
    body = {"repo": "acme/widgets", "sha": "c" * 40}
    main = bearer(issuer.token())  # acme/widgets from refs/heads/main: scans and the gate only
    assert client.post("/api/v1/security/scan", json=body, headers=main).status_code == 202
    tests = client.post("/api/v1/test/execute", json=body, headers=main)
    assert tests.status_code == 403 and tests.json()["code"] == "run_not_allowed"
    assert "security/scan, quality/gate" in tests.json()["detail"]
    gate = client.post("/api/v1/quality/gate", json={"repo": "acme/widgets", "metrics": {}}, headers=main)
    assert gate.status_code == 202, gate.text

    pull = bearer(issuer.token(ref="refs/pull/7/merge"))  # a pull request's workflow: it may read, not start
    assert client.get("/api/v1/jobs", headers=pull).status_code == 200
    refused = client.post("/api/v1/security/scan", json=body, headers=pull)
    assert refused.status_code == 403 and refused.json()["code"] == "insufficient_scope"

    release = issuer.token(repository="acme/release", ref="refs/tags/v1.2.0", sha="d" * 40)
    other_commit = client.post("/api/v1/security/scan", json={"repo": "acme/release", "sha": "c" * 40},
                               headers=bearer(release))
    assert other_commit.status_code == 403 and other_commit.json()["code"] == "commit_not_allowed"
    assert '"sha": "' + "d" * 40 in other_commit.json()["detail"]
    by_ref = client.post("/api/v1/security/scan", json={"repo": "acme/release", "ref": "main"}, headers=bearer(release))
    assert by_ref.status_code == 403 and by_ref.json()["code"] == "commit_not_allowed"
    own = client.post("/api/v1/test/execute", json={"repo": "acme/release", "sha": "d" * 40}, headers=bearer(release))
    assert own.status_code == 202, own.text

    for token, why in [(issuer.token(repository="other/app"), "no AQE_OIDC_POLICY rule accepts tokens of other/app"),
                       (issuer.token(ref="refs/heads/feature"), "from refs/heads/feature"),
                       (issuer.token(repository="acme/release", ref="refs/tags/v1"), "claim `sha`")]:
        answer = client.get("/api/v1/jobs", headers=bearer(token))
        assert answer.status_code == 401 and why in answer.json()["detail"], answer.text


@pytest.mark.parametrize(("claims", "why"), [
    ({"aud": "someone-else"}, "audience"),
    ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "expired"),
    ({"ref": "refs/heads/feature"}, "AQE_OIDC_REFS"),
    ({"repository": None}, "names no repository"),
])
def test_oidc_tokens_for_another_audience_expired_or_outside_the_policy_are_401(
        app_client: Callable[..., TestClient], issuer: Any, claims: dict[str, Any], why: str) -> None:
    client = app_client(AQE_OIDC_ISSUERS=issuer.issuer, AQE_OIDC_REFS="refs/heads/main")
    refused = client.get("/api/v1/jobs", headers=bearer(issuer.token(**claims)))
    assert refused.status_code == 401 and why in refused.json()["detail"]
    assert refused.headers["www-authenticate"].startswith("Bearer")


def test_oidc_tokens_of_an_issuer_not_listed_or_with_a_forged_signature_are_401(
        app_client: Callable[..., TestClient], issuer: Any) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    listed = app_client(AQE_OIDC_ISSUERS="https://token.actions.githubusercontent.com")
    wrong_issuer = listed.get("/api/v1/jobs", headers=bearer(issuer.token()))
    assert wrong_issuer.status_code == 401 and "AQE_OIDC_ISSUERS" in wrong_issuer.json()["detail"]
    unconfigured = app_client().get("/api/v1/jobs", headers=bearer(issuer.token()))
    assert unconfigured.status_code == 401 and "AQE_OIDC_ISSUERS is not set" in unconfigured.json()["detail"]
    trusting = app_client(AQE_OIDC_ISSUERS=issuer.issuer)
    forged = issuer.token(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    assert trusting.get("/api/v1/jobs", headers=bearer(forged)).status_code == 401
    assert trusting.get("/api/v1/jobs", headers=bearer(issuer.token())).status_code == 200


def test_a_coverage_report_for_a_repository_the_key_may_not_use_is_refused_before_it_is_stored(
        client: TestClient, redis_url: str) -> None:
    import base64

    key = make_key(redis_url, "other-team", repos=["other/*"])
    report = base64.b64encode(b"SF:calc.py\nDA:1,1\nend_of_record\n").decode()
    refused = client.post("/api/v1/coverage/analyze", headers=bearer(key),
                          json={"repo": "acme/widgets", "sha": "a" * 40, "report": report, "report_name": "lcov.info"})
    assert refused.status_code == 403 and refused.json()["code"] == "repo_not_allowed"
    assert redis_sync.Redis.from_url(redis_url).keys("aqe:upload:*") == []
