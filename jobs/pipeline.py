"""The run of one job, forge-neutral, as a sequence of named steps.

resolve -> checkout -> config (invalid: `aqe/config` fails, nothing else runs) -> checks queued -> diff ->
agents (each in progress -> completed, independent ones side by side) -> summary comment.
Whatever happens, every check that was created ends completed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec

from jobs import checkout, fleet
from jobs.checkout import Source
from jobs.agents.base import AgentOptions, LlmOptions, Progress, Workspace
from jobs.agents.registry import AGENTS
from jobs.agents.tests import read_regular_file
from jobs.coverage.diff import DiffError, changed_lines
from jobs.coverage.reports import detect_format, parse_report
from jobs.forges.registry import forge as forge_named
from jobs.model import TERMINAL_STATUSES, AgentResult, Conclusion, Finding, JobRecord, RunRequest, Step, now
from jobs.reporting.base import Reporter
from jobs.repo_config import CONFIG_PATHS, ConfigError, RepoConfig, parse_config
from jobs.reporting.record import RecordReporter
from jobs.reporting.render import LEVEL_ORDER
from jobs.services import Services
from jobs.settings import Settings
from jobs.shown_errors import error_text, internal_places, shown_result
from jobs.store import JobStore, finish_step, start_step
from jobs.tasks.callback import send_result

log = logging.getLogger("aqe.pipeline")

JOB_TIMEOUT_S = 3600
MAX_TRIES = 3  # arq runs a job at most this often (a worker stopping mid-job costs one try)
# workspace artifacts kept with the job after its work tree is gone: artifact key -> the name it is kept under
KEPT_ARTIFACTS = {"generated-tests.patch": "generated-tests.patch", "coverage.cobertura": "coverage.xml"}
MAX_ARTIFACT_BYTES = 8 * 1024 * 1024
PROGRESS_MIN_INTERVAL_S = 0.25
# As GitHub treats checks: neutral and skipped ones do not count against success (a load test without a target
# must not turn every job "neutral"); any of the others does.
_SEVERITY = ["skipped", "neutral", "success", "action_required", "cancelled", "timed_out", "failure"]


class Tracker:
    """Keeps the job record and its event stream up to date as the job moves."""

    def __init__(self, store: JobStore, record: JobRecord) -> None:
        self.store, self.record, self._last_progress = store, record, 0.0

    async def step(self, name: str, progress: float) -> None:
        for step in self.record.steps:
            step.finished_at = step.finished_at or now()
        start_step(self.record, name, progress)
        await self._save_progress(name)

    async def agent_step(self, name: str, *, done: bool) -> None:
        """Agents run side by side: their steps overlap, each ends by name."""
        step = f"agent:{name}"
        if done:
            finish_step(self.record, step)
        else:
            self.record.steps.append(Step(name=step, started_at=now()))
            self.record.step = step
        await self._save_progress(f"{step} {'finished' if done else 'started'}")

    async def _save_progress(self, message: str) -> None:
        await self.store.save(self.record, "progress", {"progress": self.record.progress, "message": message,
                                                         "status": self.record.status})

    async def progress(self, progress: float, message: str) -> None:
        loop_time = asyncio.get_running_loop().time()
        if loop_time - self._last_progress < PROGRESS_MIN_INTERVAL_S:
            return
        self._last_progress = loop_time
        self.record.progress = round(max(self.record.progress, progress), 1)
        await self._save_progress(message)

    async def finish(self, status: str, *, conclusion: Conclusion | None = None, error: str | None = None,
                     reason: str | None = None) -> None:
        for step in self.record.steps:
            step.finished_at = step.finished_at or now()
        self.record.status, self.record.finished_at = status, now()  # type: ignore[assignment]
        self.record.conclusion, self.record.error, self.record.reason = conclusion, error, reason
        if status == "completed":
            self.record.progress = 100.0
        event = "complete" if status in ("completed", "skipped") else "error"
        data: dict[str, Any] = {"status": status, "progress": self.record.progress, "conclusion": conclusion}
        if error:
            data["error"] = error
        await self.store.save(self.record, event, data)


def overall_conclusion(results: list[AgentResult]) -> Conclusion:
    if not results:
        return "neutral"
    return max((r.conclusion for r in results), key=lambda c: _SEVERITY.index(c) if c in _SEVERITY else 0)


async def run_in_order(names: list[str], run: Callable[[str], Awaitable[None]]) -> None:
    """Run every agent of `names`, each as soon as the agents it `needs` (among `names`) have finished —
    tests before coverage, everything before the gate — and independent ones side by side."""
    done = {name: asyncio.Event() for name in names}

    async def one(name: str) -> None:
        try:
            for needed in getattr(AGENTS.get(name), "needs", ()):
                if needed in done:
                    await done[needed].wait()
            await run(name)
        finally:
            done[name].set()

    try:
        async with asyncio.TaskGroup() as group:  # one failure (e.g. of the forge) stops the others
            for name in names:
                group.create_task(one(name))
    except BaseExceptionGroup as group_error:
        raise group_error.exceptions[0] from None


def prioritised(findings: list[Finding], changed: dict[str, set[int]] | None) -> list[Finding]:
    """Most important first: by level (failure, warning, notice), then those on changed lines."""
    def on_changed(f: Finding) -> bool:
        lines = changed.get(f.path) if changed is not None else None
        return changed is None or (lines is not None and any(f.start_line <= n <= f.end_line for n in lines))

    return sorted(findings, key=lambda f: (LEVEL_ORDER.get(f.level, 3), not on_changed(f)))


def apply_options(config: RepoConfig, options: dict[str, dict[str, Any]]) -> RepoConfig:
    """`.aqe.yml` with the keys an API request sets (e.g. `{"tests": {"command": "make test"}}`) laid over it."""
    for section, values in options.items():
        current = getattr(config, section, None)
        if current is None:
            raise ConfigError("the request", f"{section}: no such section", None)
        try:
            merged = msgspec.convert({**msgspec.to_builtins(current), **values}, type(current))
        except (msgspec.ValidationError, ValueError) as exc:
            raise ConfigError("the request", f"{section}: {exc}", None) from None
        setattr(config, section, merged)
    return config


def input_artifact_key(data: bytes, name: str) -> str:
    """The artifact a brought file stands for: a coverage report of its format."""
    fmt = detect_format(data, name)
    return {"lcov": "coverage.lcov", "coverage.py-json": "coverage.json", "jacoco": "coverage.jacoco"}.get(
        fmt, "coverage.cobertura")


def generated_files(directory: Path | None) -> dict[str, bytes]:
    """Repository path -> content of every regular file under the test-generation agent's output directory.
    Symbolic links (to files or directories) are skipped, never followed."""
    if directory is None or not directory.is_dir() or directory.is_symlink():
        return {}
    files: dict[str, bytes] = {}
    for parent, _dirs, names in os.walk(directory):  # does not descend into linked directories
        for name in names:
            path = Path(parent) / name
            try:
                files[path.relative_to(directory).as_posix()] = read_regular_file(path, MAX_ARTIFACT_BYTES)
            except OSError:  # a link, a FIFO, or gone
                continue
    return dict(sorted(files.items()))


def artifact_bytes(name: str, path: Path) -> bytes:
    """What a workspace artifact is kept with: a regular file (never through a link) of at most
    MAX_ARTIFACT_BYTES, and for `coverage.xml` only a coverage report that parses (OSError, ValueError)."""
    data = read_regular_file(path, MAX_ARTIFACT_BYTES)
    if name == "coverage.xml":
        parse_report(data, path.name)  # ReportError when it is anything else
    return data


def agent_options(settings: Settings, request: RunRequest | None = None) -> AgentOptions:
    llm = LlmOptions(settings.llm_url, settings.llm_model, settings.llm_api_key) \
        if settings.llm_url and settings.llm_model else None
    return AgentOptions(osv_url=settings.osv_url, llm=llm, denied_networks=settings.denied_networks,
                        testgen_target=request.target if request is not None else None)


def policy_result(agent: str, record: JobRecord, config: RepoConfig) -> AgentResult | None:
    """A result that replaces running the agent, when policy says its code must not run."""
    req = record.request
    if req.draft and not config.pull_requests.drafts and not req.trusted:
        return AgentResult(agent=agent, conclusion="skipped", title="Draft pull request",
                           summary="Draft pull requests are not analysed. Mark it ready for review, comment "
                                   "`/aqe run`, or set `pull_requests.drafts: true` in `.aqe.yml`.")
    if agent == "test-generation" and req.fork and not req.trusted and not config.tests.forks:
        return AgentResult(agent=agent, conclusion="neutral", title="Code of a fork is not run automatically",
                           summary="Generating tests imports and runs this pull request's code, which comes from a "
                                   "fork. A maintainer can comment `/aqe run` to approve it, or the base branch's "
                                   "`.aqe.yml` can set `tests.forks: true`.")
    if agent == "tests" and req.fork and not req.trusted and not config.tests.forks:
        return AgentResult(agent=agent, conclusion="neutral", title="Tests of a fork are not run automatically",
                           summary="This pull request comes from a fork, so its code is not run without approval. "
                                   "A maintainer (owner, member or collaborator) can comment `/aqe run` to run it, "
                                   "or the base branch's `.aqe.yml` can set `tests.forks: true`.")
    return None


async def load_config(services: Services, record: JobRecord, root: Path, auth: str | None) -> RepoConfig:
    """`.aqe.yml` of the head commit; of the base commit for forks, so a fork cannot grant itself trust."""
    req = record.request
    for path in CONFIG_PATHS:
        if req.fork and req.base_sha:
            text = await checkout.read_file_at(services.settings.data_dir, req.forge, req.repo, req.base_sha, path, auth)
        elif req.fork:
            text = None
        else:
            file = root / path
            text = file.read_text(errors="replace") if file.is_file() else None
        if text is not None:
            return parse_config(text, path)
    return RepoConfig()


class JobRun:
    def __init__(self, services: Services, record: JobRecord, *, last_try: bool = False) -> None:
        self.services, self.record, self.last_try = services, record, last_try
        self.forge = forge_named(record.request.forge)
        self.tracker = Tracker(services.store, record)
        self.workdir = services.settings.data_dir / "work" / record.id
        self.places = internal_places(services.settings.data_dir, self.workdir / "src")  # kept out of what users read
        self.reporter: Reporter | None = None

    async def execute(self) -> None:
        try:
            async with asyncio.timeout(JOB_TIMEOUT_S):
                await self._steps()
        except TimeoutError:
            await self._end_unfinished("timed_out", "failed", f"the job ran longer than {JOB_TIMEOUT_S} s")
        except asyncio.CancelledError:
            if self.services.shutting_down and not self.last_try:
                await self._wait_for_next_worker()
            elif self.services.shutting_down:  # arq will not run it again: end it rather than leave it queued
                await self._end_unfinished("failure", "failed", f"the worker running this job stopped {MAX_TRIES} "
                                                                "times; AQE gave up on it")
                if self.record.request.callback_url:  # by the next worker: this one is stopping
                    await self.services.store.enqueue_callback(self.record.id)
            else:
                await self._end_unfinished("cancelled", "cancelled", "the job was cancelled")
                await self._call_back()
            raise
        except Exception as exc:
            log.exception("job %s failed", self.record.id)
            await self._end_unfinished("failure", "failed", error_text(exc, self.places))
        finally:
            await self._clean_up()
        await self._call_back()

    async def _call_back(self) -> None:
        await send_result(self.services, self.record)

    async def _steps(self) -> None:
        req = self.record.request
        self.record.status, self.record.started_at = "running", self.record.started_at or now()
        self.record.attempt_started_at = now()  # a try after a stopped worker: the ETA and duration count from here
        self.record.attempts += 1
        self.record.results.clear()  # a retried job reports this try's results, not also the last one's
        self.record.expected_s = await fleet.expected_duration(self.services.redis, req)  # for the status's ETA
        await self.tracker.step("authenticate", 2)
        token = await self.forge.token(self.services, req)
        self.reporter = RecordReporter() if req.from_api else await self.forge.reporter(self.services, self.record,
                                                                                        token)
        self.record.request = req = await self.reporter.resolve(req)
        await self.tracker.step("checkout", 5)
        auth = self.forge.git_auth(token)
        if not req.head_sha and req.head_ref:  # an API request named a branch: analyse its tip as it is now
            req.head_sha = await checkout.resolve_ref(self.services.settings.data_dir, req.forge,
                                                      self.forge.source(req), auth)
        if req.from_api and not req.base_sha and req.base_ref:  # ... or a base branch to compare with
            base = Source(req.repo, req.clone_url, "", (f"refs/heads/{req.base_ref}",))
            req.base_sha = await checkout.resolve_ref(self.services.settings.data_dir, req.forge, base, auth)
        root = await checkout.checkout(self.services.settings.data_dir, req.forge, self.forge.source(req),
                                       self.workdir / "src", auth)
        await self.tracker.step("config", 15)
        try:
            config = apply_options(await load_config(self.services, self.record, root, auth), req.options)
        except ConfigError as exc:
            await self._config_failed(exc)
            return
        self.record.agents = req.agents or config.agents_for(req.is_pull_request)
        await self._begin(self.record.agents)
        await self.tracker.step("diff", 18)
        changed = await self._changed_lines(auth)
        workspace = Workspace(root=root, scratch=self._scratch(), head_sha=req.head_sha, base_sha=req.base_sha,
                              changed_lines=changed, options=agent_options(self.services.settings, req),
                              baseline=await self._baseline())
        await self._bring_inputs(workspace)
        await self.tracker.step("agents", 20)
        await self._agents(workspace, config)
        await self.tracker.step("report", 95)
        await self.reporter.summarise(self.record, await self.services.store.extra_prs(self.record.id))
        await self._store_baseline()
        await self.tracker.finish("completed", conclusion=overall_conclusion(self.record.results))
        try:  # only a job that ran to its end says how long its kind takes; it has ended whatever happens here
            await fleet.record_job_run(self.services.redis, self.record)
        except Exception:
            log.exception("job %s: could not record its duration", self.record.id)

    async def _bring_inputs(self, workspace: Workspace) -> None:
        """Files the request brought (an uploaded coverage report) into the scratch space, as agents' artifacts."""
        for name, key in self.record.request.inputs.items():
            data = await self.services.store.blob(key)
            if data is None:
                raise RuntimeError(f"the file {name!r} sent with the request is no longer kept (1 day); send it again")
            path = workspace.scratch / "inputs" / Path(name).name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            workspace.artifacts[input_artifact_key(data, path.name)] = path

    async def _begin(self, agents: list[str]) -> None:
        """Show the checks as queued on the commit (a retried job reuses the ones it made)."""
        assert self.reporter is not None
        await self.reporter.begin(agents)
        self.record.report_refs = dict(self.reporter.refs)

    async def _baseline(self) -> tuple[float, str] | None:
        """The base branch's last stored total coverage and the branch, for "−0.8 % vs main"."""
        req = self.record.request
        if req.is_branch_push or not req.base_ref:
            return None
        baseline = await self.services.store.baseline(req.forge, req.repo, req.base_ref)
        if baseline is not None and isinstance(baseline.get("total_percent"), (int, float)):
            return float(baseline["total_percent"]), req.base_ref
        return None

    async def _store_baseline(self) -> None:
        req = self.record.request
        coverage = next((r for r in self.record.results if r.agent == "coverage"), None)
        if req.is_branch_push and req.head_ref and coverage is not None and "total_percent" in coverage.metrics:
            await self.services.store.save_baseline(req.forge, req.repo, req.head_ref, {
                "sha": req.head_sha, "job_id": self.record.id, "at": now(),
                "total_percent": coverage.metrics["total_percent"]})

    async def _changed_lines(self, auth: str | None) -> dict[str, set[int]] | None:
        """Lines the change adds, from the merge base with the base commit; None when there is no base."""
        req = self.record.request
        if not req.base_sha or req.base_sha == req.head_sha:
            return None
        try:
            text = await checkout.diff_from_base(self.services.settings.data_dir, req.forge, req.repo, req.base_sha,
                                                 req.head_sha, auth)
            return changed_lines(text)
        except (checkout.CheckoutError, DiffError) as exc:
            log.warning("job %s: no diff against %s: %s", self.record.id, req.base_sha[:7], exc)
            return None

    def _scratch(self) -> Path:
        scratch = self.workdir / "scratch"
        scratch.mkdir(parents=True, exist_ok=True)
        return scratch

    async def _agents(self, workspace: Workspace, config: RepoConfig) -> None:
        names = self.record.agents
        fractions = dict.fromkeys(names, 0.0)
        await run_in_order(names, lambda name: self._agent(name, workspace, config, fractions))
        self.record.results.sort(key=lambda r: names.index(r.agent) if r.agent in names else len(names))

    async def _agent(self, name: str, workspace: Workspace, config: RepoConfig, fractions: dict[str, float]) -> None:
        assert self.reporter is not None

        async def progress(fraction: float, message: str) -> None:
            fractions[name] = min(max(fraction, fractions[name]), 1.0)
            await self.tracker.progress(20 + 75 * sum(fractions.values()) / len(fractions), f"{name}: {message}")

        await self.tracker.agent_step(name, done=False)
        await self.reporter.agent_started(name)
        result = policy_result(name, self.record, config)
        if result is None:
            result = await self._run_agent(name, workspace, config.section(name), progress)
        result.findings = prioritised(result.findings, workspace.changed_lines)
        if name == "test-generation" and self.record.request.propose_tests:
            result = await self._propose_tests(result, workspace)
        result = shown_result(result, self.places)  # tools' output quoted in it names no path of this machine
        workspace.results[name] = result
        self.record.results.append(result)
        await self._keep_artifacts(workspace)
        await self.reporter.agent_finished(result, max_annotations=config.reporting.max_annotations)
        await progress(1.0, "finished")
        await self.tracker.agent_step(name, done=True)
        await fleet.record_agent_run(self.services.redis, result, now())

    async def _keep_artifacts(self, workspace: Workspace) -> None:
        for key, name in KEPT_ARTIFACTS.items():
            path = workspace.artifacts.get(key)
            if name in self.record.artifacts or path is None:
                continue
            try:
                data = await asyncio.to_thread(artifact_bytes, name, path)
            except (OSError, ValueError) as exc:
                log.warning("job %s: artifact %s is not kept: %s", self.record.id, name, exc)
                continue
            if name in self.record.artifacts:  # kept meanwhile by an agent finishing alongside
                continue
            self.record.artifacts.append(name)  # claimed before the await: two agents cannot both add it
            try:
                await self.services.store.save_artifact(self.record.id, name, data)
            except BaseException:
                self.record.artifacts.remove(name)
                raise

    async def _propose_tests(self, result: AgentResult, workspace: Workspace) -> AgentResult:
        """"/aqe generate-tests": the kept tests as a pull request into the PR's branch."""
        assert self.reporter is not None
        files = generated_files(workspace.artifacts.get("generated-tests"))
        if not files:
            note = "No test passed validation, so no pull request was opened."
        else:
            try:
                url = await self.reporter.propose_tests(self.record.request, files, result.summary)
                why = ("AQE cannot push to the branch of a pull request from a fork" if self.record.request.fork
                       else "the author of the command may not push to the repository")
                note = (f"The generated tests are proposed in {url}." if url else
                        f"{why}: take the tests from the job page instead.")
            except Exception as exc:
                log.exception("job %s: could not open the pull request with the generated tests", self.record.id)
                note = f"Opening the pull request with the generated tests failed: `{error_text(exc, self.places)}`."
        result.summary = f"{result.summary}\n\n**Pull request:** {note}"
        return result

    async def _run_agent(self, name: str, workspace: Workspace, section: Any, progress: Progress) -> AgentResult:
        """One agent's crash fails its own check, with the reason; the other agents still run."""
        try:
            return await AGENTS[name].run(workspace, section, progress)
        except Exception as exc:
            log.exception("job %s: agent %s crashed", self.record.id, name)
            return AgentResult(agent=name, conclusion="failure", title="AQE could not finish this check",
                               summary=f"The `{name}` analysis stopped with an error: "
                                       f"`{error_text(exc, self.places, limit=500)}`. This is a problem of AQE, not "
                                       "of your change; the worker's log has the details.")

    async def _config_failed(self, exc: ConfigError) -> None:
        """An invalid `.aqe.yml` fails `aqe/config` with the error; nothing else runs."""
        assert self.reporter is not None
        summary = (f"AQE did not run because `{exc.path}` is invalid.\n\n**{exc}**\n\nNo other check ran. Fix the "
                   "file and push again; every key is described in AQE's configuration reference "
                   "(`docs/configuration.md`).")
        self.record.agents = ["config"]
        await self._begin(["config"])
        result = AgentResult(agent="config", conclusion="failure", title=f"Invalid {exc.path}", summary=summary,
                             findings=[Finding(path=exc.path, start_line=exc.line or 1, end_line=exc.line or 1,
                                               level="failure", rule="config", title=f"Invalid {exc.path}",
                                               message=str(exc))])
        self.record.results.append(result)
        await self.reporter.agent_finished(result)
        await self.reporter.summarise(self.record, await self.services.store.extra_prs(self.record.id))
        await self.tracker.finish("completed", conclusion="failure")

    async def _end_unfinished(self, conclusion: Conclusion, status: str, reason: str) -> None:
        try:
            if self.reporter is not None:
                if not self.reporter.refs:  # it ended before the checks were shown (e.g. checkout failed)
                    req = self.record.request
                    await self.reporter.begin(req.agents or RepoConfig().agents.for_event(req.is_pull_request))
                await self.reporter.abort(conclusion, reason)
            self.record.report_refs = dict(self.reporter.refs) if self.reporter else self.record.report_refs
            await self.tracker.finish(status, conclusion=conclusion, error=reason)
        except Exception:
            log.exception("job %s: could not report its end", self.record.id)

    async def _wait_for_next_worker(self) -> None:
        """The worker is stopping and arq will run this job again: show it as queued, not as ended."""
        try:
            if self.reporter is not None:
                await self.reporter.requeue("The worker running this check stopped; the check resumes when a "
                                            "worker is back.")
            self.record.status, self.record.step = "queued", "waiting for a worker"
            await self.services.store.save(self.record, "progress", {"status": "queued", "message": self.record.step,
                                                                     "progress": self.record.progress})
        except Exception:
            log.exception("job %s: could not mark it queued again", self.record.id)

    async def _clean_up(self) -> None:
        src = self.workdir / "src"
        if src.exists():
            await checkout.remove_worktree(self.services.settings.data_dir, self.record.request.forge,
                                           self.record.request.repo, src)
        shutil.rmtree(self.workdir, ignore_errors=True)
        if self.record.status in TERMINAL_STATUSES:
            await self.services.store.release(self.record)


async def run_job(services: Services, job_id: str, *, last_try: bool = False) -> dict[str, Any]:
    record = await services.store.get(job_id)
    if record is None:
        log.error("job %s has no record (expired?); nothing to do", job_id)
        return {"job_id": job_id, "status": "missing"}
    if record.status in TERMINAL_STATUSES:
        return {"job_id": job_id, "status": record.status}
    services.jobs_running += 1
    try:
        await JobRun(services, record, last_try=last_try).execute()
    finally:
        services.jobs_running -= 1
    return {"job_id": job_id, "status": record.status, "conclusion": record.conclusion}
