"""Thin gidgethub-over-httpx adapter that retries what GitHub asks to be retried."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping

import httpx
from gidgethub import BadRequest, GitHubBroken, HTTPException
from gidgethub.httpx import GitHubAPI

log = logging.getLogger("aqe.github")

API_VERSION = "2022-11-28"
USER_AGENT = "aqe-bot"
MAX_ATTEMPTS = 6
BASE_DELAY_S = 0.5
MAX_DELAY_S = 60.0


def retry_delay(status: int, headers: Mapping[str, str], body_hint: str, attempt: int) -> float | None:
    """Seconds to wait before retrying a failed call, or None when it must not be retried.

    Retried: 5xx, 429, and 403 secondary rate limits (GitHub says so with Retry-After or in the message).
    Retry-After wins; otherwise exponential backoff with full jitter.
    """
    secondary = status == 403 and ("retry-after" in headers or "secondary rate limit" in body_hint.lower())
    if not (status >= 500 or status == 429 or secondary) or attempt >= MAX_ATTEMPTS:
        return None
    retry_after = headers.get("retry-after", "")
    if retry_after.isdigit():
        return min(float(retry_after), MAX_DELAY_S)
    return random.uniform(0, min(MAX_DELAY_S, BASE_DELAY_S * 2 ** (attempt - 1)))


OnResponse = Callable[[str, int, Mapping[str, str]], Awaitable[None]]  # (method, status, headers): for metrics


class GitHubClient(GitHubAPI):
    """`GitHubClient(http, base_url=settings.github_api_url)`; every call goes to that base URL."""

    def __init__(self, client: httpx.AsyncClient, *, base_url: str, oauth_token: str | None = None,
                 on_response: OnResponse | None = None) -> None:
        super().__init__(client, USER_AGENT, base_url=base_url, oauth_token=oauth_token)
        self.on_response = on_response

    async def _request(self, method: str, url: str, headers: Mapping[str, str], body: bytes = b"") -> tuple[int, Mapping[str, str], bytes]:
        headers = {**headers, "x-github-api-version": API_VERSION}
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                answer = await super()._request(method, url, headers, body)
                if self.on_response is not None:
                    await self.on_response(method, answer[0], answer[1])
                return answer
            except httpx.TransportError as exc:
                if attempt == MAX_ATTEMPTS:
                    raise
                delay = random.uniform(0, BASE_DELAY_S * 2 ** (attempt - 1))
                log.warning("github %s %s: %s; retry %d in %.1fs", method, _path(url), type(exc).__name__, attempt, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def handle_rate_limit_error(self, *, method: str, url: str, exception: HTTPException, attempt: int) -> bool:
        hint = " ".join(str(a) for a in exception.args)
        headers = getattr(exception, "headers", None) or {}
        delay = retry_delay(int(exception.status_code), headers, hint, attempt)
        if delay is None:
            return False
        log.warning("github %s %s answered %d; retry %d in %.1fs", method, _path(url), exception.status_code, attempt, delay)
        await asyncio.sleep(delay)
        return True


def _path(url: str) -> str:
    return httpx.URL(url).path  # never log query strings


__all__ = ["GitHubClient", "retry_delay", "BadRequest", "GitHubBroken", "HTTPException"]
