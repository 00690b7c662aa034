"""The web process: `create_app(settings)` builds the Starlette app; `app` is what uvicorn serves."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Mount, Route

from app import dashboard, health, pages, webhooks
from app.api.errors import ApiError, api_error, http_error, server_error
from app import metrics
from app.api import openapi
from app.api.routes import api_v1, job_stream
from jobs.event_hub import EventHub
from jobs.logs import configure_logging
from jobs.oidc import OidcVerifier
from jobs.redis_pipelined import PipelinedRedis
from jobs.settings import Settings, load_settings
from jobs.store import JobStore

log = logging.getLogger("aqe.web")


def create_app(settings: Settings) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if not settings.redis_url:
            raise RuntimeError("REDIS_URL is not set; start the web process with `aqe run` or set REDIS_URL")
        redis = Redis.from_url(settings.redis_url, max_connections=256)
        pipelined = PipelinedRedis(settings.redis_url) if settings.redis_url.startswith(("redis:", "unix:")) else None
        app.state.redis, app.state.store = redis, JobStore(redis, pipelined)
        app.state.event_hub = EventHub.for_url(redis, settings.redis_url)  # live events for stream clients
        await app.state.event_hub.start()
        oidc_http = httpx.AsyncClient() if settings.oidc_issuers else None
        app.state.oidc = OidcVerifier(oidc_http, settings.oidc_issuers, settings.oidc_audience, settings.oidc_refs,
                                      settings.oidc_policy) if oidc_http is not None else None
        try:
            yield
        finally:
            if oidc_http is not None:
                await oidc_http.aclose()
            await app.state.event_hub.close()
            await redis.aclose()
            if pipelined is not None:
                await pipelined.close()

    routes = [  # the API's first: its requests are the many, and no other route starts with /api/v1
        job_stream,
        api_v1,
        Route("/webhooks/github", webhooks.github, methods=["POST"]),
        Route("/webhooks/gitlab", webhooks.gitlab, methods=["POST"]),
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.readyz, methods=["GET"]),
        Route("/metrics", metrics.metrics, methods=["GET"]),
        Route("/jobs/{job_id}", pages.job_page, methods=["GET"]),
        Route("/jobs/{job_id}/artifacts/{name}", pages.job_artifact, methods=["GET"]),
        Route("/", dashboard.dashboard, methods=["GET"]),
        Route("/login", dashboard.login, methods=["GET", "POST"]),
        Route("/logout", dashboard.logout, methods=["POST"]),
        Mount("/static", app=pages.StaticAssets(), name="static"),
        *openapi.routes,
    ]
    middleware = [Middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_credentials=False,
                             allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type",
                                                                           "Idempotency-Key", "Last-Event-ID"],
                             expose_headers=["Location", "X-RateLimit-Limit", "X-RateLimit-Remaining",
                                             "X-RateLimit-Reset", "Retry-After"], max_age=600)] \
        if settings.cors_origins else []
    app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware,
                    exception_handlers={ApiError: api_error, HTTPException: http_error, 500: server_error})
    app.state.settings = settings
    return app


def app_from_environment() -> Starlette:
    """Entry point for `uvicorn --factory app.main:app_from_environment` (the Procfile's web line)."""
    settings = load_settings()
    configure_logging(settings.log_level, buffered=True)
    return create_app(settings)
