"""GitHub: webhook verification and parsing, App auth, the API client and the reporter."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from jobs import forge_metrics
from jobs.checkout import Source
from jobs.errors import NotConfigured
from jobs.forges.base import WebPaths
from jobs.forges.github.auth import git_auth_header
from jobs.forges.github.client import GitHubClient
from jobs.forges.github.reporter import GitHubReporter
from jobs.links import job_page_url
from jobs.model import JobRecord, RunRequest

if TYPE_CHECKING:
    from jobs.services import Services
    from jobs.settings import Settings  # services imports the GitHub auth module: no cycle at run time


log = logging.getLogger("aqe.github")


def web_url_of(api_url: str) -> str:
    """Where repositories are, for a GitHub API base URL (github.com, Enterprise, a test fake)."""
    if api_url.rstrip("/") == "https://api.github.com":
        return "https://github.com"
    return api_url.rstrip("/").removesuffix("/api/v3")


class GitHubForge:
    name = "github"
    web_paths = WebPaths("blob", "pull", "commit", "pull request #{}", "-L{}")

    def web_url(self, settings: Settings) -> str:
        return web_url_of(settings.github_api_url)

    def client(self, services: Services, token: str | None = None) -> GitHubClient:
        async def count(method: str, status: int, headers: Mapping[str, str]) -> None:
            try:
                await forge_metrics.record_call(services.redis, self.name, method, status, headers)
            except Exception as exc:  # metrics never fail a call
                log.debug("could not count a GitHub call: %s", exc)

        return GitHubClient(services.http, base_url=services.settings.github_api_url, oauth_token=token,
                            on_response=count)

    async def token(self, services: Services, request: RunRequest) -> str:
        if services.github_tokens is None:
            raise NotConfigured("GitHub App is not configured: " + ", ".join(services.settings.missing))
        gh = self.client(services)
        if request.installation_id is None:
            request.installation_id = await services.github_tokens.installation_for(gh, request.repo)
        return await services.github_tokens.token(gh, request.installation_id)

    async def reporter(self, services: Services, record: JobRecord, token: str) -> GitHubReporter:
        settings = services.settings
        job_url = job_page_url(settings.public_url, settings.jwt_secret, record.id)
        return GitHubReporter(self.client(services, token), token, services.redis, repo=record.request.repo,
                              head_sha=record.request.head_sha, job_id=record.id, job_url=job_url,
                              app_slug=settings.github.app_slug if settings.github else "aqe",
                              refs=record.report_refs, server_url=server_url(record.request))

    def git_auth(self, token: str) -> str:
        return git_auth_header(token)

    def source(self, request: RunRequest) -> Source:
        refs = []
        if request.pr_number is not None:
            refs.append(f"refs/pull/{request.pr_number}/head")  # works for forks: the base repo has it
        elif request.head_ref:
            refs.append(f"refs/heads/{request.head_ref}")
        if request.base_ref:
            refs.append(f"refs/heads/{request.base_ref}")
        return Source(request.repo, request.clone_url, request.head_sha, tuple(refs))


FORGE = GitHubForge()


def server_url(request: RunRequest) -> str:
    """GitHub's web address for the repository's server (github.com, or an Enterprise host)."""
    suffix = f"/{request.repo}.git"
    url = request.clone_url
    return url[: -len(suffix)] if url.endswith(suffix) else "https://github.com"
