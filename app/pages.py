"""GET /jobs/{id}: the job page check runs link to, live over SSE; its artifacts; what every HTML page shares.

Who may see a job's page: anyone whose link carries a valid signed token for that job (`?t=`, added by the
reporters), a logged-in browser (`/login`, app/session.py) whose key may see the repository, or a caller
with `Authorization: Bearer` and `jobs:read`. Everyone else gets the same 403, whether the job exists or not.

The page is rendered on the server (it works without JavaScript); /static/job.js then follows the job on
`/api/v1/job/{id}/events?t=…` (a signed token for the job is always embedded for it) and, when the job ends,
fetches the page again and swaps the rendered section in. Nothing from a job is ever put in the page other
than through `html.escape` (server) or `textContent` (browser); the CSP allows scripts from /static only.
"""

from __future__ import annotations

import time
from html import escape
from pathlib import Path
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from app.api.errors import ApiError
from app.api.jobs import load_job, visible_job
from app.session import SESSION_TTL_S, session_principal
from jobs.links import job_link_token, job_link_valid
from jobs.model import TERMINAL_STATUSES, AgentResult, Finding, JobRecord, RunRequest
from jobs.forges.base import WebPaths
from jobs.forges.registry import FORGES, GITHUB

STATIC_DIR = Path(__file__).parent / "static"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY", "Cache-Control": "no-store"}
EVENTS_TOKEN_TTL_S = SESSION_TTL_S  # the token minted for the live view of a page opened without one


# --- what every page shares ---------------------------------------------------------------------------------

def html_page(title: str, body: str, *, script: str | None = None, status_code: int = 200,
              headers: dict[str, str] | None = None) -> HTMLResponse:
    """A whole document with the shared head and the security headers (`headers` may override them)."""
    script_tag = f"<script src='/static/{script}' defer></script>" if script else ""
    document = (f"<!doctype html><html lang=en><head><meta charset=utf-8>"
                f"<meta name=viewport content='width=device-width, initial-scale=1'>"
                f"<title>{escape(title)}</title><link rel=stylesheet href='/static/aqe.css'>"
                f"<link rel=icon href='/static/favicon.svg' type='image/svg+xml'>{script_tag}</head>"
                f"<body><header class=top><a href='/'>AQE</a></header>{body}</body></html>")
    return HTMLResponse(document, status_code=status_code, headers={**SECURITY_HEADERS, **(headers or {})})


def utc(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at)) if at else "—"


def login_url(next_path: str) -> str:
    return "/login?" + urlencode({"next": next_path})


class StaticAssets:
    """/static: the pages' CSS, JS and icon, with nosniff (and no directory listing)."""

    def __init__(self) -> None:
        self.files = StaticFiles(directory=STATIC_DIR)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-content-type-options", b"nosniff"),
                                      (b"cache-control", b"public, max-age=300")]
            await send(message)

        await self.files(scope, receive, send_with_headers)


# --- access ---------------------------------------------------------------------------------------------------

class Denied(Exception):
    pass


async def job_access(request: Request) -> tuple[JobRecord, str | None]:
    """The job and the valid `?t=` the request carried (None when it came in by login or API key); Denied."""
    secret = request.app.state.settings.jwt_secret
    token = request.query_params.get("t", "")
    job_id = request.path_params["job_id"]
    if token and job_link_valid(secret, job_id, token):
        return await load_job(request), token
    if request.headers.get("authorization"):
        try:
            return (await visible_job(request, "jobs:read"))[1], None
        except ApiError:
            raise Denied from None
    principal = await session_principal(request)
    if principal is None:
        raise Denied
    try:
        record = await load_job(request)
    except ApiError:
        raise Denied from None
    if not principal.sees(record.request.repo, record.request.forge):
        raise Denied
    return record, None


def forbidden(request: Request) -> HTMLResponse:
    path = f"/jobs/{request.path_params['job_id']}"
    body = ("<main><h1>Not available</h1><p>This link is invalid or has expired. Open the job from its check run "
            f"again, or <a href='{escape(login_url(path))}'>log in with an API key</a>.</p></main>")
    return html_page("AQE: not available", body, status_code=403)


def gone(record_id: str) -> HTMLResponse:
    body = f"<main><h1>No such job</h1><p>There is no job {escape(record_id[:40])} (records are kept 30 days).</p></main>"
    return html_page("AQE: no such job", body, status_code=404)


# --- the job page ---------------------------------------------------------------------------------------------

def web_paths(req: RunRequest) -> WebPaths | None:
    return FORGES[req.forge].web_paths if req.forge in FORGES else None


def pull_name(req: RunRequest) -> str:
    return (web_paths(req) or GITHUB.web_paths).pull_name.format(req.pr_number)


def _blob_url(record: JobRecord, finding: Finding, base: str) -> str | None:
    req = record.request
    paths = web_paths(req)
    if paths is None or not req.head_sha or not finding.path or finding.path.startswith("/"):
        return None
    lines = f"L{finding.start_line}" + (paths.last_line.format(finding.end_line)
                                         if finding.end_line > finding.start_line else "")
    return f"{base}/{quote(req.repo)}/{paths.blob}/{quote(req.head_sha)}/{quote(finding.path)}#{lines}"


def _finding_row(record: JobRecord, finding: Finding, base: str) -> str:
    where = f"{escape(finding.path)}:{finding.start_line}"
    if finding.end_line > finding.start_line:
        where += f"–{finding.end_line}"
    url = _blob_url(record, finding, base)
    if url:
        where = f"<a href='{escape(url)}' rel=noreferrer>{where}</a>"
    title = f"<b>{escape(finding.title)}</b><br>" if finding.title else ""
    return (f"<tr><td class=where>{where}</td><td class='level {escape(finding.level)}'>{escape(finding.level)}</td>"
            f"<td class=rule>{escape(finding.rule)}</td><td class=message>{title}"
            f"<pre>{escape(finding.message)}</pre></td></tr>")


def _metrics_html(result: AgentResult) -> str:
    if not result.metrics:
        return ""
    items = "".join(f"<dt>{escape(str(name))}</dt><dd>{escape(str(value))}</dd>"
                    for name, value in sorted(result.metrics.items()))
    return f"<details><summary>Metrics</summary><dl class=metrics>{items}</dl></details>"


def _agent_html(record: JobRecord, result: AgentResult, base: str) -> str:
    rows = "".join(_finding_row(record, f, base) for f in result.findings)
    table = (f"<table class=findings><thead><tr><th>Where</th><th>Level</th><th>Rule</th><th>Message</th></tr>"
             f"</thead><tbody>{rows}</tbody></table>") if rows else "<p class=muted>No findings.</p>"
    return (f"<section class=agent data-agent='{escape(result.agent)}'><h3>aqe/{escape(result.agent)}: "
            f"<span class='conclusion {escape(result.conclusion)}'>{escape(result.conclusion)}</span> — "
            f"{escape(result.title)} <small class=muted>{result.duration_s:.1f} s</small></h3>"
            f"<pre class=summary>{escape(result.summary)}</pre>{_metrics_html(result)}{table}</section>")


def _artifacts_html(record: JobRecord, link_token: str | None) -> str:
    if not record.artifacts:
        return ""
    suffix = "?" + urlencode({"t": link_token}) if link_token else ""
    links = "".join(f"<li><a href='/jobs/{escape(record.id)}/artifacts/{escape(quote(name))}{escape(suffix)}'>"
                    f"{escape(name)}</a></li>" for name in record.artifacts)
    return f"<section id=artifacts><h2>Artifacts</h2><ul>{links}</ul></section>"


def _steps_html(record: JobRecord) -> str:
    if not record.steps:
        return ""
    rows = "".join(f"<tr><td>{escape(s.name)}</td><td>{utc(s.started_at)[11:19]}</td>"
                   f"<td>{f'{s.duration_s:.1f} s' if s.duration_s is not None else '…'}</td></tr>"
                   for s in record.steps)
    return (f"<section id=steps><h2>Steps</h2><table><thead><tr><th>Step</th><th>Started</th><th>Time</th></tr>"
            f"</thead><tbody>{rows}</tbody></table></section>")


def _results_html(record: JobRecord, base: str) -> str:
    done = {r.agent for r in record.results}
    pending = [a for a in (record.agents or record.request.agents) if a not in done]
    waiting = "waiting" if record.status == "queued" else "running" if record.status == "running" else "no result"
    pending_html = "".join(f"<li>aqe/{escape(a)}: <span class=muted>{waiting}</span></li>" for a in pending)
    agents = "".join(_agent_html(record, r, base) for r in record.results)
    if not agents and not pending_html:
        return ""
    return (f"<section id=results><h2>Results</h2>{agents}"
            f"{f'<ul class=pending>{pending_html}</ul>' if pending_html else ''}</section>")


def _links_html(record: JobRecord, base: str) -> str:
    req = record.request
    paths = web_paths(req)
    if paths is None:
        return f"<p class=links>{escape(req.repo)} · commit <code>{escape(req.head_sha[:12])}</code></p>"
    repo_url = f"{base}/{quote(req.repo)}"
    parts = [f"<a href='{escape(repo_url)}' rel=noreferrer>{escape(req.repo)}</a>"]
    if req.pr_number:
        parts.append(f"<a id=pr-link href='{escape(f'{repo_url}/{paths.pull}/{req.pr_number}')}' rel=noreferrer>"
                     f"{escape(pull_name(req))}</a>")
    if req.head_ref:
        parts.append(f"branch <code>{escape(req.head_ref)}</code>")
    if req.head_sha:
        parts.append(f"<a id=commit-link href='{escape(f'{repo_url}/{paths.commit}/{quote(req.head_sha)}')}' "
                     f"rel=noreferrer>commit <code>{escape(req.head_sha[:12])}</code></a>")
    return f"<p class=links>{' · '.join(parts)}</p>"


def render_job_page(record: JobRecord, *, base_url: str = "https://github.com", link_token: str | None = None,
                    events_url: str | None = None) -> str:
    """The `<main>` of the job page: everything but the surrounding document."""
    req = record.request
    live = record.status not in TERMINAL_STATUSES and events_url is not None
    conclusion = (f" · conclusion <b id=conclusion class='conclusion {escape(record.conclusion)}'>"
                  f"{escape(record.conclusion)}</b>") if record.conclusion else ""
    error = f"<p id=error class=failure>Error: {escape(record.error)}</p>" if record.error else ""
    reason = f"<p id=reason>{escape(record.reason)}</p>" if record.reason else ""
    title = pull_name(req) if req.pr_number else (req.head_ref or req.head_sha[:12])
    events_attr = f" data-events='{escape(events_url)}'" if events_url else ""
    return (f"<main id=job data-job='{escape(record.id)}' data-status='{escape(record.status)}' "
            f"data-progress='{record.progress:.1f}' data-live='{'1' if live else '0'}'{events_attr}>"
            f"<h1>{escape(req.repo)}: {escape(title)}</h1>{_links_html(record, base_url)}"
            f"<section id=live><p>Status: <b id=status class='status {escape(record.status)}'>"
            f"{escape(record.status)}</b>{conclusion} · trigger {escape(req.trigger)} · created "
            f"{utc(record.created_at)}</p><p><progress id=progress max=100 value='{record.progress:.1f}'>"
            f"</progress> <span id=percent>{record.progress:.0f}%</span></p>"
            f"<p>Current step: <span id=step>{escape(record.step or '—')}</span></p>"
            f"<p id=live-note class=muted role=status aria-live=polite></p></section>"
            f"<div id=detail>{error}{reason}{_steps_html(record)}{_results_html(record, base_url)}"
            f"{_artifacts_html(record, link_token)}</div></main>")


async def job_page(request: Request) -> Response:
    try:
        record, link_token = await job_access(request)
    except Denied:
        return forbidden(request)
    except ApiError:
        return gone(request.path_params["job_id"])
    secret = request.app.state.settings.jwt_secret
    events_token = link_token or job_link_token(secret, record.id, ttl_s=EVENTS_TOKEN_TTL_S)
    events_url = f"/api/v1/job/{record.id}/events?" + urlencode({"t": events_token})
    settings = request.app.state.settings
    base_url = FORGES[record.request.forge].web_url(settings) if record.request.forge in FORGES else ""
    main = render_job_page(record, base_url=base_url,
                           link_token=link_token, events_url=events_url)
    return html_page(f"AQE: {record.request.repo} job {record.id}", main, script="job.js")


async def job_artifact(request: Request) -> Response:
    """A file the job kept, e.g. `generated-tests.patch` (apply it with `git apply`)."""
    try:
        record, _ = await job_access(request)
    except Denied:
        return forbidden(request)
    name = request.path_params["name"]
    data = await request.app.state.store.artifact(record.id, name) if name in record.artifacts else None
    if data is None:
        raise ApiError(404, "artifact_not_found", f"job {record.id} has no artifact {name!r} "
                                                  f"(it has: {', '.join(record.artifacts) or 'none'})")
    return Response(data, media_type="text/x-diff; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                             "Cache-Control": "no-store"})
