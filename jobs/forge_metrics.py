"""What the workers tell /metrics about their calls to the forges, through Redis (the web process exports it).

  aqe:metrics:forge-calls       -> hash "<forge> <method> <status>" -> calls
  aqe:metrics:forge-ratelimit   -> hash "<forge> <resource>" -> "<remaining> <limit> <reset epoch>"
"""

from __future__ import annotations

from collections.abc import Mapping

from redis.asyncio import Redis

CALLS_KEY = "aqe:metrics:forge-calls"
RATELIMIT_KEY = "aqe:metrics:forge-ratelimit"


async def record_call(redis: Redis, forge: str, method: str, status: int, headers: Mapping[str, str]) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hincrby(CALLS_KEY, f"{forge} {method.upper()} {status}", 1)
        prefix = "x-ratelimit-" if "x-ratelimit-remaining" in headers else "ratelimit-"  # GitHub, else GitLab
        remaining, limit = headers.get(f"{prefix}remaining"), headers.get(f"{prefix}limit")
        if remaining is not None and remaining.isdigit() and limit is not None and limit.isdigit():
            resource = headers.get("x-ratelimit-resource", "core")
            pipe.hset(RATELIMIT_KEY, f"{forge} {resource}", f"{remaining} {limit} {headers.get(f'{prefix}reset', '0')}")
        await pipe.execute()


async def forge_facts(redis: Redis) -> tuple[dict[tuple[str, str, str], int], dict[tuple[str, str], tuple[int, int]]]:
    calls = {tuple(k.decode().split(" ", 2)): int(v) for k, v in (await redis.hgetall(CALLS_KEY)).items()}
    limits: dict[tuple[str, str], tuple[int, int]] = {}
    for key, value in (await redis.hgetall(RATELIMIT_KEY)).items():
        forge, resource = key.decode().split(" ", 1)
        remaining, limit, _ = value.decode().split(" ", 2)
        limits[(forge, resource)] = (int(remaining), int(limit))
    return calls, limits  # type: ignore[return-value]
