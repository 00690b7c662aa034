"""API authentication: `Authorization: Bearer <credential>`, an API key (`aqe_…`) or a JWT this AQE issued.

An ID token of a CI platform listed in `AQE_OIDC_ISSUERS` (GitHub Actions, GitLab CI) is accepted too: it acts
on the repository its claims name (jobs/oidc.py).

`authenticate(request)` says who is calling (a `Principal`, or a 401); `require_scope(request, "jobs:read")`
also checks the scope (a 403 when the credential is valid but lacks it). A principal may be limited to some
repositories (`repos` globs): a job of another repository is answered 404, as if it did not exist.
Each request looks the key up again, so a revoked or expired key is refused from the next request on.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Literal

import msgspec
from starlette.requests import Request

from app.api.errors import ApiError
from jobs.apikeys import ApiKey, find_key, looks_like_key, mark_used, repo_allowed
from jobs.model import now
from jobs.oidc import OidcError, unverified_issuer
from jobs.tokens import ISSUER, TokenError, looks_like_token, verify_token

MARK_USED_EVERY_S = 60.0  # `last_used_at` is kept to the minute
_last_marked: dict[str, float] = {}  # key id -> when this process last wrote its last use
_CACHE = "aqe.principal"  # in the ASGI scope: the rate limiter and the endpoint authenticate once per request


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    kind: Literal["key", "jwt", "oidc"]
    name: str  # the key's name or the token's subject
    id: str  # the key's SHA-256, or the token's jti
    scopes: tuple[str, ...]
    repos: tuple[str, ...] = ()  # `owner/name` globs; empty: every repository
    rate_limit: str | None = None  # None: AQE_RATE_LIMIT
    created_at: float = 0.0  # the key's creation or the token's issue time
    forge: str | None = None  # a CI platform's ID token acts on its own forge's repository only; None: any forge
    runs: tuple[str, ...] = ("*",)  # the endpoints it may start jobs with (`security/scan`, ...; AQE_OIDC_POLICY)
    commit: str | None = None  # the only commit it may start jobs of (an AQE_OIDC_POLICY rule's `same_commit`)

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.name}"

    @property
    def limit_identity(self) -> str:
        """Whose requests are counted together: one key, or every token of one subject."""
        return f"key:{self.id}" if self.kind == "key" else f"{self.kind}:{self.name}"

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    def may_run(self, endpoint: str) -> bool:
        return "*" in self.runs or endpoint in self.runs

    def sees(self, repo: str, forge: str) -> bool:
        """Whether jobs of `repo` on `forge` are this principal's to read or start. Figures sent to the gate with
        a request (forge `api`) belong to no forge."""
        return (self.forge is None or forge in (self.forge, "api")) and repo_allowed(self.repos, repo)


def bearer_credential(header: str) -> str:
    scheme, _, credential = header.partition(" ")
    if not header:
        raise ApiError(401, "unauthenticated", "send 'Authorization: Bearer aqe_…' (create a key with "
                                               "`aqe api generate-key`) or a token from `aqe api issue-token`")
    if scheme.lower() != "bearer" or not credential.strip():
        raise ApiError(401, "unauthenticated", "the Authorization header must be 'Bearer <API key or token>'")
    return credential.strip()


def token_principal(secret: str, token: str) -> Principal:
    try:
        claims = verify_token(secret, token)
    except TokenError as exc:
        raise ApiError(401, "invalid_credentials", str(exc)) from None
    return Principal(kind="jwt", name=claims.sub, id=claims.jti, scopes=tuple(claims.scopes),
                     repos=tuple(claims.repos), created_at=float(claims.iat))


async def oidc_principal(request: Request, token: str) -> Principal:
    """A CI job's ID token: it may start and read jobs of the one repository it names (see jobs/oidc.py)."""
    verifier = getattr(request.app.state, "oidc", None)
    if verifier is None:
        raise ApiError(401, "invalid_credentials", "the token is not one AQE issued, and this AQE accepts no "
                                                   "OIDC ID tokens (AQE_OIDC_ISSUERS is not set)")
    try:
        identity = await verifier.verify(token)
    except OidcError as exc:
        raise ApiError(401, "invalid_credentials", str(exc)) from None
    return Principal(kind="oidc", name=identity.subject or identity.repo, id=str(identity.claims.get("jti", "")),
                     scopes=identity.scopes, repos=(identity.repo,), created_at=float(identity.claims.get("iat", 0)),
                     forge=identity.forge, runs=identity.runs, commit=identity.commit)


async def _principal(request: Request) -> Principal:
    credential = bearer_credential(request.headers.get("authorization", ""))
    if looks_like_token(credential):
        try:
            issuer = unverified_issuer(credential)
        except OidcError as exc:
            raise ApiError(401, "invalid_credentials", str(exc)) from None
        if issuer != ISSUER:
            return await oidc_principal(request, credential)
        return token_principal(request.app.state.settings.jwt_secret, credential)
    return await key_principal(request, await find_key(request.app.state.redis, credential))


async def key_principal(request: Request, key: ApiKey | None) -> Principal:
    """The principal of an API key's record (None: unknown or revoked); ApiError 401 when it cannot be used."""
    if key is None:
        raise ApiError(401, "invalid_credentials", "the API key is not valid (unknown or revoked)")
    at = now()
    if key.expired(at):
        raise ApiError(401, "invalid_credentials", f"the API key '{key.name}' has expired; create a new one with "
                                                   "`aqe api generate-key`")
    if at - _last_marked.get(key.id, 0.0) >= MARK_USED_EVERY_S:  # one write a minute, not one per request
        _last_marked[key.id] = at
        await mark_used(request.app.state.redis, key, at)
    return Principal(kind="key", name=key.name, id=key.id, scopes=tuple(key.scopes), repos=tuple(key.repos),
                     rate_limit=key.rate_limit, created_at=key.created_at)


def api_key_credential(request: Request) -> str | None:
    """The API key the request is sent with, when its credential is one (else the caller is worked out later)."""
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    credential = credential.strip()
    return credential if scheme.lower() == "bearer" and looks_like_key(credential) else None


async def settle(request: Request, principal: Awaitable[Principal]) -> Principal | None:
    """Remember who the caller is (or why not) for the rest of the request; None when the credentials fail."""
    try:
        request.scope[_CACHE] = await principal
    except ApiError as exc:
        request.scope[_CACHE] = exc
        return None
    return request.scope[_CACHE]


async def authenticate(request: Request) -> Principal:
    """Who is calling; ApiError 401 (with WWW-Authenticate) for a missing, malformed, unknown or expired one."""
    if _CACHE not in request.scope:
        await settle(request, _principal(request))
    cached = request.scope[_CACHE]
    if isinstance(cached, ApiError):
        raise cached
    return cached


async def identify(request: Request) -> Principal | None:
    """The caller, or None when the credentials are missing or not valid (for the rate limiter)."""
    try:
        return await authenticate(request)
    except ApiError:
        return None


async def require_scope(request: Request, scope: str) -> Principal:
    principal = await authenticate(request)
    if not principal.allows(scope):
        raise ApiError(403, "insufficient_scope", f"this {'API key' if principal.kind == 'key' else 'token'} lacks "
                                                  f"the scope '{scope}' (it has: {', '.join(principal.scopes)})")
    return principal


def require_job_visible(principal: Principal, job_id: str, repo: str, forge: str) -> None:
    """404 (the words of a missing job) when the principal may not see jobs of `repo`."""
    if not principal.sees(repo, forge):
        raise ApiError(404, "job_not_found", f"no job '{job_id}' (records are kept 30 days)")


def require_repo(principal: Principal, repo: str, forge: str) -> None:
    """403 when the principal may not start jobs on `repo`."""
    if not principal.sees(repo, forge):
        on = f"{principal.forge} repositories " if principal.forge else ""
        raise ApiError(403, "repo_not_allowed", f"this credential may not start jobs on {repo[:120]!r} ({forge}) "
                                                f"(it may on {on}{', '.join(principal.repos)})")


def require_runnable(principal: Principal, endpoint: str, head_sha: str | None) -> None:
    """403 when the principal may not start jobs with `endpoint` (e.g. `security/scan`), or of this commit
    (`head_sha`; None: a job of no commit, the gate's on given figures)."""
    if not principal.may_run(endpoint):
        raise ApiError(403, "run_not_allowed", f"this token may not start {endpoint} jobs (AQE_OIDC_POLICY lets it "
                                               f"start: {', '.join(principal.runs) or 'none'})")
    if principal.commit is not None and head_sha is not None and head_sha != principal.commit:
        raise ApiError(403, "commit_not_allowed", f"this token may start jobs of its own commit only: give \"sha\": "
                                                  f"\"{principal.commit}\" (AQE_OIDC_POLICY same_commit)")
