"""`/`: the fleet and the recent jobs, for a logged-in browser; `/login` and `/logout` (app/session.py).

The fleet (workers alive, jobs running, the queue, each agent's p50/p95) shows when the logged-in key has
`fleet:read`; the recent jobs are those of repositories the key may see, each linked to its page with a fresh
signed token. /static/dashboard.js fetches `/` again every few seconds and swaps the two sections in.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app.api.auth import Principal
from app.api.ratelimit import client_ip
from app.pages import EVENTS_TOKEN_TTL_S, SECURITY_HEADERS, html_page, login_url, utc
from app.session import SessionError, end_session, key_usable, same_origin_post, session_principal, set_session_cookie
from jobs import audit, fleet
from jobs.apikeys import find_key
from jobs.links import job_link_token
from jobs.model import ALL_AGENTS, JobRecord, now
from jobs.ratelimit import Rate, RateLimiter

RECENT_JOBS = 20
RECENT_SCAN = 500  # records looked at for a repository-limited key's recent jobs
_NEXT_RE = re.compile(r"^/(?![/\\])[\x21-\x7e]*$")
# Pages with forms but no token in their URL: `same-origin` lets the browser send a real Origin with the form's
# POST (under `no-referrer` Chromium sends `Origin: null`), and still sends nothing to other sites.
FORM_PAGE_HEADERS = {"Referrer-Policy": "same-origin"}


def safe_next(value: str | None) -> str:
    """Where to go after logging in: a path of this site only (no `//host`, no scheme)."""
    return value if value and _NEXT_RE.match(value) else "/"


def _redirect(url: str, status_code: int = 303) -> RedirectResponse:
    return RedirectResponse(url, status_code=status_code, headers={**SECURITY_HEADERS})


# --- login / logout -------------------------------------------------------------------------------------------

def login_form(next_path: str, problem: str = "", status_code: int = 200) -> Response:
    message = f"<p id=login-error class=failure role=alert>{escape(problem)}</p>" if problem else ""
    body = ("<main class=narrow><h1>Log in</h1><p>Paste an AQE API key with the scope <code>jobs:read</code> "
            "(<code>aqe api generate-key</code>). The browser keeps a 12-hour session, not the key.</p>"
            f"{message}<form method=post action='/login'><input type=hidden name=next value='{escape(next_path)}'>"
            "<label>API key <input id=key name=key type=password autocomplete=off required spellcheck=false "
            "size=40></label> <button type=submit>Log in</button></form></main>")
    return html_page("AQE: log in", body, status_code=status_code, headers=FORM_PAGE_HEADERS)


LOGIN_RATE = Rate(limit=10, window_s=60)  # login attempts per client address


async def login(request: Request) -> Response:
    if request.method == "GET":
        if await session_principal(request) is not None:
            return _redirect(safe_next(request.query_params.get("next")))
        return login_form(safe_next(request.query_params.get("next")))
    if not same_origin_post(request):
        return login_form("/", "Log in from this site's own login page.", status_code=403)
    form = await request.form()
    key_text, next_path = str(form.get("key", "")).strip(), safe_next(str(form.get("next", "")))
    redis = request.app.state.redis
    attempt = await RateLimiter(redis).hit(f"login:{client_ip(request)}", LOGIN_RATE)
    if not attempt.allowed:  # before the key is looked at: no guessing, no flooding the audit log
        response = login_form(next_path, f"Too many login attempts from this address; try again in "
                                         f"{attempt.reset_s} s.", status_code=429)
        response.headers.update(attempt.headers())
        return response
    found = await find_key(redis, key_text)
    try:
        key = key_usable(found, now())
    except SessionError as exc:  # audited too: repeated refusals from one address are worth seeing
        await audit.record(redis, actor=f"key:{found.name}" if found else "anonymous", action="session.refused",
                           target="dashboard", ip=client_ip(request), detail=str(exc))
        return login_form(next_path, str(exc), status_code=401)
    response = _redirect(next_path)
    set_session_cookie(request, response, key.id)
    await audit.record(redis, actor=f"key:{key.name}", action="session.started", target="dashboard",
                       ip=client_ip(request), detail=f"{key.name} ({key.hint}…)")
    return response


async def logout(request: Request) -> Response:
    if not same_origin_post(request):
        return _redirect("/")
    principal = await session_principal(request)
    response = _redirect("/login")
    await end_session(request, response)
    if principal is not None:
        await audit.record(request.app.state.redis, actor=principal.actor, action="session.ended",
                           target="dashboard", ip=client_ip(request))
    return response


# --- the dashboard --------------------------------------------------------------------------------------------

def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


def fleet_html(snapshot: dict[str, Any] | None) -> str:
    if snapshot is None:
        return ("<section id=fleet><h2>Fleet</h2><p class=muted>This key lacks the scope <code>fleet:read</code>."
                "</p></section>")
    workers, queue = snapshot["workers"], snapshot["queue"]
    worker_rows = "".join(f"<tr><td>{escape(str(w.get('id', '')))}</td><td>{int(w.get('jobs_running', 0))} / "
                          f"{int(w.get('max_jobs', 0))}</td><td>{utc(w.get('started_at'))}</td></tr>"
                          for w in workers["list"])
    agent_rows = "".join(f"<tr data-agent='{escape(name)}'><td>{escape(name)}</td><td>{int(a['runs'])}</td>"
                         f"<td>{_seconds(a['duration_p50_s'])}</td><td>{_seconds(a['duration_p95_s'])}</td>"
                         f"<td>{utc(a['last_finished_at'])}</td></tr>"
                         for name, a in snapshot["agents"].items() if name in ALL_AGENTS)
    return (f"<section id=fleet><h2>Fleet</h2><p><span id=workers-alive>{int(workers['alive'])}</span> "
            f"worker(s) alive · <span id=jobs-running>{int(workers['jobs_running'])}</span> of "
            f"{int(workers['capacity'])} job slots busy · queue: <span id=queue-depth>{int(queue['queued'])}</span> "
            f"({int(queue['ready'])} ready, {int(queue['deferred'])} deferred)</p>"
            f"<table id=workers><thead><tr><th>Worker</th><th>Jobs</th><th>Started</th></tr></thead>"
            f"<tbody>{worker_rows}</tbody></table>"
            f"<table id=agents><thead><tr><th>Agent</th><th>Runs</th><th>p50</th><th>p95</th><th>Last run</th></tr>"
            f"</thead><tbody>{agent_rows}</tbody></table></section>")


async def recent_jobs(request: Request, principal: Principal) -> list[JobRecord]:
    store = request.app.state.store
    found: list[JobRecord] = []
    cursor, scanned = None, 0
    while len(found) < RECENT_JOBS and scanned < RECENT_SCAN:
        rows = await store.recent(before_ms=cursor, batch=50)
        if not rows:
            break
        for (_, score), record in zip(rows, await store.get_many([job_id for job_id, _ in rows]), strict=True):
            cursor = score
            if record is not None and principal.sees(record.request.repo, record.request.forge):
                found.append(record)
                if len(found) == RECENT_JOBS:
                    break
        scanned += len(rows)
    return found


def jobs_html(records: list[JobRecord], secret: str) -> str:
    rows = []
    for record in records:
        req = record.request
        href = f"/jobs/{record.id}?" + urlencode({"t": job_link_token(secret, record.id, ttl_s=EVENTS_TOKEN_TTL_S)})
        what = f"#{req.pr_number}" if req.pr_number else escape(req.head_ref or "")
        conclusion = escape(record.conclusion or "")
        rows.append(f"<tr data-job='{escape(record.id)}'><td><a href='{escape(href)}'>{escape(record.id[:12])}</a></td>"
                    f"<td>{escape(req.repo)}</td><td>{what}</td><td><code>{escape(req.head_sha[:12])}</code></td>"
                    f"<td class='status {escape(record.status)}'>{escape(record.status)}</td>"
                    f"<td class='conclusion {conclusion}'>{conclusion or '—'}</td><td>{record.progress:.0f}%</td>"
                    f"<td>{utc(record.created_at)}</td></tr>")
    table = ("<table><thead><tr><th>Job</th><th>Repository</th><th>PR / ref</th><th>Commit</th><th>Status</th>"
             f"<th>Conclusion</th><th>Progress</th><th>Created</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
             ) if rows else "<p class=muted>No jobs yet.</p>"
    return f"<section id=jobs><h2>Recent jobs</h2>{table}</section>"


async def dashboard(request: Request) -> Response:
    principal = await session_principal(request)
    if principal is None:
        return _redirect(login_url("/"))
    redis = request.app.state.redis
    snapshot = await fleet.snapshot(redis) if principal.allows("fleet:read") else None
    records = await recent_jobs(request, principal)
    body = (f"<main id=dashboard><div class=bar><h1>AQE</h1><form method=post action='/logout'>"
            f"<span class=muted>logged in as <b id=who>{escape(principal.name)}</b></span> "
            f"<button type=submit id=logout>Log out</button></form></div>"
            f"{fleet_html(snapshot)}{jobs_html(records, request.app.state.settings.jwt_secret)}"
            f"<p id=refresh-note class=muted role=status></p></main>")
    return html_page("AQE: dashboard", body, script="dashboard.js", headers=FORM_PAGE_HEADERS)
