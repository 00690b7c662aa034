"""API keys in the real Redis: creation with scopes, expiry, rate limit and repositories; lookup; revocation."""

from __future__ import annotations

import msgspec
import pytest
from redis.asyncio import Redis

from jobs import apikeys
from jobs.apikeys import (KEYS_HASH, checked_repos, checked_scopes, find_key, issue_key, key_hash, list_keys,
                          mark_used, parse_duration, repo_allowed, revoke_key)


@pytest.mark.parametrize(("text", "seconds"), [("90d", 90 * 86400), ("12h", 43200), ("30m", 1800), ("2w", 1209600),
                                               ("45s", 45)])
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["90", "0d", "1y", "d", "-1h"])
def test_parse_duration_refuses_other_text(text: str) -> None:
    with pytest.raises(ValueError, match="90d, 12h"):
        parse_duration(text)


def test_scopes_are_checked_and_repos_are_globs() -> None:
    assert checked_scopes(["jobs:read", "fleet:read", "jobs:read"]) == ["fleet:read", "jobs:read"]
    with pytest.raises(ValueError, match="unknown scope 'jobs:delete'"):
        checked_scopes(["jobs:delete"])
    assert checked_repos(["acme/*", "acme/widgets"]) == ["acme/*", "acme/widgets"]
    assert checked_repos(["*", "acme/x"]) == []
    with pytest.raises(ValueError, match="'acme' is not an 'owner/name' glob"):
        checked_repos(["acme"])


def test_repo_allowed_matches_globs_without_crossing_the_slash() -> None:
    assert repo_allowed([], "any/thing")
    assert repo_allowed(["acme/*"], "ACME/Widgets")
    assert not repo_allowed(["acme/*"], "other/widgets")
    assert not repo_allowed(["acme*"], "acme/widgets") and not repo_allowed(["a*/widgets"], "acme/gadgets")
    assert repo_allowed(["*/widgets"], "acme/widgets")


async def test_a_key_is_stored_only_as_its_hash_with_its_settings(redis: Redis) -> None:
    key, record = await issue_key(redis, " jenkins ", expires_in_s=3600, rate_limit="200 / minute",
                                  scopes=["jobs:read"], repos=["acme/*"])
    assert apikeys.looks_like_key(key)
    stored = await redis.hgetall(KEYS_HASH)
    assert list(stored) == [key_hash(key).encode()] and key.encode() not in b"".join(stored.values())
    found = await find_key(redis, key)
    assert found is not None and found.name == "jenkins" and found.scopes == ["jobs:read"]
    assert found.repos == ["acme/*"] and found.rate_limit == "200/minute" and found.id == key_hash(key)
    assert found.expires_at == pytest.approx(record.created_at + 3600)
    assert not found.expired(record.created_at + 3599) and found.expired(record.created_at + 3600)


async def test_bad_settings_are_refused_before_anything_is_stored(redis: Redis) -> None:
    for options in ({"rate_limit": "lots"}, {"scopes": ["root"]}, {"repos": ["nope"]}):
        with pytest.raises(ValueError):
            await issue_key(redis, "x", **options)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="--name"):
        await issue_key(redis, "  ")
    assert await redis.hlen(KEYS_HASH) == 0


async def test_records_from_before_scopes_read_and_write_jobs(redis: Redis) -> None:
    key = apikeys.new_key()
    await redis.hset(KEYS_HASH, key_hash(key), b'{"name":"old","created_at":1700000000.0,"hint":"aqe_abcd"}')
    found = await find_key(redis, key)
    assert found is not None and found.scopes == ["jobs:read", "jobs:write"] and found.repos == []
    assert found.expires_at is None and found.rate_limit is None


async def test_unknown_and_malformed_keys_are_not_found(redis: Redis) -> None:
    await apikeys.create_key(redis, "ci")
    assert await find_key(redis, apikeys.new_key()) is None
    assert await find_key(redis, "aqe_short") is None


async def test_revoked_keys_are_gone_even_if_a_request_marks_them_used_afterwards(redis: Redis) -> None:
    key, _ = await issue_key(redis, "ci")
    found = await find_key(redis, key)
    assert found is not None
    await revoke_key(redis, "ci")
    await mark_used(redis, found, 1.0)  # a request that looked the key up just before the revocation
    assert await find_key(redis, key) is None and await list_keys(redis) == []


async def test_revoke_by_first_characters_when_names_repeat(redis: Redis) -> None:
    first, _ = await issue_key(redis, "ci")
    second, _ = await issue_key(redis, "ci")
    with pytest.raises(ValueError, match="2 keys match 'ci'"):
        await revoke_key(redis, "ci")
    revoked = await revoke_key(redis, second[:8])
    assert revoked.hint == second[:8]
    assert await find_key(redis, second) is None and await find_key(redis, first) is not None
    with pytest.raises(ValueError, match="no key named 'nobody'"):
        await revoke_key(redis, "nobody")


async def test_list_keys_shows_when_each_was_last_used(redis: Redis) -> None:
    key, record = await issue_key(redis, "a")
    await issue_key(redis, "b")
    found = await find_key(redis, key)
    assert found is not None
    await mark_used(redis, found, 1234.5)
    listed = await list_keys(redis)
    assert [k.name for k in listed] == ["a", "b"]
    assert listed[0].last_used_at == 1234.5 and listed[1].last_used_at is None
    assert msgspec.json.decode((await redis.hget(KEYS_HASH, record.id)) or b"{}")["name"] == "a"
