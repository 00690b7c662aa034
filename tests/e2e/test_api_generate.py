"""POST /api/v1/test/generate: what the endpoint refuses (422 naming the field) and enqueues, through the real app
and Redis; then whole jobs through real web + worker + Redis + the fake GitHub, with and without the fake LLM."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as redis_sync
from redis.asyncio import Redis
from starlette.testclient import TestClient

from app.main import create_app
from jobs import apikeys
from jobs.store import JobStore
from tests.docs.examples import examples
from tests.e2e.conftest import REPO, ROOT, Stack, api_key_headers, finished_job
from tests.fakes.llm import FakeLLM, fenced

SHA = "0123456789abcdef0123456789abcdef01234567"
LLM_KEY = "sk-test-generate-api-key"


# ------------------------------------------------------------------------------ the endpoint, in process


@pytest.fixture
def make_client(make_settings, redis_url: str) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    redis_sync.Redis.from_url(redis_url).flushdb()
    clients: list[TestClient] = []

    def make(**settings: str) -> tuple[TestClient, dict[str, str]]:
        client = TestClient(create_app(make_settings(**settings))).__enter__()
        clients.append(client)
        key = asyncio.run(_key(redis_url))
        return client, {"Authorization": f"Bearer {key}"}

    yield make
    for client in clients:
        client.__exit__(None, None, None)


async def _key(redis_url: str) -> str:
    redis = Redis.from_url(redis_url)
    try:
        return await apikeys.create_key(redis, "ci")
    finally:
        await redis.aclose()


async def _record(redis_url: str, job_id: str) -> Any:
    redis = Redis.from_url(redis_url)
    try:
        return await JobStore(redis).get(job_id)
    finally:
        await redis.aclose()


REFUSED = [  # (body over {"repo", "sha"}, words the 422's detail must hold)
    ({}, "target: name a file, a directory or `path::function`"),
    ({"target": "../etc/passwd"}, "target: a relative path"),
    ({"target": "/etc/passwd"}, "target: a relative path"),
    ({"target": "a" * 301}, "at most 300 characters"),
    ({"target": "shop/x.py::not a name"}, "target:"),
    ({"target": "shop\\x.py"}, "target:"),
    ({"target": "shop/x.py", "base": "main"}, "base: give target or base, not both"),
    ({"base": "not a..branch"}, "base: a full commit sha or a branch name"),
    ({"target": "shop/x.py", "framework": "junit"}, "`$.framework`"),
    ({"target": "shop/x.py", "framework": "jest"}, "framework: jest writes tests for JavaScript/TypeScript"),
    ({"target": "src/a.ts::f"}, "framework: pytest writes tests for Python"),
    ({"target": "src/a.js", "framework": "jest"}, "framework jest: written by the LLM backend, which this AQE does not"),
    ({"target": "shop/x.py", "test_type": "e2e"}, "test_type e2e: written by the LLM backend"),
    ({"target": "shop/x.py", "test_type": "smoke"}, "`$.test_type`"),
    ({"target": "shop/x.py", "coverage_target": 120}, "must be between 0 and 100 (at `$.coverage_target`)"),
    ({"target": "shop/x.py", "coverage_target": -1}, "`$.coverage_target`"),
    ({"target": "shop/x.py", "coverage_target": "high"}, "`$.coverage_target`"),
    ({"target": "shop/x.py", "timeout": 1}, "`$.timeout`"),
    ({"target": "shop/x.py", "max_functions": 0}, "max_functions"),
    ({"target": "shop/x.py", "llm": True}, "unknown field `llm`"),
]


@pytest.mark.parametrize(("extra", "detail"), REFUSED)
def test_bad_requests_are_422_naming_the_field(make_client: Any, extra: dict[str, Any], detail: str) -> None:
    client, headers = make_client()
    answer = client.post("/api/v1/test/generate", json={"repo": REPO, "sha": SHA, **extra}, headers=headers)
    assert answer.status_code == 422, answer.text
    assert detail in answer.json()["detail"], answer.json()["detail"]


def test_javascript_and_other_test_types_need_the_llm_backend(make_client: Any) -> None:
    client, headers = make_client(AQE_LLM_URL="http://127.0.0.1:9/v1", AQE_LLM_MODEL="gpt-test")
    answer = client.post("/api/v1/test/generate", headers=headers, json={
        "repo": REPO, "ref": "main", "target": "src/math.ts::sum", "framework": "vitest", "test_type": "api"})
    assert answer.status_code == 202, answer.text
    refused = client.post("/api/v1/test/generate", headers=headers, json={
        "repo": REPO, "ref": "main", "target": "src/math.ts", "framework": "vitest", "coverage_target": 80})
    assert refused.status_code == 422
    assert refused.json()["detail"] == "coverage_target: measured for Python (pytest) tests only, not with framework vitest"


def test_an_accepted_request_carries_its_target_and_options_to_the_job(make_client: Any, redis_url: str) -> None:
    client, headers = make_client()
    answer = client.post("/api/v1/test/generate", headers=headers, json={
        "repo": REPO, "sha": SHA, "target": "src/shop/pricing.py::Cart.total", "coverage_target": 75.5,
        "max_functions": 3, "setup": ["pip install -e ."], "priority": "high"})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["status"] == "queued" and body["status_url"] == f"http://aqe.test/api/v1/job/{body['job_id']}/status"
    assert body["stream_url"] == f"ws://aqe.test/api/v1/job/{body['job_id']}/stream"
    assert body["events_url"] == f"http://aqe.test/api/v1/job/{body['job_id']}/events"
    record = asyncio.run(_record(redis_url, body["job_id"]))
    request = record.request
    assert (request.target, request.trigger, request.agents) == ("src/shop/pricing.py::Cart.total",
                                                                 "api.test-generate", ["tests", "test-generation"])
    assert request.options == {
        "test_generation": {"enabled": True, "framework": "pytest", "test_type": "unit", "coverage_target": 75.5,
                            "max_functions": 3},
        "tests": {"setup": ["pip install -e ."]}}
    assert request.base_sha is None and request.priority == "high"

    since = client.post("/api/v1/test/generate", headers=headers, json={"repo": REPO, "ref": "feature", "base": "main"})
    assert since.status_code == 202, since.text
    changed = asyncio.run(_record(redis_url, since.json()["job_id"])).request
    assert changed.target is None and changed.base_ref == "main" and changed.head_ref == "feature"
    assert client.post("/api/v1/test/generate", json={"repo": REPO, "sha": SHA, "target": "a.py"}).status_code == 401


# ------------------------------------------------------------------------------------- whole jobs


def _agent(record: dict[str, Any], name: str) -> dict[str, Any]:
    return next(a for a in record["result"]["agents"] if a["agent"] == name)


def _sh(stack: Stack, code: str, **env: str) -> str:
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", code], env={**stack.env, **env}, capture_output=True,
                          text=True, timeout=60, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def _restart(stack: Stack, log: Path, **env: str) -> None:
    """The web process and the worker again, with `env` added (as an operator would set AQE_LLM_URL)."""
    for process in stack.processes:
        process.terminate()
    for process in stack.processes:
        process.wait(15)
    stack.processes.clear()
    stack.env.update(env)
    with open(log, "ab") as out:
        for role in (["web", "--host", "127.0.0.1"], ["worker"]):
            stack.processes.append(subprocess.Popen([sys.executable, "-m", "app.cli", *role], env=stack.env,
                                                    cwd=ROOT, stdout=out, stderr=subprocess.STDOUT))  # fmt: skip
    stack.wait_ready()


PRICING = """\
def discount(price: int, percent: int) -> int:
    if percent <= 0:
        return price
    percent = min(percent, 50)
    return price * (100 - percent) // 100


def shipping(weight: int) -> int:
    return 5 if weight < 10 else 9
"""
PRICING_TEST = "from shop.pricing import discount\n\n\ndef test_half():\n    assert discount(100, 50) == 50\n"


def test_the_documented_example_generates_tests_for_a_function(stack: Stack) -> None:
    repo = stack.repo
    repo.write("shop/__init__.py", "")
    repo.write("shop/pricing.py", PRICING)
    repo.write("tests/test_pricing.py", PRICING_TEST)
    sha = repo.commit("pricing")
    stack.fake.update_repo(REPO, repo.path)
    headers = api_key_headers(stack)
    [(example, _)] = examples("api.md", "test-generate")
    answer = json.loads(_sh(stack, example, AQE_URL=stack.web_url, AQE_API_KEY=headers["Authorization"][7:],
                            REPO=REPO, SHA=sha, TARGET="shop/pricing.py::discount"))  # fmt: skip
    record = finished_job(stack, answer["job_id"], headers)
    assert record["status"] == "completed", record
    assert record["request"]["target"] == "shop/pricing.py::discount"
    assert [a["agent"] for a in record["result"]["agents"]] == ["tests", "test-generation"]
    generated = _agent(record, "test-generation")
    metrics = generated["metrics"]
    # a test file mentions `discount`, and it is not part of any diff: named, it gets tests all the same
    assert metrics["functions_targeted"] == 1 and metrics["tests_kept"] >= 1, generated["summary"]
    assert metrics["target_coverage"] == 100.0 and metrics["coverage_target"] == 80
    assert generated["conclusion"] == "success" and generated["title"].endswith(
        "for 1 function, covering 100.0 % of their lines")
    assert "- `tests/generated/test_shop_pricing_hypothesis.py`: " in generated["summary"]
    assert "generated-tests.patch" in record["artifacts"]
    patch = httpx.get(f"{stack.web_url}/jobs/{record['id']}/artifacts/generated-tests.patch", headers=headers,
                      timeout=10)  # fmt: skip
    assert patch.status_code == 200 and "+++ b/tests/generated/test_shop_pricing_hypothesis.py" in patch.text
    assert "shop.pricing.discount(" in patch.text and "shipping" not in patch.text


INTEGRATION_TEST = """\
from calc import add, sub


def test_add_then_sub_gives_the_start_back():
    for a, b in [(1, 2), (-5, 5), (0, 0)]:
        assert sub(add(a, b), b) == a
"""


def test_an_integration_test_written_by_the_llm(stack: Stack, tmp_path: Path) -> None:
    with FakeLLM(api_key=LLM_KEY) as llm:
        llm.reply = lambda request: fenced(INTEGRATION_TEST) if "integration" in json.dumps(request) else "no"
        _restart(stack, tmp_path / "stack.log", AQE_LLM_URL=llm.url, AQE_LLM_MODEL="gpt-test", AQE_LLM_API_KEY=LLM_KEY)
        headers = api_key_headers(stack)
        answer = httpx.post(f"{stack.web_url}/api/v1/test/generate", headers=headers, timeout=10, json={
            "repo": REPO, "ref": "main", "target": "calc.py::add", "framework": "pytest",
            "test_type": "integration", "coverage_target": 100})
        assert answer.status_code == 202, answer.text
        record = finished_job(stack, answer.json()["job_id"], headers)
        prompts = llm.user_prompts()
    generated = _agent(record, "test-generation")
    assert generated["conclusion"] == "success", generated["summary"]
    assert [p.split("`")[1] for p in prompts] == ["add"] and prompts[0].startswith("Write pytest integration tests")
    assert generated["metrics"]["tests_kept"] == 1 and generated["metrics"]["target_coverage"] == 100.0
    assert "- `tests/generated/test_calc_add_integration_llm.py`" in generated["summary"]
    patch = httpx.get(f"{stack.web_url}/jobs/{record['id']}/artifacts/generated-tests.patch", headers=headers,
                      timeout=10)  # fmt: skip
    assert "test_add_then_sub_gives_the_start_back" in patch.text
    assert LLM_KEY not in json.dumps(record) and os.environ.get("AQE_LLM_API_KEY") != LLM_KEY
