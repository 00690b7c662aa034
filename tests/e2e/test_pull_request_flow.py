"""A signed pull_request webhook becomes check runs and one PR comment, through real processes."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import redis as redis_sync

from tests.e2e.conftest import REPO, Stack


def _runs_for(stack: Stack, sha: str) -> list[dict]:
    return [r for r in stack.fake.check_runs.values() if r["head_sha"] == sha and r["name"] == "aqe/tests"]


def _wait_completed(stack: Stack, sha: str, timeout: float = 90) -> dict:
    stack.fake.wait_for(lambda f: any(r["status"] == "completed" for r in _runs_for(stack, sha)), timeout=timeout)
    return next(r for r in _runs_for(stack, sha) if r["status"] == "completed")


def _open_failing_pr(stack: Stack) -> tuple[str, str]:
    repo = stack.repo
    repo.branch("fix-sub")
    repo.write("calc.py", "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a + b  # oops\n")
    head = repo.commit("break sub")
    stack.fake.update_repo(REPO, repo.path)
    stack.fake.add_pull(REPO, 7, head_sha=head, base_sha=repo.main_sha, head_ref="fix-sub")
    answer = stack.deliver("pull_request", stack.pull_request_payload("opened", 7, head, repo.main_sha, "fix-sub"))
    assert answer.status_code == 202, answer.text
    return head, answer.json()["job_ids"][0]


def test_failing_then_fixed_pull_request(stack: Stack) -> None:
    """opened with a failing test -> failure + annotation + one comment; synchronize with a fix -> success, same comment."""
    head, job_id = _open_failing_pr(stack)
    run = _wait_completed(stack, head)
    assert run["conclusion"] == "failure"
    statuses = [h.get("status") for h in run["history"] if h.get("status")]
    assert statuses[:2] == ["queued", "in_progress"], statuses
    [note] = run["annotations"]
    assert note["path"] == "tests/test_calc.py" and note["start_line"] == 9  # `assert sub(5, 3) == 2`
    assert note["annotation_level"] == "failure"
    assert run["details_url"].startswith(f"{stack.web_url}/jobs/{job_id}?t=")
    stack.fake.wait_for(lambda f: len(f.comments) == 1)
    [comment] = stack.fake.comments.values()
    assert "<!-- aqe:report -->" in comment["body"] and head[:7] in comment["body"]

    repo = stack.repo
    repo.write("calc.py", "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n")
    fixed = repo.commit("fix sub")
    stack.fake.update_repo(REPO, repo.path)
    stack.fake.add_pull(REPO, 7, head_sha=fixed, base_sha=repo.main_sha, head_ref="fix-sub")
    payload = stack.pull_request_payload("synchronize", 7, fixed, repo.main_sha, "fix-sub")
    assert stack.deliver("pull_request", payload).status_code == 202
    run = _wait_completed(stack, fixed)
    assert run["conclusion"] == "success" and run["annotations"] == []
    stack.fake.wait_for(lambda f: fixed[:7] in next(iter(f.comments.values()))["body"])
    assert len(stack.fake.comments) == 1
    assert len(stack.fake.calls_to("POST", r"/issues/7/comments$")) == 1
    runs = stack.checks_when_done(fixed)
    verdicts = {name: r["conclusion"] for name, r in runs.items()}
    titles = {name: r["output"]["title"] for name, r in runs.items()}
    assert titles["aqe/coverage"] == "Patch: no coverable lines changed · total 100.0 %"  # the fix restored main
    assert titles["aqe/quality"] == "No changed source files to analyse"
    assert {k: verdicts[k] for k in ("aqe/tests", "aqe/coverage", "aqe/quality")} == {
        "aqe/tests": "success", "aqe/coverage": "success", "aqe/quality": "neutral"}, verdicts
    assert verdicts["aqe/quality-gate"] == "success", titles["aqe/quality-gate"]
    stack.fake.wait_for(lambda f: "quality-gate" in next(iter(f.comments.values()))["body"])
    comment = next(iter(stack.fake.comments.values()))["body"]
    assert all(f"`aqe/{name}`" in comment for name in ("tests", "coverage", "quality", "quality-gate"))
    assert stack.fake.reopened_runs == []

    log = (Path(stack.env["AQE_DATA_DIR"]).parent / "stack.log").read_text()
    assert f"event=pull_request action=synchronize repo={REPO} status=202 secret=1" in log  # one line per delivery

    page = httpx.get(run["details_url"], timeout=5)
    assert page.status_code == 200 and "acme/widgets" in page.text
    assert httpx.get(f"{stack.web_url}/jobs/{job_id}", timeout=5).status_code == 403


def test_redelivery_runs_once(stack: Stack) -> None:
    """The same X-GitHub-Delivery twice: the second answer is a duplicate and nothing runs twice."""
    repo = stack.repo
    payload = stack.pull_request_payload("opened", 3, repo.main_sha, repo.main_sha, "main")
    stack.fake.add_pull(REPO, 3, head_sha=repo.main_sha, base_sha=repo.main_sha, head_ref="main")
    delivery = str(uuid.uuid4())
    first = stack.deliver("pull_request", payload, delivery=delivery)
    second = stack.deliver("pull_request", payload, delivery=delivery)
    assert first.status_code == 202 and second.status_code == 200
    assert second.json() == {"duplicate": True, "job_id": first.json()["job_ids"][0]}
    run = _wait_completed(stack, repo.main_sha)
    assert run["conclusion"] == "success"
    time.sleep(1.0)
    assert len(_runs_for(stack, repo.main_sha)) == 1


def test_bad_signature_makes_no_github_call(stack: Stack) -> None:
    """A delivery signed with the wrong secret is refused with 401 and GitHub is never called."""
    repo = stack.repo
    payload = stack.pull_request_payload("opened", 4, repo.main_sha, repo.main_sha, "main")
    answer = stack.deliver("pull_request", payload, secret="not-the-secret")
    assert answer.status_code == 401
    time.sleep(1.5)
    assert stack.fake.calls == []
    assert redis_sync.Redis.from_url(stack.redis_url).zcard("arq:queue") == 0


def test_job_status_needs_an_api_key(stack: Stack) -> None:
    """`aqe api generate-key` makes a key that opens GET /api/v1/job/{id}/status; no key gets 401."""
    repo = stack.repo
    stack.fake.add_pull(REPO, 5, head_sha=repo.main_sha, base_sha=repo.main_sha, head_ref="main")
    answer = stack.deliver("pull_request", stack.pull_request_payload("opened", 5, repo.main_sha, repo.main_sha, "main"))
    job_id = answer.json()["job_ids"][0]
    created = stack.aqe("api", "generate-key", "--name", "ci")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("aqe_") and len(key) == 36
    url = f"{stack.web_url}/api/v1/job/{job_id}/status"
    assert httpx.get(url, timeout=5).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer aqe_" + "x" * 32}, timeout=5).status_code == 401
    _wait_completed(stack, repo.main_sha)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        body = httpx.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=5).json()
        if body["status"] == "completed":
            break
        time.sleep(0.2)
    assert body["status"] == "completed" and body["progress"] == 100.0
    assert body["result"]["conclusion"] == "success"
    assert [s["name"] for s in body["steps"]][:3] == ["authenticate", "checkout", "config"]
    fleet_url = f"{stack.web_url}/api/v1/fleet/status"
    assert httpx.get(fleet_url, timeout=5).status_code == 401
    assert httpx.get(fleet_url, headers={"Authorization": f"Bearer {key}"}, timeout=5).status_code == 403  # scope
    fleet_key = stack.aqe("api", "generate-key", "--name", "grafana", "--scope", "fleet:read").stdout.strip()
    fleet = httpx.get(fleet_url, headers={"Authorization": f"Bearer {fleet_key}"}, timeout=5).json()
    [worker] = fleet["workers"]["list"]  # the stack's one worker, from its own heartbeat
    assert worker["max_jobs"] >= 1 and fleet["workers"]["alive"] == 1 and fleet["workers"]["arq_health"]
    assert fleet["agents"]["tests"]["runs"] == 1 and fleet["agents"]["tests"]["duration_p50_s"] > 0
    assert fleet["queue"]["queued"] == 0
    scraped = httpx.get(f"{stack.web_url}/metrics", timeout=5).text  # the worker's GitHub calls, via Redis
    assert 'aqe_forge_api_calls_total{forge="github",method="POST",status="201"}' in scraped
    assert 'aqe_forge_rate_limit_remaining{forge="github",resource="core"}' in scraped
    stored = redis_sync.Redis.from_url(stack.redis_url).hgetall("aqe:apikeys")
    assert key.encode() not in b"".join(stored.values()) and len(stored) == 2  # the ci and the grafana key
