"""The REST API v1 route table, in one place."""

from starlette.routing import Mount, Route

from app.api import jobs

api_v1 = Mount("/api/v1", routes=[
    Route("/job/{job_id}/status", jobs.job_status, methods=["GET"]),
])
