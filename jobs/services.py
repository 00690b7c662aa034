"""What a worker process builds once at start-up and hands to every job (arq's `ctx`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
from redis.asyncio import Redis

from jobs.forges.github.auth import InstallationTokens
from jobs.settings import Settings
from jobs.store import JobStore


@dataclass
class Services:
    settings: Settings
    redis: Redis
    store: JobStore
    http: httpx.AsyncClient
    github_tokens: InstallationTokens | None
    shutting_down: bool = field(default=False)  # the worker got SIGTERM/SIGINT: cancelled jobs will be retried
    jobs_running: int = 0  # for the worker's heartbeat (`jobs.fleet`)

    @classmethod
    def create(cls, settings: Settings, redis: Redis) -> Services:
        gh = settings.github
        tokens = InstallationTokens(gh.app_id, gh.private_key) if gh else None
        http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0),
                                 limits=httpx.Limits(max_connections=50, max_keepalive_connections=20))
        return cls(settings, redis, JobStore(redis), http, tokens)

    async def close(self) -> None:
        await self.http.aclose()
