"""Forks, "/aqe run", re-runs, drafts, bad config, failures, cancellation and secrets — through real processes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import redis as redis_sync
from arq.connections import RedisSettings, create_pool
from arq.jobs import Job

from jobs.model import PULL_REQUEST_AGENTS
from jobs.store import arq_deserialize
from tests.e2e.conftest import INSTALLATION_ID, REPO, ROOT, Stack, fixture_payload

FAILING_TEST = "def test_sub():\n    assert sub(5, 3) == 2\n"


def _completed(stack: Stack, sha: str, n: int = 1, timeout: float = 90) -> list[dict]:
    def done(fake) -> bool:
        runs = [r for r in fake.check_runs.values() if r["head_sha"] == sha and r["name"] == "aqe/tests"]
        return len([r for r in runs if r["status"] == "completed"]) >= n

    stack.fake.wait_for(done, timeout=timeout)
    return [r for r in stack.fake.check_runs.values() if r["head_sha"] == sha and r["name"] == "aqe/tests"]


def _record_when(stack: Stack, job_id: str, status: str, timeout: float = 30) -> dict:
    """The job record once it has `status` (the record is saved just after the checks are reported)."""
    client = redis_sync.Redis.from_url(stack.redis_url)
    deadline = time.monotonic() + timeout
    while True:
        record = json.loads(client.get(f"aqe:job:{job_id}"))
        if record["status"] == status or time.monotonic() > deadline:
            return record
        time.sleep(0.05)


def _pr_commit(stack: Stack, branch: str, files: dict[str, str], number: int, **pull: object) -> str:
    repo = stack.repo
    repo.branch(branch)
    for path, text in files.items():
        repo.write(path, text)
    sha = repo.commit(f"change on {branch}")
    stack.fake.add_pull(REPO, number, head_sha=sha, base_sha=repo.main_sha, head_ref=branch, source_repo=repo.path,
                        **pull)
    return sha


def _fork_payload(stack: Stack, number: int, sha: str) -> dict:
    payload = fixture_payload("pull_request.opened.fork.json")
    pr = payload["pull_request"]
    pr["number"] = payload["number"] = number
    pr["head"]["sha"], pr["base"]["sha"] = sha, stack.repo.main_sha
    clone_url = f"{stack.fake.url}/{REPO}.git"
    for repo in (payload["repository"], pr["base"]["repo"]):
        repo.update(full_name=REPO, clone_url=clone_url)
    payload["installation"]["id"] = INSTALLATION_ID
    return payload


def _comment_payload(stack: Stack, number: int, body: str = "/aqe run", association: str = "MEMBER") -> dict:
    payload = fixture_payload("issue_comment.created.run.json")
    payload["issue"]["number"] = number
    payload["comment"].update(body=body, author_association=association)
    payload["repository"].update(full_name=REPO, clone_url=f"{stack.fake.url}/{REPO}.git")
    payload["installation"]["id"] = INSTALLATION_ID
    return payload


def test_fork_code_runs_only_after_a_maintainers_comment(stack: Stack) -> None:
    sha = _pr_commit(stack, "fork-work", {"tests/test_calc.py": "from calc import sub\n\n\n" + FAILING_TEST.replace(
        "== 2", "== 3")}, 11, fork=True, head_repo="someone/widgets")
    assert stack.deliver("pull_request", _fork_payload(stack, 11, sha)).status_code == 202
    [run] = _completed(stack, sha)
    assert run["conclusion"] == "neutral" and "/aqe run" in run["output"]["summary"]

    outsider = stack.deliver("issue_comment", _comment_payload(stack, 11, association="NONE"))
    assert outsider.status_code == 200 and "owner, member or collaborator" in outsider.json()["ignored"]
    answer = stack.deliver("issue_comment", _comment_payload(stack, 11))
    assert answer.status_code == 202
    runs = _completed(stack, sha, n=2)
    assert sorted(r["conclusion"] for r in runs) == ["failure", "neutral"]
    assert stack.fake.reopened_runs == []


def test_rerequested_check_run_is_a_new_run(stack: Stack) -> None:
    sha = _pr_commit(stack, "rerun", {"README.md": "hello\n"}, 12)
    payload = stack.pull_request_payload("opened", 12, sha, stack.repo.main_sha, "rerun")
    assert stack.deliver("pull_request", payload).status_code == 202
    [first] = _completed(stack, sha)
    # while the first job still runs, a re-run of the same commit joins it; wait until it has ended
    stack.fake.wait_for(lambda f: all(r["status"] == "completed" for r in f.check_runs.values() if r["head_sha"] == sha))
    _record_when(stack, stack.fake.check_runs[first["id"]]["external_id"], "completed")
    rerun = fixture_payload("check_run.rerequested.json")
    rerun["check_run"].update(head_sha=sha, id=first["id"])
    rerun["check_run"]["pull_requests"][0].update(number=12)
    rerun["check_run"]["pull_requests"][0]["head"].update(sha=sha, ref="rerun")
    rerun["check_run"]["pull_requests"][0]["base"].update(sha=stack.repo.main_sha)
    rerun["repository"].update(full_name=REPO, clone_url=f"{stack.fake.url}/{REPO}.git")
    rerun["installation"]["id"] = INSTALLATION_ID
    assert stack.deliver("check_run", rerun).status_code == 202
    runs = _completed(stack, sha, n=2)
    assert len({r["id"] for r in runs}) == 2 and all(r["conclusion"] == "success" for r in runs)
    assert stack.fake.reopened_runs == []
    stack.fake.wait_for(lambda f: len(f.calls_to("PATCH", r"/issues/comments/\d+$")) >= 1)
    assert len(stack.fake.comments) == 1


def test_draft_is_skipped_and_invalid_config_names_the_line(stack: Stack) -> None:
    draft = _pr_commit(stack, "draft", {"README.md": "wip\n"}, 13, draft=True)
    payload = stack.pull_request_payload("opened", 13, draft, stack.repo.main_sha, "draft")
    payload["pull_request"]["draft"] = True
    assert stack.deliver("pull_request", payload).status_code == 202
    [run] = _completed(stack, draft)
    assert run["conclusion"] == "skipped" and "pull_requests.drafts" in run["output"]["summary"]

    bad = _pr_commit(stack, "bad-config", {".aqe.yml": "tests:\n  timeout: ten minutes\n"}, 14)
    assert stack.deliver("pull_request", stack.pull_request_payload("opened", 14, bad, stack.repo.main_sha,
                                                                   "bad-config")).status_code == 202
    stack.fake.wait_for(lambda f: any(r["head_sha"] == bad and r["status"] == "completed" for r in f.check_runs.values()))
    [run] = [r for r in stack.fake.check_runs.values() if r["head_sha"] == bad]  # aqe/config only: nothing else ran
    assert run["name"] == "aqe/config" and run["conclusion"] == "failure"
    assert run["output"]["title"] == "Invalid .aqe.yml"
    assert ".aqe.yml, line 2: tests.timeout" in run["output"]["summary"]
    [note] = run["annotations"]
    assert (note["path"], note["start_line"], note["annotation_level"]) == (".aqe.yml", 2, "failure")


def test_checkout_failure_ends_the_check_with_the_reason(stack: Stack) -> None:
    sha = _pr_commit(stack, "unreachable", {"README.md": "x\n"}, 15)
    stack.fake.fail_next("*", r"\.git/", 500, times=20)
    payload = stack.pull_request_payload("opened", 15, sha, stack.repo.main_sha, "unreachable")
    job_id = stack.deliver("pull_request", payload).json()["job_ids"][0]
    [run] = _completed(stack, sha)
    assert run["conclusion"] == "failure" and "CheckoutError" in run["output"]["summary"]
    record = _record_when(stack, job_id, "failed")
    assert record["status"] == "failed" and "git fetch failed" in record["error"]


def test_cancelled_job_ends_its_check_cancelled(stack: Stack) -> None:
    sha = _pr_commit(stack, "slow", {"tests/test_slow.py": "import time\n\n\ndef test_slow():\n    time.sleep(120)\n"}, 16)
    payload = stack.pull_request_payload("opened", 16, sha, stack.repo.main_sha, "slow")
    job_id = stack.deliver("pull_request", payload).json()["job_ids"][0]
    stack.fake.wait_for(lambda f: any(r["head_sha"] == sha and r["status"] == "in_progress"
                                      for r in f.check_runs.values()), timeout=60)

    async def abort() -> bool:
        pool = await create_pool(RedisSettings.from_dsn(stack.redis_url))
        try:
            return await Job(job_id, pool, _deserializer=arq_deserialize).abort(timeout=30)
        finally:
            await pool.aclose()

    asyncio.run(abort())
    [run] = _completed(stack, sha, timeout=40)
    assert run["conclusion"] == "cancelled" and "cancelled" in run["output"]["summary"]
    record = _record_when(stack, job_id, "cancelled")
    assert record["status"] == "cancelled"


def test_no_secret_reaches_the_tests_or_the_reports(stack: Stack) -> None:
    """The code under test dumps its environment and the work tree's git files into its failure message."""
    snoop = ("import os, pathlib\n\n\ndef test_snoop():\n"
             "    git = pathlib.Path('.git')\n"
             "    seen = repr(dict(os.environ)) + (git.read_text() if git.is_file() else '')\n"
             "    for p in pathlib.Path('.').rglob('*'):\n"
             "        if p.is_file() and 'config' in p.name:\n"
             "            seen += p.read_text(errors='replace')\n"
             "    assert False, seen\n")
    sha = _pr_commit(stack, "snoop", {"tests/test_snoop.py": snoop}, 17)
    payload = stack.pull_request_payload("opened", 17, sha, stack.repo.main_sha, "snoop")
    job_id = stack.deliver("pull_request", payload).json()["job_ids"][0]
    [run] = _completed(stack, sha)
    assert run["conclusion"] == "failure"
    stack.fake.wait_for(lambda f: len(f.comments) == 1)
    reported = json.dumps([run, list(stack.fake.comments.values())])
    stored = redis_sync.Redis.from_url(stack.redis_url).get(f"aqe:job:{job_id}").decode()
    assert "HOME" in reported  # the environment dump really is in the report
    secrets = [*stack.fake.issued_tokens, "test-webhook-secret", "old-secret", "jwt-secret-never-in-tests",
               stack.env["REDIS_URL"], "PRIVATE KEY"]
    for secret in secrets:
        assert secret not in reported and secret not in stored, secret
    data_dir = Path(stack.env["AQE_DATA_DIR"])
    stack.fake.wait_for(lambda f: not any((data_dir / "work").iterdir()), timeout=30)  # work trees are removed
    on_disk = b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file() and p.stat().st_size < 1_000_000)
    log = (data_dir.parent / "stack.log").read_bytes()
    for token in stack.fake.issued_tokens:
        assert token.encode() not in on_disk and token.encode() not in log


def test_worker_restart_resumes_the_same_check_run(stack: Stack) -> None:
    """SIGTERM to the worker mid-job: the check goes back to queued, and the next worker completes that same run."""
    sha = _pr_commit(stack, "restart", {"tests/test_wait.py": "import time\n\n\ndef test_wait():\n    time.sleep(4)\n"}, 18)
    answer = stack.deliver("pull_request", stack.pull_request_payload("opened", 18, sha, stack.repo.main_sha, "restart"))
    [job_id] = answer.json()["job_ids"]
    stack.fake.wait_for(lambda f: any(r["head_sha"] == sha and r["status"] == "in_progress"
                                      for r in f.check_runs.values()), timeout=60)
    worker = stack.processes[1]
    worker.terminate()
    worker.wait(30)
    runs = [r for r in stack.fake.check_runs.values() if r["head_sha"] == sha]
    assert {r["name"] for r in runs} == {f"aqe/{name}" for name in PULL_REQUEST_AGENTS}
    unfinished = [r for r in runs if r["status"] != "completed"]  # agents that do not wait for the tests may be done
    assert {"aqe/tests", "aqe/coverage", "aqe/quality-gate"} <= {r["name"] for r in unfinished}
    assert all(r["status"] == "queued" and r["output"]["title"] == "Waiting for a worker" for r in unfinished)
    stack.processes[1] = subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], env=stack.env, cwd=ROOT,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    [run] = _completed(stack, sha, timeout=90)
    assert run["conclusion"] == "success"
    stack.fake.wait_for(lambda f: all(r["status"] == "completed" for r in f.check_runs.values() if r["head_sha"] == sha))
    assert len([r for r in stack.fake.check_runs.values() if r["head_sha"] == sha]) == len(runs)  # the same runs
    record = json.loads(redis_sync.Redis.from_url(stack.env["REDIS_URL"]).get(f"aqe:job:{job_id}"))
    assert record["attempts"] == 2
    assert sorted(r["agent"] for r in record["results"]) == sorted(PULL_REQUEST_AGENTS)  # this try's, once each


def test_uncovered_new_code_fails_coverage_with_annotations(stack: Stack) -> None:
    """New lines no test runs: aqe/coverage fails on patch coverage and points at the uncovered lines."""
    untested = ("def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n\n\n"
                "def scale(values, factor):\n    out = []\n    for value in values:\n        if value > 0:\n"
                "            out.append(value * factor)\n        else:\n            out.append(0)\n    return out\n")
    sha = _pr_commit(stack, "uncovered", {"calc.py": untested}, 19)
    stack.deliver("pull_request", stack.pull_request_payload("opened", 19, sha, stack.repo.main_sha, "uncovered"))
    runs = stack.checks_when_done(sha)
    coverage = runs["aqe/coverage"]
    assert runs["aqe/tests"]["conclusion"] == "success"
    assert coverage["conclusion"] == "failure", coverage["output"]
    lines = sorted((a["start_line"], a["end_line"]) for a in coverage["annotations"])
    assert lines and all(a["path"] == "calc.py" for a in coverage["annotations"])
    assert lines[0][0] >= 10 and lines[-1][1] <= 16  # inside the new function's body
