"""The job page and the dashboard in a real headless Chromium, against a real web process and Redis.

Events are appended the way the worker appends them (`JobStore.save`: the record and one stream event, in one
transaction); the page must follow them over SSE without reloading, then show the results when the job ends.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from app.api.jobs import status_view
from jobs import apikeys, fleet
from jobs.links import job_link_token
from jobs.model import AgentResult, Finding, JobRecord, RunRequest, now
from jobs.store import JobStore, finish_step, start_step
from tests.browser.conftest import JWT_SECRET, Watched, Web, require_browser

require_browser()
from playwright.sync_api import expect  # noqa: E402  (after the skip: the package may be missing)

HOSTILE = "<script>alert('pwned')</script>"
SHA = "c0ffee" * 6 + "beef"
pytestmark = pytest.mark.timeout(120)


def _request(sha: str = SHA, pr_number: int = 12) -> RunRequest:
    return RunRequest(forge="github", repo="acme/widgets", clone_url="https://github.com/acme/widgets.git",
                      head_sha=sha, head_ref="feature", base_ref="main", trigger="pull_request.synchronize",
                      agents=["tests", "security"], pr_number=pr_number)


async def _new_running_job(redis: Redis, request: RunRequest) -> str:
    store = JobStore(redis)
    job_id = (await store.enqueue(request, delivery_key=f"aqe:delivery:test:{request.head_sha}")).job_id
    record = await store.get(job_id)
    assert record is not None
    record.status, record.started_at, record.agents = "running", now(), ["tests", "security"]
    start_step(record, "checkout", 5.0)
    await store.save(record, "progress", {"progress": record.progress, "message": "checkout", "status": "running"})
    return job_id


def new_running_job(web: Web, sha: str = SHA, pr_number: int = 12) -> str:
    return web.run(lambda r: _new_running_job(r, _request(sha, pr_number)))


def apply(web: Web, job_id: str, change: Callable[[JobRecord], tuple[str, dict[str, Any]]]) -> None:
    """Change the record and append the event `change` returns, as the worker does."""

    async def go(redis: Redis) -> None:
        store = JobStore(redis)
        record = await store.get(job_id)
        assert record is not None
        event, data = change(record)
        await store.save(record, event, data)

    web.run(go)


def step(name: str, progress: float) -> Callable[[JobRecord], tuple[str, dict[str, Any]]]:
    def change(record: JobRecord) -> tuple[str, dict[str, Any]]:
        finish_step(record)
        start_step(record, name, progress)
        return "progress", {"progress": record.progress, "message": name, "status": record.status}

    return change


def complete(record: JobRecord) -> tuple[str, dict[str, Any]]:
    finish_step(record)
    record.results = [
        AgentResult(agent="tests", conclusion="success", title="12 passed", summary="12 passed in 0.4 s",
                    duration_s=1.5),
        AgentResult(agent="security", conclusion="failure", title="1 finding", summary="1 secret-looking value",
                    duration_s=0.7,
                    findings=[Finding(path="shop/settings.py", start_line=14, end_line=14, level="failure",
                                      rule="B105", title="Possible hardcoded password",
                                      message=f"a password in the source {HOSTILE} (value redacted)")]),
    ]
    record.status, record.finished_at, record.progress, record.conclusion = "completed", now(), 100.0, "failure"
    return "complete", {"status": "completed", "progress": 100.0, "conclusion": "failure",
                        "result": status_view(record)["result"]}


def fail(record: JobRecord) -> tuple[str, dict[str, Any]]:
    finish_step(record)
    record.status, record.finished_at, record.error = "failed", now(), "the clone failed: repository not found"
    return "error", {"status": "failed", "progress": record.progress, "error": record.error}


def assert_events_served(web: Web, job_id: str) -> None:
    """The SSE endpoint the page follows answers (a clear failure when it is not routed)."""
    url = f"{web.url}/api/v1/job/{job_id}/events?t={job_link_token(JWT_SECRET, job_id)}"
    with httpx.stream("GET", url, timeout=10) as answer:
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream"), (
            f"GET /api/v1/job/{{id}}/events?t= answered {answer.status_code}: the job page's live updates need it "
            "(app/api/streams.py, routed in app/api/routes.py)")


def wait_connected(page: Any) -> None:
    """Until the page's EventSource is open (events appended before may or may not be replayed)."""
    expect(page.locator("#job")).to_have_attribute("data-connected", "1", timeout=15_000)


def test_the_job_page_follows_the_job_live_then_shows_results_and_findings(web: Web,
                                                                           new_page: Callable[[], Watched]) -> None:
    job_id = new_running_job(web)
    token = job_link_token(JWT_SECRET, job_id)
    assert_events_served(web, job_id)
    watched = new_page()
    page = watched.page
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{web.url}/jobs/{job_id}?t={token}")
    expect(page.locator("#status")).to_have_text("running")
    expect(page.locator("#step")).to_have_text("checkout")
    page.evaluate("window.__sameDocument = true")
    wait_connected(page)
    assert f"{web.url}/api/v1/job/{job_id}/events?t={token}" in requested

    apply(web, job_id, step("agent:tests", 40.0))
    expect(page.locator("#percent")).to_have_text("40%")
    expect(page.locator("#progress")).to_have_js_property("value", 40)
    expect(page.locator("#step")).to_have_text("agent:tests")
    expect(page.locator("#steps")).to_contain_text("agent:tests")  # the rendered steps, refreshed too

    apply(web, job_id, step("agent:security", 75.0))
    expect(page.locator("#percent")).to_have_text("75%")
    expect(page.locator("#step")).to_have_text("agent:security")

    apply(web, job_id, complete)
    expect(page.locator("#status")).to_have_text("completed")
    expect(page.locator("#conclusion")).to_have_text("failure")
    expect(page.locator("#job")).to_have_attribute("data-live", "0")
    expect(page.locator("#percent")).to_have_text("100%")
    agent = page.locator("section.agent[data-agent='security']")
    expect(agent).to_contain_text("aqe/security: failure")
    row = agent.locator("table.findings tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("td.where")).to_have_text("shop/settings.py:14")
    expect(row.locator("td.where a")).to_have_attribute(
        "href", f"https://github.com/acme/widgets/blob/{SHA}/shop/settings.py#L14")
    expect(row.locator("td.level")).to_have_text("failure")
    expect(row.locator("td.rule")).to_have_text("B105")
    expect(row.locator("td.message pre")).to_have_text(f"a password in the source {HOSTILE} (value redacted)")
    expect(page.locator("section.agent[data-agent='tests']")).to_contain_text("12 passed")
    expect(page.locator("#pr-link")).to_have_attribute("href", "https://github.com/acme/widgets/pull/12")
    expect(page.locator("#commit-link")).to_have_attribute("href", f"https://github.com/acme/widgets/commit/{SHA}")
    assert page.evaluate("window.__sameDocument") is True  # updated in place, never reloaded
    assert page.evaluate("document.querySelectorAll('script').length") == 1
    watched.assert_clean()


def test_after_login_the_dashboard_shows_the_fleet_and_jobs_and_a_job_page_follows_live(
        web: Web, new_page: Callable[[], Watched]) -> None:
    key = web.run(lambda r: apikeys.create_key(r, "ops", scopes=["jobs:read", "fleet:read"]))
    web.run(lambda r: fleet.beat(r, "worker-a:4242", now() - 60, 1, 4))
    web.run(lambda r: fleet.record_agent_run(r, AgentResult(agent="tests", conclusion="success", title="t",
                                                            summary="s", duration_s=3.0), now()))
    job_id = new_running_job(web)
    watched = new_page()
    page = watched.page

    page.goto(f"{web.url}/")
    assert re.fullmatch(rf"{re.escape(web.url)}/login\?next=%2F", page.url)
    page.fill("#key", "aqe_" + "N" * 32)
    page.click("button[type=submit]")
    expect(page.locator("#login-error")).to_contain_text("unknown or revoked")
    watched.console_errors.clear()  # the 401 answer of the failed login is logged by Chromium
    page.fill("#key", key)
    page.click("button[type=submit]")
    page.wait_for_url(f"{web.url}/")
    expect(page.locator("#who")).to_have_text("ops")
    expect(page.locator("#workers-alive")).to_have_text("1")
    expect(page.locator("#workers")).to_contain_text("worker-a:4242")
    expect(page.locator("#agents tr[data-agent='tests']")).to_contain_text("3.0 s")
    expect(page.locator(f"#jobs tr[data-job='{job_id}']")).to_contain_text("running")
    assert key not in page.content() and key not in str(page.context.cookies())

    other = new_running_job(web, sha="d" * 40, pr_number=13)  # shows up at the next refresh, without a reload
    page.evaluate("window.__sameDocument = true")
    expect(page.locator(f"#jobs tr[data-job='{other}']")).to_be_visible(timeout=15_000)
    assert page.evaluate("window.__sameDocument") is True

    page.click(f"#jobs tr[data-job='{job_id}'] a")
    page.wait_for_url(re.compile(rf"/jobs/{job_id}\?t="))
    expect(page.locator("#status")).to_have_text("running")

    page.goto(f"{web.url}/jobs/{other}")  # by the session cookie alone: the page embeds a token for the events
    expect(page.locator("#status")).to_have_text("running")
    wait_connected(page)
    apply(web, other, step("agent:tests", 30.0))
    expect(page.locator("#percent")).to_have_text("30%")
    apply(web, other, fail)
    expect(page.locator("#status")).to_have_text("failed")
    expect(page.locator("#error")).to_have_text("Error: the clone failed: repository not found")

    page.goto(f"{web.url}/")
    page.click("#logout")
    page.wait_for_url(f"{web.url}/login")
    page.goto(f"{web.url}/jobs/{other}")
    expect(page.locator("h1")).to_have_text("Not available")
    watched.console_errors[:] = [e for e in watched.console_errors if "403" not in e]  # the refused page itself
    watched.assert_clean()
