"""Browser sessions for the job page and the dashboard: someone pastes an API key once at `/login`.

The cookie (`aqe_session`, HttpOnly, SameSite=Strict, Secure behind https) holds an HS256 JWT signed with a key
derived from AQE_JWT_SECRET (so it is never accepted as an API token, nor an API token as a session), naming the
API key by its SHA-256 (`sub`) — never the key itself — and expiring after 12 hours. Every request looks the
key up again by that hash: a revoked or expired key ends its sessions at once. `/logout` clears the cookie and
remembers the session's `jti` as ended until it would have expired.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

import jwt
import msgspec
from starlette.requests import Request
from starlette.responses import Response

from app.api.auth import Principal
from jobs.apikeys import KEYS_HASH, ApiKey

COOKIE = "aqe_session"
SESSION_TTL_S = 12 * 3600
ISSUER = "aqe-session"
ALGORITHM = "HS256"
ENDED_PREFIX = "aqe:session:ended:"
_decode_key = msgspec.json.Decoder(ApiKey).decode
_CACHE = "aqe.session"


class SessionError(ValueError):
    """Why a key cannot start a session (safe to show: never contains the key)."""


def _signing_key(jwt_secret: str) -> bytes:
    return hmac.new(jwt_secret.encode(), b"aqe browser session v1", hashlib.sha256).digest()


def key_usable(key: ApiKey | None, at: float) -> ApiKey:
    if key is None:
        raise SessionError("this API key is not valid (unknown or revoked)")
    if key.expired(at):
        raise SessionError(f"the API key '{key.name}' has expired")
    if "jobs:read" not in key.scopes and "admin" not in key.scopes:
        raise SessionError(f"the API key '{key.name}' lacks the scope 'jobs:read'")
    return key


def principal_of(key: ApiKey) -> Principal:
    return Principal(kind="key", name=key.name, id=key.id, scopes=tuple(key.scopes), repos=tuple(key.repos),
                     rate_limit=key.rate_limit, created_at=key.created_at)


def session_token(jwt_secret: str, key_id: str, at: float | None = None) -> str:
    issued = int(at if at is not None else time.time())
    claims = {"iss": ISSUER, "sub": key_id, "iat": issued, "exp": issued + SESSION_TTL_S,
              "jti": secrets.token_hex(12)}
    return jwt.encode(claims, _signing_key(jwt_secret), algorithm=ALGORITHM)


def session_claims(jwt_secret: str, token: str) -> dict | None:
    try:
        claims = jwt.decode(token, _signing_key(jwt_secret), algorithms=[ALGORITHM], issuer=ISSUER,
                            options={"require": ["exp", "iat", "sub", "jti", "iss"]})
    except jwt.InvalidTokenError:
        return None
    return claims if isinstance(claims.get("sub"), str) and isinstance(claims.get("jti"), str) else None


async def session_principal(request: Request) -> Principal | None:
    """The logged-in key's principal, or None (no cookie, bad or ended session, key revoked or expired)."""
    if _CACHE in request.scope:
        return request.scope[_CACHE]
    principal = None
    token = request.cookies.get(COOKIE, "")
    claims = session_claims(request.app.state.settings.jwt_secret, token) if token else None
    if claims is not None:
        redis = request.app.state.redis
        async with redis.pipeline(transaction=False) as pipe:
            pipe.hget(KEYS_HASH, claims["sub"])
            pipe.exists(ENDED_PREFIX + claims["jti"])
            raw, ended = await pipe.execute()
        if raw is not None and not ended:
            key = _decode_key(raw)
            key.id = claims["sub"]
            try:
                principal = principal_of(key_usable(key, time.time()))
            except SessionError:
                principal = None
    request.scope[_CACHE] = principal
    return principal


def secure_cookie(request: Request) -> bool:
    return request.app.state.settings.public_url.startswith("https:")


def set_session_cookie(request: Request, response: Response, key_id: str) -> None:
    response.set_cookie(COOKIE, session_token(request.app.state.settings.jwt_secret, key_id),
                        max_age=SESSION_TTL_S, path="/", httponly=True, samesite="strict",
                        secure=secure_cookie(request))


async def end_session(request: Request, response: Response) -> None:
    token = request.cookies.get(COOKIE, "")
    claims = session_claims(request.app.state.settings.jwt_secret, token) if token else None
    if claims is not None:
        remaining = int(claims["exp"] - time.time()) + 60
        if remaining > 0:
            await request.app.state.redis.set(ENDED_PREFIX + claims["jti"], b"1", ex=remaining)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=secure_cookie(request))


def same_origin_post(request: Request) -> bool:
    """A form POST from our own pages: refuse cross-site ones (login CSRF) when the browser says where from."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:  # not a browser, or one that sends no Origin on same-origin POSTs
        return True
    own = {f"{request.url.scheme}://{request.url.netloc}", request.app.state.settings.public_url.rstrip("/")}
    return origin in own
