"""The forge-neutral job model shared by the web process and the worker.

Only these plain structs cross the queue and live in Redis; everything forge-specific is
translated into them at the edge (``jobs.forges.<forge>.webhook``) and back out of them in the
forge's reporter.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, Literal

import msgspec

Level = Literal["failure", "warning", "notice"]
Priority = Literal["high", "normal", "low"]
Conclusion = Literal["success", "failure", "neutral", "cancelled", "skipped", "timed_out", "action_required"]
JobStatus = Literal["queued", "running", "completed", "failed", "cancelled", "skipped"]

TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled", "skipped"})
# Every agent, in the order checks are listed; `.aqe.yml`'s `agents` section picks among them per event.
ALL_AGENTS = ("tests", "coverage", "security", "quality", "test-generation", "performance", "quality-gate")
PULL_REQUEST_AGENTS = ALL_AGENTS
PUSH_AGENTS = ("tests", "coverage", "security", "quality", "performance", "quality-gate")  # no PR to offer tests to


class RunRequest(msgspec.Struct, kw_only=True):
    """One analysis of one commit, as asked for by a webhook, a comment or the API."""

    forge: str
    repo: str  # "owner/name" on GitHub, the project path on GitLab
    clone_url: str
    head_sha: str
    trigger: str  # what asked for it, e.g. "pull_request.synchronize", "check_run.rerequested"
    agents: list[str]  # empty: what `.aqe.yml` (`agents.pull_request` or `agents.push`) says
    base_sha: str | None = None
    head_ref: str | None = None
    base_ref: str | None = None
    pr_number: int | None = None
    fork: bool = False
    draft: bool = False
    trusted: bool = False  # a maintainer asked for this run explicitly (e.g. "/aqe run")
    propose_tests: bool = False  # open a pull request with the generated tests ("/aqe generate-tests")
    options: dict[str, dict[str, Any]] = {}  # per `.aqe.yml` section, keys an API request sets over the file's
    priority: Priority = "normal"  # which jobs a worker takes first
    inputs: dict[str, str] = {}  # files the request brought, e.g. an uploaded coverage report: name -> Redis key
    callback_url: str | None = None  # POSTed the result when the job ends (`jobs.callbacks`)
    target: str | None = None  # what an API request wants tests for: a file or `path::function`
    installation_id: int | None = None
    delivery_id: str | None = None
    sender: str | None = None

    @property
    def is_pull_request(self) -> bool:
        return self.pr_number is not None

    @property
    def is_branch_push(self) -> bool:
        """A run of a branch's own history (a push), whose results are the branch's baseline."""
        return self.pr_number is None and self.head_ref is not None and self.head_ref == self.base_ref

    def dedupe_key(self, kind: str = "analyse") -> str:
        """What makes two requests "the same run": one active job per such key."""
        agents = ",".join(sorted(self.agents)) or "configured"
        commit = self.head_sha or (f"pr{self.pr_number}" if self.pr_number else f"ref:{self.head_ref}")
        key = f"{self.forge}:{self.repo}:{commit}:{kind}:{agents}"
        if self.options or self.inputs:  # the same commit with other settings or files is another analysis
            what = {"options": self.options, "inputs": self.inputs, "base": self.base_sha or self.base_ref}
            key += ":" + hashlib.sha256(msgspec.json.encode(what, order="sorted")).hexdigest()[:16]
        return key

    @property
    def from_api(self) -> bool:
        return self.trigger.startswith("api.")


class Finding(msgspec.Struct, kw_only=True):
    """One thing an agent wants to point at: a file, a line range and a message."""

    path: str
    start_line: int
    end_line: int
    level: Level
    rule: str
    message: str
    title: str | None = None
    raw_details: str | None = None


class AgentResult(msgspec.Struct, kw_only=True):
    agent: str
    conclusion: Conclusion
    title: str
    summary: str
    text: str = ""
    metrics: dict[str, float | int | str] = {}
    findings: list[Finding] = []
    duration_s: float = 0.0


class Step(msgspec.Struct, kw_only=True):
    name: str
    started_at: float
    finished_at: float | None = None

    @property
    def duration_s(self) -> float | None:
        return None if self.finished_at is None else round(self.finished_at - self.started_at, 3)


class CallbackAttempt(msgspec.Struct, kw_only=True):
    at: float
    status: int | None  # the HTTP status the callback URL answered, None when it did not answer
    error: str | None
    duration_s: float


class JobRecord(msgspec.Struct, kw_only=True):
    """What `GET /api/v1/job/{id}/status` shows; stored as JSON at ``aqe:job:{id}``."""

    id: str
    status: JobStatus
    request: RunRequest
    created_at: float
    progress: float = 0.0
    step: str | None = None
    steps: list[Step] = []
    started_at: float | None = None
    finished_at: float | None = None
    agents: list[str] = []  # the checks this job runs: the request's, or those `.aqe.yml` selects
    results: list[AgentResult] = []
    conclusion: Conclusion | None = None
    error: str | None = None
    reason: str | None = None  # why a job was skipped
    artifacts: list[str] = []  # files kept with the job (`/jobs/{id}/artifacts/{name}`), e.g. generated-tests.patch
    callbacks: list[CallbackAttempt] = []
    report_refs: dict[str, int] = {}  # forge objects per agent (check run ids), reused if the job is retried
    attempts: int = 0
    expected_s: float | None = None  # how long its repository's recent jobs of its kind took (jobs.eta)
    attempt_started_at: float | None = None  # when its latest try began (`started_at`: its first)


def now() -> float:
    return round(time.time(), 3)


json_encoder = msgspec.json.Encoder()
record_decoder = msgspec.json.Decoder(JobRecord)
