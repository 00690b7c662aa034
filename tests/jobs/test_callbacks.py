"""Completion callbacks against a real receiver on 127.0.0.1: the body, the signature, retries, attempts kept."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator

import httpx
import pytest

from jobs import callbacks
from jobs.model import AgentResult, JobRecord, RunRequest
from tests.fakes.receiver import FakeReceiver

SECRET = "callback-secret"


@pytest.fixture
def receiver() -> Iterator[FakeReceiver]:
    with FakeReceiver() as fake:
        yield fake


def _record(url: str | None) -> JobRecord:
    request = RunRequest(forge="github", repo="acme/widgets", clone_url="u", head_sha="a" * 40, trigger="api.test",
                         agents=["tests"], callback_url=url)
    result = AgentResult(agent="tests", conclusion="failure", title="1 failed, 3 passed", summary="s",
                         metrics={"tests_failed": 1})
    return JobRecord(id="0" * 24, status="completed", request=request, created_at=1.0, finished_at=2.0,
                     results=[result], conclusion="failure")


async def test_the_result_is_posted_signed(receiver: FakeReceiver) -> None:
    record, saved = _record(receiver.url), []

    async def save(r: JobRecord) -> None:
        saved.append(len(r.callbacks))

    async with httpx.AsyncClient() as http:
        assert await callbacks.deliver(http, record, SECRET, "http://aqe/api/v1/job/0/status", save, delays=(0,))
    [got] = receiver.received
    expected = "sha256=" + hmac.new(SECRET.encode(), got.body, hashlib.sha256).hexdigest()
    assert got.headers["x-aqe-signature-256"] == expected and got.headers["x-aqe-event"] == "job.ended"
    assert got.headers["x-aqe-job"] == record.id and got.headers["content-type"] == "application/json"
    body = json.loads(got.body)
    assert (body["job_id"], body["status"], body["conclusion"], body["sha"]) == ("0" * 24, "completed", "failure",
                                                                                 "a" * 40)
    assert body["agents"] == [{"agent": "tests", "conclusion": "failure", "title": "1 failed, 3 passed",
                               "metrics": {"tests_failed": 1}}]
    assert body["status_url"] == "http://aqe/api/v1/job/0/status"
    assert saved == [1] and record.callbacks[0].status == 204


async def test_failures_are_retried_and_every_attempt_kept(receiver: FakeReceiver) -> None:
    receiver.fail_next(2, 503)
    record = _record(receiver.url)

    async def save(r: JobRecord) -> None:
        return None

    async with httpx.AsyncClient() as http:
        assert await callbacks.deliver(http, record, SECRET, "s", save, delays=(0, 0.01, 0.01))
    assert [a.status for a in record.callbacks] == [503, 503, 204]
    assert len({r.headers["x-aqe-delivery"] for r in receiver.received}) == 1  # one delivery, three attempts


async def test_an_unreachable_url_ends_after_the_last_attempt() -> None:
    record = _record("http://127.0.0.1:9/hook")

    async def save(r: JobRecord) -> None:
        return None

    async with httpx.AsyncClient() as http:
        assert not await callbacks.deliver(http, record, SECRET, "s", save, delays=(0, 0.01))
    assert [a.status for a in record.callbacks] == [None, None] and "ConnectError" in str(record.callbacks[0].error)


def test_callback_urls_are_checked() -> None:
    assert callbacks.checked_callback_url("https://ci.example.com/aqe-hook") is None
    assert callbacks.checked_callback_url("ftp://x/y") == "must be an http(s) URL"
    assert "longer than" in str(callbacks.checked_callback_url("http://x/" + "a" * 3000))
    assert callbacks.checked_callback_url("http://") == "must be an http(s) URL"
    assert callbacks.checked_callback_url("just words") == "must be an http(s) URL"


async def test_a_callback_into_a_denied_network_is_not_sent(receiver: FakeReceiver) -> None:
    from jobs.netpolicy import parse_networks

    record = _record(receiver.url)

    async def save(r: JobRecord) -> None:
        pass

    async with httpx.AsyncClient() as http:
        assert not await callbacks.deliver(http, record, SECRET, "http://aqe/s", save, delays=(0,),
                                           denied=parse_networks("127.0.0.0/8"))
    assert receiver.received == []
    [attempt] = record.callbacks
    assert attempt.status is None and "not sent" in attempt.error and "AQE_DENY_NETWORKS" in attempt.error
