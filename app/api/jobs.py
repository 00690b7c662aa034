"""Jobs: GET /api/v1/job/{id}/status, GET /api/v1/jobs, POST /api/v1/job/{id}/cancel."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import Scope

from app.api.auth import Principal, require_job_visible, require_scope
from app.api.errors import ApiError
from jobs.eta import remaining_s
from jobs.model import TERMINAL_STATUSES, JobRecord, now
from jobs.store import stored_record

JOB_ID_RE = re.compile(r"^[0-9a-f]{24}$")
# The paths of `job_status`, `job_events` and `JobStream` (app/api/routes.py): requests that read one job, whose
# record comes in the Redis call that looks the caller's API key up.
JOB_READ_PATH_RE = re.compile(r"/job/([0-9a-f]{24})/(?:status|events|stream)\Z")
_PREFETCHED = "aqe.job"  # in the ASGI scope: (job id, its record as stored or None), read with the caller's key
_BACKLOG = "aqe.backlog"  # in the ASGI scope: (job id, resume point, raw XRANGE reply), read with the record
_encode = msgspec.json.Encoder().encode


def read_job_id(scope: Scope) -> str | None:
    """The job a status, events or stream request reads (its record can be read with the caller's API key)."""
    match = JOB_READ_PATH_RE.search(scope["path"])
    return match.group(1) if match else None


def reads_stream(scope: Scope) -> bool:
    """Whether a request `read_job_id` names is one of the job's streams (SSE events or WebSocket)."""
    return scope["path"].endswith(("/events", "/stream"))


def keep_prefetched(scope: Scope, job_id: str, raw: bytes | None,
                    backlog: tuple[str, list[Any]] | None = None) -> None:
    """Keep the job's record (None: there is none) read with the caller's credential for the endpoint, which still
    checks that the caller may see it; `backlog` (resume point, XRANGE reply): a stream request's first page of
    events, read with the record."""
    scope[_PREFETCHED] = (job_id, raw)
    if backlog is not None:
        scope[_BACKLOG] = (job_id, *backlog)


def prefetched_backlog(connection: HTTPConnection, job_id: str, after: str) -> list[Any] | None:
    """The job's events after `after` as read with its record (a raw XRANGE reply, once), or None."""
    kept = connection.scope.pop(_BACKLOG, None)
    return kept[2] if kept is not None and kept[0] == job_id and kept[1] == after else None


async def read_job(connection: HTTPConnection, job_id: str) -> JobRecord | None:
    """The job's record: the one read with the caller's API key for this request (once), else the store's."""
    prefetched = connection.scope.pop(_PREFETCHED, None)
    if prefetched is not None and prefetched[0] == job_id:
        return None if prefetched[1] is None else stored_record(prefetched[1])
    return await connection.app.state.store.get(job_id)


def job_links(public_url: str, job_id: str) -> dict[str, str]:
    ws = "wss" + public_url[5:] if public_url.startswith("https") else "ws" + public_url[4:]
    base = f"/api/v1/job/{job_id}"
    return {"status_url": f"{public_url}{base}/status", "stream_url": f"{ws}{base}/stream",
            "events_url": f"{public_url}{base}/events"}


def status_view(record: JobRecord, at: float | None = None) -> dict:
    """The status endpoint's answer (as of `at`, epoch s: now by default)."""
    view = msgspec.to_builtins(record)
    view["steps"] = [{**msgspec.to_builtins(s), "duration_s": s.duration_s} for s in record.steps]
    at = now() if at is None else at
    left = remaining_s(record, at)
    view["eta_s"], view["eta"] = left, None if left is None else round(at + left, 3)
    view["result"] = {"conclusion": record.conclusion, "agents": view.pop("results", [])} if record.conclusion else None
    return view


async def load_job(request: Request) -> JobRecord:
    job_id = request.path_params["job_id"]
    if not JOB_ID_RE.match(job_id):
        raise ApiError(404, "job_not_found", f"no job '{job_id[:40]}' (job ids are 24 hex characters)")
    record = await read_job(request, job_id)
    if record is None:
        raise ApiError(404, "job_not_found", f"no job '{job_id}' (records are kept 30 days)")
    return record


async def visible_job(request: Request, scope: str) -> tuple[Principal, JobRecord]:
    """The caller (with `scope`) and the job in the path; 404 for a job of a repository it may not see."""
    principal = await require_scope(request, scope)
    record = await load_job(request)
    require_job_visible(principal, record.id, record.request.repo, record.request.forge)
    return principal, record


async def job_status(request: Request) -> Response:
    _, record = await visible_job(request, "jobs:read")
    return Response(_encode(status_view(record)), media_type="application/json")


LIST_MAX = 100
LIST_SCAN_LIMIT = 5000  # records looked at for one page of a filtered list
STATUSES = ("queued", "running", "completed", "failed", "cancelled", "skipped")


def job_summary(record: JobRecord) -> dict:
    req = record.request
    return {"id": record.id, "status": record.status, "conclusion": record.conclusion, "progress": record.progress,
            "repo": req.repo, "head_sha": req.head_sha, "head_ref": req.head_ref, "pr_number": req.pr_number,
            "trigger": req.trigger, "agents": record.agents or req.agents, "created_at": record.created_at,
            "finished_at": record.finished_at}


def _list_params(request: Request) -> tuple[str | None, str | None, int, int | None]:
    query = request.query_params
    repo, status = query.get("repo"), query.get("status")
    if status is not None and status not in STATUSES:
        raise ApiError(422, "invalid_request", f"status: one of {', '.join(STATUSES)}")
    limit_text, cursor = query.get("limit", "20"), query.get("cursor")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= LIST_MAX:
        raise ApiError(422, "invalid_request", f"limit: a number from 1 to {LIST_MAX}")
    if cursor is not None and not cursor.isdigit():
        raise ApiError(422, "invalid_request", "cursor: pass back the `next_cursor` of the previous page")
    return repo, status, int(limit_text), int(cursor) if cursor is not None else None


async def list_jobs(request: Request) -> Response:
    """GET /api/v1/jobs?repo=&status=&limit=&cursor=: newest first; `next_cursor` fetches the next page."""
    principal = await require_scope(request, "jobs:read")
    repo, status, limit, cursor = _list_params(request)
    store = request.app.state.store
    found: list[dict] = []
    scanned, next_cursor = 0, None
    while len(found) < limit and scanned < LIST_SCAN_LIMIT:
        rows = await store.recent(before_ms=cursor, batch=max(limit * 2, 50))
        if not rows:
            cursor = None
            break
        for (job_id, score), record in zip(rows, await store.get_many([job_id for job_id, _ in rows]), strict=True):
            cursor = score
            if record is None or (repo and record.request.repo != repo) or (status and record.status != status) \
                    or not principal.sees(record.request.repo, record.request.forge):
                continue
            found.append(job_summary(record))
            if len(found) == limit:
                break
        scanned += len(rows)
    if cursor is not None and (len(found) == limit or scanned >= LIST_SCAN_LIMIT):
        next_cursor = str(cursor)
    return Response(_encode({"jobs": found, "next_cursor": next_cursor}), media_type="application/json")


async def cancel_job(request: Request) -> Response:
    """POST /api/v1/job/{id}/cancel: a queued job ends at once; a running one is stopped where it runs."""
    _, record = await visible_job(request, "jobs:write")
    if record.status in TERMINAL_STATUSES:
        raise ApiError(409, "job_ended", f"job {record.id} already ended ({record.status})")
    store = request.app.state.store
    outcome = await store.cancel(record.id)
    if outcome == "removed":
        record.status, record.finished_at = "cancelled", now()
        record.conclusion, record.error = "cancelled", "cancelled through the API before it started"
        await store.save(record, "error", {"status": "cancelled", "progress": record.progress,
                                           "conclusion": "cancelled", "error": record.error})
        if record.request.callback_url:  # no worker will run it, so none sends its callback: one is asked to
            await store.enqueue_callback(record.id)
    answer = {"job_id": record.id, "status": "cancelled" if outcome == "removed" else "cancelling",
              **job_links(request.app.state.settings.public_url, record.id)}
    return Response(_encode(answer), status_code=202, media_type="application/json")
