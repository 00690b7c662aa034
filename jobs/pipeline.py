"""The run of one job, forge-neutral, as a sequence of named steps.

resolve -> checks queued -> checkout -> config -> policy -> each agent (in progress -> completed)
-> summary comment. Whatever happens, every check that was created ends completed.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path
from typing import Any

from jobs import checkout
from jobs.agents.base import Progress, Workspace
from jobs.agents.registry import AGENTS
from jobs.coverage.diff import DiffError, changed_lines
from jobs.forges.registry import forge as forge_named
from jobs.model import TERMINAL_STATUSES, AgentResult, Conclusion, JobRecord, now
from jobs.reporting.base import Reporter
from jobs.repo_config import CONFIG_PATHS, ConfigError, RepoConfig, parse_config
from jobs.services import Services
from jobs.store import JobStore, finish_step, start_step

log = logging.getLogger("aqe.pipeline")

JOB_TIMEOUT_S = 3600
PROGRESS_MIN_INTERVAL_S = 0.25
_SEVERITY = ["success", "skipped", "neutral", "action_required", "cancelled", "timed_out", "failure"]


class Tracker:
    """Keeps the job record and its event stream up to date as the job moves."""

    def __init__(self, store: JobStore, record: JobRecord) -> None:
        self.store, self.record, self._last_progress = store, record, 0.0

    async def step(self, name: str, progress: float) -> None:
        finish_step(self.record)
        start_step(self.record, name, progress)
        await self.store.save(self.record, "progress", {"progress": self.record.progress, "message": name,
                                                         "status": self.record.status})

    async def progress(self, progress: float, message: str) -> None:
        loop_time = asyncio.get_running_loop().time()
        if loop_time - self._last_progress < PROGRESS_MIN_INTERVAL_S:
            return
        self._last_progress = loop_time
        self.record.progress = round(max(self.record.progress, progress), 1)
        await self.store.save(self.record, "progress", {"progress": self.record.progress, "message": message,
                                                         "status": self.record.status})

    async def finish(self, status: str, *, conclusion: Conclusion | None = None, error: str | None = None,
                     reason: str | None = None) -> None:
        finish_step(self.record)
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


def policy_result(agent: str, record: JobRecord, config: RepoConfig) -> AgentResult | None:
    """A result that replaces running the agent, when policy says its code must not run."""
    req = record.request
    if req.draft and not config.pull_requests.drafts and not req.trusted:
        return AgentResult(agent=agent, conclusion="skipped", title="Draft pull request",
                           summary="Draft pull requests are not analysed. Mark it ready for review, comment "
                                   "`/aqe run`, or set `pull_requests.drafts: true` in `.aqe.yml`.")
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
    def __init__(self, services: Services, record: JobRecord) -> None:
        self.services, self.record = services, record
        self.forge = forge_named(record.request.forge)
        self.tracker = Tracker(services.store, record)
        self.workdir = services.settings.data_dir / "work" / record.id
        self.reporter: Reporter | None = None

    async def execute(self) -> None:
        try:
            async with asyncio.timeout(JOB_TIMEOUT_S):
                await self._steps()
        except TimeoutError:
            await self._end_unfinished("timed_out", "failed", f"the job ran longer than {JOB_TIMEOUT_S} s")
        except asyncio.CancelledError:
            if self.services.shutting_down:
                await self._wait_for_next_worker()
            else:
                await self._end_unfinished("cancelled", "cancelled", "the job was cancelled")
            raise
        except Exception as exc:
            log.exception("job %s failed", self.record.id)
            await self._end_unfinished("failure", "failed", f"{type(exc).__name__}: {exc}")
        finally:
            await self._clean_up()

    async def _steps(self) -> None:
        req = self.record.request
        self.record.status, self.record.started_at = "running", self.record.started_at or now()
        self.record.attempts += 1
        await self.tracker.step("authenticate", 2)
        token = await self.forge.token(self.services, req)
        self.reporter = await self.forge.reporter(self.services, self.record, token)
        self.record.request = await self.reporter.resolve(req)
        await self.reporter.begin(req.agents)
        self.record.report_refs = dict(self.reporter.refs)
        await self.tracker.step("checkout", 5)
        auth = self.forge.git_auth(token)
        root = await checkout.checkout(self.services.settings.data_dir, req.forge, self.forge.source(req),
                                       self.workdir / "src", auth)
        await self.tracker.step("config", 15)
        try:
            config = await load_config(self.services, self.record, root, auth)
        except ConfigError as exc:
            await self._config_failed(exc)
            return
        await self.tracker.step("diff", 18)
        changed = await self._changed_lines(auth)
        workspace = Workspace(root=root, scratch=self._scratch(), head_sha=req.head_sha, base_sha=req.base_sha,
                              changed_lines=changed)
        await self._agents(workspace, config)
        await self.tracker.step("report", 95)
        await self.reporter.summarise(self.record, await self.services.store.extra_prs(self.record.id))
        await self.tracker.finish("completed", conclusion=overall_conclusion(self.record.results))

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
        assert self.reporter is not None
        names = self.record.request.agents
        for index, name in enumerate(names):
            low, high = 20 + 75 * index / len(names), 20 + 75 * (index + 1) / len(names)
            await self.tracker.step(f"agent:{name}", low)
            await self.reporter.agent_started(name)
            result = policy_result(name, self.record, config)
            if result is None:

                async def progress(fraction: float, message: str, low: float = low, high: float = high) -> None:
                    await self.tracker.progress(low + (high - low) * fraction, message)

                result = await self._run_agent(name, workspace, getattr(config, name, None), progress)
            self.record.results.append(result)
            await self.reporter.agent_finished(result)

    async def _run_agent(self, name: str, workspace: Workspace, section: Any, progress: Progress) -> AgentResult:
        """One agent's crash fails its own check, with the reason; the other agents still run."""
        try:
            return await AGENTS[name].run(workspace, section, progress)
        except Exception as exc:
            log.exception("job %s: agent %s crashed", self.record.id, name)
            return AgentResult(agent=name, conclusion="failure", title="AQE could not finish this check",
                               summary=f"The `{name}` analysis stopped with an error: `{type(exc).__name__}: "
                                       f"{str(exc)[:500]}`. This is a problem of AQE, not of your change; the "
                                       "worker's log has the details.")

    async def _config_failed(self, exc: ConfigError) -> None:
        assert self.reporter is not None
        summary = (f"AQE did not run because `{exc.path}` is invalid.\n\n**{exc}**\n\n"
                   "See the configuration reference in AQE's docs (`docs/configuration.md`).")
        for name in self.record.request.agents:
            result = AgentResult(agent=name, conclusion="failure", title=f"Invalid {exc.path}", summary=summary)
            self.record.results.append(result)
            await self.reporter.agent_finished(result)
        await self.reporter.summarise(self.record, await self.services.store.extra_prs(self.record.id))
        await self.tracker.finish("completed", conclusion="failure")

    async def _end_unfinished(self, conclusion: Conclusion, status: str, reason: str) -> None:
        try:
            if self.reporter is not None:
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


async def run_job(services: Services, job_id: str) -> dict[str, Any]:
    record = await services.store.get(job_id)
    if record is None:
        log.error("job %s has no record (expired?); nothing to do", job_id)
        return {"job_id": job_id, "status": "missing"}
    if record.status in TERMINAL_STATUSES:
        return {"job_id": job_id, "status": record.status}
    await JobRun(services, record).execute()
    return {"job_id": job_id, "status": record.status, "conclusion": record.conclusion}
