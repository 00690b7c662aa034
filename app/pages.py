"""GET /jobs/{id}: the job page check runs link to (signed link or API key required)."""

from __future__ import annotations

from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from app.api.errors import ApiError
from app.api.jobs import load_job, visible_job
from jobs.links import job_link_valid
from jobs.model import AgentResult, JobRecord

_STYLE = """body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1f2328}
table{border-collapse:collapse}td,th{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left}
.success{color:#1a7f37}.failure,.timed_out{color:#cf222e}.neutral,.skipped,.cancelled{color:#59636e}
pre{background:#f6f8fa;padding:.6rem;overflow:auto}progress{width:20rem}"""


def _agent_html(result: AgentResult) -> str:
    rows = "".join(f"<tr><td>{escape(f.path)}:{f.start_line}</td><td>{escape(f.level)}</td>"
                   f"<td>{escape(f.title or f.rule)}</td><td><pre>{escape(f.message)}</pre></td></tr>"
                   for f in result.findings)
    table = f"<table><tr><th>Where</th><th>Level</th><th>What</th><th>Message</th></tr>{rows}</table>" if rows else ""
    return (f"<h2>aqe/{escape(result.agent)}: <span class='{escape(result.conclusion)}'>{escape(result.conclusion)}"
            f"</span> — {escape(result.title)}</h2><pre>{escape(result.summary)}</pre>{table}")


def _artifacts_html(record: JobRecord, query: str) -> str:
    if not record.artifacts:
        return ""
    suffix = f"?{escape(query)}" if query else ""
    links = "".join(f"<li><a href='/jobs/{escape(record.id)}/artifacts/{escape(name)}{suffix}'>{escape(name)}</a></li>"
                    for name in record.artifacts)
    return f"<h2>Artifacts</h2><ul>{links}</ul>"


def render_job_page(record: JobRecord, query: str = "") -> str:
    req = record.request
    pr = f" · pull request #{req.pr_number}" if req.pr_number else ""
    steps = "".join(f"<tr><td>{escape(s.name)}</td><td>{s.duration_s if s.duration_s is not None else '…'} s</td></tr>"
                    for s in record.steps)
    error = f"<p class='failure'>Error: {escape(record.error)}</p>" if record.error else ""
    reason = f"<p>{escape(record.reason)}</p>" if record.reason else ""
    agents = "".join(_agent_html(r) for r in record.results)
    return (f"<!doctype html><html lang=en><meta charset=utf-8><title>AQE job {escape(record.id)}</title>"
            f"<style>{_STYLE}</style><h1>{escape(req.repo)} @ {escape(req.head_sha[:12])}{pr}</h1>"
            f"<p>Status: <b>{escape(record.status)}</b> · <progress max=100 value={record.progress}></progress> "
            f"{record.progress:.0f}% · trigger {escape(req.trigger)}</p>{error}{reason}"
            f"<table><tr><th>Step</th><th>Time</th></tr>{steps}</table>{_artifacts_html(record, query)}{agents}</html>")


_FORBIDDEN = ("<!doctype html><p>This link is invalid or has expired. Open the job from its check run on GitHub "
              "again.</p>")


async def _allowed(request: Request) -> bool:
    """A signed job link (`?t=`, from the check run) or an API key."""
    token = request.query_params.get("t", "")
    if job_link_valid(request.app.state.settings.jwt_secret, request.path_params["job_id"], token):
        return True
    try:
        await visible_job(request, "jobs:read")
    except ApiError:
        return False
    return True


async def job_page(request: Request) -> HTMLResponse:
    if not await _allowed(request):
        return HTMLResponse(_FORBIDDEN, status_code=403)
    record = await load_job(request)
    return HTMLResponse(render_job_page(record, request.url.query))


async def job_artifact(request: Request) -> Response:
    """A file the job kept, e.g. `generated-tests.patch` (apply it with `git apply`)."""
    if not await _allowed(request):
        return HTMLResponse(_FORBIDDEN, status_code=403)
    record = await load_job(request)
    name = request.path_params["name"]
    data = await request.app.state.store.artifact(record.id, name) if name in record.artifacts else None
    if data is None:
        raise ApiError(404, "artifact_not_found", f"job {record.id} has no artifact {name!r} "
                                                  f"(it has: {', '.join(record.artifacts) or 'none'})")
    return Response(data, media_type="text/x-diff; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
