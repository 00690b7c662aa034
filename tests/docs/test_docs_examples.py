"""Every example in docs/ that needs no running server is run here; the others run in tests/e2e."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.repo_config import ConfigError, RepoConfig, parse_config
from jobs.settings import load_settings
from tests.docs.examples import DOCS, examples


@pytest.mark.parametrize("code", [c for c, _ in examples("configuration.md", "config")])
def test_configuration_examples_are_valid(code: str) -> None:
    assert isinstance(parse_config(code), RepoConfig)


def test_full_example_shows_the_defaults() -> None:
    full = examples("configuration.md", "config")[0][0]
    assert parse_config(full) == RepoConfig()


def test_invalid_example_gives_the_documented_error() -> None:
    [(code, note)] = examples("configuration.md", "invalid-config")
    with pytest.raises(ConfigError) as caught:
        parse_config(code)
    assert note in str(caught.value) and "line 2" in str(caught.value)


def test_dotenv_example_loads(tmp_path: Path, private_key_file: Path) -> None:
    [(code, _)] = examples("install.md", "dotenv")
    text = code.replace("/etc/aqe/github-app.pem", str(private_key_file)).replace("/var/lib/aqe", str(tmp_path))
    (tmp_path / ".env").write_text(text + "\n")
    settings = load_settings({}, dotenv_path=tmp_path / ".env")
    assert settings.github is not None and settings.github.app_id == 123456
    assert settings.public_url == "https://aqe.example.com" and settings.data_dir == tmp_path


def test_procfile_in_the_docs_is_the_real_one() -> None:
    procfile = (DOCS.parent / "Procfile").read_text().strip()
    assert f"```\n{procfile}\n```" in (DOCS / "install.md").read_text()


def test_every_env_variable_of_the_contract_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text()
    for name in ("REDIS_URL", "GITHUB_APP_ID", "GITHUB_PRIVATE_KEY", "GITHUB_PRIVATE_KEY_PATH", "GITHUB_WEBHOOK_SECRET",
                 "GITHUB_API_URL", "GITLAB_URL", "GITLAB_TOKEN", "GITLAB_WEBHOOK_SECRET", "AQE_PUBLIC_URL",
                 "AQE_DATA_DIR", "AQE_JWT_SECRET", "AQE_RATE_LIMIT"):
        assert f"`{name}`" in text, name


def test_callback_verification_example_accepts_aqe_and_refuses_others() -> None:
    [(code, _)] = examples("api.md", "verify-callback")
    namespace: dict[str, object] = {}
    exec(code, namespace)  # noqa: S102 - the documented snippet itself
    is_from_aqe = namespace["is_from_aqe"]
    from jobs.callbacks import signature

    body = b'{"job_id": "x"}'
    assert is_from_aqe(body, signature("s3cret", body), "s3cret") is True  # type: ignore[operator]
    assert is_from_aqe(body + b" ", signature("s3cret", body), "s3cret") is False  # type: ignore[operator]
    assert is_from_aqe(body, signature("other", body), "s3cret") is False  # type: ignore[operator]


def test_the_oidc_policy_example_reads_as_it_says(tmp_path: Path) -> None:
    from jobs.oidc import OidcError, identity_of

    [(code, _)] = examples("api.md", "oidc-policy")
    policy = load_settings({"AQE_DATA_DIR": str(tmp_path), "AQE_OIDC_POLICY": code}, dotenv_path=None).oidc_policy

    def claims(repository: str, ref: str, **more: str) -> dict[str, str]:
        return {"iss": "https://token.actions.githubusercontent.com", "repository": repository, "ref": ref, **more}

    release = identity_of(claims("acme/release", "refs/tags/v2.0.0", sha="d" * 40), (), policy)
    assert (release.runs, release.commit) == (("*",), "d" * 40)
    main = identity_of(claims("acme/widgets", "refs/heads/main"), (), policy)
    assert main.runs == ("security/scan", "quality/gate") and main.scopes == ("jobs:read", "jobs:write")
    assert identity_of(claims("acme/widgets", "refs/pull/3/merge"), (), policy).scopes == ("jobs:read",)
    with pytest.raises(OidcError, match="no AQE_OIDC_POLICY rule"):
        identity_of(claims("acme/widgets", "refs/heads/feature"), (), policy)
