"""A sliding-window rate limit shared by every web replica: one atomic Lua script over a Redis sorted set.

Each allowed request adds its (server-clock) time to the sorted set of its caller; the script first drops the
entries older than the window, so the count is exactly the requests of the last `window_s` seconds (a sliding
log). Refused requests are not logged, so a caller hammering past its limit does not grow the set beyond `limit`
entries, and is let through again as soon as its oldest counted request leaves the window.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import os
import re
import secrets
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from jobs.redis_pipelined import PipelinedRedis

KEY_PREFIX = "aqe:ratelimit:"
RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)\s*$")
_WINDOWS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}

_UNIQUE = f"{os.getpid()}-{secrets.token_hex(3)}"  # with a counter: a distinct member for every request
_counter = itertools.count()

# The sliding log itself, as a Lua function: count one request of `key` if it is under `limit` in the last
# `window` ms. Returns {allowed (0/1), requests counted in the window, ms until the oldest counted one leaves it}.
_SLIDING_LOG_FUNCTION = """
local function hit(key, window, limit, member)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  local allowed = 0
  if count < limit then
    redis.call('ZADD', key, now, now .. ':' .. member)
    count = count + 1
    allowed = 1
  end
  redis.call('PEXPIRE', key, window)
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  local reset = window
  if oldest[2] then reset = tonumber(oldest[2]) + window - now end
  return {allowed, count, reset}
end
"""

# What a counted request may read in the same call: `key`'s value once the request is allowed, e.g. the job record
# it asks for, and `stream`'s entries from `start` (up to `count`) once that value exists, e.g. the job's events.
_READ_FUNCTION = """
local function read(allowed, key, stream, start, count)
  local value, entries = false, false
  if key and allowed == 1 then value = redis.call('GET', key) end
  if stream and value then entries = redis.call('XRANGE', stream, start, '+', 'COUNT', count) end
  return value, entries
end
"""

# KEYS[1] the caller's sorted set, KEYS[2] and KEYS[3] (optional) what to read (see above); ARGV: window (ms), limit,
# a unique member, and for KEYS[3] the XRANGE start and count. Returns {allowed, count, reset, value, entries}.
_SLIDING_LOG = _SLIDING_LOG_FUNCTION + _READ_FUNCTION + """
local counted = hit(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3])
local value, entries = read(counted[1], KEYS[2], KEYS[3], ARGV[4], ARGV[5])
return {counted[1], counted[2], counted[3], value, entries}
"""

# An API key's lookup and its count in one round trip. KEYS[1] the hash of key records, KEYS[2] the key's sorted
# set, KEYS[3] and KEYS[4] (optional) what to read (see above); ARGV: the key's SHA-256, the default window (ms) and
# limit, a unique member, and for KEYS[4] the XRANGE start and count. Returns false for an unknown key (nothing
# counted, nothing read), else {record, allowed, count, reset, limit, window, value, entries}: the record's own
# `rate_limit` ("200/minute") wins over the default.
_KEY_AND_SLIDING_LOG = _SLIDING_LOG_FUNCTION + _READ_FUNCTION + """
local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record then return false end
local window, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
local ok, decoded = pcall(cjson.decode, record)
if ok and type(decoded) == 'table' and type(decoded.rate_limit) == 'string' then
  local n, unit = string.match(decoded.rate_limit, '^(%d+)/(%a+)$')
  local ms = ({second = 1000, minute = 60000, hour = 3600000, day = 86400000})[unit]
  if n and ms and tonumber(n) >= 1 then limit, window = tonumber(n), ms end
end
local counted = hit(KEYS[2], window, limit, ARGV[4])
local value, entries = read(counted[1], KEYS[3], KEYS[4], ARGV[5], ARGV[6])
return {record, counted[1], counted[2], counted[3], limit, window, value, entries}
"""


class Rate(msgspec.Struct, frozen=True):
    limit: int
    window_s: int

    def __str__(self) -> str:
        unit = next(name for name, seconds in _WINDOWS.items() if seconds == self.window_s)
        return f"{self.limit}/{unit}"


class Decision(msgspec.Struct, frozen=True):
    allowed: bool
    limit: int
    remaining: int
    reset_s: int  # seconds until one more request is allowed (the oldest counted one leaves the window)

    def headers(self) -> dict[str, str]:
        values = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining),
                  "X-RateLimit-Reset": str(self.reset_s)}
        return values if self.allowed else {**values, "Retry-After": str(self.reset_s)}

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """`headers()` as an ASGI message carries them (names in lower case)."""
        values = [(b"x-ratelimit-limit", b"%d" % self.limit), (b"x-ratelimit-remaining", b"%d" % self.remaining),
                  (b"x-ratelimit-reset", b"%d" % self.reset_s)]
        return values if self.allowed else [*values, (b"retry-after", b"%d" % self.reset_s)]


@functools.lru_cache(maxsize=256)  # parsed on every API request
def parse_rate(text: str) -> Rate:
    """'100/minute' (per second|minute|hour|day) as a Rate; ValueError saying what is expected otherwise."""
    match = RATE_RE.match(text)
    if not match or int(match.group(1)) < 1:
        raise ValueError(f"{text!r} is not a rate like '100/minute' (a count ≥ 1 per second|minute|hour|day)")
    return Rate(limit=int(match.group(1)), window_s=_WINDOWS[match.group(2)])


def decision(allowed: int, count: int, reset_ms: int, rate: Rate) -> Decision:
    return Decision(allowed=bool(allowed), limit=rate.limit, remaining=max(0, rate.limit - count),
                    reset_s=max(1, math.ceil(reset_ms / 1000)))


def _member() -> str:
    return f"{_UNIQUE}-{next(_counter)}"


class KeyHit(msgspec.Struct, frozen=True):
    """An API key's record as stored, its rate, the decision on this request, and what was read with it."""

    record: bytes
    rate: Rate
    decision: Decision
    value: bytes | None = None  # the value of the key asked to be read (None: missing, or the request refused)
    entries: list[Any] | None = None  # the stream asked to be read with it, as XRANGE answers (None: not read)


class Counted(msgspec.Struct, frozen=True):
    """The decision on a request, and what was read with its count (see `RateLimiter.hit`)."""

    decision: Decision
    value: bytes | None = None
    entries: list[Any] | None = None


def _reads(read: str | None, read_stream: tuple[str, str, int] | None) -> tuple[list[str], list[str | int]]:
    """The keys and arguments a script appends for what it reads with a count."""
    if read is None:
        return [], []
    if read_stream is None:
        return [read], []
    return [read, read_stream[0]], [read_stream[1], read_stream[2]]


class _Script(msgspec.Struct, frozen=True):
    text: str
    sha: str


def _script(text: str) -> _Script:
    return _Script(text, hashlib.sha1(text.encode()).hexdigest())


_SLIDING_LOG_SCRIPT, _KEY_SCRIPT = _script(_SLIDING_LOG), _script(_KEY_AND_SLIDING_LOG)


class RateLimiter:
    """`await limiter.hit("key:abcd", rate)`: count one request of that caller and say whether it may go on.

    With `pipelined` (the web process) the scripts go through it: no pooled connection nor lock per request."""

    def __init__(self, redis: Redis, pipelined: PipelinedRedis | None = None) -> None:
        self.redis, self.pipelined = redis, pipelined

    async def _run(self, script: _Script, keys: list[str], args: list[str | int]) -> Any:
        if self.pipelined is None:
            try:
                return await self.redis.evalsha(script.sha, len(keys), *keys, *args)  # type: ignore[no-any-return]
            except NoScriptError:
                return await self.redis.eval(script.text, len(keys), *keys, *args)  # type: ignore[no-any-return]
        try:
            return await self.pipelined.execute("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await self.pipelined.execute("EVAL", script.text, len(keys), *keys, *args)

    async def hit(self, identity: str, rate: Rate) -> Decision:
        return (await self.hit_reading(identity, rate)).decision

    async def hit_reading(self, identity: str, rate: Rate, *, read: str | None = None,
                          read_stream: tuple[str, str, int] | None = None) -> Counted:
        """`hit`, reading `read` (and `read_stream`) in the same round trip as `hit_key` does."""
        keys, args = _reads(read, read_stream)
        allowed, count, reset_ms, value, entries = await self._run(
            _SLIDING_LOG_SCRIPT, [KEY_PREFIX + identity, *keys], [rate.window_s * 1000, rate.limit, _member(), *args])
        return Counted(decision(int(allowed), int(count), int(reset_ms), rate), value,
                       entries if isinstance(entries, list) else None)

    async def hit_key(self, records_hash: str, digest: str, default: Rate, *, read: str | None = None,
                      read_stream: tuple[str, str, int] | None = None) -> KeyHit | None:
        """Look up an API key's record (by its hash) and count one request of it at its own rate, in one round trip
        (every API request does this: one Redis call fewer than a lookup and a count). None for an unknown key,
        which is not counted. `read`: a key whose value comes back in the same call when the request is allowed
        (the caller still decides whether the key may see it); `read_stream` (key, XRANGE start, count): a stream
        read too when `read` has a value, e.g. the events of the job read."""
        keys, args = _reads(read, read_stream)
        found = await self._run(_KEY_SCRIPT, [records_hash, f"{KEY_PREFIX}key:{digest}", *keys],
                                [digest, default.window_s * 1000, default.limit, _member(), *args])
        if not found:
            return None
        record, allowed, count, reset_ms, limit, window_ms, value, entries = found
        rate = Rate(limit=int(limit), window_s=int(window_ms) // 1000)
        return KeyHit(record, rate, decision(int(allowed), int(count), int(reset_ms), rate), value,
                      entries if isinstance(entries, list) else None)
