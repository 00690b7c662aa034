"""A Redis lock, so the jobs of every worker write one summary comment (or note) per pull request, never two."""

from __future__ import annotations

import asyncio
import secrets

from redis.asyncio import Redis

LOCK_TTL_MS = 30_000
LOCK_WAIT_S = 30.0


class redis_lock:
    """A Redis lock (SET NX PX + compare-and-delete) so jobs in any worker never write two comments."""

    def __init__(self, redis: Redis, key: str) -> None:
        self.redis, self.key, self.token = redis, key, secrets.token_hex(8)

    async def __aenter__(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LOCK_WAIT_S
        while not await self.redis.set(self.key, self.token, nx=True, px=LOCK_TTL_MS):
            if loop.time() > deadline:
                raise TimeoutError(f"lock {self.key} held for more than {LOCK_WAIT_S:.0f} s")
            await asyncio.sleep(0.05)

    async def __aexit__(self, *exc: object) -> None:
        await self.redis.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
                              "return 0", 1, self.key, self.token)
