"""Shared fixtures: a real Redis (REDIS_URL, else the embedded Valkey), settings from a mapping, a test key pair."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from redis.asyncio import Redis

from jobs.redis_server import EmbeddedRedis
from jobs.settings import Settings, load_settings

# sample projects the tests analyse; their own tests are data here, not ours to collect
collect_ignore_glob = ["fixtures/*", "jobs/*/fixtures/*"]

WEBHOOK_SECRET = "test-webhook-secret"
APP_ID = 424242


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """REDIS_URL when set (its database is flushed by tests!), otherwise an embedded Valkey for the session."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    with EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False) as url:
        yield url


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def rsa_key_pair() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


@pytest.fixture
def private_key_file(tmp_path: Path, rsa_key_pair: tuple[bytes, bytes]) -> Path:
    path = tmp_path / "app.pem"
    path.write_bytes(rsa_key_pair[0])
    return path


@pytest.fixture
def make_settings(tmp_path: Path, redis_url: str, private_key_file: Path) -> Callable[..., Settings]:
    """Settings from a mapping (no environment patching): a configured GitHub App plus overrides."""

    def make(**overrides: str) -> Settings:
        env = {"REDIS_URL": redis_url, "GITHUB_APP_ID": str(APP_ID), "GITHUB_PRIVATE_KEY_PATH": str(private_key_file),
               "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET, "AQE_DATA_DIR": str(tmp_path / "data"),
               "AQE_PUBLIC_URL": "http://aqe.test"}
        env.update(overrides)
        return load_settings({k: v for k, v in env.items() if v is not None}, dotenv_path=None)

    return make
