"""Settings: read once, validated with messages that name the variable."""

from __future__ import annotations

import json

from pathlib import Path

import pytest

from jobs.settings import SettingsError, load_settings


def test_defaults_without_github(tmp_path: Path) -> None:
    settings = load_settings({"AQE_DATA_DIR": str(tmp_path)}, dotenv_path=None)
    assert settings.github is None and settings.redis_url is None
    assert settings.missing == ("GITHUB_APP_ID", "GITHUB_PRIVATE_KEY or GITHUB_PRIVATE_KEY_PATH", "GITHUB_WEBHOOK_SECRET")
    assert settings.github_api_url == "https://api.github.com" and settings.rate_limit == "100/minute"
    assert (tmp_path / "jwt_secret").stat().st_mode & 0o777 == 0o600


def test_full_github_settings(make_settings) -> None:
    settings = make_settings(GITHUB_WEBHOOK_SECRET="old, new", GITHUB_API_URL="https://ghe.example.com/api/v3/")
    assert settings.github is not None and settings.github.app_id == 424242
    assert settings.webhook_secrets == ("old", "new")
    assert settings.github_api_url == "https://ghe.example.com/api/v3"
    assert settings.missing == ()


def test_private_key_inline_with_escaped_newlines(tmp_path: Path, rsa_key_pair) -> None:
    pem = rsa_key_pair[0].decode().replace("\n", "\\n")
    settings = load_settings({"GITHUB_APP_ID": "1", "GITHUB_PRIVATE_KEY": pem, "GITHUB_WEBHOOK_SECRET": "s",
                              "AQE_DATA_DIR": str(tmp_path)}, dotenv_path=None)
    assert settings.github is not None and settings.github.private_key.startswith("-----BEGIN RSA PRIVATE KEY-----\n")


def test_every_problem_is_named(tmp_path: Path) -> None:
    bad_key = tmp_path / "key.pem"
    bad_key.write_text("not a key")
    with pytest.raises(SettingsError) as caught:
        load_settings({"GITHUB_APP_ID": "abc", "GITHUB_PRIVATE_KEY_PATH": str(bad_key), "AQE_RATE_LIMIT": "lots",
                       "GITHUB_API_URL": "ftp://x", "REDIS_URL": "http://x", "AQE_DATA_DIR": str(tmp_path)},
                      dotenv_path=None)
    problems = "\n".join(caught.value.problems)
    assert "GITHUB_APP_ID: 'abc' is not a positive integer" in problems
    assert "GITHUB_PRIVATE_KEY_PATH: file is not a PEM RSA private key" in problems
    assert "AQE_RATE_LIMIT: 'lots'" in problems
    assert "GITHUB_API_URL: 'ftp://x' is not an http(s) URL" in problems
    assert "REDIS_URL: scheme must be" in problems


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="GITHUB_PRIVATE_KEY_PATH: cannot read"):
        load_settings({"GITHUB_PRIVATE_KEY_PATH": str(tmp_path / "nope.pem"), "AQE_DATA_DIR": str(tmp_path)},
                      dotenv_path=None)


def test_dotenv_is_read_and_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("AQE_PUBLIC_URL=https://from-dotenv.example\nAQE_RATE_LIMIT=5/second\n")
    settings = load_settings({"AQE_RATE_LIMIT": "7/minute", "AQE_DATA_DIR": str(tmp_path)}, dotenv_path=dotenv)
    assert settings.public_url == "https://from-dotenv.example" and settings.rate_limit == "7/minute"


def test_secrets_are_not_in_repr(make_settings) -> None:
    settings = make_settings(AQE_JWT_SECRET="topsecret-jwt")
    assert "topsecret-jwt" not in repr(settings) and "test-webhook-secret" not in repr(settings)
    assert "PRIVATE KEY" not in repr(settings)


def test_oidc_settings(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings({"AQE_DATA_DIR": str(tmp_path), "AQE_OIDC_ISSUERS":
                              "https://token.actions.githubusercontent.com, https://gitlab.com/",
                              "AQE_OIDC_REFS": "refs/heads/main,refs/tags/*"}, dotenv_path=None)
    assert settings.oidc_issuers == ("https://token.actions.githubusercontent.com", "https://gitlab.com")
    assert settings.oidc_audience == "aqe" and settings.oidc_refs == ("refs/heads/main", "refs/tags/*")
    with pytest.raises(SettingsError, match="AQE_OIDC_ISSUERS"):
        load_settings({"AQE_DATA_DIR": str(tmp_path), "AQE_OIDC_ISSUERS": "gitlab.com"}, dotenv_path=None)


@pytest.mark.parametrize(("policy", "said"), [
    ('{"repository": "acme/*"}', "a JSON list of rules"),
    ("[]", "an empty list would refuse every token"),
    ('[{"ref": "refs/heads/main"}]', "missing required field `repository`"),
    ('[{"repository": "acme/*", "branch": "main"}]', "unknown field `branch`"),
    ('[{"repository": "acme/*"}, {"repository": "x/*", "scopes": ["admin"]}]', "rule 2: scope 'admin'"),
    ('[{"repository": "acme/*", "run": ["deploy"]}]', "rule 1: run 'deploy' is not one of *, test/execute"),
])
def test_a_bad_oidc_policy_is_named(tmp_path: Path, policy: str, said: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"AQE_DATA_DIR": str(tmp_path), "AQE_OIDC_POLICY": policy}, dotenv_path=None)
    assert "AQE_OIDC_POLICY: " in str(caught.value) and said in str(caught.value)


def test_an_oidc_policy_is_read_in_order(tmp_path: Path) -> None:
    settings = load_settings({"AQE_DATA_DIR": str(tmp_path), "AQE_OIDC_POLICY": json.dumps([
        {"repository": "acme/*", "ref": "refs/heads/main", "run": ["security/scan"]},
        {"repository": "*", "scopes": ["jobs:read"], "same_commit": True}])}, dotenv_path=None)
    first, second = settings.oidc_policy
    assert (first.run, first.scopes, first.same_commit) == (("security/scan",), ("jobs:read", "jobs:write"), False)
    assert (second.ref, second.scopes, second.same_commit) == ("*", ("jobs:read",), True)


def test_gitlab_settings(tmp_path: Path) -> None:
    settings = load_settings({"AQE_DATA_DIR": str(tmp_path), "GITLAB_URL": "https://git.example.com/gitlab/api/v4/",
                              "GITLAB_TOKEN": " glpat-x ", "GITLAB_WEBHOOK_SECRET": "old, new",
                              "GITLAB_WEBHOOK_SIGNING_TOKEN": "whsec_c2VjcmV0"}, dotenv_path=None)
    gitlab = settings.gitlab
    assert (gitlab.url, gitlab.api_url) == ("https://git.example.com/gitlab", "https://git.example.com/gitlab/api/v4")
    assert (gitlab.token, gitlab.webhook_secrets, gitlab.signing_tokens) == ("glpat-x", ("old", "new"), ("whsec_c2VjcmV0",))
    assert "glpat-x" not in repr(settings) and "old" not in repr(settings)
    default = load_settings({"AQE_DATA_DIR": str(tmp_path)}, dotenv_path=None).gitlab
    assert (default.url, default.token, default.webhook_secrets) == ("https://gitlab.com", None, ())


def test_gitlab_problems_are_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"AQE_DATA_DIR": str(tmp_path), "GITLAB_URL": "gitlab.example.com",
                       "GITLAB_WEBHOOK_SIGNING_TOKEN": "plain"}, dotenv_path=None)
    assert any(p.startswith("GITLAB_URL:") for p in caught.value.problems)
    assert any(p.startswith("GITLAB_WEBHOOK_SIGNING_TOKEN:") for p in caught.value.problems)
