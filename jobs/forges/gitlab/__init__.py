"""GitLab (gitlab.com or self-managed): webhook verification and parsing, the API client and the reporter.

One access token (`GITLAB_TOKEN`: a project, group or bot user's token with the `api` scope and at least the
Developer role) clones the code, posts commit statuses and writes the merge request note.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from jobs import forge_metrics
from jobs.checkout import Source
from jobs.errors import NotConfigured
from jobs.forges.base import WebPaths
from jobs.forges.gitlab.client import GitLabClient
from jobs.forges.gitlab.reporter import GitLabReporter
from jobs.links import job_page_url
from jobs.model import JobRecord, RunRequest

if TYPE_CHECKING:
    from jobs.services import Services
    from jobs.settings import Settings

log = logging.getLogger("aqe.gitlab")


def git_auth_header(token: str) -> str:
    """The `http.extraHeader` git sends: HTTP Basic with the token as password (`oauth2` works as the user name for
    every kind of GitLab token); the token never goes into a URL or .git/config."""
    return "Authorization: Basic " + base64.b64encode(f"oauth2:{token}".encode()).decode("ascii")


class GitLabForge:
    name = "gitlab"
    web_paths = WebPaths("-/blob", "-/merge_requests", "-/commit", "merge request !{}", "-{}")

    def web_url(self, settings: Settings) -> str:
        return settings.gitlab.url

    def client(self, services: Services, token: str) -> GitLabClient:
        async def count(method: str, status: int, headers: Mapping[str, str]) -> None:
            try:
                await forge_metrics.record_call(services.redis, self.name, method, status, headers)
            except Exception as exc:  # metrics never fail a call
                log.debug("could not count a GitLab call: %s", exc)

        return GitLabClient(services.http, api_url=services.settings.gitlab.api_url, token=token, on_response=count)

    async def token(self, services: Services, request: RunRequest) -> str:
        token = services.settings.gitlab.token
        if token is None:
            raise NotConfigured("GitLab is not configured: GITLAB_TOKEN is not set")
        return token

    async def reporter(self, services: Services, record: JobRecord, token: str) -> GitLabReporter:
        settings, request = services.settings, record.request
        return GitLabReporter(self.client(services, token), services.redis, repo=request.repo,
                              head_sha=request.head_sha, head_ref=request.head_ref, fork=request.fork,
                              job_id=record.id, job_url=job_page_url(settings.public_url, settings.jwt_secret, record.id),
                              public_url=settings.public_url, refs=record.report_refs, mr_iid=request.pr_number)

    def git_auth(self, token: str) -> str:
        return git_auth_header(token)

    def source(self, request: RunRequest) -> Source:
        refs = []
        if request.pr_number is not None:
            refs.append(f"refs/merge-requests/{request.pr_number}/head")  # a fork's too: the target project has it
        elif request.head_ref:
            refs.append(f"refs/heads/{request.head_ref}")
        if request.base_ref:
            refs.append(f"refs/heads/{request.base_ref}")
        return Source(request.repo, request.clone_url, request.head_sha, tuple(refs))


FORGE = GitLabForge()
