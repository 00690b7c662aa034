"""The one interface every analysis implements. Agents never see a forge."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from jobs.model import AgentResult
from jobs.netpolicy import Network

Progress = Callable[[float, str], Awaitable[None]]
"""`await progress(fraction_done_0_to_1, message)`"""


@dataclass(frozen=True)
class LlmOptions:
    """An OpenAI-compatible chat completions endpoint (`AQE_LLM_URL`, `AQE_LLM_MODEL`, `AQE_LLM_API_KEY`)."""

    url: str  # base URL, e.g. "https://api.openai.com/v1"; requests go to f"{url}/chat/completions"
    model: str
    api_key: str | None = None  # sent as a Bearer token; never logged, never given to code under test
    timeout_s: float = 120.0  # a completion takes longer than an API lookup

    def __repr__(self) -> str:  # keep the key out of logs and tracebacks
        return f"LlmOptions(url={self.url!r}, model={self.model!r}, api_key={'***' if self.api_key else None})"


@dataclass(frozen=True)
class AgentOptions:
    """What the worker's settings (and the API request) tell agents; `.aqe.yml` never sets these."""

    osv_url: str = "https://api.osv.dev"  # `AQE_OSV_URL`: base of the OSV API (`/v1/querybatch`, `/v1/vulns/{id}`)
    llm: LlmOptions | None = None  # test generation's optional LLM backend
    performance_target: str | None = None  # a target URL given by an API request; wins over `.aqe.yml`
    testgen_target: str | None = None  # a file or `path::function` an API request wants tests for
    http_timeout_s: float = 10.0  # for calls agents make to outside services (OSV, LLM)
    denied_networks: tuple[Network, ...] = ()  # `AQE_DENY_NETWORKS`: never a load-test target

    def __repr__(self) -> str:  # a target URL may carry credentials
        target = "***" if self.performance_target else None
        return f"AgentOptions(osv_url={self.osv_url!r}, llm={self.llm!r}, performance_target={target})"


@dataclass
class Workspace:
    """A checked-out commit and what the agents share about it."""

    root: Path  # the work tree at exactly head_sha; holds no credentials
    scratch: Path  # per-job scratch space outside the work tree (reports, venvs, HOME)
    head_sha: str
    base_sha: str | None = None
    changed_lines: dict[str, set[int]] | None = None  # path -> changed line numbers (None = unknown)
    artifacts: dict[str, Path] = field(default_factory=dict)  # e.g. "junit", "coverage.cobertura", "venv"
    options: AgentOptions = field(default_factory=AgentOptions)
    results: dict[str, AgentResult] = field(default_factory=dict)  # results of the agents that ran before
    baseline: tuple[float, str] | None = None  # the base branch's stored total coverage and its name ("main")


class Agent(Protocol):
    name: str  # "tests" -> check run "aqe/tests"
    needs: tuple[str, ...]  # agents whose results or artifacts it reads; they run first when selected

    def applies_to(self, workspace: Workspace, config: Any) -> bool: ...

    async def run(self, workspace: Workspace, config: Any, progress: Progress) -> AgentResult:
        """`config` is the agent's section of `.aqe.yml` (e.g. `RepoConfig.tests`)."""
        ...
