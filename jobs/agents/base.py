"""The one interface every analysis implements. Agents never see a forge."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from jobs.model import AgentResult

Progress = Callable[[float, str], Awaitable[None]]
"""`await progress(fraction_done_0_to_1, message)`"""


@dataclass
class Workspace:
    """A checked-out commit and what the agents share about it."""

    root: Path  # the work tree at exactly head_sha; holds no credentials
    scratch: Path  # per-job scratch space outside the work tree (reports, venvs, HOME)
    head_sha: str
    base_sha: str | None = None
    changed_lines: dict[str, set[int]] | None = None  # path -> changed line numbers (None = unknown)
    artifacts: dict[str, Path] = field(default_factory=dict)  # e.g. "junit", "coverage.cobertura"


class Agent(Protocol):
    name: str  # "tests" -> check run "aqe/tests"

    def applies_to(self, workspace: Workspace, config: Any) -> bool: ...

    async def run(self, workspace: Workspace, config: Any, progress: Progress) -> AgentResult:
        """`config` is the agent's section of `.aqe.yml` (e.g. `RepoConfig.tests`)."""
        ...
