"""OpenAPI 3.1 for `/api/v1`, generated from the msgspec structs that validate the requests, and Swagger UI.

`GET /openapi.json` is built once per process from `OPERATIONS`; `GET /docs` serves Swagger UI 5 from the
`swagger-ui-bundle-v2` package (no CDN), pointed at it, and `GET /redoc` ReDoc from `app/api/redoc/`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from app.api import submit
from jobs.model import AgentResult, CallbackAttempt, Conclusion, JobStatus, RunRequest

VERSION = "1.0.0"


class Problem(msgspec.Struct, kw_only=True):
    """An error, as RFC 9457 `application/problem+json`; `code` is stable, `detail` says what is wrong."""

    type: str = "about:blank"
    title: str
    status: int
    code: str
    detail: str


class JobAccepted(msgspec.Struct, kw_only=True):
    job_id: str
    status: Literal["queued", "completed"]
    outcome: Literal["queued", "coalesced", "duplicate", "created"]
    status_url: str
    stream_url: str
    events_url: str
    conclusion: Conclusion | None = None  # the gate only: it is answered at once


class StepView(msgspec.Struct, kw_only=True):
    name: str
    started_at: float
    finished_at: float | None
    duration_s: float | None


class JobResult(msgspec.Struct, kw_only=True):
    conclusion: Conclusion
    agents: list[AgentResult]


class JobView(msgspec.Struct, kw_only=True):
    """`GET /api/v1/job/{id}/status`: `status` is how the job ran, `result` what it found."""

    id: str
    status: JobStatus
    request: RunRequest
    created_at: float
    progress: float
    step: str | None
    steps: list[StepView]
    started_at: float | None
    finished_at: float | None
    agents: list[str]
    result: JobResult | None
    conclusion: Conclusion | None
    error: str | None
    reason: str | None
    artifacts: list[str]
    callbacks: list[CallbackAttempt]
    attempts: int
    attempt_started_at: float | None  # when its latest try began (a worker that stopped left it to another)
    expected_s: float | None  # the median duration of the repository's last 20 completed jobs of its kind
    eta_s: float | None  # seconds it is expected still to run; null while queued, without an estimate, once ended
    eta: float | None  # when it should end (epoch seconds)


class JobSummary(msgspec.Struct, kw_only=True):
    id: str
    status: JobStatus
    conclusion: Conclusion | None
    progress: float
    repo: str
    head_sha: str
    head_ref: str | None
    pr_number: int | None
    trigger: str
    agents: list[str]
    created_at: float
    finished_at: float | None


class JobList(msgspec.Struct, kw_only=True):
    jobs: list[JobSummary]
    next_cursor: str | None


class WorkerBeat(msgspec.Struct, kw_only=True):
    """A worker's last heartbeat (every 5 s; gone 15 s after the worker stops)."""

    id: str
    host: str
    pid: int
    started_at: float
    seen_at: float
    jobs_running: int
    max_jobs: int


class Workers(msgspec.Struct, kw_only=True):
    alive: int
    arq_health: str | None  # arq's own health line
    jobs_running: int
    capacity: int  # job slots of the workers alive
    beats: list[WorkerBeat] = msgspec.field(name="list")


class QueueDepth(msgspec.Struct, kw_only=True):
    queued: int
    ready: int  # may run now
    deferred: int  # waiting to be retried
    by_priority: dict[str, int]  # jobs waiting per priority: high, normal, low


class AgentRuns(msgspec.Struct, kw_only=True):
    runs: int
    by_conclusion: dict[str, int]
    recent: int  # runs the durations are of (the last 200)
    duration_p50_s: float | None
    duration_p95_s: float | None
    last_finished_at: float | None


class FleetStatus(msgspec.Struct, kw_only=True):
    """`GET /api/v1/fleet/status`: workers, queue, each agent's recent runs, and a summary of Redis."""

    workers: Workers
    queue: QueueDepth
    agents: dict[str, AgentRuns]
    redis: dict[str, str | int]  # version, uptime, clients, memory, commands, role


class CancelAnswer(msgspec.Struct, kw_only=True):
    job_id: str
    status: Literal["cancelled", "cancelling"]
    status_url: str
    stream_url: str
    events_url: str


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    answer: type[Any] | None  # the success body's struct (None: a free-form object)
    status: int = 200
    body: type[Any] | None = None
    errors: tuple[int, ...] = (401, 429)
    parameters: tuple[dict[str, Any], ...] = ()
    example: dict[str, Any] | None = None
    tags: tuple[str, ...] = ("jobs",)
    extra: dict[str, Any] = field(default_factory=dict)
    media: str = "application/json"  # of the success answer
    form_file: str | None = None  # the body may also be multipart/form-data, with this field as a file part


JOB_ID = {"name": "job_id", "in": "path", "required": True,
          "schema": {"type": "string", "pattern": "^[0-9a-f]{24}$"}}
IDEMPOTENCY = {"name": "Idempotency-Key", "in": "header", "required": False,
               "schema": {"type": "string", "minLength": 1, "maxLength": 200},
               "description": "a request retried with the same key within 24 h gets the same job"}
SHA = "0123456789abcdef0123456789abcdef01234567"
START = (400, 401, 403, 413, 415, 422, 429, 503)

OPERATIONS: tuple[Operation, ...] = (
    Operation("post", "/test/execute", "Run the tests (and coverage) of a commit or branch", JobAccepted, 202,
              submit.TestExecute, START, (IDEMPOTENCY,), {"repo": "acme/widgets", "ref": "main", "coverage": True}),
    Operation("post", "/test/generate", "Generate tests for a file or function, validated by running them",
              JobAccepted, 202, submit.TestGenerate, START, (IDEMPOTENCY,),
              {"repo": "acme/widgets", "ref": "main", "target": "src/widgets/pricing.py::discount",
               "framework": "pytest", "test_type": "unit", "coverage_target": 80}),
    Operation("post", "/security/scan", "Scan a commit for secrets, insecure code and vulnerable dependencies",
              JobAccepted, 202, submit.SecurityScan, START, (IDEMPOTENCY,),
              {"repo": "acme/widgets", "sha": SHA, "scan_types": ["secrets", "sast"]}),
    Operation("post", "/performance/test", "Load-test a URL (k6-style thresholds)", JobAccepted, 202,
              submit.PerformanceTest, START, (IDEMPOTENCY,),
              {"repo": "acme/widgets", "sha": SHA, "target_url": "https://preview.example.com/", "virtual_users": 20,
               "duration": "1m", "ramp_up": "10s", "thresholds": ["p95 < 200ms", "errors < 1%"]}),
    Operation("post", "/coverage/analyze", "Coverage and patch coverage of a report", JobAccepted, 202,
              submit.CoverageAnalyze, (*START, 404), (IDEMPOTENCY,),
              {"repo": "acme/widgets", "sha": SHA, "base": "main", "report_name": "lcov.info",
               "report": "U0Y6Y2FsYy5weQpEQToxLDEKZW5kX29mX3JlY29yZAo="}, form_file="report"),
    Operation("post", "/quality/gate", "The quality gate over a finished job or given metrics", JobAccepted, 202,
              submit.GateRequest, (400, 401, 403, 404, 409, 413, 415, 422, 429), (IDEMPOTENCY,),
              {"metrics": {"coverage": {"patch_percent": 91.0, "patch_coverable": 40}},
               "conditions": {"min_patch_coverage": 85}}),
    Operation("get", "/job/{job_id}/status", "A job's status, steps and result", JobView,
              errors=(401, 403, 404, 429), parameters=(JOB_ID,)),
    Operation("post", "/job/{job_id}/cancel", "Cancel a queued or running job", CancelAnswer, 202,
              errors=(401, 403, 404, 409, 429), parameters=(JOB_ID,)),
    Operation("get", "/job/{job_id}/events", "A job's progress as Server-Sent Events, live (resumable)", None,
              errors=(401, 403, 404, 422, 429), media="text/event-stream", parameters=(
        JOB_ID, {"name": "Last-Event-ID", "in": "header", "required": False, "schema": {"type": "string"},
                 "description": "resume after this event id (EventSource sends it when it reconnects)"},
        {"name": "after", "in": "query", "schema": {"type": "string", "pattern": "^[0-9]+(-[0-9]+)?$"},
         "description": "resume after this event id"},
        {"name": "t", "in": "query", "schema": {"type": "string"},
         "description": "a signed link token of the job page, instead of the Authorization header"}),
              extra={"description": "Events `progress`, `complete` and `error` (then the stream ends), each with "
                                    "`id:` and JSON `data:`; `: ping` comments every 15 s. The same messages "
                                    "come as JSON over the WebSocket `GET /api/v1/job/{job_id}/stream` "
                                    "(`?after=<event id>` resumes; closed 1000 after the final message, "
                                    "4401/4403/4404 when refused)."}),
    Operation("get", "/jobs", "Jobs, newest first", JobList, errors=(401, 403, 422, 429), parameters=(
        {"name": "repo", "in": "query", "schema": {"type": "string"}},
        {"name": "status", "in": "query", "schema": {"enum": ["queued", "running", "completed", "failed",
                                                                "cancelled", "skipped"]}},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
        {"name": "cursor", "in": "query", "schema": {"type": "string", "pattern": "^[0-9]+$"}})),
    Operation("get", "/fleet/status", "Workers, queue, agents' recent runs, Redis", FleetStatus,
              errors=(401, 403, 429), tags=("fleet",)),
    Operation("post", "/fleet/status", "The same as GET", FleetStatus, errors=(401, 403, 429), tags=("fleet",)),
)

STRUCTS = (Problem, JobAccepted, JobView, JobList, CancelAnswer, FleetStatus, submit.TestExecute, submit.TestGenerate,
           submit.SecurityScan,
           submit.PerformanceTest, submit.CoverageAnalyze, submit.GateRequest)


def _header(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/headers/{name}"}


def _required_header(description: str, kind: str = "integer") -> dict[str, Any]:
    return {"required": True, "description": description, "schema": {"type": kind}}


HEADERS: dict[str, dict[str, Any]] = {
    "X-RateLimit-Limit": _required_header("requests allowed in the window (the key's limit, or AQE_RATE_LIMIT)"),
    "X-RateLimit-Remaining": _required_header("requests left in the sliding window"),
    "X-RateLimit-Reset": _required_header("seconds until a request is free again"),
    "Retry-After": _required_header("seconds to wait before trying again"),
    "WWW-Authenticate": _required_header("`Bearer` with the reason the credentials were refused", "string"),
}
RATE_HEADERS = {name: _header(name) for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")}
EXTRA_HEADERS = {"429": {"Retry-After": _header("Retry-After")},
                 "401": {"WWW-Authenticate": _header("WWW-Authenticate")}}


def _ref(kind: type[Any]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{kind.__name__}"}


def _operation(op: Operation) -> dict[str, Any]:
    schema = _ref(op.answer) if op.answer else {"type": "string" if op.media.startswith("text/") else "object"}
    success: dict[str, Any] = {"description": "OK" if op.status == 200 else "Accepted",
                               "content": {op.media: {"schema": schema}}}
    responses = {str(op.status): success} | {
        str(code): {"description": Problem.__doc__ or "", "content": {"application/problem+json": {
            "schema": _ref(Problem)}}} for code in op.errors}
    for code, response in responses.items():
        response["headers"] = {**RATE_HEADERS, **EXTRA_HEADERS.get(code, {})}
    out: dict[str, Any] = {"summary": op.summary, "tags": list(op.tags), "parameters": list(op.parameters),
                           "responses": responses, "security": [{"bearer": []}], **op.extra}
    if op.body is not None:
        media: dict[str, Any] = {"schema": _ref(op.body)}
        if op.example is not None:
            media["example"] = op.example
        out["requestBody"] = {"required": True, "content": {"application/json": media}}
    return out


def form_schema(body: dict[str, Any], file_field: str) -> dict[str, Any]:
    """A JSON body's schema as multipart/form-data fields (no nulls in a form), `file_field` a file part."""
    fields = {}
    for name, schema in body["properties"].items():
        choices = [choice for choice in schema.get("anyOf", [schema]) if choice.get("type") != "null"]
        merged = {**schema, **choices[0]}
        fields[name] = {key: value for key, value in merged.items() if key not in ("anyOf", "default")}
    fields[file_field] = {"type": "string", "contentMediaType": "application/octet-stream",
                          "description": "the report file (instead of its base64)"}
    return {"type": "object", "properties": fields, "required": body.get("required", [])}


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    _, components = msgspec.json.schema_components(STRUCTS, ref_template="#/components/schemas/{name}")
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        operation = paths.setdefault(f"/api/v1{op.path}", {})[op.method] = _operation(op)
        if op.form_file is not None and op.body is not None:
            operation["requestBody"]["content"]["multipart/form-data"] = {
                "schema": form_schema(components[op.body.__name__], op.form_file)}
    return {
        "openapi": "3.1.0",
        "info": {"title": "AQE REST API", "version": VERSION,
                 "description": "Start AQE's analyses from any CI system and follow them. Every POST that starts a "
                                "job answers 202 with where to follow it."},
        "paths": paths,
        "components": {"schemas": components, "headers": HEADERS, "securitySchemes": {"bearer": {
            "type": "http", "scheme": "bearer",
            "description": "an API key (`aqe_…`, made with `aqe api generate-key`), a token from `aqe api "
                           "issue-token` (JWT, HS256), or the OIDC ID token of a GitHub Actions or GitLab CI job "
                           "(from an issuer in AQE_OIDC_ISSUERS)"}}},
    }


async def openapi_json(request: Request) -> Response:
    return Response(msgspec.json.encode(document()), media_type="application/json")


SWAGGER_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>AQE REST API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head><body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/swagger-ui-standalone-preset.js"></script>
<script src="/docs/assets/aqe-init.js"></script></body></html>"""

SWAGGER_INIT = """window.onload = function () {
  window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset], layout: "StandaloneLayout"});
};"""


async def swagger_page(request: Request) -> HTMLResponse:
    return HTMLResponse(SWAGGER_PAGE)


async def swagger_init(request: Request) -> Response:
    return Response(SWAGGER_INIT, media_type="text/javascript")


REDOC_ASSETS = Path(__file__).parent / "redoc"
REDOC_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>AQE REST API</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head><body>
<redoc spec-url="/openapi.json"></redoc><script src="/redoc/assets/redoc.standalone.js"></script></body></html>"""


async def redoc_page(request: Request) -> HTMLResponse:
    return HTMLResponse(REDOC_PAGE)


routes = [
    Route("/openapi.json", openapi_json, methods=["GET"]),
    Route("/redoc", redoc_page, methods=["GET"]),
    Mount("/redoc/assets", app=StaticFiles(directory=str(REDOC_ASSETS)), name="redoc-assets"),
    Route("/docs", swagger_page, methods=["GET"]),
    Route("/docs/assets/aqe-init.js", swagger_init, methods=["GET"]),
    Mount("/docs/assets", app=StaticFiles(directory=str(swagger_ui_path)), name="swagger-assets"),
]
