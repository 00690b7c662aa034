"""The REST API v1 route table, in one place: the mount of every HTTP endpoint, and the job stream's WebSocket.

The WebSocket route sits outside the mount, first in the app's routes (app/main.py), with the same rate limit and
metrics: its clients connect again and again, and the mount's layers (matching, a second router) were ~2 % of a
connection's CPU for nothing.
"""

from starlette.middleware import Middleware
from starlette.routing import Mount, Route, WebSocketRoute

from app.metrics import ApiMetrics
from app.api.ratelimit import RateLimit

from app.api import fleet, jobs, streams, submit

api_v1 = Mount("/api/v1", middleware=[Middleware(ApiMetrics), Middleware(RateLimit)], routes=[
    Route("/job/{job_id}/status", jobs.job_status, methods=["GET"]),
    Route("/job/{job_id}/cancel", jobs.cancel_job, methods=["POST"]),
    Route("/job/{job_id}/events", streams.job_events, methods=["GET"]),
    Route("/jobs", jobs.list_jobs, methods=["GET"]),
    Route("/fleet/status", fleet.fleet_status, methods=["GET", "POST"]),
    Route("/test/execute", submit.test_execute, methods=["POST"]),
    Route("/test/generate", submit.test_generate, methods=["POST"]),
    Route("/security/scan", submit.security_scan, methods=["POST"]),
    Route("/performance/test", submit.performance_test, methods=["POST"]),
    Route("/quality/gate", submit.quality_gate, methods=["POST"]),
    Route("/coverage/analyze", submit.coverage_analyze, methods=["POST"]),
])

job_stream = WebSocketRoute("/api/v1/job/{job_id}/stream",  # the API's one WebSocket
                            ApiMetrics(RateLimit(streams.JobStream()), route="/job/{job_id}/stream"))
