"""Any git server, by URL (`"repo": "https://gitlab.example.com/group/app.git"` in an API request).

Nothing is reported to the server: the job's results are on the job (status, stream, page, callback). Only
public repositories over http(s) — no credentials travel in a URL — and never into a denied network
(`AQE_DENY_NETWORKS`), checked when the request is made and again by the worker before it fetches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from jobs.checkout import Source
from jobs.model import JobRecord, RunRequest
from jobs.reporting.record import RecordReporter

if TYPE_CHECKING:
    from jobs.services import Services
    from jobs.settings import Settings

MAX_URL_LENGTH = 500


def git_url_error(url: str) -> str | None:
    """Why `url` cannot be cloned for a job, or None when it can."""
    if len(url) > MAX_URL_LENGTH:
        return f"longer than {MAX_URL_LENGTH} characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "must be an https:// (or http://) URL of a git repository"
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        return ("must not carry credentials, a query or a fragment (AQE clones public repositories by URL; "
                "private ones through the GitHub App)")
    if any(char.isspace() or ord(char) < 32 for char in url) or not parts.path.strip("/"):
        return "must name a repository path and contain no spaces"
    return None


def repo_name(url: str) -> str:
    """How the job names the repository: host and path, without scheme or `.git` (`gitlab.com/group/app`)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return f"{netloc}/{parts.path.strip('/').removesuffix('.git')}"


class GitForge:
    name = "git"
    web_paths = None

    def web_url(self, settings: Settings) -> str:
        return ""  # the job's repository is a URL of its own

    async def token(self, services: Services, request: RunRequest) -> str:
        from jobs import netpolicy

        if why := await netpolicy.refusal(request.clone_url, services.settings.denied_networks):
            raise PermissionError(f"the repository URL {why}")
        return ""  # public repositories: no credential

    async def reporter(self, services: Services, record: JobRecord, token: str) -> RecordReporter:
        return RecordReporter()  # a URL names no forge to report to

    def git_auth(self, token: str) -> str:
        return ""

    def source(self, request: RunRequest) -> Source:
        refs = [f"refs/heads/{ref}" for ref in (request.head_ref, request.base_ref) if ref]
        return Source(request.repo, request.clone_url, request.head_sha, tuple(refs))


FORGE = GitForge()
