"""POST /webhooks/github through the real app and a real Redis: status codes, dedupe, enqueue."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
import redis as redis_sync
from starlette.testclient import TestClient

from app.main import create_app
from tests.conftest import WEBHOOK_SECRET

FIXTURES = Path(__file__).parents[1] / "fixtures" / "github"


def _body(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _headers(body: bytes, event: str | None, *, secret: str = WEBHOOK_SECRET, delivery: str | None = None,
             content_type: str = "application/json") -> dict[str, str]:
    headers = {"Content-Type": content_type, "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
               "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}
    if event:
        headers["X-GitHub-Event"] = event
    return headers


@pytest.fixture
def client(make_settings, redis_url: str) -> Iterator[TestClient]:
    redis_sync.Redis.from_url(redis_url).flushdb()
    with TestClient(create_app(make_settings(GITHUB_WEBHOOK_SECRET=f"rotated-out,{WEBHOOK_SECRET}"))) as c:
        yield c


@pytest.fixture
def queue(redis_url: str) -> redis_sync.Redis:
    return redis_sync.Redis.from_url(redis_url)


def test_signed_pull_request_is_enqueued(client: TestClient, queue: redis_sync.Redis) -> None:
    body = _body("pull_request.opened.json")
    answer = client.post("/webhooks/github", content=body, headers=_headers(body, "pull_request"))
    assert answer.status_code == 202
    [job_id] = answer.json()["job_ids"]
    assert answer.json()["status"] == "queued"
    assert queue.zrange("arq:queue", 0, -1) == [job_id.encode()]
    record = json.loads(queue.get(f"aqe:job:{job_id}"))
    assert record["status"] == "queued" and record["request"]["trigger"] == "pull_request.opened"


def test_redelivery_is_a_duplicate(client: TestClient, queue: redis_sync.Redis) -> None:
    body = _body("pull_request.opened.json")
    headers = _headers(body, "pull_request", delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    first = client.post("/webhooks/github", content=body, headers=headers)
    again = client.post("/webhooks/github", content=body, headers=headers)
    assert first.status_code == 202 and again.status_code == 200
    assert again.json() == {"duplicate": True, "job_id": first.json()["job_ids"][0]}
    assert queue.zcard("arq:queue") == 1


def test_push_and_pr_of_one_sha_share_a_job(client: TestClient, queue: redis_sync.Redis) -> None:
    """Dedupe by meaning: a check_suite and a pull_request event for the same head sha run once."""
    pr = json.loads(_body("pull_request.synchronize.json"))
    suite = json.loads(_body("check_suite.requested.json"))
    suite["check_suite"]["head_sha"] = pr["pull_request"]["head"]["sha"]
    answers = []
    for event, payload in (("pull_request", pr), ("check_suite", suite)):
        body = json.dumps(payload).encode()
        answers.append(client.post("/webhooks/github", content=body, headers=_headers(body, event)))
    assert [a.status_code for a in answers] == [202, 202]
    assert answers[1].json()["status"] == "coalesced"
    assert answers[0].json()["job_ids"] == answers[1].json()["job_ids"]
    assert queue.zcard("arq:queue") == 1


@pytest.mark.parametrize("headers_change, status", [
    ({"X-Hub-Signature-256": None}, 401),
    ({"X-Hub-Signature-256": "sha256=" + "0" * 64}, 401),
    ({"X-Hub-Signature-256": "sha1=0123456789abcdef0123456789abcdef01234567"}, 401),
    ({"X-GitHub-Event": None}, 400),
    ({"X-GitHub-Delivery": None}, 400),
])
def test_refused_deliveries_enqueue_nothing(client: TestClient, queue: redis_sync.Redis, headers_change, status) -> None:
    body = _body("pull_request.opened.json")
    headers = _headers(body, "pull_request")
    for name, value in headers_change.items():
        headers.pop(name)
        if value is not None:
            headers[name] = value
    answer = client.post("/webhooks/github", content=body, headers=headers)
    assert answer.status_code == status
    assert answer.json()["detail"]
    assert queue.zcard("arq:queue") == 0 and queue.dbsize() == 0


def test_signature_with_the_old_secret_still_works(client: TestClient) -> None:
    body = _body("pull_request.opened.json")
    answer = client.post("/webhooks/github", content=body, headers=_headers(body, "pull_request", secret="rotated-out"))
    assert answer.status_code == 202


def test_malformed_json_is_400(client: TestClient) -> None:
    body = b'{"action": "opened", '
    answer = client.post("/webhooks/github", content=body, headers=_headers(body, "pull_request"))
    assert answer.status_code == 400 and "JSON" in answer.json()["detail"]


def test_body_over_25_mb_is_413(client: TestClient, queue: redis_sync.Redis) -> None:
    body = b" " * (25 * 1024 * 1024 + 1)
    answer = client.post("/webhooks/github", content=body, headers=_headers(body, "pull_request"))
    assert answer.status_code == 413
    assert queue.dbsize() == 0


def test_form_encoded_delivery(client: TestClient, queue: redis_sync.Redis) -> None:
    body = urlencode({"payload": _body("pull_request.opened.json").decode()}).encode()
    headers = _headers(body, "pull_request", content_type="application/x-www-form-urlencoded")
    answer = client.post("/webhooks/github", content=body, headers=headers)
    assert answer.status_code == 202
    assert queue.zcard("arq:queue") == 1


@pytest.mark.parametrize("event, fixture", [
    ("ping", "ping.json"),
    ("pull_request", "pull_request.closed.json"),
    ("pull_request", "pull_request.labeled.json"),
    ("push", "push.branch.json"),
    ("star", "ping.json"),
    ("issue_comment", "issue_comment.created.chatter.json"),
])
def test_ignored_events_get_2xx_and_a_reason(client: TestClient, queue: redis_sync.Redis, event, fixture) -> None:
    body = _body(fixture)
    answer = client.post("/webhooks/github", content=body, headers=_headers(body, event))
    assert answer.status_code == 200
    assert answer.json()["ignored"]
    assert queue.zcard("arq:queue") == 0
    [(_, logged)] = queue.xrange("aqe:deliveries")
    assert logged[b"outcome"] == b"ignored"


def test_installation_is_recorded(client: TestClient, queue: redis_sync.Redis) -> None:
    body = _body("installation.created.json")
    answer = client.post("/webhooks/github", content=body, headers=_headers(body, "installation"))
    assert answer.status_code == 200
    installation_id = json.loads(body)["installation"]["id"]
    record = json.loads(queue.hget("aqe:installations", str(installation_id)))
    assert record["action"] == "created" and record["added"]


def test_unconfigured_server_answers_503(make_settings, redis_url: str) -> None:
    settings = make_settings(GITHUB_WEBHOOK_SECRET="")
    with TestClient(create_app(settings)) as client:
        body = _body("pull_request.opened.json")
        answer = client.post("/webhooks/github", content=body, headers=_headers(body, "pull_request"))
    assert answer.status_code == 503 and "GITHUB_WEBHOOK_SECRET" in answer.json()["detail"]


def test_unreachable_redis_answers_503_so_github_shows_the_failure(make_settings) -> None:
    """GitHub does not retry by itself: a delivery AQE could not enqueue must not be answered 2xx."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    settings = make_settings(REDIS_URL=f"redis://127.0.0.1:{closed_port}/0")
    with TestClient(create_app(settings)) as client:
        body = _body("pull_request.opened.json")
        answer = client.post("/webhooks/github", content=body, headers=_headers(body, "pull_request"))
    assert answer.status_code == 503 and "redeliver" in answer.json()["detail"]


def test_gitlab_hooks_answer_503_until_a_secret_is_set_and_when_redis_is_unreachable(make_settings) -> None:
    import socket

    body = b'{"object_kind": "push"}'
    headers = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "gl-secret", "Content-Type": "application/json"}
    with TestClient(create_app(make_settings())) as client:
        unconfigured = client.post("/webhooks/gitlab", content=body, headers=headers)
    assert unconfigured.status_code == 503 and "GITLAB_WEBHOOK_SECRET" in unconfigured.json()["detail"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    settings = make_settings(REDIS_URL=f"redis://127.0.0.1:{closed_port}/0", GITLAB_WEBHOOK_SECRET="gl-secret")
    with TestClient(create_app(settings)) as client:
        pipeline = client.post("/webhooks/gitlab", content=b"{}", headers={**headers, "X-Gitlab-Event": "Pipeline Hook"})
    assert pipeline.status_code == 503 and "resend it from the webhook's Recent events" in pipeline.json()["detail"]
