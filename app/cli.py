"""The `aqe` command: run the bot locally, run one process, manage API keys."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import getpass
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import click
from redis.asyncio import Redis

from app.supervision import StopSignal, stop_children
from jobs import apikeys, audit, tokens
from jobs.logs import configure_logging
from jobs.redis_server import EmbeddedRedis, running_url
from jobs.sandbox import harden_process
from jobs.settings import Settings, SettingsError, load_settings


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        click.echo(f"aqe: {exc}", err=True)
        sys.exit(2)


def _logging(settings: Settings, *, buffered: bool = False) -> None:
    configure_logging(settings.log_level, buffered=buffered)


# How `aqe web` serves the app (the webhook benchmark serves its bare baseline the same way).
# log_config=None: uvicorn must not run its dictConfig, which would close the handler configure_logging installed.
# No per-message deflate on WebSockets: the stream's messages are small JSON, compressing them costs more CPU per
# connection than it saves bytes. `http`, `ws`: httptools and websockets' sans-I/O protocol, without the reference
# cycles that made every WebSocket connection garbage for the collector (app/uvicorn_protocols.py).
UVICORN_OPTIONS = {"access_log": False, "proxy_headers": True, "timeout_graceful_shutdown": 10, "log_config": None,
                   "ws_per_message_deflate": False, "http": "app.uvicorn_protocols:HttpProtocol",
                   "ws": "app.uvicorn_protocols:WebSocketProtocol"}


def tune_gc_for_requests() -> None:
    """Move what start-up allocated out of the collector's sight and collect the young generation less
    often: fewer pauses in the middle of a burst of webhook deliveries (p99 latency)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 50)


@click.group()
def main() -> None:
    """AQE: quality-engineering checks on every pull request."""


STOP_TIMEOUT_S = 20.0  # for the children to stop: past the web processes' own (app/web_processes.py)


def _spawn(role: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "app.cli", role], env=env)


def _missing_message(settings: Settings) -> str:
    gitlab = (f" GitLab ({settings.gitlab.url}) is configured." if settings.gitlab.token else
              " GitLab is not configured either (GITLAB_TOKEN, GITLAB_WEBHOOK_SECRET).")
    return (f"GitHub is not configured yet (missing: {', '.join(settings.missing)}). AQE runs anyway; "
            f"GitHub webhooks are answered 503 until these are set (see docs/install.md).{gitlab}")


@main.command()
def run() -> None:
    """Start everything: the embedded Redis (when REDIS_URL is unset), the web process and the worker."""
    harden_process()
    settings = _settings()
    if settings.missing:
        click.echo(f"aqe: {_missing_message(settings)}", err=True)
    embedded = None if settings.redis_url else EmbeddedRedis(settings.data_dir)
    url = settings.redis_url or embedded.start()  # type: ignore[union-attr]
    if embedded:
        click.echo(f"aqe: embedded Redis (Valkey) on {url}, data in {embedded.dir}", err=True)
    env = {**os.environ, "REDIS_URL": url, "AQE_SUPERVISED": "1"}
    children = [_spawn("web", env), _spawn("worker", env)]
    stop = StopSignal()
    try:
        while not stop.received and all(c.poll() is None for c in children):
            time.sleep(0.2)
    finally:
        stop_children(children, STOP_TIMEOUT_S)
        if embedded:
            embedded.stop()
    failed = [c for c in children if c.returncode not in (0, -signal.SIGTERM, None)]
    sys.exit(1 if failed and not stop.received else 0)


@main.command()
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--processes", type=click.IntRange(1, 64), default=None,
              help="web processes sharing the port  [default: AQE_WEB_PROCESSES, else 1]")
@click.option("--fd", type=int, default=None, hidden=True, help="serve this listening socket (set by --processes)")
def web(host: str, processes: int | None, fd: int | None) -> None:
    """Run only the web process(es) on $PORT (needs REDIS_URL)."""
    harden_process()
    settings = _settings()
    count = processes or settings.web_processes
    supervising = fd is None and count > 1
    _logging(settings, buffered=not supervising)
    if settings.missing and not os.environ.get("AQE_SUPERVISED"):
        logging.getLogger("aqe").warning(_missing_message(settings))
    if supervising:
        from app import web_processes

        sys.exit(web_processes.serve(host, settings.port, count))
    import uvicorn

    from app.main import create_app

    app = create_app(settings)
    tune_gc_for_requests()

    from app.api.streams import end_streams_on_exit

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=settings.port, log_level=settings.log_level.lower(),
                                           **UVICORN_OPTIONS))  # type: ignore[arg-type]
    end_streams_on_exit(server, app)  # SIGTERM ends open job streams at once: clients resume on another process
    server.run(sockets=None if fd is None else [socket.socket(fileno=fd)])
    if not server.started:  # as uvicorn.run: it could not start (e.g. the port is taken)
        sys.exit(3)


@main.command()
@click.option("--concurrency", default=4, show_default=True, help="jobs run at once by this worker")
def worker(concurrency: int) -> None:
    """Run only the worker (needs REDIS_URL)."""
    from jobs.worker import create_worker

    harden_process()  # the tests it runs must not read its environment through /proc
    settings = _settings()
    _logging(settings)
    if settings.missing and not os.environ.get("AQE_SUPERVISED"):
        logging.getLogger("aqe").warning(_missing_message(settings))
    create_worker(settings, max_jobs=concurrency).run()


@contextlib.contextmanager
def _redis_url(settings: Settings) -> Iterator[str]:
    """REDIS_URL, else the embedded server a running `aqe run` owns, else a short-lived embedded one."""
    url = settings.redis_url or running_url(settings.data_dir)
    if url:
        yield url
        return
    with EmbeddedRedis(settings.data_dir) as url:
        yield url


async def _with_redis(url: str, action):  # type: ignore[no-untyped-def]
    redis = Redis.from_url(url)
    try:
        return await action(redis)
    finally:
        await redis.aclose()


@main.group()
def api() -> None:
    """Manage API keys for the REST API."""


def _cli_actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"cli:{user}@{socket.gethostname()}"


def _seconds(text: str | None, option: str) -> int | None:
    try:
        return None if text is None else apikeys.parse_duration(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def _when(at: float | None) -> str:
    return "-" if at is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at)) + "Z"


_SCOPE = click.Choice(apikeys.SCOPES)


@api.command("generate-key")
@click.option("--name", required=True, help="who or what uses the key, e.g. 'jenkins'")
@click.option("--expires-in", help="e.g. 90d, 12h, 2w (default: never)")
@click.option("--rate-limit", help="e.g. 200/minute (default: AQE_RATE_LIMIT)")
@click.option("--scope", "scopes", multiple=True, type=_SCOPE,
              help="repeatable (default: jobs:read and jobs:write)")
@click.option("--repo", "repos", multiple=True, help="owner/name glob it may use, repeatable (default: all)")
def generate_key(name: str, expires_in: str | None, rate_limit: str | None, scopes: tuple[str, ...],
                 repos: tuple[str, ...]) -> None:
    """Create an API key; it is shown once and stored only as a SHA-256 hash."""
    settings = _settings()
    seconds = _seconds(expires_in, "--expires-in")

    async def create(redis: Redis) -> tuple[str, apikeys.ApiKey]:
        key, record = await apikeys.issue_key(redis, name, expires_in_s=seconds, rate_limit=rate_limit,
                                              scopes=scopes or apikeys.DEFAULT_SCOPES, repos=repos)
        await audit.record(redis, actor=_cli_actor(), action="key.created", target=f"{record.name} ({record.hint}…)",
                           ip="local", detail=_key_detail(record))
        return key, record

    with _redis_url(settings) as url:
        try:
            key, record = asyncio.run(_with_redis(url, create))
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
    click.echo(key)
    click.echo(f"Key '{record.name}' created ({_key_detail(record)}). Store it now: AQE keeps only its hash.",
               err=True)


def _key_detail(record: apikeys.ApiKey) -> str:
    return (f"scopes {' '.join(record.scopes)}; repos {' '.join(record.repos) or '*'}; "
            f"rate limit {record.rate_limit or 'default'}; expires {_when(record.expires_at)}")


@api.command("list-keys")
def list_keys() -> None:
    """List API keys: name, first characters, scopes, repositories, rate limit, created, expires, last used."""
    settings = _settings()
    with _redis_url(settings) as url:
        keys = asyncio.run(_with_redis(url, apikeys.list_keys))
    at = time.time()
    for key in keys:
        state = "expired" if key.expired(at) else "active"
        click.echo("\t".join([key.name, f"{key.hint}…", ",".join(key.scopes), ",".join(key.repos) or "*",
                              key.rate_limit or "default", _when(key.created_at), _when(key.expires_at),
                              _when(key.last_used_at), state]))


@api.command("revoke-key")
@click.argument("name_or_hint")
def revoke_key(name_or_hint: str) -> None:
    """Revoke a key by its name (or first characters, as list-keys shows them); refused from the next request."""
    settings = _settings()

    async def revoke(redis: Redis) -> apikeys.ApiKey:
        record = await apikeys.revoke_key(redis, name_or_hint)
        await audit.record(redis, actor=_cli_actor(), action="key.revoked", target=f"{record.name} ({record.hint}…)",
                           ip="local")
        return record

    with _redis_url(settings) as url:
        try:
            record = asyncio.run(_with_redis(url, revoke))
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
    click.echo(f"Key '{record.name}' ({record.hint}…) revoked.", err=True)


@api.command("issue-token")
@click.option("--sub", required=True, help="who the token is for, e.g. 'ci-bot'")
@click.option("--scope", "scopes", multiple=True, type=_SCOPE, help="repeatable (default: jobs:read and jobs:write)")
@click.option("--expires-in", default="1h", show_default=True, help="e.g. 1h, 30m, 7d")
@click.option("--repo", "repos", multiple=True, help="owner/name glob it may use, repeatable (default: all)")
def issue_token(sub: str, scopes: tuple[str, ...], expires_in: str, repos: tuple[str, ...]) -> None:
    """Issue a JWT (HS256, signed with AQE_JWT_SECRET); it cannot be revoked, only expire."""
    settings = _settings()
    seconds = _seconds(expires_in, "--expires-in") or 0
    try:
        token, claims = tokens.issue_token(settings.jwt_secret, sub, seconds, scopes or apikeys.DEFAULT_SCOPES, repos)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    detail = (f"scopes {' '.join(claims.scopes)}; repos {' '.join(claims.repos) or '*'}; "
              f"expires {_when(claims.exp)}")
    with _redis_url(settings) as url:
        asyncio.run(_with_redis(url, lambda r: audit.record(r, actor=_cli_actor(), action="token.issued",
                                                            target=f"{claims.sub} (jti {claims.jti})", ip="local",
                                                            detail=detail)))
    click.echo(token)
    click.echo(f"Token for '{claims.sub}' issued ({detail}).", err=True)


@api.command("audit")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
def audit_log(limit: int) -> None:
    """The audit log, newest first: time, actor, action, target, address, detail."""
    settings = _settings()
    with _redis_url(settings) as url:
        entries = asyncio.run(_with_redis(url, lambda r: audit.recent(r, limit)))
    for entry in entries:
        click.echo(audit.entry_line(entry))


if __name__ == "__main__":
    main()
