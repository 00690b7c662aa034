"""A sliding-window rate limit shared by every web replica: one atomic Lua script over a Redis sorted set.

Each allowed request adds its (server-clock) time to the sorted set of its caller; the script first drops the
entries older than the window, so the count is exactly the requests of the last `window_s` seconds (a sliding
log). Refused requests are not logged, so a caller hammering past its limit does not grow the set beyond `limit`
entries, and is let through again as soon as its oldest counted request leaves the window.
"""

from __future__ import annotations

import math
import re
import secrets

import msgspec
from redis.asyncio import Redis

KEY_PREFIX = "aqe:ratelimit:"
RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)\s*$")
_WINDOWS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}

# KEYS[1] the caller's sorted set; ARGV: window (ms), limit, a unique member.
# Returns {allowed (0/1), requests counted in the window, ms until the oldest counted request leaves it}.
_SLIDING_LOG = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < limit then
  redis.call('ZADD', KEYS[1], now, now .. ':' .. ARGV[3])
  count = count + 1
  allowed = 1
end
redis.call('PEXPIRE', KEYS[1], window)
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local reset = window
if oldest[2] then reset = tonumber(oldest[2]) + window - now end
return {allowed, count, reset}
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


def parse_rate(text: str) -> Rate:
    """'100/minute' (per second|minute|hour|day) as a Rate; ValueError saying what is expected otherwise."""
    match = RATE_RE.match(text)
    if not match or int(match.group(1)) < 1:
        raise ValueError(f"{text!r} is not a rate like '100/minute' (a count ≥ 1 per second|minute|hour|day)")
    return Rate(limit=int(match.group(1)), window_s=_WINDOWS[match.group(2)])


def decision(allowed: int, count: int, reset_ms: int, rate: Rate) -> Decision:
    return Decision(allowed=bool(allowed), limit=rate.limit, remaining=max(0, rate.limit - count),
                    reset_s=max(1, math.ceil(reset_ms / 1000)))


class RateLimiter:
    """`await limiter.hit("key:abcd", rate)`: count one request of that caller and say whether it may go on."""

    def __init__(self, redis: Redis) -> None:
        self._script = redis.register_script(_SLIDING_LOG)

    async def hit(self, identity: str, rate: Rate) -> Decision:
        allowed, count, reset_ms = await self._script(keys=[KEY_PREFIX + identity],
                                                      args=[rate.window_s * 1000, rate.limit, secrets.token_hex(6)])
        return decision(int(allowed), int(count), int(reset_ms), rate)
