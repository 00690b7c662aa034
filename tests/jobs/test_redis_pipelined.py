"""The pipelining connection against a real Redis: order, errors, database, reconnection."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

from jobs.redis_pipelined import PipelinedRedis


async def test_many_commands_in_flight_keep_their_order(redis: Redis, redis_url: str) -> None:
    fast = PipelinedRedis(redis_url)
    replies = await asyncio.gather(*(fast.execute("INCR", "counter") for _ in range(500)))
    assert replies == list(range(1, 501))
    await fast.close()


async def test_error_replies_raise_without_breaking_the_connection(redis: Redis, redis_url: str) -> None:
    fast = PipelinedRedis(redis_url)
    await fast.execute("SET", "text", "abc")
    with pytest.raises(ResponseError):
        await fast.execute("INCR", "text")
    with pytest.raises(NoScriptError):
        await fast.execute("EVALSHA", "0" * 40, 0)
    assert await fast.execute("GET", "text") == b"abc"
    await fast.close()


async def test_selects_the_database_of_the_url(redis: Redis, redis_url: str) -> None:
    other = redis_url.rsplit("/", 1)[0] + "/5"
    fast = PipelinedRedis(other)
    await fast.execute("SET", "in-db-5", "yes")
    assert await redis.get("in-db-5") is None
    checker = Redis.from_url(other)
    assert await checker.get("in-db-5") == b"yes"
    await checker.delete("in-db-5")
    await checker.aclose()
    await fast.close()


async def test_in_flight_commands_fail_and_the_next_call_reconnects(redis: Redis, redis_url: str) -> None:
    fast = PipelinedRedis(redis_url)
    await fast.execute("CLIENT", "SETNAME", "aqe-pipelined")
    waiting = asyncio.ensure_future(fast.execute("BLPOP", "never-filled", 10))
    await asyncio.sleep(0.1)
    [ours] = [c for c in await redis.client_list() if c.get("name") == "aqe-pipelined"]
    await redis.client_kill_filter(_id=ours["id"])
    with pytest.raises(RedisConnectionError):
        await waiting
    assert await fast.execute("PING") == b"PONG"
    await fast.close()


async def test_commands_issued_in_one_turn_of_the_loop_go_out_in_one_write(redis: Redis, redis_url: str) -> None:
    fast = PipelinedRedis(redis_url)
    await fast.execute("SET", "text", "abc")
    protocol = fast._protocol
    assert protocol is not None and protocol.transport is not None
    writes: list[bytes] = []
    real_write = protocol.transport.write

    class Counting:  # the narrow spy: how many system calls the batch took
        def write(self, data: bytes) -> None:
            writes.append(data)
            real_write(data)

        def __getattr__(self, name: str) -> object:
            return getattr(real_write.__self__, name)

    protocol.transport = Counting()  # type: ignore[assignment]
    calls = [fast.execute("INCR", "n") for _ in range(99)] + [fast.execute("INCR", "text")]
    replies = await asyncio.gather(*calls, return_exceptions=True)
    assert replies[:99] == list(range(1, 100)) and isinstance(replies[99], ResponseError)
    assert len(writes) == 1 and writes[0].count(b"INCR") == 100
    assert await fast.execute("GET", "n") == b"99" and len(writes) == 2  # the next turn: its own write
    await fast.close()
