"""GET /metrics: Prometheus text format.

This web process's own counters (webhook deliveries, API requests and their latency; with `aqe web --processes N`,
summed over its processes), and, read from Redis at each scrape so that every replica shows the same fleet: queue
depth, workers, agents' runs and durations, and the workers' calls to the forges with the rate limit they have left.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobs import fleet, forge_metrics

OWN = CollectorRegistry(auto_describe=True)
# Set by `aqe web --processes N` for its children; prometheus_client then keeps every value in a file there.
MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
WEBHOOK_DELIVERIES = Counter("aqe_webhook_deliveries", "Webhook deliveries by forge, event and outcome",
                             ["forge", "event", "outcome"], registry=OWN)
API_REQUESTS = Counter("aqe_api_requests", "REST API requests by route, method and status",
                       ["route", "method", "status"], registry=OWN)
API_LATENCY = Histogram("aqe_api_request_duration_seconds", "REST API time to answer (to its headers) by route",
                        ["route"],
                        buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0), registry=OWN)


_Observers = tuple[Any, Any]  # one request counter and one latency histogram child of the metrics above
_observers: dict[tuple[str, str, int], _Observers] = {}


def observers(route: str, method: str, status: int) -> _Observers:
    """The children of API_REQUESTS and API_LATENCY for these labels (looked up once, not on every request)."""
    found = _observers.get((route, method, status))
    if found is None:
        found = _observers[(route, method, status)] = (API_REQUESTS.labels(route, method, str(status)),
                                                       API_LATENCY.labels(route))
    return found


class ApiMetrics:
    """ASGI middleware of the `/api/v1` mount: counts every request by its route template (never the raw path).
    Around a WebSocket endpoint, `route` names it: a connection counts as a `GET` with the status `101` when it was
    accepted and served, the HTTP status of a refusal (a 4401–4499 close, a denial response, or 403 for a close
    before the handshake), and is timed to its first message."""

    def __init__(self, app: ASGIApp, route: str | None = None) -> None:
        self.app, self.route = app, route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and self.route is not None:
            await self._websocket(scope, receive, send, self.route)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status, answered = time.perf_counter(), 500, None

        async def sending(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status, answered = message["status"], time.perf_counter()
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            requests, latency = observers(getattr(scope.get("route"), "path", None) or "unmatched", scope["method"],
                                          status)
            requests.inc()
            # until the answer's headers: a job stream (SSE) is open for minutes, its latency is how soon it opens
            latency.observe((answered or time.perf_counter()) - started)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send, route: str) -> None:
        started, status, answered = time.perf_counter(), 500, None

        async def sending(message: Message) -> None:
            nonlocal status, answered
            kind = message["type"]
            if kind == "websocket.send" and answered is None:
                answered = time.perf_counter()
            elif kind == "websocket.accept":
                status = 101
            elif kind == "websocket.close" and 4400 <= message.get("code", 1000) < 4500:
                status = message["code"] - 4000
            elif kind == "websocket.close" and status == 500:  # closed before it was accepted: a 403 to the client
                status = 403
            elif kind == "websocket.http.response.start":
                status, answered = message["status"], time.perf_counter()
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            requests, latency = observers(route, "GET", status)
            requests.inc()
            latency.observe((answered or time.perf_counter()) - started)


class FleetFacts(Collector):
    """What Redis said at this scrape, as metric families."""

    def __init__(self, snapshot: dict, calls: dict, limits: dict) -> None:
        self.snapshot, self.calls, self.limits = snapshot, calls, limits

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        snap = self.snapshot
        yield GaugeMetricFamily("aqe_queue_jobs", "Jobs in the queue (ready to run now)", value=snap["queue"]["ready"])
        yield GaugeMetricFamily("aqe_queue_deferred_jobs", "Jobs in the queue waiting to be retried",
                                value=snap["queue"]["deferred"])
        yield GaugeMetricFamily("aqe_workers_alive", "Workers with a fresh heartbeat", value=snap["workers"]["alive"])
        yield GaugeMetricFamily("aqe_jobs_running", "Jobs the workers are running", value=snap["workers"]["jobs_running"])
        runs = CounterMetricFamily("aqe_agent_runs", "Agent runs by conclusion", labels=["agent", "conclusion"])
        durations = GaugeMetricFamily("aqe_agent_duration_seconds", "Agent duration over its recent runs",
                                      labels=["agent", "quantile"])
        for agent, summary in snap["agents"].items():
            for conclusion, count in summary["by_conclusion"].items():
                runs.add_metric([agent, conclusion], count)
            for quantile, key in (("0.5", "duration_p50_s"), ("0.95", "duration_p95_s")):
                if summary[key] is not None:
                    durations.add_metric([agent, quantile], summary[key])
        yield runs
        yield durations
        calls = CounterMetricFamily("aqe_forge_api_calls", "Calls the workers made to forge APIs",
                                    labels=["forge", "method", "status"])
        for (forge, method, status), count in sorted(self.calls.items()):
            calls.add_metric([forge, method, status], count)
        yield calls
        remaining = GaugeMetricFamily("aqe_forge_rate_limit_remaining", "Requests left in the forge's rate limit",
                                      labels=["forge", "resource"])
        for (forge, resource), (left, _limit) in sorted(self.limits.items()):
            remaining.add_metric([forge, resource], left)
        yield remaining


async def metrics(request: Request) -> Response:
    redis = request.app.state.redis
    snapshot = await fleet.snapshot(redis)
    calls, limits = await forge_metrics.forge_facts(redis)
    facts = CollectorRegistry(auto_describe=False)
    facts.register(FleetFacts(snapshot, calls, limits))
    return Response(generate_latest(own_registry()) + generate_latest(facts), media_type=CONTENT_TYPE_LATEST)


def own_registry() -> CollectorRegistry:
    """This process's counters, or with `aqe web --processes N` (app/web_processes.py) those of every process."""
    if MULTIPROCESS_DIR is None:
        return OWN
    registry = CollectorRegistry()
    MultiProcessCollector(registry, MULTIPROCESS_DIR)
    return registry
