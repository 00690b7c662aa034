"""The fleet's Redis side: heartbeats that expire, agents' recent runs and their percentiles, one snapshot."""

from __future__ import annotations

import json

from redis.asyncio import Redis

from jobs import fleet
from jobs.model import AgentResult, JobRecord, RunRequest
from jobs.store import ARQ_QUEUE


def _result(agent: str, conclusion: str, duration_s: float) -> AgentResult:
    return AgentResult(agent=agent, conclusion=conclusion, title="t", summary="s", duration_s=duration_s)  # type: ignore[arg-type]


def test_percentile_interpolates_between_closest_ranks() -> None:
    assert fleet.percentile([], 0.5) is None
    assert fleet.percentile([4.0], 0.95) == 4.0
    assert fleet.percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert fleet.percentile(list(map(float, range(1, 101))), 0.95) == 95.05


async def test_snapshot_counts_workers_queue_and_agent_runs(redis: Redis) -> None:
    await fleet.beat(redis, "host-a:1", started_at=100.0, jobs_running=2, max_jobs=4)
    await fleet.beat(redis, "host-b:7", started_at=100.0, jobs_running=0, max_jobs=4)
    for duration in (1.0, 2.0, 3.0, 10.0):
        await fleet.record_agent_run(redis, _result("tests", "success", duration), finished_at=1000.0 + duration)
    await fleet.record_agent_run(redis, _result("tests", "failure", 4.0), finished_at=2000.0)
    await redis.zadd(ARQ_QUEUE, {"ready-job": 1_000, "deferred-job": 10**15})

    snap = await fleet.snapshot(redis, now=5_000.0)
    assert snap["workers"]["alive"] == 2 and snap["workers"]["jobs_running"] == 2 and snap["workers"]["capacity"] == 8
    assert [w["id"] for w in snap["workers"]["list"]] == ["host-a:1", "host-b:7"]
    assert snap["queue"] == {"queued": 2, "ready": 1, "deferred": 1,
                             "by_priority": {"high": 0, "normal": 0, "low": 0}}
    tests = snap["agents"]["tests"]
    assert tests["runs"] == 5 and tests["by_conclusion"] == {"success": 4, "failure": 1}
    assert (tests["duration_p50_s"], tests["last_finished_at"]) == (3.0, 2000.0)
    assert snap["agents"]["security"] == {"runs": 0, "by_conclusion": {}, "recent": 0, "duration_p50_s": None,
                                          "duration_p95_s": None, "last_finished_at": None}
    assert "used_memory" in snap["redis"] and "connected_clients" in snap["redis"]


async def test_a_heartbeat_expires_and_a_stopping_worker_forgets_itself(redis: Redis) -> None:
    await fleet.beat(redis, "host-a:1", started_at=1.0, jobs_running=0, max_jobs=4)
    assert 0 < await redis.ttl(fleet.WORKER_PREFIX + "host-a:1") <= fleet.HEARTBEAT_TTL_S
    assert json.loads(await redis.get(fleet.WORKER_PREFIX + "host-a:1"))["max_jobs"] == 4
    await fleet.forget(redis, "host-a:1")
    assert (await fleet.snapshot(redis))["workers"]["alive"] == 0


async def test_recent_runs_are_capped(redis: Redis) -> None:
    for index in range(fleet.RECENT_RUNS + 20):
        await fleet.record_agent_run(redis, _result("quality", "success", 0.1), finished_at=float(index))
    snap = await fleet.snapshot(redis)
    assert snap["agents"]["quality"]["recent"] == fleet.RECENT_RUNS
    assert snap["agents"]["quality"]["runs"] == fleet.RECENT_RUNS + 20


async def test_the_queue_depth_per_priority_follows_jobs_from_enqueue_to_start_and_cancel(redis: Redis) -> None:
    from jobs.model import RunRequest
    from jobs.store import JobStore

    store = JobStore(redis)

    async def enqueue(priority: str, sha: str) -> str:
        request = RunRequest(forge="github", repo="acme/widgets", clone_url="u", head_sha=sha * 40, trigger="api.x",
                             agents=["tests"], priority=priority)  # type: ignore[arg-type]
        return (await store.enqueue(request, delivery_key=f"aqe:delivery:api:{sha}")).job_id

    high, _, _ = await enqueue("high", "a"), await enqueue("low", "b"), await enqueue("low", "c")
    assert (await fleet.snapshot(redis))["queue"]["by_priority"] == {"high": 1, "normal": 0, "low": 2}
    record = await store.get(high)
    assert record is not None
    record.status = "running"  # a worker took it
    await store.save(record, "progress", {"status": "running"})
    assert (await fleet.snapshot(redis))["queue"]["by_priority"] == {"high": 0, "normal": 0, "low": 2}
    record.status = "queued"  # its worker stopped: waiting for the next one
    await store.save(record, "progress", {"status": "queued"})
    assert (await fleet.snapshot(redis))["queue"]["by_priority"]["high"] == 1


async def test_the_redis_summary_read_over_the_pipelined_connection_is_redis_pys(redis: Redis, redis_url: str) -> None:
    from jobs.redis_pipelined import PipelinedRedis

    fast = PipelinedRedis(redis_url)
    try:
        over_fast = (await fleet.snapshot(redis, pipelined=fast))["redis"]
    finally:
        await fast.close()
    over_py = (await fleet.snapshot(redis))["redis"]
    assert set(over_fast) == set(over_py) >= {"uptime_in_seconds", "connected_clients", "used_memory", "role"}
    assert all(type(over_fast[field]) is type(over_py[field]) for field in over_py)
    assert over_fast["role"] == over_py["role"] == "master" and over_fast["used_memory_human"].endswith(("K", "M"))


def _job(repo: str, agents: list[str], status: str, started: float | None, finished: float | None) -> JobRecord:
    request = RunRequest(forge="github", repo=repo, clone_url="u", head_sha="a" * 40, trigger="api.test",
                         agents=agents)
    return JobRecord(id="j", status=status, request=request, created_at=0.0, started_at=started,  # type: ignore[arg-type]
                     finished_at=finished)


async def test_a_job_is_expected_to_take_as_long_as_its_kind_took_lately(redis: Redis) -> None:
    scan = _job("acme/a", ["security"], "completed", 0.0, 0.0)
    assert await fleet.expected_duration(redis, scan.request) is None
    for seconds in (10.0, 30.0, 20.0):
        await fleet.record_job_run(redis, _job("acme/a", ["security"], "completed", 100.0, 100.0 + seconds))
    await fleet.record_job_run(redis, _job("acme/a", ["security"], "failed", 100.0, 999.0))  # did not run to its end
    await fleet.record_job_run(redis, _job("acme/a", ["tests", "coverage"], "completed", 100.0, 105.0))
    await fleet.record_job_run(redis, _job("acme/b", ["security"], "completed", 100.0, 101.0))
    assert await fleet.expected_duration(redis, scan.request) == 20.0
    same_agents = _job("acme/a", ["coverage", "tests"], "queued", None, None)  # in another order
    assert await fleet.expected_duration(redis, same_agents.request) == 5.0
    assert await fleet.expected_duration(redis, _job("acme/a", [], "queued", None, None).request) is None
    retried = _job("acme/d", [], "completed", 100.0, 400.0)
    retried.attempt_started_at = 380.0  # a stopped worker's try, then the wait for another: not the job's kind
    await fleet.record_job_run(redis, retried)
    assert await fleet.expected_duration(redis, retried.request) == 20.0
    for seconds in range(30):
        await fleet.record_job_run(redis, _job("acme/c", [], "completed", 0.0, float(seconds)))
    assert await redis.llen("aqe:job-runs:github:acme/c:*") == 20  # the latest 20: 10 … 29
    assert await fleet.expected_duration(redis, _job("acme/c", [], "queued", None, None).request) == 19.5
    assert 0 < await redis.ttl("aqe:job-runs:github:acme/c:*") <= fleet.JOB_RUNS_TTL_S
