"""GET /metrics through the real app and Redis: this process's counters and the fleet's facts from Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
import redis as redis_sync
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from starlette.testclient import TestClient

from app.main import create_app
from jobs import fleet, forge_metrics
from jobs.model import AgentResult
from tests.e2e.conftest import signed_headers


@pytest.fixture
def client(make_settings, redis_url: str) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    redis_sync.Redis.from_url(redis_url).flushdb()
    with TestClient(create_app(make_settings())) as c:
        yield c


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def _seed(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    await fleet.beat(redis, "host:1", started_at=1.0, jobs_running=1, max_jobs=4)
    for duration in (1.0, 3.0):
        await fleet.record_agent_run(redis, AgentResult(agent="tests", conclusion="success", title="t", summary="s",
                                                        duration_s=duration), finished_at=5.0)
    await forge_metrics.record_call(redis, "github", "post", 201, {"x-ratelimit-remaining": "4990",
                                                                   "x-ratelimit-limit": "5000",
                                                                   "x-ratelimit-resource": "core"})
    await redis.zadd("arq:queue", {"job": 1})
    await redis.aclose()


def test_metrics_show_deliveries_api_requests_and_the_fleet(client: TestClient, redis_url: str) -> None:
    asyncio.run(_seed(redis_url))
    body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
    assert client.post("/webhooks/github", content=body, headers=signed_headers(body, "ping")).status_code == 200
    assert client.post("/webhooks/github", content=body, headers={**signed_headers(body, "ping"),
                                                                  "X-Hub-Signature-256": "sha256=0"}).status_code == 401
    before = _samples(client.get("/metrics").text)
    assert client.get("/api/v1/job/0123456789abcdef01234567/status").status_code == 401
    answer = client.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    after = _samples(answer.text)
    key = ("aqe_api_requests_total", (("method", "GET"), ("route", "/job/{job_id}/status"), ("status", "401")))
    assert after[key] - before.get(key, 0) == 1  # by route template, not by raw path
    assert after[("aqe_webhook_deliveries_total", (("event", "ping"), ("forge", "github"), ("outcome", "ignored")))] >= 1
    assert after[("aqe_webhook_deliveries_total", (("event", "unverified"), ("forge", "github"),
                                                   ("outcome", "refused")))] >= 1
    assert after[("aqe_queue_jobs", ())] == 1 and after[("aqe_workers_alive", ())] == 1
    assert after[("aqe_jobs_running", ())] == 1
    assert after[("aqe_agent_runs_total", (("agent", "tests"), ("conclusion", "success")))] == 2
    assert after[("aqe_agent_duration_seconds", (("agent", "tests"), ("quantile", "0.5")))] == 2.0
    assert after[("aqe_forge_api_calls_total", (("forge", "github"), ("method", "POST"), ("status", "201")))] == 1
    assert after[("aqe_forge_rate_limit_remaining", (("forge", "github"), ("resource", "core")))] == 4990
    assert not any("0123456789abcdef01234567" in str(labels) for _, labels in after)


def test_job_stream_connections_are_counted_by_how_they_ended(client: TestClient, redis_url: str) -> None:
    from jobs import apikeys
    from jobs.model import RunRequest
    from jobs.store import JobStore

    async def seed() -> tuple[str, str]:
        redis = Redis.from_url(redis_url)
        key = await apikeys.create_key(redis, "streams")
        request = RunRequest(forge="github", repo="acme/widgets", clone_url="u", head_sha="e" * 40,
                             trigger="api.test", agents=["tests"])
        store = JobStore(redis)
        record = await store.get((await store.enqueue(request, delivery_key="aqe:delivery:api:m")).job_id)
        assert record is not None
        record.status, record.conclusion = "completed", "success"
        await store.save(record, "complete", {"status": "completed", "progress": 100.0, "conclusion": "success"})
        await redis.aclose()
        return key, record.id

    key, job_id = asyncio.run(seed())
    before = _samples(client.get("/metrics").text)
    with client.websocket_connect(f"/api/v1/job/{job_id}/stream", headers={"Authorization": f"Bearer {key}"}) as ws:
        assert ws.receive_json()["type"] == "progress"  # then the final message, and the close
    with client.websocket_connect(f"/api/v1/job/{job_id}/stream") as ws:
        assert ws.receive_json()["code"] == "unauthenticated"
    after = _samples(client.get("/metrics").text)
    for status in ("101", "401"):
        counted = ("aqe_api_requests_total", (("method", "GET"), ("route", "/job/{job_id}/stream"), ("status", status)))
        assert after[counted] - before.get(counted, 0) == 1, status
