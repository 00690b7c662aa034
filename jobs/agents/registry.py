"""The agents AQE runs, by name (check run `aqe/<name>`)."""

from __future__ import annotations

from jobs.agents.base import Agent
from jobs.agents.coverage import CoverageAgent
from jobs.agents.gate import GateAgent
from jobs.agents.performance import PerformanceAgent
from jobs.agents.quality import QualityAgent
from jobs.agents.security import SecurityAgent
from jobs.agents.testgen import TestGenerationAgent
from jobs.agents.tests import TestsAgent

AGENTS: dict[str, Agent] = {
    "tests": TestsAgent(),
    "coverage": CoverageAgent(),
    "quality": QualityAgent(),
    "security": SecurityAgent(),
    "test-generation": TestGenerationAgent(),
    "performance": PerformanceAgent(),
    "quality-gate": GateAgent(),
}
