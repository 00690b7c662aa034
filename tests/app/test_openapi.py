"""/openapi.json is the API's contract: schemathesis sends it generated requests and checks every answer against it
(no 5xx, documented status codes and content types, bodies that match their schemas), on a real server and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
import redis as redis_sync
import schemathesis
from schemathesis import checks
from hypothesis import HealthCheck, given, settings
from redis.asyncio import Redis

from app.main import create_app
from jobs import apikeys
from tests.fakes.server import ThreadedServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, redis_url: str, rsa_key_pair: tuple[bytes, bytes]) -> Iterator[str]:
    from jobs.settings import load_settings
    from tests.conftest import APP_ID, WEBHOOK_SECRET

    key_file = tmp_path_factory.mktemp("key") / "app.pem"
    key_file.write_bytes(rsa_key_pair[0])
    redis_sync.Redis.from_url(redis_url).flushdb()
    settings = load_settings({"REDIS_URL": redis_url, "GITHUB_APP_ID": str(APP_ID),
                              "GITHUB_PRIVATE_KEY_PATH": str(key_file), "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
                              "AQE_DATA_DIR": str(tmp_path_factory.mktemp("data"))}, dotenv_path=None)
    runner = ThreadedServer(create_app(settings), "aqe-web-under-test", lifespan="on")
    url = runner.start()
    yield url
    runner.stop()


@pytest.fixture(scope="module")
def api_key(server: str, redis_url: str) -> str:
    async def make() -> str:
        redis = Redis.from_url(redis_url)
        try:
            return await apikeys.create_key(redis, "schemathesis", scopes=["admin"], rate_limit="100000/minute")
        finally:
            await redis.aclose()

    return asyncio.run(make())


# No 5xx, and every answer as documented: its status, content type, headers and body schema. (Not checked:
# that every schema-valid body is accepted — the schema cannot say "a sha or a ref", nor "at most 10 minutes".)
CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_headers_conformance, checks.response_schema_conformance]


def test_every_answer_matches_the_contract(server: str, api_key: str) -> None:
    """Every operation, 25 generated requests each (valid and invalid bodies, odd parameters)."""
    api = schemathesis.openapi.from_url(f"{server}/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) == 12
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(headers={"Authorization": f"Bearer {api_key}"}, checks=CHECKS)

        check()


def test_coverage_reports_sent_as_multipart_forms_match_the_contract(server: str, api_key: str) -> None:
    """/coverage/analyze's bodies, JSON and multipart/form-data (a report file part and the fields), generated."""
    api = schemathesis.openapi.from_url(f"{server}/openapi.json")
    operation = api["/api/v1/coverage/analyze"]["POST"]
    sent: list[str] = []

    @given(case=operation.as_strategy())
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case: schemathesis.Case) -> None:
        response = case.call_and_validate(headers={"Authorization": f"Bearer {api_key}"}, checks=CHECKS)
        sent.append(response.request.headers["content-type"])

    check()
    assert sum(kind.startswith("multipart/form-data") for kind in sent) >= 5, sent


def test_the_document_and_swagger_ui_are_served(server: str) -> None:
    document = httpx.get(f"{server}/openapi.json", timeout=5).json()
    assert document["openapi"] == "3.1.0" and "/api/v1/security/scan" in document["paths"]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    page = httpx.get(f"{server}/docs", timeout=5)
    assert page.status_code == 200 and "/docs/assets/swagger-ui-bundle.js" in page.text
    bundle = httpx.get(f"{server}/docs/assets/swagger-ui-bundle.js", timeout=5)
    assert bundle.status_code == 200 and len(bundle.content) > 1_000_000  # served from the package, not a CDN


def test_redoc_is_served_from_the_package(server: str) -> None:
    page = httpx.get(f"{server}/redoc", timeout=5)
    assert page.status_code == 200 and '<redoc spec-url="/openapi.json">' in page.text
    assert "http" not in page.text.replace('content="width', "")  # nothing from a CDN
    bundle = httpx.get(f"{server}/redoc/assets/redoc.standalone.js", timeout=5)
    assert bundle.status_code == 200 and bundle.headers["content-type"].startswith(("text/javascript",
                                                                                    "application/javascript"))
    assert len(bundle.content) > 1_000_000 and b"Redoc" in bundle.content[:400]
