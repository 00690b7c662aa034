"""HS256 tokens: what is issued verifies; bad signatures, expired tokens and other algorithms are refused."""

from __future__ import annotations

import time

import jwt
import pytest

from jobs.tokens import LEEWAY_S, TokenError, issue_token, looks_like_token, verify_token

SECRET = "s" * 48


def test_an_issued_token_verifies_with_its_claims() -> None:
    token, claims = issue_token(SECRET, "ci-bot", 3600, ["jobs:read"], ["acme/*"])
    assert looks_like_token(token) and not looks_like_token("aqe_" + "a" * 32)
    assert verify_token(SECRET, token) == claims
    assert claims.sub == "ci-bot" and claims.scopes == ["jobs:read"] and claims.repos == ["acme/*"]
    assert claims.exp - claims.iat == 3600 and len(claims.jti) == 16
    payload = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert payload["scope"] == "jobs:read" and jwt.get_unverified_header(token)["alg"] == "HS256"


def test_issuing_refuses_unknown_scopes_and_empty_subjects() -> None:
    with pytest.raises(ValueError, match="unknown scope"):
        issue_token(SECRET, "ci", 60, ["everything"])
    with pytest.raises(ValueError, match="--sub"):
        issue_token(SECRET, " ", 60)


def test_a_token_signed_with_another_secret_is_refused() -> None:
    token, _ = issue_token("other-" + SECRET, "ci", 60)
    with pytest.raises(TokenError, match="signature is not valid"):
        verify_token(SECRET, token)


def test_a_tampered_payload_is_refused() -> None:
    token, _ = issue_token(SECRET, "ci", 60, ["jobs:read"])
    forged, _ = issue_token(SECRET, "ci", 60, ["admin"])
    header, _, signature = token.split(".")
    with pytest.raises(TokenError, match="signature"):
        verify_token(SECRET, f"{header}.{forged.split('.')[1]}.{signature}")


def test_an_expired_token_is_refused_after_the_leeway() -> None:
    token, _ = issue_token(SECRET, "ci", 60, at=time.time() - 60 - LEEWAY_S - 5)
    with pytest.raises(TokenError, match="expired"):
        verify_token(SECRET, token)
    recent, _ = issue_token(SECRET, "ci", 60, at=time.time() - 62)
    assert verify_token(SECRET, recent).sub == "ci"  # within the leeway


def test_a_token_without_exp_is_refused() -> None:
    token = jwt.encode({"iss": "aqe", "sub": "ci", "iat": int(time.time()), "scope": "admin"}, SECRET,
                       algorithm="HS256")
    with pytest.raises(TokenError, match="no 'exp' claim"):
        verify_token(SECRET, token)


def test_alg_none_and_rs256_are_refused(rsa_key_pair: tuple[bytes, bytes]) -> None:
    claims = {"iss": "aqe", "sub": "ci", "iat": int(time.time()), "exp": int(time.time()) + 60, "scope": "admin"}
    unsigned = jwt.encode(claims, None, algorithm="none")
    with pytest.raises(TokenError, match="not signed with HS256"):
        verify_token(SECRET, unsigned)
    private, public = rsa_key_pair
    rs256 = jwt.encode(claims, private, algorithm="RS256")
    with pytest.raises(TokenError, match="not signed with HS256"):
        verify_token(public.decode(), rs256)


def test_claims_of_the_wrong_shape_are_refused() -> None:
    claims = {"iss": "aqe", "sub": "ci", "iat": int(time.time()), "exp": int(time.time()) + 60}
    for extra, why in (({"scope": ["admin"]}, "space-separated"), ({"scope": "root"}, "unknown scope"),
                       ({"scope": "admin", "repos": ["acme"]}, "owner/name")):
        with pytest.raises(TokenError, match=why):
            verify_token(SECRET, jwt.encode({**claims, **extra}, SECRET, algorithm="HS256"))


def test_garbage_is_refused_with_a_message() -> None:
    with pytest.raises(TokenError, match="not valid"):
        verify_token(SECRET, "a.b.c")
