"""The shell examples of docs/install.md and docs/api.md, run against a running AQE."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import msgspec

from tests.conftest import WEBHOOK_SECRET
from tests.docs.examples import examples
from tests.e2e.conftest import REPO, ROOT, Stack, finished_job
from tests.fakes.target import FakeTarget


def _sh(stack: Stack, code: str, cwd: Path = ROOT, **env: str) -> str:
    path = f"{Path(sys.executable).parent}{os.pathsep}{stack.env['PATH']}"  # `aqe` as installed by make
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", code], env={**stack.env, "PATH": path, **env},
                          capture_output=True, text=True, timeout=60, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_ping_example(stack: Stack) -> None:
    [(code, _)] = examples("install.md", "ping")
    out = _sh(stack, code, AQE_URL=stack.web_url, GITHUB_WEBHOOK_SECRET=WEBHOOK_SECRET)
    assert json.loads(out) == {"ignored": "ping"}


def test_generate_key_and_job_status_examples(stack: Stack, tmp_path: Path) -> None:
    [(generate, _)] = examples("api.md", "generate-key")
    key = _sh(stack, generate).strip()
    assert key.startswith("aqe_")
    repo = stack.repo
    stack.fake.add_pull(REPO, 21, head_sha=repo.main_sha, base_sha=repo.main_sha, head_ref="main")
    answer = stack.deliver("pull_request", stack.pull_request_payload("opened", 21, repo.main_sha, repo.main_sha, "main"))
    job_id = answer.json()["job_ids"][0]
    [(status, _)] = examples("api.md", "job-status")
    record = json.loads(_sh(stack, status, AQE_URL=stack.web_url, AQE_API_KEY=key, JOB_ID=job_id))
    assert record["id"] == job_id and record["request"]["repo"] == REPO
    [(scan, _)] = examples("api.md", "security-scan")
    started = json.loads(_sh(stack, scan, AQE_URL=stack.web_url, AQE_API_KEY=key, REPO=REPO, SHA=repo.main_sha,
                             BUILD_ID="jenkins-7"))
    assert started["status_url"].endswith(f"/api/v1/job/{started['job_id']}/status")
    again = json.loads(_sh(stack, scan, AQE_URL=stack.web_url, AQE_API_KEY=key, REPO=REPO, SHA=repo.main_sha,
                           BUILD_ID="jenkins-7"))
    assert again["job_id"] == started["job_id"]
    [(upload, _)] = examples("api.md", "coverage-upload")
    (tmp_path / "coverage").mkdir()  # the example's relative path
    (tmp_path / "coverage" / "lcov.info").write_text("SF:calc.py\nDA:1,1\nDA:2,1\nDA:5,1\nDA:6,0\nend_of_record\n")
    queued = json.loads(_sh(stack, upload, cwd=tmp_path, AQE_URL=stack.web_url, AQE_API_KEY=key, REPO=REPO,
                            SHA=repo.main_sha))
    assert queued["status"] == "queued" and queued["job_id"]
    [(gate, _)] = examples("api.md", "quality-gate")
    verdict = json.loads(_sh(stack, gate, AQE_URL=stack.web_url, AQE_API_KEY=key))
    assert verdict["status"] == "completed" and verdict["conclusion"] == "success"
    [(listing, _)] = examples("api.md", "list-jobs")
    listed = json.loads(_sh(stack, listing, AQE_URL=stack.web_url, AQE_API_KEY=key, REPO=REPO))
    assert {started["job_id"], job_id} <= {j["id"] for j in listed["jobs"]}
    [(fleet, _)] = examples("api.md", "fleet-status")
    status_of_fleet = json.loads(_sh(stack, fleet, AQE_URL=stack.web_url, AQE_API_KEY=key))
    assert status_of_fleet["workers"]["alive"] == 1 and "tests" in status_of_fleet["agents"]
    from app.api.openapi import FleetStatus

    fleet_view = msgspec.convert(status_of_fleet, FleetStatus)  # as /openapi.json describes it, with a live worker
    assert fleet_view.workers.beats[0].max_jobs > 0 and set(fleet_view.queue.by_priority) == {"high", "normal", "low"}


def test_limited_key_token_and_audit_examples(stack: Stack) -> None:
    [(limited, _)] = examples("api.md", "generate-key-limited")
    key = _sh(stack, limited).strip()
    [(status, _)] = examples("api.md", "job-status")
    listing = _sh(stack, 'curl -sS -o /dev/null -w "%{http_code}" -H "Authorization: Bearer $AQE_API_KEY" '
                         '"$AQE_URL/api/v1/fleet/status"', AQE_URL=stack.web_url, AQE_API_KEY=key)
    assert listing == "403"  # the limited key has no fleet:read
    keys = _sh(stack, "aqe api list-keys")
    [row] = [line.split("\t") for line in keys.splitlines() if line.startswith("circleci\t")]
    assert row[1] == f"{key[:8]}…" and row[2:5] == ["jobs:read,jobs:write", "acme/*", "200/minute"]
    [(issue, _)] = examples("api.md", "issue-token")
    token = _sh(stack, issue).strip()
    jobs = json.loads(_sh(stack, 'curl -sS -H "Authorization: Bearer $AQE_API_KEY" "$AQE_URL/api/v1/jobs"',
                          AQE_URL=stack.web_url, AQE_API_KEY=token))
    assert "jobs" in jobs
    [(audit, _)] = examples("api.md", "audit")
    actions = [line.split("\t")[2] for line in _sh(stack, audit).splitlines()]
    assert actions[:2] == ["token.issued", "key.created"]
    assert key not in _sh(stack, audit) and token not in _sh(stack, audit)
    [(revoke, _)] = examples("api.md", "revoke-key")
    assert "circleci\t" in _sh(stack, revoke)  # listed, then revoked: refused from the next request on
    refused = httpx.get(f"{stack.web_url}/api/v1/jobs", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]


def test_stream_examples_follow_a_job_to_its_end(stack: Stack, tmp_path: Path) -> None:
    key = _sh(stack, "aqe api generate-key --name streams").strip()
    start = httpx.post(f"{stack.web_url}/api/v1/security/scan", headers={"Authorization": f"Bearer {key}"},
                       json={"repo": REPO, "sha": stack.repo.main_sha, "scan_types": ["secrets"]}, timeout=10)
    assert start.status_code == 202, start.text
    job_id = start.json()["job_id"]
    [(follow, _)] = examples("api.md", "job-stream")
    script = tmp_path / "follow.py"
    script.write_text(follow)
    printed = _sh(stack, f"python {script}", AQE_URL=stack.web_url, AQE_API_KEY=key, JOB_ID=job_id)
    lines = printed.strip().splitlines()
    assert lines[-1] in ("complete success", "complete neutral", "complete failure"), printed
    assert any(line.endswith("queued") or "agent:security" in line for line in lines[:-1]), printed
    [(events, _)] = examples("api.md", "job-events")
    replay = _sh(stack, events, AQE_URL=stack.web_url, AQE_API_KEY=key, JOB_ID=job_id)  # ended: replays, closes
    assert replay.count("event: complete") == 1 and replay.rstrip().endswith("}")
    assert "id: " in replay and '"type":"progress"' in replay
    ids = [line.removeprefix("id: ") for line in replay.splitlines() if line.startswith("id: ")]
    [(resume, _)] = examples("api.md", "job-events-resume")
    rest = _sh(stack, resume, AQE_URL=stack.web_url, AQE_API_KEY=key, JOB_ID=job_id, LAST_ID=ids[0])
    assert [line.removeprefix("id: ") for line in rest.splitlines() if line.startswith("id: ")] == ids[1:]


def test_test_execute_performance_test_and_cancel_examples(stack: Stack) -> None:
    key = _sh(stack, "aqe api generate-key --name runner").strip()
    headers = {"Authorization": f"Bearer {key}"}
    [(execute, _)] = examples("api.md", "test-execute")
    tests = json.loads(_sh(stack, execute, AQE_URL=stack.web_url, AQE_API_KEY=key, REPO=REPO, BRANCH="main"))
    record = finished_job(stack, tests["job_id"], headers)
    assert record["status"] == "completed" and record["request"]["priority"] == "high"
    assert record["request"]["head_sha"] == stack.repo.main_sha and "tests" in record["agents"]
    [(load, _)] = examples("api.md", "performance-test")
    with FakeTarget() as target:
        started = json.loads(_sh(stack, load, AQE_URL=stack.web_url, AQE_API_KEY=key, REPO=REPO,
                                 SHA=stack.repo.main_sha, PREVIEW_URL=f"{target.url}/fast"))
        job_id = started["job_id"]
        deadline = time.monotonic() + 60
        while not target.requests:  # the load test is under way
            assert time.monotonic() < deadline, "the load test did not start"
            time.sleep(0.1)
        [(cancel, _)] = examples("api.md", "cancel-job")
        answer = json.loads(_sh(stack, cancel, AQE_URL=stack.web_url, AQE_API_KEY=key, JOB_ID=job_id))
        assert (answer["job_id"], answer["status"]) == (job_id, "cancelling") and answer["status_url"]
        ended = finished_job(stack, job_id, headers)
    assert ended["status"] == "cancelled" and ended["finished_at"] - ended["started_at"] < 25  # not its 30 s
