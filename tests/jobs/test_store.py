"""The enqueue script on a real Redis: dedupe by delivery, coalesce by meaning, arq-compatible jobs."""

from __future__ import annotations

import asyncio
import time

import msgspec
import pytest
from redis.asyncio import Redis

from jobs import audit
from jobs.model import RunRequest
from jobs.redis_pipelined import PipelinedRedis
from jobs.store import ARQ_QUEUE, JobStore, arq_deserialize


def _request(sha: str = "a" * 40, pr: int | None = 7, trigger: str = "pull_request.opened") -> RunRequest:
    return RunRequest(forge="github", repo="acme/widgets", clone_url="https://github.com/acme/widgets.git",
                      head_sha=sha, trigger=trigger, agents=["tests"], pr_number=pr)


async def test_enqueue_creates_record_arq_job_and_event(redis: Redis) -> None:
    store = JobStore(redis)
    outcome = await store.enqueue(_request(), delivery_key="aqe:delivery:github:d1", event="pull_request", action="opened")
    assert outcome.state == "queued"
    record = await store.get(outcome.job_id)
    assert record is not None and record.status == "queued" and record.request.pr_number == 7
    job = arq_deserialize(await redis.get(f"arq:job:{outcome.job_id}"))
    assert job["f"] == "analyse" and job["a"] == [outcome.job_id] and job["t"] is None
    assert await redis.zscore(ARQ_QUEUE, outcome.job_id) is not None
    [(_, event)] = await store.events(outcome.job_id)
    assert event == {"type": "queued", "status": "queued", "progress": 0.0}
    assert 3 * 86400 < await redis.ttl("aqe:delivery:github:d1") <= 4 * 86400


async def test_same_delivery_is_a_duplicate(redis: Redis) -> None:
    store = JobStore(redis)
    first = await store.enqueue(_request(), delivery_key="aqe:delivery:github:d1")
    again = await store.enqueue(_request(), delivery_key="aqe:delivery:github:d1")
    assert again.state == "duplicate" and again.job_id == first.job_id
    assert await redis.zcard(ARQ_QUEUE) == 1


async def test_same_meaning_coalesces_and_keeps_the_pr(redis: Redis) -> None:
    """A push and a PR event for one sha share one job; the PR number is remembered for the comment."""
    store = JobStore(redis)
    push = await store.enqueue(_request(pr=None, trigger="push"), delivery_key="aqe:delivery:github:d1")
    pr = await store.enqueue(_request(pr=9), delivery_key="aqe:delivery:github:d2")
    assert pr.state == "coalesced" and pr.job_id == push.job_id
    assert await store.extra_prs(push.job_id) == {9}
    assert await redis.zcard(ARQ_QUEUE) == 1


async def test_an_audited_enqueue_logs_the_job_it_queued_or_joined_in_the_same_call(
        redis: Redis, redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    store = JobStore(redis, PipelinedRedis(redis_url))
    started = audit.Draft(actor="key:jenkins", action="job.started", ip="10.0.0.7", detail="api.test-execute acme/w",
                          at=1732838400.5)
    with caplog.at_level("INFO", logger="aqe.audit"):
        queued = await store.enqueue(_request(pr=None, trigger="push"), delivery_key="aqe:delivery:api:1",
                                     audited=started)
        joined = await store.enqueue(_request(pr=9), delivery_key="aqe:delivery:api:2", audited=started)
        again = await store.enqueue(_request(pr=9), delivery_key="aqe:delivery:api:2", audited=started)
    await store.pipelined.close()  # type: ignore[union-attr]
    assert (queued.state, joined.state, again.state) == ("queued", "coalesced", "duplicate")
    entries = await audit.recent(redis)
    assert [(e.target, e.actor, e.action, e.ip, e.detail, e.at) for e in entries] == \
        [(queued.job_id, "key:jenkins", "job.started", "10.0.0.7", "api.test-execute acme/w", 1732838400.5)] * 2
    assert caplog.text.count(f"audit job.started by key:jenkins on {queued.job_id} from 10.0.0.7") == 2
    plain = await store.enqueue(_request(sha="b" * 40), delivery_key="aqe:delivery:api:3")  # not audited
    assert plain.state == "queued" and len(await audit.recent(redis)) == 2


async def test_release_lets_the_next_request_run(redis: Redis) -> None:
    store = JobStore(redis)
    first = await store.enqueue(_request(), delivery_key="aqe:delivery:github:d1")
    record = await store.get(first.job_id)
    assert record is not None
    await store.release(record)
    second = await store.enqueue(_request(), delivery_key="aqe:delivery:github:d2")
    assert second.state == "queued" and second.job_id != first.job_id


async def test_different_sha_is_a_different_job(redis: Redis) -> None:
    store = JobStore(redis)
    a = await store.enqueue(_request("a" * 40), delivery_key="aqe:delivery:github:d1")
    b = await store.enqueue(_request("b" * 40), delivery_key="aqe:delivery:github:d2")
    assert a.job_id != b.job_id and b.state == "queued"


async def test_ignored_delivery_is_recorded_once(redis: Redis) -> None:
    store = JobStore(redis)
    assert await store.record_ignored("aqe:delivery:github:d9", event="star", action="", repo="acme/w", reason="no")
    assert not await store.record_ignored("aqe:delivery:github:d9", event="star", action="", repo="acme/w", reason="no")
    [(_, fields)] = await redis.xrange("aqe:deliveries")
    assert fields[b"outcome"] == b"ignored" and fields[b"reason"] == b"no"


def test_run_request_round_trips_as_json() -> None:
    request = _request()
    assert msgspec.json.decode(msgspec.json.encode(request), type=RunRequest) == request


async def test_saving_an_ended_record_frees_its_analysis_key(redis: Redis) -> None:
    store = JobStore(redis)
    first = await store.enqueue(_request(), delivery_key="aqe:delivery:github:d1")
    record = await store.get(first.job_id)
    assert record is not None
    record.status = "running"
    await store.save(record, "progress", {"progress": 50.0})
    assert (await store.enqueue(_request(), delivery_key="aqe:delivery:github:d2")).state == "coalesced"
    record.status = "completed"
    await store.save(record, "complete", {"progress": 100.0})
    assert (await store.enqueue(_request(), delivery_key="aqe:delivery:github:d3")).state == "queued"


async def test_a_higher_priority_is_taken_first(redis) -> None:  # type: ignore[no-untyped-def]
    store = JobStore(redis)
    ids = {}
    for index, priority in enumerate(("low", "normal", "high", "normal")):
        request = RunRequest(forge="github", repo="acme/widgets", clone_url="u", head_sha=f"{index:040x}",
                             trigger="api.test", agents=["tests"], priority=priority)  # type: ignore[arg-type]
        ids[index] = (await store.enqueue(request, delivery_key=f"aqe:delivery:api:{index}")).job_id
        await asyncio.sleep(0.002)  # scores are milliseconds: one per job, so arrival order is defined
    order = [member.decode() for member in await redis.zrange("arq:queue", 0, -1)]
    assert order == [ids[2], ids[1], ids[3], ids[0]]  # high, then normal in arrival order, then low
    assert await redis.zcount("arq:queue", "-inf", int(time.time() * 1000)) == 4  # all ready now, none deferred
    created = [member.decode() for member in await redis.zrange("aqe:jobs", 0, -1)]
    assert created == [ids[0], ids[1], ids[2], ids[3]]  # the job list stays in creation order


async def test_a_higher_priority_goes_first_however_long_the_others_waited(redis: Redis) -> None:
    store = JobStore(redis)

    async def queued(index: int, priority: str) -> str:
        request = RunRequest(forge="github", repo="acme/widgets", clone_url="u", head_sha=f"{index:040x}",
                             trigger="api.test", agents=["tests"], priority=priority)  # type: ignore[arg-type]
        return (await store.enqueue(request, delivery_key=f"aqe:delivery:api:w{index}")).job_id

    waited = {await queued(0, "normal"): "normal", await queued(1, "low"): "low"}
    for job_id in waited:  # as if they had come 23 h ago (arq drops a job not started within 24 h)
        await redis.zincrby("arq:queue", -23 * 3600 * 1000, job_id)
    urgent = await queued(2, "high")
    assert [member.decode() for member in await redis.zrange("arq:queue", 0, -1)] == [urgent, *waited]


async def test_events_read_the_same_over_the_pipelined_connection(redis: Redis, redis_url: str) -> None:
    store, pipelined = JobStore(redis), PipelinedRedis(redis_url)
    record = await store.get((await store.enqueue(_request(), delivery_key="aqe:delivery:github:d1")).job_id)
    assert record is not None
    for n in range(3):
        record.status, record.progress = "running", 10.0 * n
        await store.save(record, "progress", {"progress": record.progress, "message": f"step {n}"})
    try:
        web = JobStore(redis, pipelined)  # as the web process has it
        everything = await store.events(record.id)
        assert await web.events(record.id) == everything and len(everything) == 4
        assert await web.events(record.id, everything[1][0], count=1) == everything[2:3]
        assert await web.events(record.id, everything[-1][0]) == [] == await web.events("f" * 24)
    finally:
        await pipelined.close()


async def test_a_callback_goes_before_every_analysis_waiting(redis: Redis) -> None:
    store = JobStore(redis)
    request = RunRequest(forge="github", repo="acme/widgets", clone_url="u", head_sha="f" * 40, trigger="api.test",
                         agents=["tests"], priority="high")
    urgent = (await store.enqueue(request, delivery_key="aqe:delivery:api:cb-order")).job_id
    await store.enqueue_callback("0" * 24)
    await store.enqueue_callback("0" * 24)  # once
    assert [m.decode() for m in await redis.zrange("arq:queue", 0, -1)] == [f"callback:{'0' * 24}", urgent]
