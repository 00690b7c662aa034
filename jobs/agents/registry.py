"""The agents AQE runs, by name (check run `aqe/<name>`)."""

from __future__ import annotations

from jobs.agents.base import Agent
from jobs.agents.tests import TestsAgent

AGENTS: dict[str, Agent] = {
    "tests": TestsAgent(),
}
