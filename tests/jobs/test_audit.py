"""The audit stream in the real Redis: entries appended, read newest first, logged, trimmed."""

from __future__ import annotations

import logging

import pytest
from redis.asyncio import Redis

from jobs import audit


async def test_entries_are_listed_newest_first_with_every_field(redis: Redis,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="aqe.audit"):
        await audit.record(redis, actor="cli:alice@host", action="key.created", target="jenkins (aqe_AbCd…)",
                           ip="local", detail="scopes jobs:read", at=1_700_000_000.0)
        await audit.record(redis, actor="key:jenkins", action="job.started", target="0123456789abcdef01234567",
                           ip="10.0.0.7")
    entries = await audit.recent(redis)
    assert [e.action for e in entries] == ["job.started", "key.created"]
    created = entries[1]
    assert (created.actor, created.target, created.ip, created.detail, created.at) == (
        "cli:alice@host", "jenkins (aqe_AbCd…)", "local", "scopes jobs:read", 1_700_000_000.0)
    assert audit.entry_line(created) == ("2023-11-14 22:13:20Z\tcli:alice@host\tkey.created\tjenkins (aqe_AbCd…)"
                                         "\tlocal\tscopes jobs:read")
    assert "audit job.started by key:jenkins on 0123456789abcdef01234567 from 10.0.0.7" in caplog.text
    assert [e.action for e in await audit.recent(redis, limit=1)] == ["job.started"]


async def test_an_odd_entry_is_read_without_crashing(redis: Redis) -> None:
    await redis.xadd(audit.STREAM, {"at": "yesterday", "actor": "someone"})
    [entry] = await audit.recent(redis)
    assert entry.at == 0.0 and entry.actor == "someone" and entry.action == ""


async def test_the_stream_is_capped(redis: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit, "MAXLEN", 10)
    for number in range(300):
        await audit.record(redis, actor="cli:x", action="token.issued", target=str(number))
    assert await redis.xlen(audit.STREAM) < 300
    assert (await audit.recent(redis, 1))[0].target == "299"


async def test_the_pipelined_connection_writes_the_same_entry(redis: Redis, redis_url: str) -> None:
    from jobs.redis_pipelined import PipelinedRedis

    fast = PipelinedRedis(redis_url)
    try:
        entry_id = await audit.record(fast, actor="key:jenkins", action="job.started", target="0" * 24, ip="10.0.0.7",
                                      detail="api.security-scan acme/app", at=1_700_000_000.0)
    finally:
        await fast.close()
    [entry] = await audit.recent(redis)
    assert (entry.id, entry.actor, entry.target, entry.ip, entry.detail, entry.at) == (
        entry_id, "key:jenkins", "0" * 24, "10.0.0.7", "api.security-scan acme/app", 1_700_000_000.0)
