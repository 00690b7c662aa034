"""Bearer tokens for the API: HS256 JWTs signed with AQE_JWT_SECRET, claims `sub`, `exp`, `scope` (and `repos`).

The algorithm is fixed: a token whose header says `none`, RS256 or anything but HS256 is refused before its
signature is looked at. `exp` is required. Tokens cannot be revoked (they expire); the audit log records each
one issued, by its `jti`.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import jwt
import msgspec

from jobs.apikeys import DEFAULT_SCOPES, checked_repos, checked_scopes

ALGORITHM = "HS256"
LEEWAY_S = 10
ISSUER = "aqe"


class TokenError(ValueError):
    """Why a token is not accepted (safe to show: it never contains the token)."""


class TokenClaims(msgspec.Struct, kw_only=True):
    sub: str
    exp: int
    iat: int
    jti: str
    scopes: list[str]
    repos: list[str] = []  # `owner/name` globs; empty: every repository


def looks_like_token(value: str) -> bool:
    parts = value.split(".")
    return len(parts) == 3 and all(parts[:2])


def issue_token(secret: str, sub: str, expires_in_s: int, scopes: list[str] | tuple[str, ...] = DEFAULT_SCOPES,
                repos: list[str] | tuple[str, ...] = (), at: float | None = None) -> tuple[str, TokenClaims]:
    """The signed token and what it says; ValueError for an empty subject or an unknown scope."""
    if not sub.strip():
        raise ValueError("a token needs a non-empty --sub")
    if expires_in_s < 1:
        raise ValueError("a token must expire (--expires-in ≥ 1s)")
    issued = int(at if at is not None else time.time())
    claims = TokenClaims(sub=sub.strip(), iat=issued, exp=issued + expires_in_s, jti=secrets.token_hex(8),
                         scopes=checked_scopes(scopes or DEFAULT_SCOPES), repos=checked_repos(repos))
    payload: dict[str, Any] = {"iss": ISSUER, "sub": claims.sub, "iat": claims.iat, "exp": claims.exp, "jti": claims.jti,
               "scope": " ".join(claims.scopes)}
    if claims.repos:
        payload["repos"] = claims.repos
    return jwt.encode(payload, secret, algorithm=ALGORITHM), claims


def verify_token(secret: str, token: str) -> TokenClaims:
    """The claims of a token this AQE signed and that has not expired; TokenError saying why not otherwise."""
    try:
        payload = jwt.decode(token, secret, algorithms=[ALGORITHM], issuer=ISSUER, leeway=LEEWAY_S,
                             options={"require": ["exp", "sub", "iat", "iss"]})
    except jwt.ExpiredSignatureError:
        raise TokenError("the token has expired; issue a new one with `aqe api issue-token`") from None
    except jwt.InvalidSignatureError:
        raise TokenError("the token's signature is not valid (not signed with this AQE's AQE_JWT_SECRET)") from None
    except jwt.InvalidAlgorithmError:
        raise TokenError(f"the token is not signed with {ALGORITHM}") from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenError(f"the token has no '{exc.claim}' claim") from None
    except jwt.InvalidTokenError as exc:
        raise TokenError(f"the token is not valid ({type(exc).__name__})") from None
    return claims_of(payload)


def claims_of(payload: dict[str, Any]) -> TokenClaims:
    scope, repos = payload.get("scope", ""), payload.get("repos", [])
    if not isinstance(scope, str) or not isinstance(repos, list) or not all(isinstance(r, str) for r in repos):
        raise TokenError("the token's 'scope' must be a space-separated string and 'repos' a list of globs")
    try:
        scopes, globs = checked_scopes(scope.split()), checked_repos(repos)
    except ValueError as exc:
        raise TokenError(f"the token's claims are not valid: {exc}") from None
    return TokenClaims(sub=str(payload["sub"]), exp=int(payload["exp"]), iat=int(payload["iat"]),
                       jti=str(payload.get("jti", "")), scopes=scopes, repos=globs)
