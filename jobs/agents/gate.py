"""The "quality-gate" agent (`aqe/quality-gate`): one verdict over the conditions on new code.

It runs after every other agent of the job and reads their metrics (`jobs.gate.conditions`); it
analyses nothing itself. Failed conditions fail it; conditions that could not be evaluated (their
agent did not run or had nothing to measure) are shown with the reason and do not fail it; an agent that ran
but broke (timed out, crashed) fails the conditions that read it.
"""

from __future__ import annotations

import time
from typing import Any

from jobs.agents.base import Progress, Workspace
from jobs.gate.conditions import Condition, evaluate
from jobs.gate.config import GateConfig, as_gate_config
from jobs.model import AgentResult, Conclusion
from jobs.reporting.markdown import text_cell

_MARK = {"passed": "✅ passed", "failed": "❌ failed", "not evaluated": "➖ not evaluated"}


def gate_table(conditions: list[Condition]) -> str:
    rows = [
        f"| {c.name} | {c.actual} | {c.threshold} | {_MARK[c.status]}{' — ' + text_cell(c.note) if c.note else ''} |"
        for c in conditions
    ]
    return "| Condition | Actual | Threshold | Result |\n| --- | --- | --- | --- |\n" + "\n".join(rows)


def gate_conclusion(conditions: list[Condition]) -> Conclusion:
    if any(c.status == "failed" for c in conditions):
        return "failure"
    if not any(c.status == "passed" for c in conditions):
        return "neutral"
    return "success"


def gate_title(conditions: list[Condition]) -> str:
    failed = [c for c in conditions if c.status == "failed"]
    evaluated = [c for c in conditions if c.status != "not evaluated"]
    if failed:
        return f"Quality gate failed: {len(failed)} of {len(evaluated)} conditions ({', '.join(c.name for c in failed)})"
    if not evaluated:
        return "Quality gate not evaluated: no condition could be measured"
    return f"Quality gate passed: {len(evaluated)} of {len(evaluated)} conditions"


def gate_result(name: str, config: GateConfig, results: dict[str, AgentResult], duration_s: float = 0.0) -> AgentResult:
    conditions = evaluate(config, results)
    summary = gate_table(conditions) if conditions else "Every condition is switched off in `quality_gate`."
    summary += "\n\nConditions apply to new code (the lines this change adds); set them in `quality_gate` in `.aqe.yml`."
    metrics: dict[str, float | int | str] = {
        "conditions": len(conditions),
        "conditions_failed": sum(c.status == "failed" for c in conditions),
        "conditions_not_evaluated": sum(c.status == "not evaluated" for c in conditions),
    }
    return AgentResult(agent=name, conclusion=gate_conclusion(conditions), title=gate_title(conditions),
                       summary=summary, metrics=metrics, duration_s=duration_s)


class GateAgent:
    name = "quality-gate"
    needs = ("tests", "coverage", "security", "quality", "performance", "test-generation")

    def applies_to(self, workspace: Workspace, config: Any) -> bool:
        return True

    async def run(self, workspace: Workspace, config: GateConfig | dict[str, Any] | None,
                  progress: Progress) -> AgentResult:
        started = time.monotonic()
        return gate_result(self.name, as_gate_config(config), dict(workspace.results),
                           round(time.monotonic() - started, 3))
