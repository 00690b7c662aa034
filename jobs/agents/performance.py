"""The "performance" agent (`aqe/performance`): a load test against a target URL, judged by thresholds.

The target is the API request's `target_url` (`AgentOptions.performance_target`), else
`performance.target_url` from `.aqe.yml`; without one the check is neutral and nothing runs. The
test runs with k6 when it is installed (`engine: auto` or `k6`), else with the built-in engine
(`jobs.performance.engine`, asyncio + httpcore in its own process). Both measure and compute as k6
does, so thresholds mean the same whichever ran.

The check fails when a threshold fails, when no request got any response (the target is
unreachable) or when the test could not run; it succeeds otherwise. It has no findings: a load test
has no line to point at. Credentials in the target (userinfo, query values) and header values never
appear in its output.
"""

from __future__ import annotations

import shutil
import time
from typing import Any

from jobs import netpolicy
from jobs.agents.base import Progress, Workspace
from jobs.model import AgentResult
from jobs.performance.builtin import run_builtin
from jobs.performance.config import PerformanceConfig, as_performance_config, effective_target
from jobs.performance.k6 import run_k6
from jobs.performance.plan import LoadPlan, plan_load, plan_secrets
from jobs.performance.process import EngineError
from jobs.performance.report import (
    NO_TARGET_SUMMARY,
    LoadTest,
    performance_conclusion,
    performance_metrics,
    performance_summary,
    performance_title,
)
from jobs.performance.stats import LoadStats
from jobs.performance.thresholds import evaluate
from jobs.performance.urls import display_url, redact, target_error


def chosen_engine(config: PerformanceConfig, k6: str | None) -> str | None:
    """"k6" or "builtin"; None when k6 is asked for but not installed."""
    if config.engine == "builtin":
        return "builtin"
    if k6 is not None:
        return "k6"
    return None if config.engine == "k6" else "builtin"


def neutral_result(name: str, title: str, summary: str, duration_s: float) -> AgentResult:
    return AgentResult(agent=name, conclusion="neutral", title=title, summary=summary, duration_s=duration_s)


def not_run_result(name: str, title: str, summary: str, duration_s: float) -> AgentResult:
    """The test could not run: failure, without the `requests` metric (the gate then ignores it)."""
    return AgentResult(agent=name, conclusion="failure", title=title, summary=summary, duration_s=duration_s)


def load_test_result(name: str, test: LoadTest, duration_s: float) -> AgentResult:
    return AgentResult(
        agent=name,
        conclusion=performance_conclusion(test),
        title=performance_title(test),
        summary=performance_summary(test),
        metrics=performance_metrics(test),
        duration_s=duration_s,
    )


class PerformanceAgent:
    """A load test of the configured target (`aqe/performance`)."""

    name = "performance"
    # after the agents that load the worker's CPU: a load test beside them would measure them too
    needs: tuple[str, ...] = ("tests", "coverage", "security", "quality", "test-generation")

    def applies_to(self, workspace: Workspace, config: Any) -> bool:
        return True  # no target gives a neutral check that says how to set one

    async def run(
        self, workspace: Workspace, config: PerformanceConfig | dict[str, Any] | None, progress: Progress
    ) -> AgentResult:
        started, cfg = time.monotonic(), as_performance_config(config)
        target = effective_target(cfg, workspace.options.performance_target)
        if target is None:
            return neutral_result(self.name, "No performance target configured", NO_TARGET_SUMMARY, _since(started))
        if why := target_error(target) or await netpolicy.refusal(target, workspace.options.denied_networks):
            return not_run_result(self.name, "Invalid performance target", f"The performance target URL {why}.",
                                  _since(started))
        k6 = shutil.which("k6")
        engine = chosen_engine(cfg, k6)
        if engine is None:
            return neutral_result(self.name, "k6 is not installed", "`performance.engine` is `k6`, but k6 is not "
                                  "installed on this AQE worker. Install k6, or set `engine: auto` to use the "
                                  "built-in engine.", _since(started))
        plan = plan_load(cfg, target)
        await progress(0.0, f"Load test: {plan.virtual_users} virtual users for {plan.duration_s:g} s")
        try:
            stats = await self._run_engine(k6 if engine == "k6" else None, plan, cfg, workspace, progress)
        except EngineError as exc:
            reason = redact(str(exc), plan_secrets(plan, target))
            return not_run_result(self.name, "Load test could not run", f"{reason}\n\nTarget: `{display_url(target)}`",
                                  _since(started))
        outcomes = evaluate(cfg.parsed_thresholds, stats)
        test = LoadTest(display_url(target), plan, stats, outcomes)
        return load_test_result(self.name, test, _since(started))

    @staticmethod
    async def _run_engine(k6: str | None, plan: LoadPlan, config: PerformanceConfig, workspace: Workspace,
                          progress: Progress) -> LoadStats:
        """With k6 when its path is given, else with the built-in engine."""
        scratch = workspace.scratch / "performance"
        scratch.mkdir(parents=True, exist_ok=True)
        if k6 is not None:
            return await run_k6(plan, config.parsed_thresholds, k6, scratch, progress)
        return await run_builtin(plan, scratch, progress)


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)
