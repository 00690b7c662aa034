"""API keys: `aqe_` + 32 random characters, stored only as their SHA-256 hash, with scopes, expiry and a rate limit.

Records written before scopes existed decode with the default scopes (`jobs:read`, `jobs:write`: what every
key could do then), no expiry, the default rate limit and every repository. When a key was last used is kept in
a hash of its own, so a request being counted can never write back a key that was revoked meanwhile.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from typing import Any

import msgspec
from redis.asyncio import Redis

from jobs.model import now
from jobs.quality.config import glob_regex
from jobs.ratelimit import parse_rate

KEYS_HASH = "aqe:apikeys"
LAST_USED_HASH = "aqe:apikeys:last-used"
PREFIX = "aqe_"
_ALPHABET = string.ascii_letters + string.digits
SCOPES = ("jobs:read", "jobs:write", "fleet:read", "admin")  # admin: every scope
DEFAULT_SCOPES = ("jobs:read", "jobs:write")
DURATION_RE = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
REPO_GLOB_RE = re.compile(r"^[A-Za-z0-9_.*?\[\]!-]+/[A-Za-z0-9_.*?\[\]!-]+$|^\*$")


class ApiKey(msgspec.Struct, kw_only=True):
    name: str
    created_at: float
    hint: str  # the first characters, to tell keys apart in listings
    last_used_at: float | None = None
    expires_at: float | None = None
    rate_limit: str | None = None  # e.g. "200/minute"; None: AQE_RATE_LIMIT
    scopes: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_SCOPES))
    repos: list[str] = msgspec.field(default_factory=list)  # `owner/name` globs; empty: every repository
    id: str = ""  # the key's SHA-256, filled when read (not stored in the record)

    def expired(self, at: float) -> bool:
        return self.expires_at is not None and at >= self.expires_at


_decode = msgspec.json.Decoder(ApiKey).decode
_encode = msgspec.json.Encoder().encode


def new_key() -> str:
    return PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(32))


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def looks_like_key(value: str) -> bool:
    return value.startswith(PREFIX) and len(value) == len(PREFIX) + 32 and value[4:].isalnum()


def parse_duration(text: str) -> int:
    """'90d', '12h', '30m', '2w', '45s' in seconds; ValueError otherwise."""
    match = DURATION_RE.match(text)
    if not match or int(match.group(1)) < 1:
        raise ValueError(f"{text!r} is not a duration like 90d, 12h, 30m, 2w or 45s")
    return int(match.group(1)) * _UNIT_S[match.group(2)]


def checked_scopes(scopes: list[str] | tuple[str, ...]) -> list[str]:
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r}; the scopes are {', '.join(SCOPES)}")
    return sorted(set(scopes))


def checked_repos(repos: list[str] | tuple[str, ...]) -> list[str]:
    bad = [repo for repo in repos if not REPO_GLOB_RE.match(repo)]
    if bad:
        raise ValueError(f"{bad[0]!r} is not an 'owner/name' glob (e.g. acme/widgets, acme/*)")
    return [] if "*" in repos else sorted(set(repos))


def repo_allowed(globs: list[str] | tuple[str, ...], repo: str) -> bool:
    """Whether `repo` (owner/name) matches one of the globs, case-insensitively; no globs: every repository."""
    return not globs or any(re.match(glob_regex(glob.lower()), repo.lower()) for glob in globs)


async def create_key(redis: Redis, name: str, **options: Any) -> str:
    """Store a new key's hash under `name` (options as `issue_key`); the key is returned once and kept nowhere."""
    return (await issue_key(redis, name, **options))[0]


async def issue_key(redis: Redis, name: str, *, expires_in_s: int | None = None, rate_limit: str | None = None,
                    scopes: list[str] | tuple[str, ...] = DEFAULT_SCOPES,
                    repos: list[str] | tuple[str, ...] = ()) -> tuple[str, ApiKey]:
    """The new key and its record (names need not be unique: revoke by first characters then)."""
    name = name.strip()
    if not name:
        raise ValueError("a key needs a non-empty --name")
    rate_limit = str(parse_rate(rate_limit)) if rate_limit is not None else None
    key, created = new_key(), now()
    record = ApiKey(name=name, created_at=created, hint=key[:8], rate_limit=rate_limit,
                    expires_at=created + expires_in_s if expires_in_s else None,
                    scopes=checked_scopes(scopes or DEFAULT_SCOPES), repos=checked_repos(repos))
    await redis.hset(KEYS_HASH, key_hash(key), _encode(record))
    record.id = key_hash(key)
    return key, record


async def find_key(redis: Redis, key: str) -> ApiKey | None:
    """The key's record, expired or not (the caller says which); None when it is unknown or revoked."""
    if not looks_like_key(key):
        return None
    digest = key_hash(key)
    raw = await redis.hget(KEYS_HASH, digest)
    return None if raw is None else stored_key(raw, digest)


def stored_key(raw: bytes, digest: str) -> ApiKey:
    """A key's record as stored under its SHA-256 `digest`."""
    record = _decode(raw)
    record.id = digest
    return record


async def mark_used(redis: Redis, record: ApiKey, at: float) -> None:
    await redis.hset(LAST_USED_HASH, record.id, str(at))


async def list_keys(redis: Redis) -> list[ApiKey]:
    records, last_used = await redis.hgetall(KEYS_HASH), await redis.hgetall(LAST_USED_HASH)
    keys = []
    for digest, raw in records.items():
        record = _decode(raw)
        record.id = digest.decode() if isinstance(digest, bytes) else digest
        if (used := last_used.get(digest)) is not None:
            record.last_used_at = float(used)
        keys.append(record)
    return sorted(keys, key=lambda k: k.created_at)


def matching_keys(keys: list[ApiKey], name_or_hint: str) -> list[ApiKey]:
    """Keys named `name_or_hint`, else those whose first characters it is (at least `aqe_` + 4)."""
    named = [key for key in keys if key.name == name_or_hint]
    if named or len(name_or_hint) < len(PREFIX) + 4:
        return named
    return [key for key in keys if key.hint.startswith(name_or_hint) or name_or_hint.startswith(key.hint)]


async def revoke_key(redis: Redis, name_or_hint: str) -> ApiKey:
    """Delete the one key with this name (or first characters); the next request with it is refused."""
    found = matching_keys(await list_keys(redis), name_or_hint.strip())
    if not found:
        raise ValueError(f"no key named {name_or_hint!r} (see `aqe api list-keys`)")
    if len(found) > 1:
        raise ValueError(f"{len(found)} keys match {name_or_hint!r}; give the first characters of one "
                         f"({', '.join(key.hint for key in found)})")
    await redis.hdel(KEYS_HASH, found[0].id)
    await redis.hdel(LAST_USED_HASH, found[0].id)
    return found[0]
