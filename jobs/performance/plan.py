"""What a load test does, whichever engine runs it: absolute URLs, final headers and bodies, the schedule.

The schedule is k6's `ramping-vus` executor ramping from 0 to N users over `ramp_up`, then holding N
until `duration` (the ramp-up is part of the duration): user k of N (1-based) starts at
`ramp_up * k / N`, and loops over the requests until the deadline. A request under way at the
deadline is finished and counted; none starts after it.
"""

from __future__ import annotations

from typing import Any

import msgspec

from jobs.performance.config import PerformanceConfig, RequestConfig
from jobs.performance.stats import DEFAULT_PERCENTILES
from jobs.performance.thresholds import percentiles_needed
from jobs.performance.urls import basic_auth_header, display_path, request_url, url_secrets

USER_AGENT = "AQE-performance/1.0"
PLAIN_HEADERS = frozenset({"user-agent", "content-type", "accept", "accept-encoding", "content-length"})


class PlannedRequest(msgspec.Struct, kw_only=True):
    method: str
    url: str  # absolute, without userinfo (that became an Authorization header)
    headers: list[tuple[str, str]]
    body: str | None = None
    label: str = ""  # as shown: "GET /api/items?page=***"


class LoadPlan(msgspec.Struct, kw_only=True):
    """The spec the built-in engine reads on stdin, and the k6 script is generated from."""

    requests: list[PlannedRequest]
    virtual_users: int
    duration_s: float
    ramp_up_s: float
    timeout_s: float
    percentiles: list[float]
    progress_interval_s: float = 1.0

    def __repr__(self) -> str:  # headers may hold credentials: keep them out of logs and tracebacks
        return f"LoadPlan({len(self.requests)} requests, {self.virtual_users} VUs, {self.duration_s} s)"


def plan_load(config: PerformanceConfig, target: str) -> LoadPlan:
    return LoadPlan(
        requests=[planned_request(request, target) for request in config.requests],
        virtual_users=config.virtual_users,
        duration_s=config.duration_s,
        ramp_up_s=config.ramp_up_s,
        timeout_s=config.timeout_s,
        percentiles=sorted({*DEFAULT_PERCENTILES, *percentiles_needed(config.parsed_thresholds)}),
    )


def planned_request(request: RequestConfig, target: str) -> PlannedRequest:
    headers = dict(request.headers)
    names = {name.lower() for name in headers}
    if "authorization" not in names and (auth := basic_auth_header(target)):
        headers["Authorization"] = auth
    if "user-agent" not in names:
        headers["User-Agent"] = USER_AGENT
    body = request_body(request.body)
    if isinstance(request.body, dict | list) and "content-type" not in names:
        headers["Content-Type"] = "application/json"
    return PlannedRequest(
        method=request.method,
        url=request_url(target, request.path),
        headers=list(headers.items()),
        body=body,
        label=f"{request.method} {display_path(request.path)}",
    )


def request_body(body: str | dict[str, Any] | list[Any] | None) -> str | None:
    """A mapping or list as JSON; a string as it is."""
    if body is None or isinstance(body, str):
        return body
    return msgspec.json.encode(body).decode()


def vu_start_offsets(virtual_users: int, ramp_up_s: float) -> list[float]:
    """When each user starts, in seconds from the start of the test (k6's ramping-vus from 0)."""
    return [ramp_up_s * k / virtual_users for k in range(1, virtual_users + 1)]


def plan_secrets(plan: LoadPlan, target: str) -> list[str]:
    """What must never be shown of a test: the target's credentials, query values and header values."""
    found = url_secrets(target)
    for request in plan.requests:
        found += url_secrets(request.url)
        values = [value for name, value in request.headers if name.lower() not in PLAIN_HEADERS]
        found += values + [value.partition(" ")[2] for value in values if " " in value]  # "Bearer <token>"
    return found
