"""GET /api/v1/jobs and POST /api/v1/job/{id}/cancel of a job no worker has taken, through the real app and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis as redis_sync
from redis.asyncio import Redis
from starlette.testclient import TestClient

from app.main import create_app
from jobs import apikeys
from jobs.model import RunRequest
from jobs.store import JobStore, arq_deserialize


@pytest.fixture
def client(make_settings, redis_url: str) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    redis_sync.Redis.from_url(redis_url).flushdb()
    with TestClient(create_app(make_settings())) as c:
        yield c


async def _seed(redis_url: str, repos: list[str]) -> tuple[dict[str, str], list[str]]:
    redis = Redis.from_url(redis_url)
    key = await apikeys.create_key(redis, "ci")
    store, ids = JobStore(redis), []
    for index, repo in enumerate(repos):
        request = RunRequest(forge="github", repo=repo, clone_url="u", head_sha=f"{index:040x}", trigger="api.test",
                             agents=["tests"])
        ids.append((await store.enqueue(request, delivery_key=f"aqe:delivery:api:{index}")).job_id)
        await asyncio.sleep(0.002)
    await redis.aclose()
    return {"Authorization": f"Bearer {key}"}, ids


def test_jobs_are_listed_newest_first_filtered_and_paged(client: TestClient, redis_url: str) -> None:
    headers, ids = asyncio.run(_seed(redis_url, ["acme/a", "acme/b", "acme/a", "acme/a", "acme/b"]))
    assert client.get("/api/v1/jobs").status_code == 401
    everything = client.get("/api/v1/jobs", headers=headers).json()
    assert [j["id"] for j in everything["jobs"]] == ids[::-1] and everything["next_cursor"] is None
    first = client.get("/api/v1/jobs?repo=acme/a&limit=2", headers=headers).json()
    assert [j["id"] for j in first["jobs"]] == [ids[3], ids[2]] and first["next_cursor"]
    rest = client.get(f"/api/v1/jobs?repo=acme/a&limit=2&cursor={first['next_cursor']}", headers=headers).json()
    assert [j["id"] for j in rest["jobs"]] == [ids[0]]
    assert client.get("/api/v1/jobs?status=completed", headers=headers).json()["jobs"] == []
    assert all(j["status"] == "queued" and j["repo"] in ("acme/a", "acme/b") for j in everything["jobs"])
    for bad in ("status=done", "limit=0", "limit=1000", "cursor=abc"):
        answer = client.get(f"/api/v1/jobs?{bad}", headers=headers)
        assert answer.status_code == 422 and bad.split("=")[0] in answer.json()["detail"]


def test_a_queued_job_is_cancelled_at_once_and_leaves_the_queue(client: TestClient, redis_url: str) -> None:
    headers, [job_id] = asyncio.run(_seed(redis_url, ["acme/a"]))
    answer = client.post(f"/api/v1/job/{job_id}/cancel", headers=headers)
    assert answer.status_code == 202 and answer.json()["status"] == "cancelled"
    assert answer.json()["status_url"].endswith(f"/api/v1/job/{job_id}/status")  # as every POST's answer
    status = client.get(f"/api/v1/job/{job_id}/status", headers=headers).json()
    assert (status["status"], status["result"]["conclusion"]) == ("cancelled", "cancelled")
    sync = redis_sync.Redis.from_url(redis_url)
    assert sync.zcard("arq:queue") == 0 and not sync.exists(f"arq:job:{job_id}")
    assert sync.keys("aqe:active:*") == []  # the same analysis can be asked for again
    again = client.post(f"/api/v1/job/{job_id}/cancel", headers=headers)
    assert again.status_code == 409 and again.json()["code"] == "job_ended"
    assert client.post("/api/v1/job/ffffffffffffffffffffffff/cancel", headers=headers).status_code == 404


def test_a_queued_job_cancelled_with_a_callback_url_has_a_worker_send_its_callback(
        client: TestClient, redis_url: str) -> None:
    headers, _ = asyncio.run(_seed(redis_url, []))

    async def queued_with_callback() -> str:
        redis = Redis.from_url(redis_url)
        request = RunRequest(forge="github", repo="acme/a", clone_url="u", head_sha="c" * 40, trigger="api.test",
                             agents=["tests"], callback_url="https://ci.example.com/aqe-done")
        job_id = (await JobStore(redis).enqueue(request, delivery_key="aqe:delivery:api:cb")).job_id
        await redis.aclose()
        return job_id

    job_id = asyncio.run(queued_with_callback())
    assert client.post(f"/api/v1/job/{job_id}/cancel", headers=headers).json()["status"] == "cancelled"
    sync = redis_sync.Redis.from_url(redis_url)
    assert sync.zrange("arq:queue", 0, -1) == [f"callback:{job_id}".encode()]  # the analysis left, its callback came
    assert arq_deserialize(sync.get(f"arq:job:callback:{job_id}"))["f"] == "callback"
    assert arq_deserialize(sync.get(f"arq:job:callback:{job_id}"))["a"] == [job_id]


def test_a_job_a_worker_has_taken_is_flagged_for_arq_to_abort(client: TestClient, redis_url: str) -> None:
    headers, [job_id] = asyncio.run(_seed(redis_url, ["acme/a"]))
    sync = redis_sync.Redis.from_url(redis_url)
    sync.set(f"arq:in-progress:{job_id}", b"1")  # what arq's worker sets when it takes the job
    answer = client.post(f"/api/v1/job/{job_id}/cancel", headers=headers)
    assert (answer.json()["job_id"], answer.json()["status"]) == (job_id, "cancelling")
    assert sync.zscore("arq:abort", job_id) is not None and sync.zcard("arq:queue") == 1


def test_quality_gate_on_given_metrics_is_answered_at_once(client: TestClient, redis_url: str) -> None:
    headers, _ = asyncio.run(_seed(redis_url, []))
    body = {"repo": "acme/a", "metrics": {
        "tests": {"tests_total": 10, "tests_failed": 0, "tests_errors": 0},
        "coverage": {"patch_percent": 71.5, "patch_coverable": 40, "total_percent": 88.0},
        "security": {"new_critical": 0, "new_high": 0}}, "conditions": {"min_patch_coverage": 70}}
    answer = client.post("/api/v1/quality/gate", json=body, headers={**headers, "Idempotency-Key": "g-1"})
    assert answer.status_code == 202 and answer.json()["conclusion"] == "success", answer.text
    job_id = answer.json()["job_id"]
    status = client.get(f"/api/v1/job/{job_id}/status", headers=headers).json()
    assert status["status"] == "completed" and status["result"]["conclusion"] == "success"
    [gate] = status["result"]["agents"]
    assert "| Coverage on new code | 71.5 % | ≥ 70.0 % | ✅ passed |" in gate["summary"]
    assert client.post("/api/v1/quality/gate", json=body, headers={**headers, "Idempotency-Key": "g-1"}).json()[
        "job_id"] == job_id
    strict = client.post("/api/v1/quality/gate", json={**body, "conditions": {}}, headers=headers).json()
    assert strict["conclusion"] == "failure"  # 71.5 % is under the default 80 %
    listed = client.get("/api/v1/jobs?repo=acme/a", headers=headers).json()["jobs"]
    assert {job["id"] for job in listed} == {job_id, strict["job_id"]}


def test_quality_gate_refuses_what_it_cannot_read(client: TestClient, redis_url: str) -> None:
    headers, [queued] = asyncio.run(_seed(redis_url, ["acme/a"]))
    cases = [({}, 422, "exactly one of job_id"),
             ({"metrics": {"linting": {"x": 1}}}, 422, "unknown agent 'linting'"),
             ({"metrics": {}, "conditions": {"max_ccn": "low"}}, 422, "$.conditions.max_ccn"),
             ({"metrics": {}, "conditions": {"min_patch_coverage": 120}}, 422, "$.conditions.min_patch_coverage"),
             ({"job_id": "ffffffffffffffffffffffff"}, 404, "no job"),
             ({"job_id": queued}, 409, "is queued")]
    for body, status, said in cases:
        answer = client.post("/api/v1/quality/gate", json=body, headers=headers)
        assert answer.status_code == status and said in answer.json()["detail"], (body, answer.text)


def test_cors_is_off_unless_origins_are_configured(make_settings, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    preflight = {"Origin": "https://ci.example.com", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"}
    with TestClient(create_app(make_settings())) as plain:
        assert "access-control-allow-origin" not in plain.options("/api/v1/jobs", headers=preflight).headers
        assert "access-control-allow-origin" not in plain.get("/healthz", headers={"Origin": "https://x.test"}).headers
    with TestClient(create_app(make_settings(AQE_CORS_ORIGINS="https://ci.example.com"))) as allowed:
        answer = allowed.options("/api/v1/jobs", headers=preflight)
        assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == "https://ci.example.com"
        other = allowed.options("/api/v1/jobs", headers={**preflight, "Origin": "https://evil.example.com"})
        assert other.status_code == 400 and "access-control-allow-origin" not in other.headers


def test_oversized_or_mistyped_bodies_are_refused_before_any_work(client: TestClient, redis_url: str) -> None:
    headers, _ = asyncio.run(_seed(redis_url, []))
    big = b'{"repo": "acme/a", "sha": "' + b"a" * (1024 * 1024) + b'"}'
    answer = client.post("/api/v1/security/scan", content=big, headers={**headers, "Content-Type": "application/json"})
    assert answer.status_code == 413 and answer.json()["code"] == "too_large"
    form = client.post("/api/v1/security/scan", data={"repo": "acme/a"}, headers=headers)
    assert form.status_code == 415 and form.json()["code"] == "unsupported_media_type"
    assert redis_sync.Redis.from_url(redis_url).zcard("arq:queue") == 0


def test_an_idempotency_key_gets_the_same_job_for_24_hours_and_no_key_is_kept_without_one(
        client: TestClient, redis_url: str) -> None:
    headers, _ = asyncio.run(_seed(redis_url, []))
    body = {"repo": "https://git.example.com/acme/a.git", "sha": "a" * 40}
    first = client.post("/api/v1/security/scan", json=body, headers={**headers, "Idempotency-Key": "build-7"})
    again = client.post("/api/v1/security/scan", json=body, headers={**headers, "Idempotency-Key": "build-7"})
    assert first.status_code == again.status_code == 202, first.text
    assert again.json()["job_id"] == first.json()["job_id"] and again.json()["outcome"] == "duplicate"
    sync = redis_sync.Redis.from_url(redis_url)
    [kept] = sync.keys("aqe:delivery:api:*")
    assert 24 * 3600 - 60 < sync.ttl(kept) <= 24 * 3600
    other = client.post("/api/v1/security/scan", json={**body, "sha": "b" * 40}, headers=headers)
    assert other.status_code == 202 and sync.keys("aqe:delivery:api:*") == [kept]  # nothing to retry against
