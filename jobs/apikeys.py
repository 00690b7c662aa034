"""API keys: `aqe_` + 32 random characters, stored only as their SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets
import string

import msgspec
from redis.asyncio import Redis

from jobs.model import now

KEYS_HASH = "aqe:apikeys"
PREFIX = "aqe_"
_ALPHABET = string.ascii_letters + string.digits


class ApiKey(msgspec.Struct, kw_only=True):
    name: str
    created_at: float
    hint: str  # the first characters, to tell keys apart in listings
    last_used_at: float | None = None


_decode = msgspec.json.Decoder(ApiKey).decode
_encode = msgspec.json.Encoder().encode


def new_key() -> str:
    return PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(32))


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def looks_like_key(value: str) -> bool:
    return value.startswith(PREFIX) and len(value) == len(PREFIX) + 32 and value[4:].isalnum()


async def create_key(redis: Redis, name: str) -> str:
    """Store a new key's hash under `name`; the key itself is returned once and kept nowhere."""
    if not name.strip():
        raise ValueError("a key needs a non-empty --name")
    key = new_key()
    record = ApiKey(name=name.strip(), created_at=now(), hint=key[:8])
    await redis.hset(KEYS_HASH, key_hash(key), _encode(record))
    return key


async def find_key(redis: Redis, key: str) -> ApiKey | None:
    if not looks_like_key(key):
        return None
    raw = await redis.hget(KEYS_HASH, key_hash(key))
    return None if raw is None else _decode(raw)


async def list_keys(redis: Redis) -> list[ApiKey]:
    return sorted((_decode(v) for v in (await redis.hgetall(KEYS_HASH)).values()), key=lambda k: k.created_at)
