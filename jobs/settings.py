"""Settings, read once at start-up from the environment and `.env`, validated, then passed in.

Apart from the `aqe` command line (its own supervision flag), nothing else reads `os.environ`.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from dotenv import dotenv_values

from jobs import netpolicy
from jobs.oidc import OidcRule, parse_policy

RATE_LIMIT_RE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)\s*$")


class SettingsError(ValueError):
    """One or more settings are invalid; each message names the variable."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid settings:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class GitHubSettings:
    """The GitHub App's identity; present only when it is fully configured."""

    app_id: int
    private_key: str = field(repr=False)
    app_slug: str = "aqe"


@dataclass(frozen=True)
class GitLabSettings:
    """One GitLab instance (gitlab.com or self-managed): its address and the bot's access token."""

    url: str  # e.g. https://gitlab.com (or https://host/prefix when GitLab lives under a path)
    token: str | None = field(repr=False, default=None)  # `api` scope, Developer role: clone, statuses, notes
    webhook_secrets: tuple[str, ...] = field(repr=False, default=())  # `X-Gitlab-Token` values (rotation: several)
    signing_tokens: tuple[str, ...] = field(repr=False, default=())  # `whsec_…` signing tokens (Standard Webhooks)

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v4"


@dataclass(frozen=True)
class Settings:
    redis_url: str | None
    public_url: str
    data_dir: Path
    jwt_secret: str = field(repr=False)
    rate_limit: str
    port: int
    github: GitHubSettings | None
    github_webhook_secrets: tuple[str, ...] = field(repr=False, default=())
    github_api_url: str = "https://api.github.com"
    missing: tuple[str, ...] = ()  # what is not configured, e.g. ("GITHUB_APP_ID",)
    log_level: str = "INFO"
    worker_poll_delay: float = 0.05
    osv_url: str = "https://api.osv.dev"  # the security agent's advisory source (OSV API)
    llm_url: str | None = None  # test generation's optional OpenAI-compatible backend
    llm_model: str | None = None
    llm_api_key: str | None = field(repr=False, default=None)
    callback_secret: str = field(repr=False, default="")  # signs completion callbacks (`AQE_CALLBACK_SECRET`)
    oidc_issuers: tuple[str, ...] = ()  # CI platforms whose ID tokens are accepted (`AQE_OIDC_ISSUERS`)
    oidc_audience: str = "aqe"
    oidc_refs: tuple[str, ...] = ()  # globs of the refs tokens may come from; empty: any
    oidc_policy: tuple[OidcRule, ...] = ()  # what tokens may do, by repository and ref (`AQE_OIDC_POLICY`)
    denied_networks: tuple[netpolicy.Network, ...] = ()  # `AQE_DENY_NETWORKS`: never load-test or callback targets
    cors_origins: tuple[str, ...] = ()  # browsers of these origins may call the API (`AQE_CORS_ORIGINS`); none: off
    gitlab: GitLabSettings = field(default_factory=lambda: GitLabSettings("https://gitlab.com"))
    web_processes: int = 1  # `AQE_WEB_PROCESSES`: web processes `aqe web` / `aqe run` start on the port

    @property
    def webhook_secrets(self) -> tuple[str, ...]:
        return self.github_webhook_secrets


def _merged_environment(environ: Mapping[str, str], dotenv_path: Path | None) -> dict[str, str]:
    merged: dict[str, str] = {}
    if dotenv_path is not None and dotenv_path.is_file():
        merged.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    merged.update(environ)  # real environment variables win over .env
    return merged


def _check_url(name: str, value: str, problems: list[str]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        problems.append(f"{name}: {value!r} is not an http(s) URL")
    return value.rstrip("/")


def _private_key_text(env: Mapping[str, str], problems: list[str]) -> str | None:
    if env.get("GITHUB_PRIVATE_KEY"):
        name, text = "GITHUB_PRIVATE_KEY", env["GITHUB_PRIVATE_KEY"].replace("\\n", "\n")
    elif env.get("GITHUB_PRIVATE_KEY_PATH"):
        name, path = "GITHUB_PRIVATE_KEY_PATH", Path(env["GITHUB_PRIVATE_KEY_PATH"]).expanduser()
        try:
            text = path.read_text()
        except OSError as exc:
            problems.append(f"{name}: cannot read {str(path)!r}: {exc.strerror}")
            return None
    else:
        return None
    try:
        key = load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError):
        where = "file is" if name.endswith("_PATH") else "value is"
        problems.append(f"{name}: {where} not a PEM RSA private key")
        return None
    if not isinstance(key, RSAPrivateKey):
        problems.append(f"{name}: the key is not an RSA key (GitHub App keys are RSA)")
        return None
    return text


def _app_id(env: Mapping[str, str], problems: list[str]) -> int | None:
    raw = env.get("GITHUB_APP_ID", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) <= 0:
        problems.append(f"GITHUB_APP_ID: {raw!r} is not a positive integer (see your App's settings page)")
        return None
    return int(raw)


def _github(env: Mapping[str, str], secrets_: tuple[str, ...], problems: list[str]) -> tuple[GitHubSettings | None, list[str]]:
    app_id = _app_id(env, problems)
    key = _private_key_text(env, problems)
    missing = []
    if "GITHUB_APP_ID" not in env:
        missing.append("GITHUB_APP_ID")
    if not (env.get("GITHUB_PRIVATE_KEY") or env.get("GITHUB_PRIVATE_KEY_PATH")):
        missing.append("GITHUB_PRIVATE_KEY or GITHUB_PRIVATE_KEY_PATH")
    if not secrets_:
        missing.append("GITHUB_WEBHOOK_SECRET")
    if app_id is None or key is None or not secrets_:
        return None, missing
    slug = env.get("GITHUB_APP_SLUG", "aqe").strip() or "aqe"
    return GitHubSettings(app_id, key, slug), missing


def _listed(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(value.strip() for value in env.get(name, "").split(",") if value.strip())


def _gitlab(env: Mapping[str, str], problems: list[str]) -> GitLabSettings:
    url = _check_url("GITLAB_URL", env.get("GITLAB_URL", "https://gitlab.com"), problems).removesuffix("/api/v4")
    signing = _listed(env, "GITLAB_WEBHOOK_SIGNING_TOKEN")
    for token in signing:
        if not token.startswith("whsec_"):
            problems.append("GITLAB_WEBHOOK_SIGNING_TOKEN: a signing token starts with 'whsec_' (copy it from the "
                            "webhook's settings)")
    return GitLabSettings(url, env.get("GITLAB_TOKEN", "").strip() or None, _listed(env, "GITLAB_WEBHOOK_SECRET"),
                          signing)


def _jwt_secret(env: Mapping[str, str], data_dir: Path, name: str = "AQE_JWT_SECRET") -> str:
    """`name` (AQE_JWT_SECRET), else one generated once and kept (0600) in the data directory."""
    if env.get(name):
        return env[name]
    path = data_dir / name.removeprefix("AQE_").lower()
    if path.is_file():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def _port(env: Mapping[str, str], problems: list[str]) -> int:
    raw = env.get("PORT", "8000")
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        problems.append(f"PORT: {raw!r} is not a TCP port number")
        return 8000
    return int(raw)


def load_settings(environ: Mapping[str, str] | None = None, dotenv_path: Path | None = Path(".env")) -> Settings:
    """Read and validate every setting; raise SettingsError listing every problem at once."""
    env = _merged_environment(os.environ if environ is None else environ, dotenv_path)
    problems: list[str] = []
    api_url = _check_url("GITHUB_API_URL", env.get("GITHUB_API_URL", "https://api.github.com"), problems)
    public_url = _check_url("AQE_PUBLIC_URL", env.get("AQE_PUBLIC_URL", "http://localhost:8000"), problems)
    secrets_ = _listed(env, "GITHUB_WEBHOOK_SECRET")
    gitlab = _gitlab(env, problems)
    github, missing = _github(env, secrets_, problems)
    rate_limit = env.get("AQE_RATE_LIMIT", "100/minute")
    if not RATE_LIMIT_RE.match(rate_limit):
        problems.append(f"AQE_RATE_LIMIT: {rate_limit!r} is not like '100/minute' (per second|minute|hour|day)")
    redis_url = env.get("REDIS_URL") or None
    if redis_url and urlsplit(redis_url).scheme not in ("redis", "rediss", "unix"):
        problems.append(f"REDIS_URL: scheme must be redis://, rediss:// or unix:// (got {urlsplit(redis_url).scheme!r})")
    port = _port(env, problems)
    web_processes = env.get("AQE_WEB_PROCESSES", "1")
    if not web_processes.isdigit() or not 1 <= int(web_processes) <= 64:
        problems.append(f"AQE_WEB_PROCESSES: {web_processes!r} is not a number of processes from 1 to 64")
        web_processes = "1"
    osv_url = _check_url("AQE_OSV_URL", env.get("AQE_OSV_URL", "https://api.osv.dev"), problems)
    llm_url = _check_url("AQE_LLM_URL", env["AQE_LLM_URL"], problems) if env.get("AQE_LLM_URL") else None
    if llm_url and not env.get("AQE_LLM_MODEL"):
        problems.append("AQE_LLM_MODEL: must be set when AQE_LLM_URL is (e.g. gpt-4o-mini)")
    origins = tuple(_check_url("AQE_CORS_ORIGINS", origin.strip(), problems)
                    for origin in env.get("AQE_CORS_ORIGINS", "").split(",") if origin.strip())
    issuers = tuple(_check_url("AQE_OIDC_ISSUERS", issuer.strip(), problems)
                    for issuer in env.get("AQE_OIDC_ISSUERS", "").split(",") if issuer.strip())
    try:
        oidc_policy = parse_policy(env["AQE_OIDC_POLICY"]) if env.get("AQE_OIDC_POLICY", "").strip() else ()
    except ValueError as exc:
        problems.append(f"AQE_OIDC_POLICY: {exc}")
    try:
        denied = netpolicy.parse_networks(env.get("AQE_DENY_NETWORKS", ",".join(netpolicy.DEFAULT_DENIED)))
    except ValueError as exc:
        problems.append(f"AQE_DENY_NETWORKS: {exc}")
        denied = ()
    if problems:
        raise SettingsError(problems)
    data_dir = Path(env.get("AQE_DATA_DIR", ".aqe-data")).expanduser().resolve()
    return Settings(
        redis_url=redis_url,
        public_url=public_url,
        data_dir=data_dir,
        jwt_secret=_jwt_secret(env, data_dir),
        rate_limit=rate_limit,
        port=port,
        web_processes=int(web_processes),
        github=github,
        github_webhook_secrets=secrets_,
        github_api_url=api_url,
        missing=tuple(missing),
        log_level=env.get("AQE_LOG_LEVEL", "INFO").upper(),
        worker_poll_delay=float(env.get("AQE_WORKER_POLL_DELAY", "0.05")),
        osv_url=osv_url,
        llm_url=llm_url,
        llm_model=env.get("AQE_LLM_MODEL") or None,
        llm_api_key=env.get("AQE_LLM_API_KEY") or None,
        callback_secret=_jwt_secret(env, data_dir, "AQE_CALLBACK_SECRET"),
        oidc_issuers=issuers,
        oidc_audience=env.get("AQE_OIDC_AUDIENCE", "aqe").strip() or "aqe",
        cors_origins=origins,
        denied_networks=denied,
        oidc_refs=_listed(env, "AQE_OIDC_REFS"),
        oidc_policy=oidc_policy,
        gitlab=gitlab,
    )
