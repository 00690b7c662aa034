"""Thin httpx adapter for GitLab's REST API v4: the bot's token in `PRIVATE-TOKEN`, JSON in and out, retries
of what GitLab asks to be retried (5xx, 429 with `Retry-After`), and `x-next-page` pagination."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote

import httpx

log = logging.getLogger("aqe.gitlab")

USER_AGENT = "aqe-bot"
MAX_ATTEMPTS = 5
BASE_DELAY_S = 0.5
MAX_DELAY_S = 60.0
PER_PAGE = 100

OnResponse = Callable[[str, int, Mapping[str, str]], Awaitable[None]]  # (method, status, headers): for metrics


class GitLabError(Exception):
    """GitLab answered an error; `message` is GitLab's own words (its `message` or `error` field)."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(f"GitLab answered {status_code}: {message}")
        self.status_code, self.message = status_code, message


def project_id(path: str) -> str:
    """A project path as GitLab wants it in a URL: `group/sub/app` -> `group%2Fsub%2Fapp`."""
    return quote(path, safe="")


def error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or body)[:500]
    return str(body)[:500]


def retry_delay(status: int, headers: Mapping[str, str], attempt: int) -> float | None:
    """Seconds to wait before retrying, or None when the call must not be retried."""
    if not (status >= 500 or status == 429) or attempt >= MAX_ATTEMPTS:
        return None
    retry_after = headers.get("retry-after", "")
    if retry_after.isdigit():
        return min(float(retry_after), MAX_DELAY_S)
    return random.uniform(0, min(MAX_DELAY_S, BASE_DELAY_S * 2 ** (attempt - 1)))


class GitLabClient:
    def __init__(self, http: httpx.AsyncClient, *, api_url: str, token: str,
                 on_response: OnResponse | None = None) -> None:
        self.http, self.api_url, self.on_response = http, api_url.rstrip("/"), on_response
        self._headers = {"PRIVATE-TOKEN": token, "User-Agent": USER_AGENT, "Accept": "application/json"}

    async def request(self, method: str, path: str, *, json: Mapping[str, Any] | None = None,
                      params: Mapping[str, Any] | None = None) -> httpx.Response:
        """The response of a successful call (2xx); GitLabError for any other answer once retries are spent."""
        url = f"{self.api_url}{path}"
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                response = await self.http.request(method, url, json=json, params=params, headers=self._headers)
            except httpx.TransportError as exc:
                if attempt == MAX_ATTEMPTS:
                    raise
                delay = random.uniform(0, BASE_DELAY_S * 2 ** (attempt - 1))
                log.warning("gitlab %s %s: %s; retry %d in %.1fs", method, path.split("?")[0], type(exc).__name__,
                            attempt, delay)
                await asyncio.sleep(delay)
                continue
            if self.on_response is not None:
                await self.on_response(method, response.status_code, response.headers)
            if response.is_success:
                return response
            delay = retry_delay(response.status_code, response.headers, attempt)
            if delay is None:
                raise GitLabError(response.status_code, error_message(response))
            log.warning("gitlab %s %s answered %d; retry %d in %.1fs", method, path.split("?")[0],
                        response.status_code, attempt, delay)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def get(self, path: str, **params: Any) -> Any:
        return (await self.request("GET", path, params=params or None)).json()

    async def post(self, path: str, data: Mapping[str, Any]) -> Any:
        return (await self.request("POST", path, json=data)).json()

    async def put(self, path: str, data: Mapping[str, Any]) -> Any:
        return (await self.request("PUT", path, json=data)).json()

    async def pages(self, path: str, **params: Any) -> AsyncIterator[Any]:
        """Every item of a listing, page after page, as long as `x-next-page` names one."""
        page: str | None = "1"
        while page:
            response = await self.request("GET", path, params={**params, "per_page": PER_PAGE, "page": page})
            items = response.json()
            for item in items:
                yield item
            page = response.headers.get("x-next-page") or None
            if len(items) < PER_PAGE:
                break
