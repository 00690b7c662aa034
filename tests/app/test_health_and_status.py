"""GET /healthz, /readyz and /api/v1/job/{id}/status through the real app and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis as redis_sync
from redis.asyncio import Redis
from starlette.testclient import TestClient

from app.main import create_app
from jobs import apikeys
from jobs.links import job_link_token
from jobs.model import RunRequest
from jobs.store import JobStore
from jobs.worker_health import HEALTH_KEY


@pytest.fixture
def client(make_settings, redis_url: str) -> Iterator[TestClient]:
    redis_sync.Redis.from_url(redis_url).flushdb()
    with TestClient(create_app(make_settings())) as c:
        yield c


async def _make_key_and_job(redis_url: str) -> tuple[str, str]:
    redis = Redis.from_url(redis_url)
    key = await apikeys.create_key(redis, "ci")
    request = RunRequest(forge="github", repo="acme/widgets", clone_url="u", head_sha="a" * 40, trigger="push", agents=["tests"])
    outcome = await JobStore(redis).enqueue(request, delivery_key="aqe:delivery:github:x")
    await redis.aclose()
    return key, outcome.job_id


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_needs_a_worker_heartbeat(client: TestClient, redis_url: str) -> None:
    answer = client.get("/readyz")
    assert answer.status_code == 503 and "heartbeat" in answer.json()["worker"]
    redis_sync.Redis.from_url(redis_url).set(HEALTH_KEY, "j_complete=0 j_failed=0", px=6000)
    assert client.get("/readyz").status_code == 200


def test_job_status_requires_a_valid_key(client: TestClient, redis_url: str) -> None:
    key, job_id = asyncio.run(_make_key_and_job(redis_url))
    url = f"/api/v1/job/{job_id}/status"
    missing = client.get(url)
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert missing.headers["content-type"] == "application/problem+json"
    assert client.get(url, headers={"Authorization": "Basic abc"}).status_code == 401
    assert client.get(url, headers={"Authorization": "Bearer aqe_" + "A" * 32}).status_code == 401
    ok = client.get(url, headers={"Authorization": f"Bearer {key}"})
    assert ok.status_code == 200
    body = ok.json()
    assert body["id"] == job_id and body["status"] == "queued" and body["progress"] == 0.0 and body["result"] is None
    assert client.get("/api/v1/job/ffffffffffffffffffffffff/status", headers={"Authorization": f"Bearer {key}"}).status_code == 404
    bad = client.get("/api/v1/job/..%2Fetc/status", headers={"Authorization": f"Bearer {key}"})
    assert bad.status_code == 404 and bad.json()["code"] in ("job_not_found", "http_error")


def test_job_artifact_needs_the_signed_link_and_names_what_exists(client: TestClient, redis_url: str) -> None:
    key, job_id = asyncio.run(_make_key_and_job(redis_url))
    patch = b"diff --git a/tests/test_x.py b/tests/test_x.py\nnew file mode 100644\n"

    async def keep() -> None:
        redis = Redis.from_url(redis_url)
        store = JobStore(redis)
        record = await store.get(job_id)
        assert record is not None
        record.artifacts = ["generated-tests.patch"]
        await store.save(record, "progress", {})
        await store.save_artifact(job_id, "generated-tests.patch", patch)
        await redis.aclose()

    asyncio.run(keep())
    settings = client.app.state.settings  # type: ignore[attr-defined]
    token = job_link_token(settings.jwt_secret, job_id)
    url = f"/jobs/{job_id}/artifacts/generated-tests.patch"
    assert client.get(url).status_code == 403
    assert client.get(f"{url}?t={job_link_token(settings.jwt_secret, 'f' * 24)}").status_code == 403  # another job's link
    answer = client.get(f"{url}?t={token}")
    assert answer.status_code == 200 and answer.content == patch
    assert answer.headers["content-disposition"] == 'attachment; filename="generated-tests.patch"'
    assert client.get(url, headers={"Authorization": f"Bearer {key}"}).content == patch
    missing = client.get(f"/jobs/{job_id}/artifacts/other.patch?t={token}")
    assert missing.status_code == 404 and "generated-tests.patch" in missing.json()["detail"]
    page = client.get(f"/jobs/{job_id}?t={token}")
    assert f"/jobs/{job_id}/artifacts/generated-tests.patch?t={token}" in page.text
