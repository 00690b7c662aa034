"""Pure parts of the pipeline: policy, the overall verdict, and an agent's crash staying its own."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from jobs import pipeline
from jobs.shown_errors import internal_places
from jobs.agents.base import Workspace
from jobs.model import ALL_AGENTS, AgentResult, Finding, JobRecord, RunRequest
from jobs.repo_config import RepoConfig, parse_config


def _record(**request: object) -> JobRecord:
    fields: dict[str, object] = {"forge": "github", "repo": "acme/widgets", "clone_url": "u", "head_sha": "a" * 40,
                                 "trigger": "pull_request.opened", "agents": ["tests", "coverage"], "pr_number": 1}
    fields.update(request)
    return JobRecord(id="0" * 24, status="running", request=RunRequest(**fields), created_at=0.0)  # type: ignore[arg-type]


def _result(conclusion: str) -> AgentResult:
    return AgentResult(agent="x", conclusion=conclusion, title="t", summary="s")  # type: ignore[arg-type]


def test_overall_conclusion_is_the_worst() -> None:
    assert pipeline.overall_conclusion([_result("success"), _result("neutral")]) == "success"  # as GitHub counts
    assert pipeline.overall_conclusion([_result("skipped"), _result("neutral")]) == "neutral"
    assert pipeline.overall_conclusion([_result("success"), _result("cancelled")]) == "cancelled"
    assert pipeline.overall_conclusion([_result("success"), _result("failure"), _result("timed_out")]) == "failure"
    assert pipeline.overall_conclusion([]) == "neutral"


def test_fork_tests_wait_for_approval_but_other_agents_run() -> None:
    record = _record(fork=True)
    assert pipeline.policy_result("tests", record, RepoConfig()).conclusion == "neutral"  # type: ignore[union-attr]
    assert pipeline.policy_result("coverage", record, RepoConfig()) is None
    assert pipeline.policy_result("tests", _record(fork=True, trusted=True), RepoConfig()) is None
    assert pipeline.policy_result("tests", record, parse_config("tests:\n  forks: true\n")) is None


def test_fork_code_is_not_imported_by_test_generation_without_approval() -> None:
    held = pipeline.policy_result("test-generation", _record(fork=True), RepoConfig())
    assert held is not None and held.conclusion == "neutral" and "/aqe run" in held.summary
    assert pipeline.policy_result("test-generation", _record(fork=True, trusted=True), RepoConfig()) is None
    assert pipeline.policy_result("security", _record(fork=True), RepoConfig()) is None  # reads, never runs, the code


def test_drafts_are_skipped_unless_configured() -> None:
    assert pipeline.policy_result("coverage", _record(draft=True), RepoConfig()).conclusion == "skipped"  # type: ignore[union-attr]
    assert pipeline.policy_result("coverage", _record(draft=True), parse_config("pull_requests:\n  drafts: true\n")) is None


async def test_a_crashing_agent_fails_only_its_own_check(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    class Broken:
        name = "coverage"

        async def run(self, workspace, config, progress):  # type: ignore[no-untyped-def]
            raise FileNotFoundError(2, "No such file or directory", str(workspace.root / "coverage.xml"))

    monkeypatch.setitem(pipeline.AGENTS, "coverage", Broken())
    run = object.__new__(pipeline.JobRun)
    run.record = _record()
    run.places = internal_places(tmp_path / "data", tmp_path / "data" / "work" / "j" / "src")

    async def progress(fraction: float, message: str) -> None:
        return None

    root = tmp_path / "data" / "work" / "j" / "src"
    result = await run._run_agent("coverage", Workspace(root=root, scratch=tmp_path, head_sha="a" * 40), None,
                                  progress)
    assert result.conclusion == "failure" and result.agent == "coverage"
    assert "`FileNotFoundError: [Errno 2] No such file or directory: 'coverage.xml'`" in result.summary
    assert str(tmp_path) not in result.summary  # no path of the worker's machine


def _finding(path: str, line: int, level: str) -> Finding:
    return Finding(path=path, start_line=line, end_line=line, level=level, rule="r", message=f"{path}:{line}")  # type: ignore[arg-type]


def test_findings_are_ordered_by_level_then_changed_lines_first() -> None:
    findings = [_finding("a.py", 1, "warning"), _finding("a.py", 5, "notice"), _finding("b.py", 2, "warning"),
                _finding("a.py", 3, "failure"), _finding("a.py", 9, "warning")]
    ordered = pipeline.prioritised(findings, {"a.py": {5, 9}, "b.py": {2}})
    assert [f.message for f in ordered] == ["a.py:3", "b.py:2", "a.py:9", "a.py:1", "a.py:5"]
    assert pipeline.prioritised(findings, None)[0].message == "a.py:3"  # no diff: every line is new


def test_agents_follow_the_event_and_the_config() -> None:
    assert RepoConfig().agents.for_event(True) == list(ALL_AGENTS)
    assert "test-generation" not in RepoConfig().agents.for_event(False)
    config = parse_config("agents:\n  pull_request: [quality-gate, tests]\n")
    assert config.agents.for_event(True) == ["tests", "quality-gate"]  # in check order, whatever the file's order


def test_every_agent_is_registered_and_waits_only_for_registered_agents() -> None:
    assert sorted(pipeline.AGENTS) == sorted(ALL_AGENTS)
    for name, agent in pipeline.AGENTS.items():
        assert agent.name == name
        assert set(getattr(agent, "needs", ())) <= set(ALL_AGENTS) - {name}


def test_agent_options_come_from_settings(make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(AQE_OSV_URL="http://127.0.0.1:9/osv", AQE_LLM_URL="http://127.0.0.1:9/v1",
                             AQE_LLM_MODEL="m", AQE_LLM_API_KEY="sk-secret-value")
    options = pipeline.agent_options(settings)
    assert options.osv_url == "http://127.0.0.1:9/osv" and options.llm is not None and options.llm.model == "m"
    assert "sk-secret-value" not in repr(options) and "sk-secret-value" not in repr(settings)
    assert pipeline.agent_options(make_settings()).llm is None


async def test_agents_wait_for_what_they_need_and_the_rest_run_side_by_side() -> None:
    events: list[str] = []

    async def run(name: str) -> None:
        events.append(f"start {name}")
        await asyncio.sleep({"tests": 0.05, "security": 0.02, "quality": 0.01}.get(name, 0))
        events.append(f"end {name}")

    await pipeline.run_in_order(["tests", "coverage", "security", "quality", "quality-gate"], run)
    assert events.index("start quality") < events.index("end security")  # independent: side by side
    # the repository's code (tests) runs only once the agents that read the work tree are done with it
    assert events.index("start tests") > max(events.index("end security"), events.index("end quality"))
    assert events.index("start coverage") > events.index("end tests")  # coverage reads the tests' report
    assert events[-2:] == ["start quality-gate", "end quality-gate"]  # the gate comes last


async def test_a_failing_agent_step_stops_the_others() -> None:
    cancelled: list[str] = []
    started: list[str] = []

    async def run(name: str) -> None:
        started.append(name)
        if name == "security":
            raise RuntimeError("GitHub said no")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(name)
            raise

    with pytest.raises(RuntimeError, match="GitHub said no"):
        await pipeline.run_in_order(["tests", "security", "quality"], run)
    assert cancelled == ["quality"] and "tests" not in started  # the tests wait for security: never started


@pytest.mark.parametrize("last_try,status", [(False, "queued"), (True, "failed")])
async def test_a_stopping_worker_requeues_the_job_unless_it_was_the_last_try(
        redis, make_settings, last_try: bool, status: str) -> None:  # type: ignore[no-untyped-def]
    from jobs.services import Services
    from jobs.store import JobStore

    services = Services.create(make_settings(), redis)
    store = JobStore(redis)
    request = RunRequest(forge="github", repo="acme/widgets", clone_url="u", head_sha="a" * 40,
                         trigger="pull_request.opened", agents=["tests"], pr_number=1,
                         callback_url="https://ci.example.com/done")
    record = await store.get((await store.enqueue(request, delivery_key="aqe:delivery:github:t")).job_id)
    await redis.delete("arq:queue")  # as if a worker had taken it
    run = pipeline.JobRun(services, record, last_try=last_try)  # type: ignore[arg-type]
    started = asyncio.Event()

    async def steps() -> None:
        started.set()
        await asyncio.sleep(60)

    run._steps = steps  # type: ignore[method-assign]
    task = asyncio.create_task(run.execute())
    await started.wait()
    services.shutting_down = True
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stored = await store.get(record.id)  # type: ignore[union-attr]
    assert stored is not None and stored.status == status
    if last_try:
        assert "stopped 3 times" in str(stored.error)
    # The job's callback: sent by the next worker when this one gave the job up; else when the job ends.
    queued = [member.decode() for member in await redis.zrange("arq:queue", 0, -1)]
    assert queued == ([f"callback:{record.id}"] if last_try else [])
    await services.close()
