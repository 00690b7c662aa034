"""Repositories by URL: what URLs are accepted, how jobs name them, and that a denied network is refused."""

from __future__ import annotations

import pytest

from jobs.forges.git import FORGE, git_url_error, repo_name
from jobs.model import RunRequest


@pytest.mark.parametrize("url", ["https://gitlab.com/group/sub/app.git", "http://10.0.0.7:8080/app",
                                 "https://git.example.com/acme/widgets"])
def test_public_http_urls_are_accepted(url: str) -> None:
    assert git_url_error(url) is None


@pytest.mark.parametrize(("url", "why"), [
    ("file:///etc/passwd", "https://"), ("ssh://git@host/app.git", "https://"), ("ext::sh -c id", "https://"),
    ("https://user:token@gitlab.com/app.git", "credentials"), ("https://gitlab.com/app.git?private_token=x", "query"),
    ("https://gitlab.com/", "repository path"), ("https://gitlab.com/a b.git", "spaces"),
    ("https://gitlab.com:99999/app.git", "not a valid URL"), ("https://x/" + "a" * 600, "longer than"),
])
def test_other_urls_are_refused_with_the_reason(url: str, why: str) -> None:
    assert why in (git_url_error(url) or "")


def test_jobs_name_the_repository_by_host_and_path() -> None:
    assert repo_name("https://gitlab.com/group/sub/app.git") == "gitlab.com/group/sub/app"
    assert repo_name("http://10.0.0.7:8080/app/") == "10.0.0.7:8080/app"


async def test_the_worker_refuses_a_url_in_a_denied_network(make_settings, redis) -> None:  # type: ignore[no-untyped-def]
    from jobs.services import Services

    services = Services.create(make_settings(AQE_DENY_NETWORKS="127.0.0.0/8"), redis)
    request = RunRequest(forge="git", repo="127.0.0.1/app", clone_url="http://127.0.0.1:9/app.git", head_sha="",
                         head_ref="main", trigger="api.test-execute", agents=["tests"])
    with pytest.raises(PermissionError, match="resolves to 127.0.0.1"):
        await FORGE.token(services, request)
    source = FORGE.source(request)
    assert (source.clone_url, source.refs, FORGE.git_auth("")) == ("http://127.0.0.1:9/app.git", ("refs/heads/main",), "")
