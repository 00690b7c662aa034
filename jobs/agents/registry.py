"""The agents AQE runs, by name (check run `aqe/<name>`)."""

from __future__ import annotations

from jobs.agents.base import Agent
from jobs.agents.quality import QualityAgent
from jobs.agents.tests import TestsAgent

AGENTS: dict[str, Agent] = {
    "tests": TestsAgent(),
    "quality": QualityAgent(),  # registered; runs once the pipeline computes changed lines (issue 3)
}
