"""Keyless API access from CI: OIDC ID tokens of GitHub Actions and GitLab CI, verified against the issuer's keys.

A CI job asks its platform for an ID token with AQE's audience and sends it as `Authorization: Bearer <token>`.
AQE accepts it when it is signed (RS256) by a key the issuer publishes (OpenID discovery -> `jwks_uri`), was
issued by one of `AQE_OIDC_ISSUERS` for `AQE_OIDC_AUDIENCE`, and has not expired. The identity may then act on
the one repository the token names — `repository` (GitHub Actions) or `project_path` (GitLab CI) — and, when
`AQE_OIDC_REFS` is set, only from a ref matching one of its globs (e.g. `refs/heads/main`).

`AQE_OIDC_POLICY` (JSON, a list of rules) says more finely what a token may do, by its repository and ref: the
first rule whose `repository` and `ref` globs match decides its `scopes` (`jobs:read`, `jobs:write`), the analyses
it may start (`run`: endpoint paths such as `security/scan`, or `*`) and whether those must be of the commit the
token was issued for (`same_commit`: its `sha` claim). A token no rule matches is refused.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import msgspec

KEYS_TTL_S = 600.0
REFETCH_MIN_INTERVAL_S = 30.0  # an unknown key id refetches the keys, at most this often (a rotation, not a flood)
LEEWAY_S = 30
REPO_CLAIMS = ("repository", "project_path")  # GitHub Actions, GitLab CI
# The full ref: GitLab's tokens carry `ref_path` ("refs/heads/main") and a short `ref` ("main"); GitHub's `ref` is full.
REF_CLAIMS = ("ref_path", "ref")


OIDC_SCOPES = ("jobs:read", "jobs:write")
RUNNABLE = ("test/execute", "test/generate", "security/scan", "coverage/analyze", "performance/test", "quality/gate")


class OidcError(Exception):
    """Why a token is refused; safe to show to the caller (never contains the token)."""


class OidcRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One rule of `AQE_OIDC_POLICY`: what tokens of matching repositories and refs may do."""

    repository: str  # glob of the repository the token names (`acme/*`; GitLab: `group/sub/*`)
    ref: str = "*"  # glob of its ref (`refs/heads/main`, `refs/tags/*`, `refs/pull/*`)
    scopes: tuple[str, ...] = OIDC_SCOPES
    run: tuple[str, ...] = ("*",)  # endpoint paths it may start jobs with (RUNNABLE), or "*"
    same_commit: bool = False  # the jobs it starts must be of the commit its token was issued for (`sha` claim)

    def matches(self, repo: str, ref: str | None) -> bool:
        return fnmatch.fnmatchcase(repo, self.repository) and fnmatch.fnmatchcase(ref or "", self.ref)


def parse_policy(text: str) -> tuple[OidcRule, ...]:
    """`AQE_OIDC_POLICY`'s rules; ValueError naming what is wrong."""
    try:
        rules = msgspec.json.decode(text, type=tuple[OidcRule, ...])
    except msgspec.DecodeError as exc:
        raise ValueError(f"a JSON list of rules like [{{\"repository\": \"acme/*\", \"ref\": \"refs/heads/main\"}}]: "
                         f"{exc}") from None
    if not rules:
        raise ValueError("an empty list would refuse every token; leave it unset to let each token act on its own "
                         "repository")
    for number, rule in enumerate(rules, 1):
        if unknown := sorted(set(rule.scopes) - set(OIDC_SCOPES)):
            raise ValueError(f"rule {number}: scope {unknown[0]!r} is not one of {', '.join(OIDC_SCOPES)}")
        if unknown := sorted(set(rule.run) - {*RUNNABLE, "*"}):
            raise ValueError(f"rule {number}: run {unknown[0]!r} is not one of *, {', '.join(RUNNABLE)}")
    return rules


@dataclass(frozen=True)
class OidcIdentity:
    issuer: str
    subject: str
    repo: str
    ref: str | None
    claims: dict[str, Any] = field(repr=False)
    scopes: tuple[str, ...] = OIDC_SCOPES
    runs: tuple[str, ...] = ("*",)
    commit: str | None = None  # the only commit its jobs may be of (a rule's `same_commit`)

    @property
    def name(self) -> str:
        return f"oidc:{self.subject}"

    @property
    def forge(self) -> str:
        """Where the repository the token names is: GitLab CI's tokens carry `project_path`, GitHub's `repository`."""
        return "gitlab" if isinstance(self.claims.get("project_path"), str) and self.claims["project_path"] else "github"


@dataclass
class _Keys:
    by_kid: dict[str, Any]
    fetched_at: float


def looks_like_jwt(value: str) -> bool:
    return value.count(".") == 2 and not value.startswith("aqe_")


def unverified_issuer(token: str) -> str:
    try:
        return str(jwt.decode(token, options={"verify_signature": False}).get("iss", ""))
    except jwt.PyJWTError:
        raise OidcError("not a well-formed JWT") from None


def identity_of(claims: dict[str, Any], ref_globs: tuple[str, ...],
                policy: tuple[OidcRule, ...] = ()) -> OidcIdentity:
    """The repository (and ref) a verified token may act for, and what it may do there, under the ref globs and
    the policy (its first matching rule; without a policy, both scopes on its repository)."""
    repo = next((str(claims[c]) for c in REPO_CLAIMS if isinstance(claims.get(c), str) and claims[c]), None)
    if repo is None:
        raise OidcError("the token names no repository (claim `repository` or `project_path`)")
    ref = next((str(claims[c]) for c in REF_CLAIMS if isinstance(claims.get(c), str) and claims[c]), None)
    if ref_globs and not (ref and any(fnmatch.fnmatchcase(ref, glob) for glob in ref_globs)):
        raise OidcError(f"tokens from {ref or 'an unnamed ref'} are not accepted (AQE_OIDC_REFS)")
    identity = OidcIdentity(str(claims["iss"]), str(claims.get("sub", "")), repo, ref, claims)
    if not policy:
        return identity
    rule = next((rule for rule in policy if rule.matches(repo, ref)), None)
    if rule is None:
        raise OidcError(f"no AQE_OIDC_POLICY rule accepts tokens of {repo} from {ref or 'an unnamed ref'}")
    sha = claims.get("sha") if isinstance(claims.get("sha"), str) else None
    if rule.same_commit and not sha:
        raise OidcError("the AQE_OIDC_POLICY rule for this repository wants jobs of the token's own commit, and the "
                        "token names none (claim `sha`)")
    return OidcIdentity(identity.issuer, identity.subject, repo, ref, claims, scopes=rule.scopes, runs=rule.run,
                        commit=sha if rule.same_commit else None)


class OidcVerifier:
    def __init__(self, http: httpx.AsyncClient, issuers: tuple[str, ...], audience: str,
                 ref_globs: tuple[str, ...] = (), policy: tuple[OidcRule, ...] = ()) -> None:
        self.http, self.audience, self.ref_globs, self.policy = http, audience, ref_globs, policy
        self.issuers = tuple(issuer.rstrip("/") for issuer in issuers)
        self._keys: dict[str, _Keys] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def verify(self, token: str) -> OidcIdentity:
        issuer = unverified_issuer(token).rstrip("/")
        if issuer not in self.issuers:
            raise OidcError(f"tokens of issuer {issuer[:100]!r} are not accepted (AQE_OIDC_ISSUERS)")
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            raise OidcError("not a well-formed JWT") from None
        key = await self._key(issuer, str(kid))
        try:
            claims = jwt.decode(token, key, algorithms=["RS256"], audience=self.audience, issuer=issuer,
                                leeway=LEEWAY_S, options={"require": ["exp", "iat", "iss", "aud"]})
        except jwt.ExpiredSignatureError:
            raise OidcError("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise OidcError(f"the token is not for this audience ({self.audience!r})") from None
        except jwt.PyJWTError as exc:
            raise OidcError(f"the token is not valid: {exc}") from None
        return identity_of(claims, self.ref_globs, self.policy)

    async def _key(self, issuer: str, kid: str) -> Any:
        keys = self._keys.get(issuer)
        fresh = keys is not None and time.monotonic() - keys.fetched_at < KEYS_TTL_S
        if keys is not None and fresh and kid in keys.by_kid:
            return keys.by_kid[kid]
        async with self._locks.setdefault(issuer, asyncio.Lock()):
            keys = self._keys.get(issuer)
            age = time.monotonic() - keys.fetched_at if keys else float("inf")
            if keys is None or age >= KEYS_TTL_S or (kid not in keys.by_kid and age >= REFETCH_MIN_INTERVAL_S):
                keys = self._keys[issuer] = await self._fetch(issuer)
        if kid not in keys.by_kid:
            raise OidcError(f"the issuer publishes no key {kid[:60]!r}")
        return keys.by_kid[kid]

    async def _fetch(self, issuer: str) -> _Keys:
        try:
            discovery = await self.http.get(f"{issuer}/.well-known/openid-configuration", timeout=10)
            discovery.raise_for_status()
            jwks_uri = discovery.json()["jwks_uri"]
            published = await self.http.get(jwks_uri, timeout=10)
            published.raise_for_status()
            entries = published.json()["keys"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise OidcError(f"the keys of {issuer} could not be read: {type(exc).__name__}") from None
        by_kid = {}
        for entry in entries:
            if entry.get("kty") == "RSA" and entry.get("kid"):
                by_kid[str(entry["kid"])] = jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(entry))
        return _Keys(by_kid, time.monotonic())
