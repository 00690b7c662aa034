"""What the app tests share: a real Redis reached from synchronous test code, API keys, and TestClients of the
real app with a known AQE_JWT_SECRET."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis as redis_sync
from redis.asyncio import Redis
from starlette.testclient import TestClient

from app.main import create_app
from jobs import apikeys

JWT_SECRET = "test-jwt-secret-" + "x" * 32


def with_redis(action: Callable[[Redis], Any], redis_url: str) -> Any:
    """`action(redis)` to its end, on a thread of its own: callable from plain tests, from async tests (whose loop
    is running) and next to Playwright's sync API (which keeps a loop in the test's thread)."""
    async def go() -> Any:
        redis = Redis.from_url(redis_url)
        try:
            return await action(redis)
        finally:
            await redis.aclose()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, go()).result(timeout=60)


def make_key(redis_url: str, name: str = "ci", **options: Any) -> str:
    return with_redis(lambda r: apikeys.create_key(r, name, **options), redis_url)


@pytest.fixture
def app_client(make_settings, redis_url: str) -> Iterator[Callable[..., TestClient]]:  # type: ignore[no-untyped-def]
    """`app_client(**settings)`: a started TestClient of the app on an emptied Redis (stopped after the test)."""
    redis_sync.Redis.from_url(redis_url).flushdb()
    clients: list[TestClient] = []

    def start(**settings: str) -> TestClient:
        client = TestClient(create_app(make_settings(AQE_JWT_SECRET=JWT_SECRET, **settings)))
        clients.append(client.__enter__())
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(app_client: Callable[..., TestClient]) -> TestClient:
    return app_client()
