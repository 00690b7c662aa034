"""docs/ci.md, run: the script every CI example calls, and each CI's configuration as that CI would run it (its
shell lines with the variables the CI sets), against real AQE processes; GitHub Actions and GitLab CI with the
job's OIDC ID token from a fake issuer, Jenkins and CircleCI with an API key."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.docs.examples import examples
from tests.e2e.conftest import REPO, Stack, api_key_headers, finished_job, running_stack
from tests.e2e.test_agents import plant
from tests.e2e.test_gitlab_flow import PROJECT, running_gitlab
from tests.fakes.oidc import FakeIssuer

SCRIPT_INPUTS = {"AQE_URL", "AQE_TOKEN", "REPO", "SHA", "BUILD_ID"}


def _workspace(tmp_path: Path) -> Path:
    """A checkout with the script where the examples keep it."""
    [(script, _)] = examples("ci.md", "ci-script")
    work = tmp_path / "checkout"
    (work / "ci").mkdir(parents=True)
    (work / "ci" / "aqe-scan.sh").write_text(script + "\n")
    return work


def _run(line: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", line], cwd=cwd, env={"PATH": os.environ["PATH"], **env},
                          capture_output=True, text=True, timeout=180)


def _verdict(stack: Stack, output: str, headers: dict[str, str]) -> dict[str, Any]:
    job_id = re.search(r"AQE job: \S+/jobs/([0-9a-f]{24})", output)
    assert job_id, output
    return finished_job(stack, job_id[1], headers)


def test_the_script_waits_for_the_verdict_and_fails_the_build_on_a_failure(stack: Stack, tmp_path: Path) -> None:
    work = _workspace(tmp_path)
    headers = api_key_headers(stack)
    key = headers["Authorization"].removeprefix("Bearer ")
    base, head = plant(stack)  # a secret and a shell injection: the scan fails
    failing = _run("sh ci/aqe-scan.sh", work, AQE_URL=stack.web_url, AQE_TOKEN=key, REPO=REPO, SHA=head,
                   BUILD_ID="build-1")
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert "security | failure |" in failing.stdout and "AQE: completed failure" in failing.stdout
    record = _verdict(stack, failing.stdout, headers)
    assert record["request"]["head_sha"] == head and record["result"]["conclusion"] == "failure"
    again = _run("sh ci/aqe-scan.sh", work, AQE_URL=stack.web_url, AQE_TOKEN=key, REPO=REPO, SHA=head,
                 BUILD_ID="build-1")  # a retried build: the same job, at once
    assert _verdict(stack, again.stdout, headers)["id"] == record["id"] and again.returncode == 1
    refused = _run("sh ci/aqe-scan.sh", work, AQE_URL=stack.web_url, AQE_TOKEN="aqe_" + "x" * 32, REPO=REPO,
                   SHA=head, BUILD_ID="build-2")
    assert refused.returncode == 1 and "AQE refused:" in refused.stderr and "invalid_credentials" in refused.stderr

    [(jenkinsfile, _)] = examples("ci.md", "jenkins")
    assert "credentials('aqe-api-key')" in jenkinsfile and f"REPO = '{REPO}'" in jenkinsfile
    [step] = re.findall(r"sh '(.+)'", jenkinsfile)
    passing = _run(step, work, AQE_URL=stack.web_url, AQE_TOKEN=key, REPO=REPO, GIT_COMMIT=stack.repo.main_sha,
                   BUILD_TAG="jenkins-widgets-7")
    record = _verdict(stack, passing.stdout, headers)
    assert passing.returncode == (1 if record["result"]["conclusion"] == "failure" else 0), passing.stdout
    assert record["request"]["head_sha"] == stack.repo.main_sha

    [(circleci, _)] = examples("ci.md", "circleci")
    job = yaml.safe_load(circleci)["jobs"]["aqe"]
    [command] = [step["run"]["command"] for step in job["steps"] if isinstance(step, dict) and "run" in step]
    owner, name = REPO.split("/")
    circle = _run(command, work, AQE_URL=stack.web_url, AQE_TOKEN=key, CIRCLE_PROJECT_USERNAME=owner,
                  CIRCLE_PROJECT_REPONAME=name, CIRCLE_SHA1=head, CIRCLE_WORKFLOW_ID="wf-1", CIRCLE_BUILD_NUM="3")
    assert circle.returncode == 1 and _verdict(stack, circle.stdout, headers)["request"]["head_sha"] == head


def test_the_github_actions_workflow_runs_on_the_jobs_id_token(tmp_path: Path, redis_url: str,
                                                               private_key_file: Path,
                                                               rsa_key_pair: tuple[bytes, bytes]) -> None:
    [(workflow, _)] = examples("ci.md", "github-actions")
    job = yaml.safe_load(workflow)["jobs"]["aqe"]
    assert job["permissions"]["id-token"] == "write"
    [step] = [step for step in job["steps"] if "run" in step]
    assert SCRIPT_INPUTS - {"AQE_TOKEN"} <= set(step["env"])  # the token comes from the run itself
    with FakeIssuer() as issuer, running_stack(tmp_path, redis_url, private_key_file, rsa_key_pair,
                                               AQE_OIDC_ISSUERS=issuer.issuer) as stack:
        sha = stack.repo.main_sha
        issuer.actions_claims = {"repository": REPO, "ref": "refs/heads/main", "sha": sha}
        ran = _run(step["run"], _workspace(tmp_path), ACTIONS_ID_TOKEN_REQUEST_URL=issuer.actions_request_url,
                   ACTIONS_ID_TOKEN_REQUEST_TOKEN=issuer.REQUEST_TOKEN, AQE_URL=stack.web_url, REPO=REPO,
                   SHA=sha, BUILD_ID="4242-1")
        assert "AQE: completed" in ran.stdout, ran.stdout + ran.stderr
        record = _verdict(stack, ran.stdout, api_key_headers(stack))
        assert ran.returncode == (1 if record["result"]["conclusion"] == "failure" else 0)
        assert record["request"]["head_sha"] == sha and record["request"]["repo"] == REPO
        issuer.actions_claims = {"repository": "acme/other", "ref": "refs/heads/main", "sha": sha}
        other = _run(step["run"], _workspace(tmp_path / "other"),  # a token of another repository: refused
                     ACTIONS_ID_TOKEN_REQUEST_URL=issuer.actions_request_url,
                     ACTIONS_ID_TOKEN_REQUEST_TOKEN=issuer.REQUEST_TOKEN, AQE_URL=stack.web_url, REPO=REPO, SHA=sha,
                     BUILD_ID="4243-1")
        assert other.returncode == 1 and "repo_not_allowed" in other.stderr


def test_the_gitlab_ci_job_runs_on_its_id_token(tmp_path: Path, redis_url: str) -> None:
    [(config, _)] = examples("ci.md", "gitlab-ci")
    job = yaml.safe_load(config)["aqe-security-scan"]
    assert job["id_tokens"] == {"AQE_TOKEN": {"aud": "aqe"}}
    with FakeIssuer() as issuer, running_gitlab(tmp_path, redis_url, AQE_OIDC_ISSUERS=issuer.issuer) as gitlab:
        token = issuer.token(repository=None, ref="main", project_path=PROJECT, ref_path="refs/heads/main",
                             sub=f"project_path:{PROJECT}:ref_type:branch:ref:main")
        sha = gitlab.repo.main_sha
        for line in job["script"]:
            ran = _run(line, _workspace(tmp_path), AQE_URL=gitlab.web_url, AQE_TOKEN=token, CI_PROJECT_PATH=PROJECT,
                       CI_COMMIT_SHA=sha, CI_PIPELINE_ID="81", CI_JOB_ID="812")
            assert "AQE: completed" in ran.stdout, ran.stdout + ran.stderr
        job_id = re.search(r"/jobs/([0-9a-f]{24})", ran.stdout)
        assert job_id
        record = httpx.get(f"{gitlab.web_url}/api/v1/job/{job_id[1]}/status", timeout=10,
                           headers={"Authorization": f"Bearer {token}"}).json()
        assert (record["request"]["forge"], record["request"]["repo"], record["request"]["head_sha"]) == (
            "gitlab", PROJECT, sha)
        assert ran.returncode == (1 if record["result"]["conclusion"] == "failure" else 0)
