"""Every agent, end to end through the real pipeline, on a pull request with one planted issue per agent.

The sample project is `tests/fixtures/planted` (its README lists what is planted where). Web and worker
run as real processes, GitHub and OSV are fakes on loopback, the tests really run; the findings and
figures asserted here are exact.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import redis as redis_sync

from jobs.model import PULL_REQUEST_AGENTS
from tests.e2e.conftest import INSTALLATION_ID, REPO, Stack, fixture_payload, git
from tests.fakes.target import FakeTarget

PLANTED = Path(__file__).parents[1] / "fixtures" / "planted"
PR_NUMBER = 30
AWS_KEY = "AKIAZ7Q4N2XK8VR3LM5T"  # made up, planted in shop/settings.py
QUOTED_TOKEN = "aqe-plant-'Zq8wR'-7f3a9c2e41"  # made up, planted in shop/settings.py: quotes in the value
PLANTED_SECRETS = (AWS_KEY, AWS_KEY[-10:], QUOTED_TOKEN, *QUOTED_TOKEN.split("'"))  # no part of them may show


def _copy_tree(source: Path, dest: Path) -> None:
    for path in source.rglob("*"):
        if path.is_file():
            target = dest / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


def plant(stack: Stack, aqe_yml: str | None = None) -> tuple[str, str]:
    """main = the clean shop project; a branch with the planted issues; the PR between them. (base, head)"""
    repo = stack.repo
    git(repo.path, "checkout", "-q", "main")
    git(repo.path, "rm", "-r", "-q", ".")
    _copy_tree(PLANTED / "main", repo.path)
    if aqe_yml is not None:
        repo.write(".aqe.yml", aqe_yml)
    base = repo.commit("the shop project")
    repo.branch("planted")
    _copy_tree(PLANTED / "pr", repo.path)
    head = repo.commit("coupons, shipping rates, reports, backups")
    stack.fake.update_repo(REPO, repo.path)
    stack.fake.add_pull(REPO, PR_NUMBER, head_sha=head, base_sha=base, head_ref="planted", source_repo=repo.path)
    return base, head


def _annotations(run: dict[str, Any]) -> list[tuple[str, int, int, str, str]]:
    return sorted((a["path"], a["start_line"], a["end_line"], a["annotation_level"], a.get("title", ""))
                  for a in run["annotations"])


AQE_YML = """\
performance:
  target_url: {target}/fast
  virtual_users: 2
  duration: 1s
  ramp_up: 0s
  thresholds: ["p95 < 2s", "errors < 1%"]
test_generation:
  exclude: ["shop/backup.py"]  # it runs a shell command: not something to call with random input
  max_examples: 20
"""


def test_every_agent_finds_its_planted_issue(stack: Stack) -> None:
    target = FakeTarget()
    target.start()
    try:
        _every_agent_finds_its_planted_issue(stack, target)
    finally:
        target.stop()


def _every_agent_finds_its_planted_issue(stack: Stack, target: FakeTarget) -> None:
    base, head = plant(stack, AQE_YML.format(target=target.url))
    payload = stack.pull_request_payload("opened", PR_NUMBER, head, base, "planted")
    job_id = stack.deliver("pull_request", payload).json()["job_ids"][0]
    runs = stack.checks_when_done(head, timeout=240)
    assert set(runs) == {f"aqe/{name}" for name in PULL_REQUEST_AGENTS}
    verdicts = {name: (run["conclusion"], run["output"]["title"]) for name, run in runs.items()}

    assert verdicts["aqe/tests"] == ("failure", "1 failed, 3 passed")
    assert _annotations(runs["aqe/tests"]) == [
        ("tests/test_pricing.py", 14, 14, "failure", "tests.test_pricing.test_discount_is_capped")]

    # coverage.py measures what the tests import: apply_coupon's body (5 of its 6 statements) and the new test
    assert verdicts["aqe/coverage"] == ("failure", "Patch 37.5 % · total 76.3 %")
    assert _annotations(runs["aqe/coverage"]) == [("shop/pricing.py", 11, 15, "warning", "Not covered by tests")]

    assert verdicts["aqe/quality"] == ("failure", "1 function over CCN 15; 18.9 % duplication on new code")
    assert _annotations(runs["aqe/quality"]) == [
        ("shop/report.py", 1, 10, "warning", "Duplicated block (76 tokens)"),  # export.format_rows, names changed
        ("shop/rules.py", 1, 31, "warning", "Cyclomatic complexity 17 > 15"),
    ]

    assert verdicts["aqe/security"] == ("failure", "6 new security issues (3 high, 1 medium, 2 low)")
    assert _annotations(runs["aqe/security"]) == [
        ("requirements.txt", 3, 3, "failure", "GHSA-x84v-xcm2-53pg: requests 2.19.0 (fixed in 2.20.0)"),
        ("requirements.txt", 3, 3, "warning", "GHSA-j8r2-6x86-q33q: requests 2.19.0 (fixed in 2.31.0)"),
        ("shop/backup.py", 1, 1, "notice",
         "B404: Consider possible security implications associated with the subprocess module"),
        ("shop/backup.py", 5, 5, "failure", "B602: subprocess call with shell=True"),
        ("shop/settings.py", 2, 2, "failure", "AWS Access Key"),
        ("shop/settings.py", 3, 3, "notice",
         "B105: Possible hardcoded password assigned to a variable; the value is not shown"),
    ]
    assert [c.json["queries"] for c in stack.osv.calls_to("/v1/querybatch")] == [[
        {"package": {"name": "certifi", "ecosystem": "PyPI"}, "version": "2024.7.4"},
        {"package": {"name": "requests", "ecosystem": "PyPI"}, "version": "2.19.0"}]]

    # test generation: the changed public functions no test mentions; apply_coupon's tests pass and are kept
    generation = runs["aqe/test-generation"]
    assert verdicts["aqe/test-generation"] == (
        "neutral", "1 likely bug found; generated 2 tests for 2 changed functions")
    [bug] = generation["annotations"]
    print("BUG", bug)
    assert (bug["path"], bug["start_line"], bug["annotation_level"]) == ("shop/report.py", 1, "warning")
    assert "KeyError" in bug["message"] and "entries=[{}]" in bug["message"], bug  # hypothesis' minimal example
    for row in ("| `shipping_rate` | `shop/rules.py:1` | 31 | ghostwriter | ✅ 1 test kept |",
                "| `apply_coupon` | `shop/pricing.py:10` | 6 | ghostwriter | ✅ 1 test kept |"):
        assert row in generation["output"]["summary"]

    performance = runs["aqe/performance"]
    assert performance["conclusion"] == "success", performance["output"]
    with target.lock:
        served = target.requests
    assert performance["output"]["title"].startswith("All 2 thresholds passed: p95 ")
    assert f"| {served:,} | " in performance["output"]["summary"]  # every request the target served, counted

    gate = runs["aqe/quality-gate"]
    assert verdicts["aqe/quality-gate"] == ("failure", "Quality gate failed: 5 of 6 conditions (Tests pass, Coverage "
                                            "on new code, New high/critical security issues, Complexity of changed "
                                            "functions, Duplication on new code)")
    for row in ("| Tests pass | 1 failed of 4 | 0 failed | ❌ failed |",
                "| Coverage on new code | 37.5 % | ≥ 80.0 % | ❌ failed |",
                "| New high/critical security issues | 3 | 0 | ❌ failed |",
                "| Complexity of changed functions | max 17 (1 over) | CCN ≤ 15 | ❌ failed |",
                "| Duplication on new code | 18.9 % | ≤ 3.0 % | ❌ failed |",
                "| Performance thresholds | p95 "):
        assert row in gate["output"]["summary"], gate["output"]["summary"]

    stack.fake.wait_for(lambda f: "quality-gate" in next(iter(f.comments.values()), {}).get("body", ""))
    [comment] = stack.fake.comments.values()
    body = comment["body"]
    for name, run in runs.items():
        assert f"[`{name}`]({stack.fake.url}/{REPO}/runs/{run['id']})" in body
    assert "#### Quality gate: ❌ failure" in body and "| Tests pass | 1 failed of 4 |" in body

    # the kept tests, as a patch on the job page, apply to the pull request's head and pass there
    record = json.loads(redis_sync.Redis.from_url(stack.redis_url).get(f"aqe:job:{job_id}"))
    assert sorted(record["artifacts"]) == ["coverage.xml", "generated-tests.patch"]
    patch = httpx.get(f"{runs['aqe/tests']['details_url'].replace('?', '/artifacts/generated-tests.patch?')}", timeout=5)
    assert patch.status_code == 200
    (stack.repo.path / "generated.patch").write_bytes(patch.content)
    git(stack.repo.path, "apply", "generated.patch")
    (stack.repo.path / "generated.patch").unlink()
    ran = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/generated"],
                         cwd=stack.repo.path, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0 and "2 passed" in ran.stdout, ran.stdout + ran.stderr

    # the planted secrets: found by type and place, their values (or any part of them) nowhere, artifacts included
    record = redis_sync.Redis.from_url(stack.redis_url).get(f"aqe:job:{job_id}")
    log = (Path(stack.env["AQE_DATA_DIR"]).parent / "stack.log").read_text()
    artifacts = [httpx.get(runs["aqe/tests"]["details_url"].replace("?", f"/artifacts/{name}?"), timeout=5)
                 for name in json.loads(record)["artifacts"]]
    assert [a.status_code for a in artifacts] == [200, 200]
    everything = (json.dumps([stack.fake.check_runs, stack.fake.comments]) + record.decode() + log
                  + "".join(a.content.decode(errors="replace") for a in artifacts))
    for part in PLANTED_SECRETS:
        assert part not in everything, part


def test_pull_request_coverage_is_compared_with_the_base_branchs_last_push(stack: Stack) -> None:
    """A push to main stores its total; a pull request into main then shows "−x % vs main"."""
    base, head = plant(stack, "agents:\n  pull_request: [tests, coverage]\n  push: [tests, coverage]\n")
    push = fixture_payload("push.default.json")
    push.update(ref="refs/heads/main", before="0" * 40, after=base)
    push["repository"].update(full_name=REPO, clone_url=f"{stack.fake.url}/{REPO}.git", default_branch="main")
    push["installation"]["id"] = INSTALLATION_ID
    assert stack.deliver("push", push).status_code == 202
    on_main = stack.fake.wait_for(lambda f: [r for r in f.check_runs.values() if r["head_sha"] == base
                                             and r["name"] == "aqe/coverage" and r["status"] == "completed"])
    assert on_main[0]["output"]["title"] == "Coverage: total 100.0 %"  # nothing to compare a branch's own push with
    redis = redis_sync.Redis.from_url(stack.redis_url)
    # the total is stored when the job ends, a moment after the check run completes
    baseline = json.loads(stack.fake.wait_for(lambda _: redis.get(f"aqe:baseline:github:{REPO}:main"),
                                              description="the push's stored baseline"))
    assert (baseline["sha"], baseline["total_percent"]) == (base, 100.0)

    stack.deliver("pull_request", stack.pull_request_payload("opened", PR_NUMBER, head, base, "planted"))
    stack.fake.wait_for(lambda f: [r for r in f.check_runs.values() if r["head_sha"] == head
                                   and r["name"] == "aqe/coverage" and r["status"] == "completed"])
    [coverage] = [r for r in stack.fake.check_runs.values() if r["head_sha"] == head and r["name"] == "aqe/coverage"]
    assert coverage["output"]["title"] == "Patch 37.5 % · total 76.3 % (−23.7 % vs main)"


def test_generate_tests_comment_opens_a_pull_request_with_the_kept_tests(stack: Stack) -> None:
    base, head = plant(stack, "test_generation:\n  exclude: [shop/backup.py]\n  max_examples: 20\n")
    comment = fixture_payload("issue_comment.created.generate.json")
    comment["issue"]["number"] = PR_NUMBER
    comment["comment"]["author_association"] = "MEMBER"
    comment["repository"].update(full_name=REPO, clone_url=f"{stack.fake.url}/{REPO}.git")
    comment["installation"]["id"] = INSTALLATION_ID
    assert stack.deliver("issue_comment", comment).status_code == 202
    [pull] = stack.fake.wait_for(lambda f: list(f.created_pulls), timeout=180)
    assert pull["base"]["ref"] == "planted" and pull["head"]["ref"] == f"aqe/generated-tests/pr-{PR_NUMBER}"
    branch = f"aqe/generated-tests/pr-{PR_NUMBER}"
    bare = stack.fake.repo_path(REPO)
    files = git(bare, "ls-tree", "-r", "--name-only", branch).splitlines()
    assert "tests/generated/test_shop_pricing_hypothesis.py" in files and "shop/report.py" in files
    assert git(bare, "rev-parse", f"{branch}^") == head  # on top of the pull request's head
    runs = stack.fake.wait_for(lambda f: [r for r in f.check_runs.values() if r["head_sha"] == head
                                          and r["name"] == "aqe/test-generation" and r["status"] == "completed"])
    assert f"The generated tests are proposed in {pull['html_url']}." in runs[0]["output"]["summary"]
    assert {r["name"] for r in stack.fake.check_runs.values() if r["head_sha"] == head} == {
        "aqe/tests", "aqe/test-generation"}
