"""GET /api/v1/job/{id}/status."""

from __future__ import annotations

import re

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from app.api.auth import require_api_key
from app.api.errors import ApiError
from jobs.model import JobRecord

JOB_ID_RE = re.compile(r"^[0-9a-f]{24}$")
_encode = msgspec.json.Encoder().encode


def status_view(record: JobRecord) -> dict:
    view = msgspec.to_builtins(record)
    view["steps"] = [{**msgspec.to_builtins(s), "duration_s": s.duration_s} for s in record.steps]
    view["result"] = {"conclusion": record.conclusion, "agents": view.pop("results", [])} if record.conclusion else None
    return view


async def load_job(request: Request) -> JobRecord:
    job_id = request.path_params["job_id"]
    if not JOB_ID_RE.match(job_id):
        raise ApiError(404, "job_not_found", f"no job '{job_id[:40]}' (job ids are 24 hex characters)")
    record = await request.app.state.store.get(job_id)
    if record is None:
        raise ApiError(404, "job_not_found", f"no job '{job_id}' (records are kept 30 days)")
    return record


async def job_status(request: Request) -> Response:
    await require_api_key(request)
    record = await load_job(request)
    return Response(_encode(status_view(record)), media_type="application/json")
