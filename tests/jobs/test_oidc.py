"""OIDC ID tokens from CI, verified against a fake issuer's published keys over real HTTP."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from jobs import oidc
from tests.fakes.oidc import FakeIssuer


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    with FakeIssuer() as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def _verifier(http: httpx.AsyncClient, issuer: FakeIssuer, refs: tuple[str, ...] = ()) -> oidc.OidcVerifier:
    return oidc.OidcVerifier(http, (issuer.issuer,), "aqe", refs)


async def test_a_github_actions_token_acts_for_its_repository(http: httpx.AsyncClient, issuer: FakeIssuer) -> None:
    identity = await _verifier(http, issuer).verify(issuer.token())
    assert (identity.repo, identity.ref, identity.issuer) == ("acme/widgets", "refs/heads/main", issuer.issuer)
    assert identity.name == "oidc:repo:acme/widgets:ref:refs/heads/main"


async def test_a_gitlab_token_names_its_project(http: httpx.AsyncClient, issuer: FakeIssuer) -> None:
    token = issuer.token(repository=None, ref="main", project_path="group/app", ref_path="refs/heads/main")
    identity = await _verifier(http, issuer, refs=("refs/heads/main",)).verify(token)
    assert (identity.repo, identity.ref) == ("group/app", "refs/heads/main")


@pytest.mark.parametrize("claims,reason", [
    ({"aud": "someone-else"}, "not for this audience"),
    ({"exp": int(time.time()) - 120, "iat": int(time.time()) - 600}, "expired"),
    ({"repository": None}, "names no repository"),
    ({"exp": None}, "not valid"),
])
async def test_tokens_that_do_not_hold_are_refused(http: httpx.AsyncClient, issuer: FakeIssuer,
                                                   claims: dict, reason: str) -> None:
    with pytest.raises(oidc.OidcError, match=reason):
        await _verifier(http, issuer).verify(issuer.token(**claims))


async def test_a_wrong_issuer_or_a_foreign_key_is_refused(http: httpx.AsyncClient, issuer: FakeIssuer) -> None:
    with pytest.raises(oidc.OidcError, match="are not accepted"):
        await _verifier(http, issuer).verify(issuer.token(iss="https://evil.example.com"))
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(oidc.OidcError, match="not valid"):  # the issuer's kid, but another key signed it
        await _verifier(http, issuer).verify(issuer.token(key=stranger))
    with pytest.raises(oidc.OidcError, match="not a well-formed JWT"):
        await _verifier(http, issuer).verify("a.b.c")


async def test_the_ref_policy_limits_where_tokens_come_from(http: httpx.AsyncClient, issuer: FakeIssuer) -> None:
    verifier = _verifier(http, issuer, refs=("refs/heads/main", "refs/tags/v*"))
    assert (await verifier.verify(issuer.token(ref="refs/tags/v1.2"))).ref == "refs/tags/v1.2"
    with pytest.raises(oidc.OidcError, match="refs/heads/feature are not accepted"):
        await verifier.verify(issuer.token(ref="refs/heads/feature"))


async def test_keys_are_cached_and_a_rotation_is_picked_up(http: httpx.AsyncClient, issuer: FakeIssuer,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = _verifier(http, issuer)
    for _ in range(3):
        await verifier.verify(issuer.token())
    assert issuer.jwks_fetches == 1
    new_kid = issuer.rotate()
    monkeypatch.setattr(oidc, "REFETCH_MIN_INTERVAL_S", 0.0)  # narrow: not wait 30 s for the refetch window
    assert (await verifier.verify(issuer.token(kid=new_kid))).repo == "acme/widgets"
    assert issuer.jwks_fetches == 2
    with pytest.raises(oidc.OidcError, match="publishes no key"):
        await verifier.verify(issuer.token(kid="key-404", key=issuer.keys[new_kid]))


def test_only_three_part_tokens_that_are_not_api_keys_look_like_jwts() -> None:
    assert oidc.looks_like_jwt("a.b.c") and not oidc.looks_like_jwt("aqe_" + "a" * 32)
    assert not oidc.looks_like_jwt("a.b")
