"""The fleet: workers' heartbeats, the queue, and what the agents did lately — what `/api/v1/fleet/status` shows.

Redis keys:
  aqe:worker:{id}                 -> a worker's heartbeat (JSON: host, pid, started_at, seen_at, jobs_running,
                                     max_jobs); expires HEARTBEAT_TTL_S after its last beat
  aqe:workers                     -> worker ids by the time of their last heartbeat
  aqe:agent-runs:{agent}          -> the agent's latest runs, newest first: "<finished_at> <duration_s> <conclusion>"
                                     (at most RECENT_RUNS)
  aqe:agent-counts                -> hash "<agent>:<conclusion>" -> runs since the counts were last reset
  aqe:job-runs:{forge}:{repo}:{agents}
                                  -> how long the repository's latest completed jobs asking for these agents
                                     ("*": those its `.aqe.yml` picks) took, newest first (at most eta.RECENT_JOBS)
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from typing import Any, get_args

from redis.asyncio import Redis

from jobs.redis_pipelined import PipelinedRedis

from jobs import eta
from jobs.model import ALL_AGENTS, AgentResult, JobRecord, Priority, RunRequest
from jobs.store import ARQ_QUEUE, queued_key
from jobs.worker_health import HEALTH_KEY

PRIORITIES: tuple[str, ...] = get_args(Priority)  # high, normal, low

HEARTBEAT_INTERVAL_S = 5.0
HEARTBEAT_TTL_S = 15
RECENT_RUNS = 200
WORKER_PREFIX = "aqe:worker:"
WORKERS_KEY = "aqe:workers"  # worker ids by last heartbeat: no SCAN of the keyspace (it holds every job)
COUNTS_KEY = "aqe:agent-counts"
JOB_RUNS_TTL_S = 90 * 24 * 3600  # a repository no job ran for in this long is forgotten
REDIS_INFO_FIELDS = ("redis_version", "valkey_version", "uptime_in_seconds", "connected_clients", "used_memory",
                     "used_memory_human", "maxmemory", "total_commands_processed", "role")


def runs_key(agent: str) -> str:
    return f"aqe:agent-runs:{agent}"


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def beat(redis: Redis, identity: str, started_at: float, jobs_running: int, max_jobs: int) -> None:
    seen_at = round(time.time(), 3)
    heartbeat = {"id": identity, "host": socket.gethostname(), "pid": os.getpid(), "started_at": started_at,
                 "seen_at": seen_at, "jobs_running": jobs_running, "max_jobs": max_jobs}
    async with redis.pipeline(transaction=False) as pipe:
        pipe.set(WORKER_PREFIX + identity, json.dumps(heartbeat), ex=HEARTBEAT_TTL_S)
        pipe.zadd(WORKERS_KEY, {identity: seen_at})
        pipe.zremrangebyscore(WORKERS_KEY, "-inf", seen_at - 24 * 3600)  # long gone: forget the name
        await pipe.execute()


async def forget(redis: Redis, identity: str) -> None:
    await redis.delete(WORKER_PREFIX + identity)
    await redis.zrem(WORKERS_KEY, identity)


async def record_agent_run(redis: Redis, result: AgentResult, finished_at: float) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        pipe.lpush(runs_key(result.agent), f"{finished_at:.3f} {result.duration_s:.3f} {result.conclusion}")
        pipe.ltrim(runs_key(result.agent), 0, RECENT_RUNS - 1)
        pipe.hincrby(COUNTS_KEY, f"{result.agent}:{result.conclusion}", 1)
        await pipe.execute()


def job_runs_key(request: RunRequest) -> str:
    return f"aqe:job-runs:{request.forge}:{request.repo}:{','.join(sorted(request.agents)) or '*'}"


async def record_job_run(redis: Redis, record: JobRecord) -> None:
    """A completed job's duration, for the estimates of the next ones of its kind (`jobs.eta`)."""
    started = record.attempt_started_at or record.started_at  # the try that ran to its end
    if record.status != "completed" or started is None or record.finished_at is None:
        return
    key = job_runs_key(record.request)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.lpush(key, f"{record.finished_at - started:.3f}")
        pipe.ltrim(key, 0, eta.RECENT_JOBS - 1)
        pipe.expire(key, JOB_RUNS_TTL_S)
        await pipe.execute()


async def expected_duration(redis: Redis, request: RunRequest) -> float | None:
    """How long a job of `request`'s kind takes, from the repository's recent ones (None: none completed yet)."""
    return eta.expected_duration([float(raw) for raw in await redis.lrange(job_runs_key(request), 0, -1)])


def percentile(values: list[float], fraction: float) -> float | None:
    """Linear interpolation between closest ranks (as k6 and numpy's default do); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (position - low), 3)


def agent_summary(runs: list[bytes], counts: dict[str, int]) -> dict[str, Any]:
    durations = [float(run.split()[1]) for run in runs]
    return {"runs": sum(counts.values()), "by_conclusion": counts, "recent": len(durations),
            "duration_p50_s": percentile(durations, 0.5), "duration_p95_s": percentile(durations, 0.95),
            "last_finished_at": float(runs[0].split()[0]) if runs else None}


def redis_summary(info: dict[str, Any]) -> dict[str, Any]:
    return {field: info[field] for field in REDIS_INFO_FIELDS if field in info}


INFO_SECTIONS = ("server", "clients", "memory", "stats", "replication")  # where REDIS_INFO_FIELDS are


def info_fields(raw: bytes) -> dict[str, Any]:
    """REDIS_INFO_FIELDS of INFO's text (numbers as int, as redis-py gives them), without parsing the rest:
    redis-py's parse of a whole INFO was about half of a fleet status request's CPU."""
    found: dict[str, Any] = {}
    for line in raw.decode(errors="replace").splitlines():
        name, sep, value = line.partition(":")
        if sep and name in REDIS_INFO_FIELDS:
            found[name] = int(value) if value.isdigit() else value
    return found


async def snapshot(redis: Redis, now: float | None = None, pipelined: PipelinedRedis | None = None) -> dict[str, Any]:
    """Everything `/api/v1/fleet/status` reports, read in a few round trips (INFO over `pipelined` when given,
    at the same time as the rest)."""
    now = time.time() if now is None else now
    raw_info = None if pipelined is None else asyncio.ensure_future(pipelined.execute("INFO", *INFO_SECTIONS))
    recent = await redis.zrangebyscore(WORKERS_KEY, now - HEARTBEAT_TTL_S, "+inf")
    beats = await redis.mget([WORKER_PREFIX + member.decode() for member in recent]) if recent else []
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(HEALTH_KEY)
        pipe.zcard(ARQ_QUEUE)
        pipe.zcount(ARQ_QUEUE, "-inf", int(now * 1000))
        pipe.hgetall(COUNTS_KEY)
        for priority in PRIORITIES:
            pipe.zcard(queued_key(priority))
        for agent in ALL_AGENTS:
            pipe.lrange(runs_key(agent), 0, RECENT_RUNS - 1)
        if raw_info is None:
            pipe.info(*INFO_SECTIONS)
        answers = await pipe.execute()
    health, queued, ready, counts, *rest = answers
    by_priority = dict(zip(PRIORITIES, rest[: len(PRIORITIES)], strict=True))
    rest = rest[len(PRIORITIES):]
    runs_by_agent = rest[: len(ALL_AGENTS)]
    info = rest[-1] if raw_info is None else info_fields(await raw_info)
    workers = sorted((json.loads(raw) for raw in beats if raw), key=lambda w: w["id"])
    count_map: dict[str, dict[str, int]] = {}
    for key, value in counts.items():
        agent, _, conclusion = key.decode().rpartition(":")
        count_map.setdefault(agent, {})[conclusion] = int(value)
    return {
        "workers": {"alive": len(workers), "arq_health": health.decode() if health else None,
                    "jobs_running": sum(w["jobs_running"] for w in workers),
                    "capacity": sum(w["max_jobs"] for w in workers), "list": workers},
        "queue": {"queued": queued, "ready": ready, "deferred": queued - ready, "by_priority": by_priority},
        "agents": {agent: agent_summary(runs, count_map.get(agent, {}))
                   for agent, runs in zip(ALL_AGENTS, runs_by_agent, strict=True)},
        "redis": redis_summary(info),
    }
