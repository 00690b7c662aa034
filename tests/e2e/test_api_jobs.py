"""Jobs started through the REST API, end to end: a real web process and worker, the fake GitHub, the planted project."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import redis as redis_sync

from jobs.eta import expected_duration
from tests.e2e.conftest import CALLBACK_SECRET, REPO, Stack, api_key_headers, finished_job
from tests.e2e.test_agents import plant
from tests.fakes.receiver import FakeReceiver
from tests.fakes.target import FakeTarget


def _post(stack: Stack, path: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{stack.web_url}/api/v1{path}", json=body, headers=headers, timeout=10)


def _agent(record: dict[str, Any], name: str) -> dict[str, Any]:
    return next(a for a in record["result"]["agents"] if a["agent"] == name)


def test_security_scan_of_a_commit_reports_to_the_job_only(stack: Stack) -> None:
    base, head = plant(stack)
    headers = api_key_headers(stack)
    answer = _post(stack, "/security/scan", {"repo": REPO, "sha": head, "scan_types": ["secrets", "sast"]}, headers)
    assert answer.status_code == 202, answer.text
    body = answer.json()
    job_id = body["job_id"]
    assert body["status_url"] == f"{stack.web_url}/api/v1/job/{job_id}/status"
    assert body["stream_url"] == f"ws{stack.web_url[4:]}/api/v1/job/{job_id}/stream"
    assert body["events_url"] == f"{stack.web_url}/api/v1/job/{job_id}/events"
    assert answer.headers["location"] == body["status_url"]

    record = finished_job(stack, job_id, headers)
    assert (record["status"], record["result"]["conclusion"]) == ("completed", "failure")
    security = _agent(record, "security")
    assert security["metrics"]["dependency_scan"] == "disabled"  # scan_types left it out
    found = sorted((f["path"], f["start_line"], f["rule"]) for f in security["findings"])
    assert ("shop/backup.py", 5, "B602") in found and ("shop/settings.py", 2, "AWSKeyDetector") in found
    assert not any(path == "requirements.txt" for path, _, _ in found)
    assert [r for r in stack.fake.check_runs.values() if r["head_sha"] == head] == []  # nothing on GitHub
    assert stack.osv.calls_to("/v1/querybatch") == []

    gate = _post(stack, "/quality/gate", {"job_id": job_id}, headers)  # the gate over that job's results
    assert gate.status_code == 202 and gate.json()["conclusion"] == "failure", gate.text
    [verdict] = finished_job(stack, gate.json()["job_id"], headers)["result"]["agents"]
    assert "| New high/critical security issues | 2 | 0 | ❌ failed |" in verdict["summary"]
    assert "`aqe/tests` did not run" in verdict["summary"]


def test_test_execute_of_a_branch_runs_its_tip_with_coverage(stack: Stack) -> None:
    base, head = plant(stack)
    headers = api_key_headers(stack)
    answer = _post(stack, "/test/execute", {"repo": REPO, "ref": "planted", "priority": "high"}, headers)
    assert answer.status_code == 202, answer.text
    record = finished_job(stack, answer.json()["job_id"], headers)
    assert record["request"]["head_sha"] == head and record["request"]["priority"] == "high"
    assert [a["agent"] for a in record["result"]["agents"]] == ["tests", "coverage"]
    assert _agent(record, "tests")["title"] == "1 failed, 3 passed"
    assert _agent(record, "coverage")["metrics"]["total_percent"] == 76.3
    in_two = _post(stack, "/test/execute", {"repo": REPO, "sha": head, "parallel": 2}, headers)
    assert in_two.status_code == 202, in_two.text
    parallel = finished_job(stack, in_two.json()["job_id"], headers)
    assert "-n 2" in _agent(parallel, "tests")["summary"]
    assert _agent(parallel, "tests")["title"] == "1 failed, 3 passed"  # the same tests, the same figures
    assert _agent(parallel, "coverage")["metrics"]["total_percent"] == 76.3


def test_performance_test_against_a_target(stack: Stack) -> None:
    base, head = plant(stack)
    headers = api_key_headers(stack)
    with FakeTarget() as target:
        answer = _post(stack, "/performance/test", {
            "repo": REPO, "sha": head, "target_url": f"{target.url}/fast", "virtual_users": 2, "duration": "1s",
            "ramp_up": 0, "thresholds": ["p95 < 2s", "errors < 1%"]}, headers)
        assert answer.status_code == 202, answer.text
        record = finished_job(stack, answer.json()["job_id"], headers)
        with target.lock:
            served = target.requests
    performance = _agent(record, "performance")
    assert performance["conclusion"] == "success" and performance["metrics"]["requests"] == served > 0
    assert performance["metrics"]["thresholds"] == 2 and performance["metrics"]["thresholds_failed"] == 0


def test_bad_requests_are_refused_with_the_field_named(stack: Stack) -> None:
    headers = api_key_headers(stack)
    sha = stack.repo.main_sha
    assert _post(stack, "/security/scan", {"repo": REPO, "sha": sha}, {}).status_code == 401
    cases = [
        ("/security/scan", {"sha": sha}, "repo"),
        ("/security/scan", {"repo": REPO, "sha": sha, "ref": "main"}, "exactly one of sha"),
        ("/security/scan", {"repo": REPO, "sha": "abc"}, "sha:"),
        ("/security/scan", {"repo": "not a repo", "sha": sha}, "repo:"),
        ("/security/scan", {"repo": REPO, "sha": sha, "scan_types": ["viruses"]}, "scan_types"),
        ("/security/scan", {"repo": REPO, "sha": sha, "colour": "red"}, "colour"),
        ("/test/execute", {"repo": REPO, "ref": "../etc"}, "ref:"),
        ("/test/execute", {"repo": REPO, "sha": sha, "timeout": 0}, "timeout"),
        ("/test/execute", {"repo": REPO, "sha": sha, "parallel": 0}, "parallel"),
        ("/test/execute", {"repo": REPO, "sha": sha, "parallel": 2, "command": "make test"}, "parallel"),
        ("/performance/test", {"repo": REPO, "sha": sha, "target_url": "ftp://x"}, "target_url"),
        ("/performance/test", {"repo": REPO, "sha": sha, "target_url": "http://127.0.0.1:9", "duration": "1h"},
         "duration"),
        ("/performance/test", {"repo": REPO, "sha": sha, "target_url": "http://127.0.0.1:9",
                               "thresholds": ["p95 < fast"]}, "thresholds"),
    ]
    for path, body, named in cases:
        answer = _post(stack, path, body, headers)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert named in answer.json()["detail"], (body, answer.json())
    broken = httpx.post(f"{stack.web_url}/api/v1/security/scan", content=b"{not json", headers={
        **headers, "Content-Type": "application/json"}, timeout=5)
    assert broken.status_code == 400 and broken.json()["code"] == "invalid_json"
    assert redis_sync.Redis.from_url(stack.redis_url).zcard("arq:queue") == 0  # nothing was enqueued


def test_idempotency_key_returns_the_same_job(stack: Stack) -> None:
    headers = api_key_headers(stack)
    body = {"repo": REPO, "sha": stack.repo.main_sha, "scan_types": ["secrets"]}
    first = _post(stack, "/security/scan", body, {**headers, "Idempotency-Key": "build-41"})
    again = _post(stack, "/security/scan", body, {**headers, "Idempotency-Key": "build-41"})
    assert first.status_code == again.status_code == 202
    assert again.json()["job_id"] == first.json()["job_id"] and again.json()["outcome"] == "duplicate"
    other = _post(stack, "/security/scan", {**body, "scan_types": ["sast"]}, {**headers, "Idempotency-Key": "b-42"})
    assert other.json()["job_id"] != first.json()["job_id"]
    json.dumps(finished_job(stack, first.json()["job_id"], headers))


def test_a_job_is_expected_to_take_as_long_as_its_kind_took_lately(stack: Stack) -> None:
    headers = api_key_headers(stack)
    body = {"repo": REPO, "sha": stack.repo.main_sha, "scan_types": ["secrets"]}
    first = finished_job(stack, _post(stack, "/security/scan", body, headers).json()["job_id"], headers)
    assert first["status"] == "completed" and first["eta_s"] is None and first["eta"] is None  # ended
    took = [float(d) for d in redis_sync.Redis.from_url(stack.redis_url).lrange(
        f"aqe:job-runs:github:{REPO}:security", 0, -1)]
    assert round(first["finished_at"] - first["started_at"], 3) == took[0]
    second = finished_job(stack, _post(stack, "/security/scan", body, headers).json()["job_id"], headers)
    assert second["id"] != first["id"] and second["expected_s"] == expected_duration(took) > 0


def test_cancelling_a_running_job_stops_it_and_lists_it_as_cancelled(stack: Stack) -> None:
    repo = stack.repo
    repo.branch("slow")
    repo.write("tests/test_slow.py", "import time\n\n\ndef test_slow():\n    time.sleep(120)\n")
    repo.commit("a slow test")
    stack.fake.update_repo(REPO, repo.path)
    headers = api_key_headers(stack)
    job_id = _post(stack, "/test/execute", {"repo": REPO, "ref": "slow", "coverage": False}, headers).json()["job_id"]
    deadline = time.monotonic() + 60
    while httpx.get(f"{stack.web_url}/api/v1/job/{job_id}/status", headers=headers,
                    timeout=5).json().get("step") != "agent:tests":
        assert time.monotonic() < deadline, "the tests never started"
        time.sleep(0.1)
    answer = httpx.post(f"{stack.web_url}/api/v1/job/{job_id}/cancel", headers=headers, timeout=5)
    assert answer.status_code == 202 and answer.json()["status"] == "cancelling"
    record = finished_job(stack, job_id, headers, timeout=30)
    assert record["status"] == "cancelled" and record["error"] == "the job was cancelled"
    listed = httpx.get(f"{stack.web_url}/api/v1/jobs?status=cancelled", headers=headers, timeout=5).json()
    assert [j["id"] for j in listed["jobs"]] == [job_id]


LCOV = ("SF:shop/pricing.py\n" + "".join(f"DA:{line},1\n" for line in (1, 2, 5, 6, 7, 10))
        + "".join(f"DA:{line},0\n" for line in range(11, 16)) + "end_of_record\n")


def test_coverage_of_an_uploaded_report_and_of_a_jobs_report(stack: Stack) -> None:
    base, head = plant(stack)
    headers = api_key_headers(stack)
    uploaded = httpx.post(f"{stack.web_url}/api/v1/coverage/analyze", headers=headers, timeout=10,
                          data={"repo": REPO, "sha": head, "base": "main"},
                          files={"report": ("lcov.info", LCOV.encode(), "text/plain")})
    assert uploaded.status_code == 202, uploaded.text
    coverage = _agent(finished_job(stack, uploaded.json()["job_id"], headers), "coverage")
    # 6 of 11 lines; of the changed ones apply_coupon's def line only (the other changed files are not in it)
    assert coverage["title"] == "Patch 16.7 % · total 54.5 %", coverage["title"]
    assert [(f["path"], f["start_line"], f["end_line"]) for f in coverage["findings"]] == [("shop/pricing.py", 11, 15)]

    tests = _post(stack, "/test/execute", {"repo": REPO, "sha": head}, headers).json()
    assert "coverage.xml" in finished_job(stack, tests["job_id"], headers)["artifacts"]
    again = _post(stack, "/coverage/analyze", {"repo": REPO, "sha": head, "job_id": tests["job_id"], "base": base,
                                                "patch_target": 30}, headers)
    assert again.status_code == 202, again.text
    coverage = _agent(finished_job(stack, again.json()["job_id"], headers), "coverage")
    assert (coverage["conclusion"], coverage["title"]) == ("success", "Patch 37.5 % · total 76.3 %")

    as_base64 = base64.b64encode(LCOV.encode()).decode()
    same = _post(stack, "/coverage/analyze", {"repo": REPO, "sha": head, "report": as_base64,
                                               "report_name": "lcov.info"}, headers)
    assert _agent(finished_job(stack, same.json()["job_id"], headers), "coverage")["title"] == "Coverage: total 54.5 %"
    for body, status, said in [
        ({"repo": REPO, "sha": head}, 422, "exactly one of report"),
        ({"repo": REPO, "sha": head, "report": "!!"}, 422, "not base64"),
        ({"repo": REPO, "sha": head, "report": base64.b64encode(b"hello").decode()}, 422, "not a coverage report"),
        ({"repo": REPO, "sha": head, "job_id": "f" * 24}, 404, "kept coverage report"),
        ({"repo": REPO, "sha": head, "report": as_base64, "base": "no good"}, 422, "base:"),
    ]:
        answer = _post(stack, "/coverage/analyze", body, headers)
        assert answer.status_code == status and said in answer.json()["detail"], (body, answer.text)


def test_a_callback_gets_the_signed_result_and_the_job_shows_the_attempts(stack: Stack) -> None:
    base, head = plant(stack)
    headers = api_key_headers(stack)
    with FakeReceiver() as receiver:
        receiver.fail_next(1, 502)
        answer = _post(stack, "/security/scan", {"repo": REPO, "sha": head, "scan_types": ["secrets"],
                                                 "callback_url": receiver.url}, headers)
        job_id = answer.json()["job_id"]
        deadline = time.monotonic() + 60
        while len(finished_job(stack, job_id, headers).get("callbacks", [])) < 2:
            assert time.monotonic() < deadline, "no second callback attempt"
            time.sleep(0.2)
        first, second = receiver.received
    record = finished_job(stack, job_id, headers)
    assert [a["status"] for a in record["callbacks"]] == [502, 204]
    assert first.body == second.body and json.loads(second.body)["conclusion"] == "failure"
    expected = "sha256=" + hmac.new(CALLBACK_SECRET.encode(), second.body, hashlib.sha256).hexdigest()
    assert second.headers["x-aqe-signature-256"] == expected
    refused = _post(stack, "/security/scan", {"repo": REPO, "sha": head, "callback_url": "ftp://x"}, headers)
    assert refused.status_code == 422 and "callback_url" in refused.json()["detail"]


def test_the_gates_job_answered_at_once_gets_its_callback_from_a_worker(stack: Stack) -> None:
    headers = api_key_headers(stack)
    with FakeReceiver() as receiver:
        answer = _post(stack, "/quality/gate", {"repo": REPO, "metrics": {"tests": {
                           "tests_total": 10, "tests_failed": 1, "tests_errors": 0}},
                                                "callback_url": receiver.url}, headers)
        assert answer.status_code == 202 and answer.json()["conclusion"] == "failure", answer.text
        job_id = answer.json()["job_id"]
        deadline = time.monotonic() + 60
        while not finished_job(stack, job_id, headers).get("callbacks"):
            assert time.monotonic() < deadline, "no callback"
            time.sleep(0.2)
        [delivered] = receiver.received
    body = json.loads(delivered.body)
    assert (body["job_id"], body["status"], body["conclusion"]) == (job_id, "completed", "failure")
    expected = "sha256=" + hmac.new(CALLBACK_SECRET.encode(), delivered.body, hashlib.sha256).hexdigest()
    assert delivered.headers["x-aqe-signature-256"] == expected
    assert [a["status"] for a in finished_job(stack, job_id, headers)["callbacks"]] == [204]
    refused = _post(stack, "/quality/gate", {"metrics": {}, "callback_url": "ftp://x"}, headers)
    assert refused.status_code == 422 and "callback_url" in refused.json()["detail"]


def test_a_public_repository_by_url_is_analysed_without_the_github_app(stack: Stack) -> None:
    """`repo` as a git URL: cloned anonymously, results on the job only; a URL with credentials is refused."""
    base, head = plant(stack)
    public = stack.fake.add_repo("someone/public-shop", stack.repo.path, public=True)
    headers = api_key_headers(stack)
    answer = _post(stack, "/security/scan", {"repo": public, "ref": "planted", "scan_types": ["secrets"]}, headers)
    assert answer.status_code == 202, answer.text
    record = finished_job(stack, answer.json()["job_id"], headers)
    assert record["status"] == "completed", record["error"]
    host = public.split("://", 1)[1].removesuffix(".git")
    assert (record["request"]["repo"], record["request"]["forge"], record["request"]["head_sha"]) == (host, "git", head)
    found = {(f["path"], f["rule"]) for f in _agent(record, "security")["findings"]}
    assert ("shop/settings.py", "AWSKeyDetector") in found
    anonymous = [c for c in stack.fake.calls if "public-shop" in c.path]
    assert anonymous and all(c.auth_kind is None for c in anonymous)  # no GitHub token went to a mere URL
    assert [r for r in stack.fake.check_runs.values() if r["head_sha"] == head] == []
    listed = httpx.get(f"{stack.web_url}/api/v1/jobs", params={"repo": host}, headers=headers, timeout=5).json()
    assert [j["id"] for j in listed["jobs"]] == [record["id"]]
    with_token = public.replace("://", "://x-access-token:ghs_secret@")
    refused = _post(stack, "/security/scan", {"repo": with_token, "ref": "main"}, headers)
    assert refused.status_code == 422 and "credentials" in refused.json()["detail"]
    assert "ghs_secret" not in refused.text
    local = _post(stack, "/security/scan", {"repo": "file:///etc", "ref": "main"}, headers)
    assert local.status_code == 422 and "https://" in local.json()["detail"]


def test_test_generate_for_one_function_keeps_tests_and_measures_their_coverage(stack: Stack) -> None:
    base, head = plant(stack, "test_generation:\n  max_examples: 20\n")
    headers = api_key_headers(stack)
    answer = _post(stack, "/test/generate", {"repo": REPO, "sha": head, "target": "shop/pricing.py::apply_coupon",
                                             "coverage_target": 30}, headers)
    assert answer.status_code == 202, answer.text
    record = finished_job(stack, answer.json()["job_id"], headers, timeout=240)
    assert [a["agent"] for a in record["result"]["agents"]] == ["tests", "test-generation"]
    generated = _agent(record, "test-generation")
    metrics = generated["metrics"]
    assert metrics["functions_targeted"] == 1 and metrics["tests_kept"] >= 1, generated["summary"]
    assert 30 <= metrics["target_coverage"] <= 100 and metrics["coverage_target"] == 30
    assert generated["conclusion"] == "success" and "covering" in generated["title"]
    assert "Line coverage of the targeted functions by the kept tests:" in generated["summary"]
    assert "generated-tests.patch" in record["artifacts"]
    patch = redis_sync.Redis.from_url(stack.redis_url).get(f"aqe:job:{record['id']}:artifact:generated-tests.patch")
    assert patch is not None and b"apply_coupon" in patch

    missing = _post(stack, "/test/generate", {"repo": REPO, "sha": head, "target": "shop/pricing.py::nope"}, headers)
    failed = _agent(finished_job(stack, missing.json()["job_id"], headers, timeout=240), "test-generation")
    assert failed["conclusion"] == "failure" and "has no public function `nope`" in failed["summary"]


def test_test_generate_refuses_what_it_cannot_do_with_the_field_named(stack: Stack) -> None:
    headers, sha = api_key_headers(stack), stack.repo.main_sha
    for body, named in [({"repo": REPO, "sha": sha}, "target:"),
                        ({"repo": REPO, "sha": sha, "target": "../etc/passwd"}, "target:"),
                        ({"repo": REPO, "sha": sha, "target": "a.js", "framework": "jest"}, "framework jest"),
                        ({"repo": REPO, "sha": sha, "target": "a.py", "test_type": "e2e"}, "test_type e2e"),
                        ({"repo": REPO, "sha": sha, "target": "a.py", "test_type": "smoke"}, "test_type"),
                        ({"repo": REPO, "sha": sha, "target": "a.py", "coverage_target": 120}, "coverage_target")]:
        refused = _post(stack, "/test/generate", body, headers)
        assert refused.status_code == 422 and named in refused.json()["detail"], (body, refused.text)
