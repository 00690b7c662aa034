"""Pure parts of the pipeline: policy, the overall verdict, and an agent's crash staying its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs import pipeline
from jobs.agents.base import Workspace
from jobs.model import AgentResult, JobRecord, RunRequest
from jobs.repo_config import RepoConfig, parse_config


def _record(**request: object) -> JobRecord:
    fields: dict[str, object] = {"forge": "github", "repo": "acme/widgets", "clone_url": "u", "head_sha": "a" * 40,
                                 "trigger": "pull_request.opened", "agents": ["tests", "coverage"], "pr_number": 1}
    fields.update(request)
    return JobRecord(id="0" * 24, status="running", request=RunRequest(**fields), created_at=0.0)  # type: ignore[arg-type]


def _result(conclusion: str) -> AgentResult:
    return AgentResult(agent="x", conclusion=conclusion, title="t", summary="s")  # type: ignore[arg-type]


def test_overall_conclusion_is_the_worst() -> None:
    assert pipeline.overall_conclusion([_result("success"), _result("neutral")]) == "neutral"
    assert pipeline.overall_conclusion([_result("success"), _result("failure"), _result("timed_out")]) == "failure"
    assert pipeline.overall_conclusion([]) == "neutral"


def test_fork_tests_wait_for_approval_but_other_agents_run() -> None:
    record = _record(fork=True)
    assert pipeline.policy_result("tests", record, RepoConfig()).conclusion == "neutral"  # type: ignore[union-attr]
    assert pipeline.policy_result("coverage", record, RepoConfig()) is None
    assert pipeline.policy_result("tests", _record(fork=True, trusted=True), RepoConfig()) is None
    assert pipeline.policy_result("tests", record, parse_config("tests:\n  forks: true\n")) is None


def test_drafts_are_skipped_unless_configured() -> None:
    assert pipeline.policy_result("coverage", _record(draft=True), RepoConfig()).conclusion == "skipped"  # type: ignore[union-attr]
    assert pipeline.policy_result("coverage", _record(draft=True), parse_config("pull_requests:\n  drafts: true\n")) is None


async def test_a_crashing_agent_fails_only_its_own_check(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    class Broken:
        name = "coverage"

        async def run(self, workspace, config, progress):  # type: ignore[no-untyped-def]
            raise KeyError("boom")

    monkeypatch.setitem(pipeline.AGENTS, "coverage", Broken())
    run = object.__new__(pipeline.JobRun)
    run.record = _record()

    async def progress(fraction: float, message: str) -> None:
        return None

    result = await run._run_agent("coverage", Workspace(root=tmp_path, scratch=tmp_path, head_sha="a" * 40), None,
                                  progress)
    assert result.conclusion == "failure" and "KeyError" in result.summary and result.agent == "coverage"
