"""The POST endpoints that start a job: `/test/execute`, `/security/scan`, `/performance/test`,
`/coverage/analyze` and `/quality/gate`.

Each body names the code (`repo`: a repository the GitHub App is installed on, a GitLab project path or a git URL,
plus `sha` or `ref`) and the agent's
settings; those are validated here, against the same `.aqe.yml` section structs the worker uses, so a bad
value is a 422 naming the field, not a failed job. The job is enqueued like a webhook's (one Redis round trip)
and answered 202 with where to follow it. Results go to the job record and its stream only: an API job
writes nothing to the forge.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from app.api.auth import Principal, require_job_visible, require_repo, require_runnable, require_scope
from app.api.ratelimit import client_ip
from app.api.errors import ApiError
from app.api.jobs import JOB_ID_RE, job_links
from jobs import audit, netpolicy
from jobs.agents.gate import gate_result
from jobs.callbacks import checked_callback_url
from jobs.coverage.config import CoverageConfig
from jobs.coverage.reports import ReportError, parse_report
from jobs.forges.git import git_url_error, repo_name
from jobs.forges.registry import forge as forge_named
from jobs.gate.config import GateConfig
from jobs.model import ALL_AGENTS, AgentResult, Conclusion, JobRecord, Priority, RunRequest, now
from jobs.store import EnqueueOutcome, new_job_id
from jobs.performance.config import PerformanceConfig
from jobs.repo_config import TestsConfig
from jobs.security.config import SecurityConfig
from jobs.testgen.config import JS_FRAMEWORKS, Framework, TestGenerationConfig, TestType
from jobs.settings import Settings

SHA_RE = re.compile(r"^[0-9a-f]{40}$")
REPO_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$")
PROJECT_PATH_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}(?:/[A-Za-z0-9_.-]{1,100}){1,19}$")  # GitLab: nested groups
REF_RE = re.compile(r"^(?!.*\.\.)(?!/)[A-Za-z0-9._/-]{1,200}(?<!/)$")
MAX_BODY_BYTES = 1024 * 1024
_encode = msgspec.json.Encoder().encode


class Target(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    repo: str  # "owner/name" on GitHub, "group/…/project" on GitLab, or the https:// URL of a public repository
    forge: Literal["github", "gitlab"] | None = None  # which forge an "owner/name" is on (default: see repo_forge)
    sha: str | None = None
    ref: str | None = None  # a branch: its tip when the job starts
    priority: Priority = "normal"
    callback_url: str | None = None  # POSTed the result, signed, when the job ends


class TestExecute(Target, kw_only=True, forbid_unknown_fields=True):
    __test__ = False
    command: str | None = None  # default: detected (pytest for Python repositories)
    setup: list[str] | None = None
    timeout: int | None = None
    env: dict[str, str] | None = None  # variables for setup and tests (not secret: shown on the job)
    coverage: bool = True  # also run the coverage agent on the tests' report
    parallel: bool | int | Literal["auto"] | None = None  # pytest workers: a number, "auto"/true (one per CPU)


class SecurityScan(Target, kw_only=True, forbid_unknown_fields=True):
    scan_types: list[Literal["sast", "secrets", "dependencies"]] = msgspec.field(
        default_factory=lambda: ["sast", "secrets", "dependencies"])
    fail_on: Literal["critical", "high", "medium", "low", "none"] | None = None


class TestGenerate(Target, kw_only=True, forbid_unknown_fields=True):
    """Tests for a file or one function (`target`), or for what changed since `base`."""

    __test__ = False
    target: str | None = None  # "src/shop/cart.py" or "src/shop/cart.py::total" (a method: "Cart.total")
    base: str | None = None  # without a target: the functions changed since this commit or branch
    framework: Framework = "pytest"
    test_type: TestType = "unit"
    coverage_target: float | None = None  # % of the targeted functions' lines the kept tests must run
    max_functions: int | None = None
    timeout: int | None = None  # seconds for the generation (default 180)
    setup: list[str] | None = None  # commands that install the repository's dependencies (as `tests.setup`)


class PerformanceTest(Target, kw_only=True, forbid_unknown_fields=True):
    target_url: str
    virtual_users: int | None = None
    duration: str | float | None = None
    ramp_up: str | float | None = None
    thresholds: list[str] | None = None
    requests: list[dict[str, Any]] | None = None


def _set(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def tests_job(body: TestExecute) -> tuple[list[str], dict[str, dict[str, Any]]]:
    options = {"tests": _set({"command": body.command, "setup": body.setup, "timeout": body.timeout, "env": body.env,
                              "parallel": "auto" if body.parallel is True else body.parallel})}
    if body.parallel is False:
        options["tests"]["parallel"] = None  # one process, whatever `.aqe.yml` says
    return (["tests", "coverage"] if body.coverage else ["tests"]), options


MAX_TARGET_LENGTH = 300


JS_SOURCE = re.compile(r"\.(?:[cm]?js|jsx|[cm]?ts|tsx)$")


def checked_target(body: TestGenerate) -> str | None:
    """The request's `target` (a file, a directory, or `path::function`), with a 422 naming the field for one
    that cannot name anything in a repository or that the framework does not write tests for."""
    target = body.target
    if target is None:
        if body.base is None:
            raise ApiError(422, "invalid_request", "target: name a file, a directory or `path::function` (or give "
                                                   "base: the functions changed since it get tests)")
        return None
    if body.base is not None:
        raise ApiError(422, "invalid_request", "base: give target or base, not both")
    path, _, function = target.partition("::")
    if (not path or len(target) > MAX_TARGET_LENGTH or path.startswith("/") or ".." in path.split("/")
            or "\\" in path or any(ord(char) < 32 or ord(char) == 127 for char in target)
            or (function and not re.fullmatch(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)?", function))):
        raise ApiError(422, "invalid_request", f"target: a relative path in the repository (no `..`), optionally "
                                               f"with ::function or ::Class.method, at most {MAX_TARGET_LENGTH} "
                                               "characters")
    js_framework = body.framework in JS_FRAMEWORKS
    if path.endswith(".py") and js_framework:
        raise ApiError(422, "invalid_request", f"framework: {body.framework} writes tests for JavaScript/TypeScript; "
                                               f"the target is a Python file (use pytest)")
    if JS_SOURCE.search(path) and not js_framework:
        raise ApiError(422, "invalid_request", "framework: pytest writes tests for Python; the target is a "
                                               "JavaScript/TypeScript file (use jest, vitest or mocha)")
    return target


def testgen_job(body: TestGenerate) -> tuple[list[str], dict[str, dict[str, Any]]]:
    options = {"test_generation": _set({"enabled": True, "framework": body.framework, "test_type": body.test_type,
                                        "coverage_target": body.coverage_target, "max_functions": body.max_functions,
                                        "timeout": body.timeout})}
    if body.setup is not None:
        options["tests"] = {"setup": body.setup}
    return ["tests", "test-generation"], options


def security_job(body: SecurityScan) -> tuple[list[str], dict[str, dict[str, Any]]]:
    scanners = [{"sast": "sast", "secrets": "secrets", "dependencies": "dependencies"}[t] for t in body.scan_types]
    if not scanners:
        raise ApiError(422, "invalid_request", "scan_types: name at least one of sast, secrets, dependencies")
    return ["security"], {"security": _set({"scanners": sorted(set(scanners)), "fail_on": body.fail_on,
                                            "new_code_only": False})}


def performance_job(body: PerformanceTest) -> tuple[list[str], dict[str, dict[str, Any]]]:
    return ["performance"], {"performance": _set({
        "target_url": body.target_url, "virtual_users": body.virtual_users, "duration": body.duration,
        "ramp_up": body.ramp_up, "thresholds": body.thresholds, "requests": body.requests, "run_on": "both"})}


SECTIONS: dict[str, type[msgspec.Struct]] = {"tests": TestsConfig, "security": SecurityConfig,
                                             "performance": PerformanceConfig, "coverage": CoverageConfig,
                                             "test_generation": TestGenerationConfig}


def validated_options(options: dict[str, dict[str, Any]]) -> None:
    """Raise a 422 naming the field when a section would not accept these values."""
    for section, values in options.items():
        try:
            msgspec.convert(values, SECTIONS[section])
        except (msgspec.ValidationError, ValueError) as exc:
            message = re.sub(rf"`\$\.{section}\.", "`$.", str(exc)).replace(" - at ", " at ")
            raise ApiError(422, "invalid_request", message) from None


def repo_forge(repo: str, asked: str | None, settings: Settings) -> str:
    """The forge a repository path is on: the one asked for; GitLab for a path of three or more parts (GitHub
    has only `owner/name`); otherwise GitHub when its App is configured, else GitLab. ApiError when that forge
    is not configured here, or cannot hold such a path."""
    if not PROJECT_PATH_RE.match(repo) or any(part.strip(".") == "" for part in repo.split("/")):
        raise ApiError(422, "invalid_request", f"repo: {repo[:120]!r} is neither 'owner/name' (GitHub), a GitLab "
                                               "project path ('group/subgroup/project') nor the https:// URL of a "
                                               "git repository")
    nested = not REPO_RE.match(repo)
    if asked == "github" and nested:
        raise ApiError(422, "invalid_request", "repo: a GitHub repository is 'owner/name'; this path is a GitLab "
                                               "project's (send forge: gitlab)")
    forge = asked or ("gitlab" if nested or (settings.github is None and settings.gitlab.token) else "github")
    if forge == "github" and settings.github is None:
        raise ApiError(503, "not_configured", "the GitHub App is not configured on this AQE: "
                                              + ", ".join(settings.missing)
                                              + ("" if asked else " (for a GitLab project, set GITLAB_TOKEN)"))
    if forge == "gitlab" and settings.gitlab.token is None:
        raise ApiError(503, "not_configured", "GitLab is not configured on this AQE: GITLAB_TOKEN is not set")
    return forge


def run_request(body: Target, agents: list[str], options: dict[str, dict[str, Any]], settings: Settings,
                endpoint: str, bound_forge: str | None = None) -> RunRequest:
    """The job a body asks for. `bound_forge`: the forge of the caller's CI ID token, which a `group/project`
    path is on unless the body says otherwise."""
    by_url = "://" in body.repo or body.repo.startswith("ext::")
    if by_url and (why := git_url_error(body.repo)):
        raise ApiError(422, "invalid_request", f"repo: the URL {why}")
    if by_url and body.forge is not None:
        raise ApiError(422, "invalid_request", "forge: a repository given by URL is cloned as it is; name a "
                                               "GitHub repository or GitLab project by its path to use the forge")
    if (body.sha is None) == (body.ref is None):
        raise ApiError(422, "invalid_request", "give exactly one of sha (40 hex characters) or ref (a branch)")
    if body.sha is not None and not SHA_RE.match(body.sha):
        raise ApiError(422, "invalid_request", "sha: must be a full commit sha, 40 lowercase hex characters")
    if body.ref is not None and not REF_RE.match(body.ref.removeprefix("refs/heads/")):
        raise ApiError(422, "invalid_request", f"ref: {body.ref[:120]!r} is not a branch name")
    forge = "git" if by_url else repo_forge(body.repo, body.forge or bound_forge, settings)
    validated_options(options)
    if body.callback_url is not None and (why := checked_callback_url(body.callback_url)):
        raise ApiError(422, "invalid_request", f"callback_url: {why}")
    repo = repo_name(body.repo) if by_url else body.repo
    clone_url = body.repo if by_url else f"{forge_named(forge).web_url(settings)}/{body.repo}.git"
    return RunRequest(forge=forge, repo=repo, clone_url=clone_url,
                      head_sha=body.sha or "", head_ref=body.ref.removeprefix("refs/heads/") if body.ref else None,
                      trigger=f"api.{endpoint}", agents=agents, options=options, priority=body.priority,
                      callback_url=body.callback_url)


IDEMPOTENCY_S = 24 * 3600  # a request retried with the same Idempotency-Key within this gets the same job


def delivery_key(request: Request, principal: str) -> tuple[str, int]:
    """The Idempotency-Key (per caller) as the enqueue script's dedupe key, and how long it is kept; without one,
    a fresh key kept not at all (nothing can ask for it again)."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return f"aqe:delivery:api:{secrets.token_hex(12)}", 0
    if not 1 <= len(key) <= 200:
        raise ApiError(422, "invalid_request", "Idempotency-Key: 1 to 200 characters")
    return "aqe:delivery:api:" + hashlib.sha256(f"{principal}\0{key}".encode()).hexdigest(), IDEMPOTENCY_S


async def _read_capped(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it is longer than `limit`: never read whole into memory first."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "too_large", f"the body is over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "too_large", f"the body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _body(request: Request, kind: type[Any], limit: int = MAX_BODY_BYTES) -> Any:
    if "json" not in request.headers.get("content-type", "application/json"):
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    raw = await _read_capped(request, limit)
    try:
        return msgspec.json.decode(raw or b"{}", type=kind)
    except msgspec.ValidationError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None
    except msgspec.DecodeError:
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from None


async def accepted(request: Request, principal: Principal, run: RunRequest, name: str) -> Response:
    """Enqueue `run` for `principal` (403 for a repository, an analysis or a commit it may not use), audit it,
    answer 202."""
    require_repo(principal, run.repo, run.forge)
    require_runnable(principal, name.replace("-", "/", 1), run.head_sha)
    settings: Settings = request.app.state.settings
    if run.forge == "git" and (why := await netpolicy.refusal(run.clone_url, settings.denied_networks)):
        raise ApiError(422, "invalid_request", f"repo: the URL {why}")
    store = request.app.state.store
    started = audit.Draft(actor=principal.actor, action="job.started", ip=client_ip(request),
                          detail=f"api.{name} {run.repo}", at=time.time())
    key, remember_s = delivery_key(request, principal.limit_identity)
    outcome = await store.enqueue(run, delivery_key=key, event="api", action=name, audited=started,
                                  remember_s=remember_s)  # audited in the same round trip
    return await _answer(request, principal, outcome, "queued", name, run.repo, audited=True)


async def _answer(request: Request, principal: Principal, outcome: EnqueueOutcome, status: str, name: str,
                  repo: str, *, audited: bool = False, **extra: Any) -> Response:
    if outcome.state in ("queued", "coalesced", "created") and not audited:
        store = request.app.state.store
        await audit.record(store.pipelined or store.redis, actor=principal.actor, action="job.started",
                           target=outcome.job_id, ip=client_ip(request), detail=f"api.{name} {repo}")
    settings: Settings = request.app.state.settings
    answer = {"job_id": outcome.job_id, "status": status, "outcome": outcome.state, **extra,
              **job_links(settings.public_url, outcome.job_id)}
    return Response(_encode(answer), status_code=202, media_type="application/json",
                    headers={"Location": answer["status_url"]})


def endpoint(kind: type[Any], build: Callable[[Any], tuple[list[str], dict[str, dict[str, Any]]]],
             name: str) -> Callable[[Request], Any]:
    async def start_job(request: Request) -> Response:
        principal = await require_scope(request, "jobs:write")
        body = await _body(request, kind)
        agents, options = build(body)
        run = run_request(body, agents, options, request.app.state.settings, name, principal.forge)
        return await accepted(request, principal, run, name)

    start_job.__name__ = f"start_{name.replace('-', '_')}"
    return start_job


def with_base(run: RunRequest, base: str | None) -> None:
    """What changed is measured from `base` (a commit sha or a branch, at its merge base with the head)."""
    if base is None:
        return
    if SHA_RE.match(base):
        run.base_sha = base
    elif REF_RE.match(base):
        run.base_ref = base
    else:
        raise ApiError(422, "invalid_request", "base: a full commit sha or a branch name")


test_execute = endpoint(TestExecute, tests_job, "test-execute")
security_scan = endpoint(SecurityScan, security_job, "security-scan")
performance_test = endpoint(PerformanceTest, performance_job, "performance-test")


async def test_generate(request: Request) -> Response:
    """POST /api/v1/test/generate: the tests agent (for the repository's environment), then test generation."""
    principal = await require_scope(request, "jobs:write")
    body = await _body(request, TestGenerate)
    target = checked_target(body)
    settings: Settings = request.app.state.settings
    if body.coverage_target is not None and body.framework in JS_FRAMEWORKS:
        raise ApiError(422, "invalid_request", f"coverage_target: measured for Python (pytest) tests only, not "
                                               f"with framework {body.framework}")
    needs_llm = [why for why, needed in ((f"framework {body.framework}", body.framework in JS_FRAMEWORKS),
                                         (f"test_type {body.test_type}", body.test_type != "unit")) if needed]
    if needs_llm and not (settings.llm_url and settings.llm_model):
        raise ApiError(422, "invalid_request", f"{' and '.join(needs_llm)}: written by the LLM backend, which this "
                                               "AQE does not have (AQE_LLM_URL and AQE_LLM_MODEL are not set)")
    agents, options = testgen_job(body)
    run = run_request(body, agents, options, settings, "test-generate", principal.forge)
    run.target = target
    with_base(run, body.base)
    return await accepted(request, principal, run, "test-generate")


# ------------------------------------------------------------------------------------ the gate


class GateRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The gate over a finished job's results (`job_id`) or over figures a caller measured (`metrics`)."""

    job_id: str | None = None
    metrics: dict[str, dict[str, float | int | str]] | None = None  # agent -> its metrics, named as AQE's agents do
    conclusions: dict[str, Conclusion] = {}  # agent -> its conclusion (default: success)
    conditions: dict[str, Any] = {}  # `quality_gate` keys laid over the defaults (or the job's `.aqe.yml`)
    repo: str = ""  # what the figures are of, for listings
    callback_url: str | None = None  # POSTed the result, signed, as for any job (by a worker, off this request)


def gate_config(conditions: dict[str, Any]) -> GateConfig:
    try:
        return msgspec.convert(conditions, GateConfig)
    except (msgspec.ValidationError, ValueError) as exc:
        message = str(exc).replace("`$.quality_gate.", "`$.").replace("`$.", "`$.conditions.")
        raise ApiError(422, "invalid_request", message) from None


def given_results(metrics: dict[str, dict[str, float | int | str]],
                  conclusions: dict[str, Conclusion]) -> dict[str, AgentResult]:
    unknown = sorted(set(metrics) - set(ALL_AGENTS) | set(conclusions) - set(ALL_AGENTS))
    if unknown:
        raise ApiError(422, "invalid_request", f"metrics: unknown agent {unknown[0]!r}; the agents are "
                                               + ", ".join(ALL_AGENTS))
    return {agent: AgentResult(agent=agent, conclusion=conclusions.get(agent, "success"),
                               title=f"{agent}: figures given with the request", summary="", metrics=values)
            for agent, values in metrics.items()}


async def _gate_inputs(request: Request, principal: Principal,
                       body: GateRequest) -> tuple[dict[str, AgentResult], RunRequest]:
    if (body.job_id is None) == (body.metrics is None):
        raise ApiError(422, "invalid_request", "give exactly one of job_id (a finished job) or metrics")
    if body.metrics is not None:
        request_of = RunRequest(forge="api", repo=body.repo, clone_url="", head_sha="", trigger="api.quality-gate",
                                agents=["quality-gate"])
        return given_results(body.metrics, body.conclusions), request_of
    record = await request.app.state.store.get(body.job_id) if JOB_ID_RE.match(body.job_id or "") else None
    if record is None:
        raise ApiError(404, "job_not_found", f"job_id: no job {str(body.job_id)[:40]!r}")
    require_job_visible(principal, record.id, record.request.repo, record.request.forge)
    if record.status != "completed":
        raise ApiError(409, "job_not_finished", f"job {record.id} is {record.status}; the gate reads a completed job")
    source = record.request
    request_of = RunRequest(forge=source.forge, repo=source.repo, clone_url=source.clone_url,
                            head_sha=source.head_sha, head_ref=source.head_ref, pr_number=source.pr_number,
                            trigger="api.quality-gate", agents=["quality-gate"])
    return {r.agent: r for r in record.results if r.agent != "quality-gate"}, request_of


async def quality_gate(request: Request) -> Response:
    """POST /api/v1/quality/gate: answered at once; the job it creates is already completed."""
    principal = await require_scope(request, "jobs:write")
    body = await _body(request, GateRequest)
    config = gate_config(body.conditions)
    if body.callback_url is not None and (why := checked_callback_url(body.callback_url)):
        raise ApiError(422, "invalid_request", f"callback_url: {why}")
    results, request_of = await _gate_inputs(request, principal, body)
    if request_of.repo:
        require_repo(principal, request_of.repo, request_of.forge)
    require_runnable(principal, "quality/gate", request_of.head_sha or None)
    request_of.callback_url = body.callback_url
    gate = gate_result("quality-gate", config, results)
    started = now()
    record = JobRecord(id=new_job_id(), status="completed", request=request_of, created_at=started,
                       started_at=started, finished_at=started, progress=100.0, agents=["quality-gate"],
                       results=[gate], conclusion=gate.conclusion)
    store = request.app.state.store
    outcome = await store.create_finished(record, *delivery_key(request, principal.limit_identity))
    if outcome.state == "created" and body.callback_url:
        await store.enqueue_callback(record.id)
    return await _answer(request, principal, outcome, "completed", "quality-gate", request_of.repo,
                         conclusion=gate.conclusion)


# ------------------------------------------------------------------------------ coverage of a report


class CoverageAnalyze(Target, kw_only=True, forbid_unknown_fields=True):
    """Coverage of a report sent with the request (`report`, base64) or kept by a job (`job_id`)."""

    report: str | None = None  # base64 of a Cobertura XML, LCOV, coverage.py JSON or JaCoCo XML report
    report_name: str = ""  # its file name, a hint for the format ("lcov.info", "coverage.json")
    job_id: str | None = None  # a job whose tests wrote a report (kept as its `coverage.xml` artifact)
    base: str | None = None  # a commit sha or branch: patch coverage of what changed since (merge base)
    patch_target: float | None = None
    total_target: float | None = None


MAX_REPORT_BYTES = 50 * 1024 * 1024


def decoded_report(body: CoverageAnalyze) -> bytes:
    try:
        data = base64.b64decode(body.report or "", validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, "invalid_request", "report: not base64") from None
    return data


def checked_report(data: bytes, name: str) -> None:
    """A 422 now, not a failed job later, for a file that is not a coverage report."""
    if not data:
        raise ApiError(422, "invalid_request", "report: empty")
    if len(data) > MAX_REPORT_BYTES:
        raise ApiError(413, "too_large", f"report: over {MAX_REPORT_BYTES // (1024 * 1024)} MiB")
    try:
        parse_report(data, name)
    except ReportError as exc:
        raise ApiError(422, "invalid_request", f"report: not a coverage report AQE reads: {exc}") from None


def coverage_options(body: CoverageAnalyze) -> dict[str, dict[str, Any]]:
    return {"coverage": _set({"patch_target": body.patch_target, "total_target": body.total_target})}


async def _multipart_body(request: Request) -> tuple[CoverageAnalyze, bytes | None]:
    """`-F report=@coverage.xml -F repo=... -F sha=...`: the file part and the other fields."""
    async with request.form(max_files=1, max_fields=20) as form:
        fields: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
        upload = form.get("report")
        if upload is not None and not isinstance(upload, str) and (upload.size or 0) > MAX_REPORT_BYTES:
            raise ApiError(413, "too_large", f"report: over {MAX_REPORT_BYTES // (1024 * 1024)} MiB")
        data = await upload.read() if upload is not None and not isinstance(upload, str) else None
        if data is not None:
            fields.pop("report", None)
            fields.setdefault("report_name", upload.filename or "")  # type: ignore[union-attr]
    for number in ("patch_target", "total_target"):
        if number in fields:
            try:
                fields[number] = float(fields[number])
            except ValueError:
                raise ApiError(422, "invalid_request", f"{number}: not a number") from None
    try:
        return msgspec.convert(fields, CoverageAnalyze), data
    except msgspec.ValidationError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None


async def coverage_analyze(request: Request) -> Response:
    principal = await require_scope(request, "jobs:write")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_REPORT_BYTES * 4 // 3 + 64 * 1024:  # base64 or multipart overhead
        raise ApiError(413, "too_large", f"report: over {MAX_REPORT_BYTES // (1024 * 1024)} MiB")
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        body, data = await _multipart_body(request)
    else:
        body, data = await _body(request, CoverageAnalyze, limit=MAX_REPORT_BYTES * 4 // 3 + 64 * 1024), None
    store = request.app.state.store
    if data is None and body.report is not None:
        data = decoded_report(body)
    if (data is None) == (body.job_id is None):
        raise ApiError(422, "invalid_request", "give exactly one of report (the file, or its base64) or job_id")
    settings: Settings = request.app.state.settings
    run = run_request(body, ["coverage"], coverage_options(body), settings, "coverage-analyze", principal.forge)
    with_base(run, body.base)
    require_repo(principal, run.repo, run.forge)  # before the report is stored: a refused request leaves nothing
    require_runnable(principal, "coverage/analyze", run.head_sha)
    if data is not None:
        await asyncio.to_thread(checked_report, data, body.report_name)
        name = Path(body.report_name).name or "coverage-report"
        inputs = {name: await store.save_upload(data)}
    else:
        record = await store.get(body.job_id) if JOB_ID_RE.match(body.job_id or "") else None
        if record is None or "coverage.xml" not in record.artifacts:
            raise ApiError(404, "report_not_found", f"job_id: no job {str(body.job_id)[:40]!r} with a kept "
                                                    "coverage report (its tests must have written one)")
        require_job_visible(principal, record.id, record.request.repo, record.request.forge)
        inputs = {"coverage.xml": f"aqe:job:{record.id}:artifact:coverage.xml"}
    run.inputs = inputs
    return await accepted(request, principal, run, "coverage-analyze")
