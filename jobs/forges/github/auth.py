"""GitHub App authentication: the App JWT and installation tokens cached until 5 minutes before expiry."""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass, field
from datetime import datetime

from gidgethub import apps

from jobs.forges.github.client import GitHubClient

REFRESH_MARGIN_S = 5 * 60
JWT_LIFETIME_S = 600  # gidgethub backdates iat by 60 s, so exp is now + 9 min: safe against a fast clock


@dataclass
class _Token:
    value: str
    expires_at: float


@dataclass
class InstallationTokens:
    """One cache per worker process, shared by its concurrent jobs (one refresh per installation at a time)."""

    app_id: int
    private_key: str = field(repr=False)
    _tokens: dict[int, _Token] = field(default_factory=dict, repr=False)
    _locks: dict[int, asyncio.Lock] = field(default_factory=dict, repr=False)

    def app_jwt(self) -> str:
        return apps.get_jwt(app_id=str(self.app_id), private_key=self.private_key, expiration=JWT_LIFETIME_S)

    async def token(self, gh: GitHubClient, installation_id: int) -> str:
        cached = self._tokens.get(installation_id)
        if cached and cached.expires_at - time.time() > REFRESH_MARGIN_S:
            return cached.value
        async with self._locks.setdefault(installation_id, asyncio.Lock()):
            cached = self._tokens.get(installation_id)
            if cached and cached.expires_at - time.time() > REFRESH_MARGIN_S:
                return cached.value
            response = await gh.post(f"/app/installations/{installation_id}/access_tokens", data=b"", jwt=self.app_jwt())
            expires = datetime.fromisoformat(response["expires_at"].replace("Z", "+00:00")).timestamp()
            self._tokens[installation_id] = _Token(response["token"], expires)
            return response["token"]

    async def installation_for(self, gh: GitHubClient, repo: str) -> int:
        """The installation id for a repository (used when a request does not carry one)."""
        response = await gh.getitem(f"/repos/{repo}/installation", jwt=self.app_jwt())
        return int(response["id"])


def git_auth_header(token: str) -> str:
    """The `http.extraHeader` value git sends; the token never goes into a URL or .git/config."""
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return f"Authorization: Basic {basic}"
