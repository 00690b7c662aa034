"""The sliding-window limit against the real Redis: counts, refusals, the window sliding, callers kept apart."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from jobs.apikeys import KEYS_HASH, issue_key, key_hash, new_key, stored_key
from jobs.ratelimit import KEY_PREFIX, Decision, Rate, RateLimiter, decision, parse_rate
from jobs.redis_pipelined import PipelinedRedis


@pytest.mark.parametrize(("text", "rate"), [("100/minute", Rate(100, 60)), (" 5 / second ", Rate(5, 1)),
                                            ("2/hour", Rate(2, 3600)), ("1000/day", Rate(1000, 86400))])
def test_parse_rate(text: str, rate: Rate) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["100", "0/minute", "10/week", "-1/minute", "ten/minute", ""])
def test_parse_rate_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(ValueError, match="like '100/minute'"):
        parse_rate(text)


def test_rate_prints_as_it_is_written() -> None:
    assert str(parse_rate("200 / minute")) == "200/minute"


def test_decision_headers_and_retry_after_at_least_one_second() -> None:
    refused = decision(0, 5, 10, Rate(5, 60))
    assert refused == Decision(allowed=False, limit=5, remaining=0, reset_s=1)
    assert refused.headers() == {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1",
                                 "Retry-After": "1"}
    assert "Retry-After" not in decision(1, 2, 59_001, Rate(5, 60)).headers()
    assert decision(1, 2, 59_001, Rate(5, 60)).reset_s == 60


async def test_the_limit_plus_one_request_is_refused(redis: Redis) -> None:
    limiter, rate = RateLimiter(redis), Rate(5, 60)
    answers = [await limiter.hit("key:a", rate) for _ in range(6)]
    assert [a.allowed for a in answers] == [True] * 5 + [False]
    assert [a.remaining for a in answers] == [4, 3, 2, 1, 0, 0]
    assert all(1 <= a.reset_s <= 60 for a in answers)
    assert await redis.zcard(KEY_PREFIX + "key:a") == 5  # the refused request is not logged
    assert (await limiter.hit("key:b", rate)).remaining == 4  # another caller has its own count


async def test_requests_older_than_the_window_no_longer_count(redis: Redis) -> None:
    limiter, rate = RateLimiter(redis), Rate(3, 60)
    for _ in range(3):
        await limiter.hit("ip:10.0.0.1", rate)
    assert not (await limiter.hit("ip:10.0.0.1", rate)).allowed
    # move the two oldest requests 61 s into the past, as if the window had slid past them
    key = KEY_PREFIX + "ip:10.0.0.1"
    oldest = await redis.zrange(key, 0, 1, withscores=True)
    await redis.zadd(key, {member: score - 61_000 for member, score in oldest})
    again = await limiter.hit("ip:10.0.0.1", rate)
    assert again.allowed and again.remaining == 1


async def test_the_set_expires_with_the_window(redis: Redis) -> None:
    await RateLimiter(redis).hit("jwt:ci", Rate(10, 1))
    assert 0 < await redis.pttl(KEY_PREFIX + "jwt:ci") <= 1000


@pytest.fixture(params=["redis-py", "pipelined"])
async def limiter(request: pytest.FixtureRequest, redis: Redis, redis_url: str) -> AsyncIterator[RateLimiter]:
    """The limiter over redis-py, and over the web process's pipelined connection (the scripts not loaded yet:
    the first call falls back from EVALSHA to EVAL)."""
    await redis.script_flush()
    if request.param == "redis-py":
        yield RateLimiter(redis)
        return
    pipelined = PipelinedRedis(redis_url)
    yield RateLimiter(redis, pipelined)
    await pipelined.close()


async def test_an_api_key_is_looked_up_and_counted_at_its_own_rate_in_one_call(redis: Redis,
                                                                               limiter: RateLimiter) -> None:
    key, record = await issue_key(redis, "ci", rate_limit="3/hour")
    answers = [await limiter.hit_key(KEYS_HASH, record.id, Rate(100, 60)) for _ in range(4)]
    assert all(answer is not None for answer in answers)
    first = answers[0]
    assert first is not None and stored_key(first.record, record.id).name == "ci" and first.rate == Rate(3, 3600)
    assert [a.decision.allowed for a in answers] == [True, True, True, False]  # type: ignore[union-attr]
    assert await redis.zcard(KEY_PREFIX + f"key:{record.id}") == 3  # the counter the key's principal names


async def test_a_key_without_its_own_rate_gets_the_default_and_an_unknown_key_is_not_counted(
        redis: Redis, limiter: RateLimiter) -> None:
    _, record = await issue_key(redis, "ci")
    found = await limiter.hit_key(KEYS_HASH, record.id, Rate(7, 1))
    assert found is not None and found.rate == Rate(7, 1) and found.decision.remaining == 6 and found.value is None
    assert await limiter.hit_key(KEYS_HASH, key_hash(new_key()), Rate(7, 1)) is None
    assert await redis.keys(KEY_PREFIX + "*") == [(KEY_PREFIX + f"key:{record.id}").encode()]


async def test_a_key_read_with_the_count_comes_back_only_for_an_allowed_request(redis: Redis,
                                                                               limiter: RateLimiter) -> None:
    _, record = await issue_key(redis, "ci", rate_limit="2/minute")
    await redis.set("aqe:job:abc", b'{"id": "abc"}')
    read = [await limiter.hit_key(KEYS_HASH, record.id, Rate(100, 60), read="aqe:job:abc") for _ in range(3)]
    assert [(hit.decision.allowed, hit.value) for hit in read if hit is not None] == \
        [(True, b'{"id": "abc"}'), (True, b'{"id": "abc"}'), (False, None)]  # refused: nothing read
    _, other = await issue_key(redis, "other")
    missing = await limiter.hit_key(KEYS_HASH, other.id, Rate(100, 60), read="aqe:job:missing")
    assert missing is not None and missing.decision.allowed and missing.value is None
    assert await limiter.hit_key(KEYS_HASH, key_hash(new_key()), Rate(100, 60), read="aqe:job:abc") is None


async def test_a_stream_read_with_the_count_comes_back_only_with_the_value(redis: Redis, limiter: RateLimiter) -> None:
    _, record = await issue_key(redis, "ci", rate_limit="2/minute")
    await redis.set("aqe:job:abc", b'{"id": "abc"}')
    first = await redis.xadd("aqe:job:abc:events", {"type": "progress", "data": "{}"})
    second = await redis.xadd("aqe:job:abc:events", {"type": "complete", "data": "{}"})
    hits = [await limiter.hit_key(KEYS_HASH, record.id, Rate(100, 60), read="aqe:job:abc",
                                  read_stream=("aqe:job:abc:events", f"({first.decode()}", 10)) for _ in range(3)]
    assert [(hit.decision.allowed, hit.entries) for hit in hits if hit is not None] == \
        [(True, [[second, [b"type", b"complete", b"data", b"{}"]]])] * 2 + [(False, None)]  # refused: nothing read
    _, other = await issue_key(redis, "other")
    missing = await limiter.hit_key(KEYS_HASH, other.id, Rate(100, 60), read="aqe:job:missing",
                                    read_stream=("aqe:job:abc:events", "-", 10))
    assert missing is not None and missing.value is None and missing.entries is None  # no record: no events
    unread = await limiter.hit_key(KEYS_HASH, other.id, Rate(100, 60), read="aqe:job:abc")
    assert unread is not None and unread.value is not None and unread.entries is None


async def test_a_count_without_a_key_reads_what_it_is_asked_to_when_allowed(redis: Redis, limiter: RateLimiter) -> None:
    await redis.set("aqe:job:abc", b'{"id": "abc"}')
    first = await redis.xadd("aqe:job:abc:events", {"type": "progress", "data": "{}"})
    reads = {"read": "aqe:job:abc", "read_stream": ("aqe:job:abc:events", "-", 10)}
    counted = [await limiter.hit_reading("jwt:ci", Rate(2, 60), **reads) for _ in range(3)]  # type: ignore[arg-type]
    assert [(c.decision.allowed, c.value, c.entries) for c in counted] == \
        [(True, b'{"id": "abc"}', [[first, [b"type", b"progress", b"data", b"{}"]]])] * 2 + [(False, None, None)]
    missing = await limiter.hit_reading("jwt:other", Rate(2, 60), read="aqe:job:gone",
                                        read_stream=("aqe:job:gone:events", "-", 10))
    assert missing.decision.allowed and missing.value is None and missing.entries is None
    plain = await limiter.hit_reading("jwt:third", Rate(2, 60))
    assert plain.decision.remaining == 1 and plain.value is None and plain.entries is None


async def test_the_sliding_log_counts_the_same_over_either_connection(limiter: RateLimiter) -> None:
    answers = [await limiter.hit("ip:10.0.0.2", Rate(2, 60)) for _ in range(3)]
    assert [(a.allowed, a.remaining) for a in answers] == [(True, 1), (True, 0), (False, 0)]
