"""Which forge an API request's `repo` is on, and the 422/503 answers when it cannot be used here."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.api.errors import ApiError
from app.api.submit import TestExecute, repo_forge, run_request
from app.api.submit import tests_job as execute_job
from jobs.settings import Settings, load_settings
from tests.conftest import APP_ID


@pytest.fixture
def both(tmp_path: Path, private_key_file: Path) -> Settings:
    return load_settings({"GITHUB_APP_ID": str(APP_ID), "GITHUB_PRIVATE_KEY_PATH": str(private_key_file),
                          "GITHUB_WEBHOOK_SECRET": "s", "GITLAB_TOKEN": "glpat-t", "GITLAB_URL": "https://git.example.com",
                          "AQE_DATA_DIR": str(tmp_path)}, dotenv_path=None)


@pytest.fixture
def gitlab_only(tmp_path: Path) -> Settings:
    return load_settings({"GITLAB_TOKEN": "glpat-t", "AQE_DATA_DIR": str(tmp_path)}, dotenv_path=None)


@pytest.fixture
def github_only(tmp_path: Path, private_key_file: Path) -> Settings:
    return load_settings({"GITHUB_APP_ID": str(APP_ID), "GITHUB_PRIVATE_KEY_PATH": str(private_key_file),
                          "GITHUB_WEBHOOK_SECRET": "s", "AQE_DATA_DIR": str(tmp_path)}, dotenv_path=None)


def refusal(repo: str, asked: str | None, settings: Settings) -> ApiError:
    with pytest.raises(ApiError) as caught:
        repo_forge(repo, asked, settings)
    return caught.value


def test_a_nested_path_is_gitlabs_and_owner_name_githubs_unless_asked(both: Settings) -> None:
    assert repo_forge("acme/platform/app", None, both) == "gitlab"
    assert repo_forge("acme/app", None, both) == "github"
    assert repo_forge("acme/app", "gitlab", both) == "gitlab"


def test_owner_name_is_gitlabs_when_only_gitlab_is_configured(gitlab_only: Settings) -> None:
    assert repo_forge("acme/app", None, gitlab_only) == "gitlab"
    assert "GitHub App is not configured" in refusal("acme/app", "github", gitlab_only).detail


def test_a_gitlab_project_without_a_gitlab_token_is_a_503_saying_so(github_only: Settings) -> None:
    error = refusal("acme/platform/app", None, github_only)
    assert (error.status, error.detail) == (503, "GitLab is not configured on this AQE: GITLAB_TOKEN is not set")


@pytest.mark.parametrize(("repo", "asked", "words"), [
    ("acme/platform/app", "github", "a GitHub repository is 'owner/name'"),
    ("app", None, "is neither 'owner/name'"),
    ("acme//app", None, "is neither"),
    ("acme/../app", None, "is neither"),
    ("acme/app name", None, "is neither"),
])
def test_paths_no_forge_can_hold_are_422s(both: Settings, repo: str, asked: str | None, words: str) -> None:
    error = refusal(repo, asked, both)
    assert error.status == 422 and words in error.detail


def test_a_gitlab_job_is_cloned_from_the_gitlab_instance(both: Settings) -> None:
    body = TestExecute(repo="acme/platform/app", ref="main")
    run = run_request(body, *execute_job(body), both, "test-execute")
    assert (run.forge, run.repo, run.clone_url) == ("gitlab", "acme/platform/app",
                                                    "https://git.example.com/acme/platform/app.git")


def test_a_url_cannot_name_a_forge(both: Settings) -> None:
    body = TestExecute(repo="https://gitlab.com/acme/app.git", ref="main", forge="gitlab")
    with pytest.raises(ApiError) as caught:
        run_request(body, *execute_job(body), both, "test-execute")
    assert caught.value.status == 422 and caught.value.detail.startswith("forge:")
