"""The per-repository `.aqe.yml`: schema, defaults and error messages that point at a line."""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec
import yaml

from jobs.coverage.config import CoverageConfig
from jobs.gate.config import GateConfig
from jobs.model import ALL_AGENTS, PULL_REQUEST_AGENTS, PUSH_AGENTS
from jobs.performance.config import PerformanceConfig, runs_on
from jobs.quality.config import QualityConfig
from jobs.security.config import SecurityConfig
from jobs.testgen.config import TestGenerationConfig

CONFIG_PATHS = (".aqe.yml", ".github/aqe.yml")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# what the sandbox sets itself; LD_PRELOAD and friends would run code in every process, including coverage's
RESERVED_ENV = frozenset({"PATH", "HOME", "TMPDIR", "VIRTUAL_ENV", "AQE_REPORTS_DIR", "LD_PRELOAD", "LD_LIBRARY_PATH",
                          "PYTHONHOME", "CI"})


class TestsConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    __test__ = False  # not a pytest test class

    command: str | None = None  # default: detected (pytest for Python repositories)
    setup: list[str] = []  # shell commands run before the tests, e.g. "pip install -r requirements.txt"
    timeout: int = msgspec.field(default=600)  # seconds for setup + tests together
    memory_mb: int = 4096  # address-space limit of every process the tests start
    junit: list[str] = []  # globs of JUnit XML files a custom command writes
    coverage: list[str] = []  # globs of Cobertura XML files a custom command writes
    forks: bool = False  # run the tests of pull requests from forks without a maintainer's "/aqe run"
    env: dict[str, str] = {}  # variables for setup and tests; not secret: they are shown on the job
    parallel: int | Literal["auto"] | None = None  # pytest workers (pytest-xdist); None: one process

    def __post_init__(self) -> None:
        for name, value in self.env.items():
            if not ENV_NAME_RE.match(name) or name in RESERVED_ENV:
                raise ValueError(f"{name[:60]!r} cannot be set: a variable name ([A-Za-z_][A-Za-z0-9_]*) other than "
                                 f"{', '.join(sorted(RESERVED_ENV))} (at `$.tests.env`)")
            if len(value) > 4096 or "\0" in value:
                raise ValueError(f"the value of {name} is longer than 4096 characters or holds a NUL (at `$.tests.env`)")
        if len(self.env) > 100:
            raise ValueError("at most 100 variables (at `$.tests.env`)")
        if not 1 <= self.timeout <= 6 * 3600:
            raise ValueError("must be between 1 and 21600 seconds (at `$.tests.timeout`)")
        if isinstance(self.parallel, int) and not 1 <= self.parallel <= 64:
            raise ValueError("must be between 1 and 64, or \"auto\" (at `$.tests.parallel`)")
        if self.parallel is not None and self.command:
            raise ValueError("applies to the pytest run AQE starts; with `tests.command`, put the option in the "
                             "command (e.g. `pytest -n 4`) (at `$.tests.parallel`)")
        if not 64 <= self.memory_mb <= 1024 * 1024:
            raise ValueError("must be between 64 and 1048576 (at `$.tests.memory_mb`)")


class PullRequestsConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    drafts: bool = False  # analyse draft pull requests too


class AgentsConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Which checks run on pull requests and on pushes to the default branch."""

    pull_request: list[str] = msgspec.field(default_factory=lambda: list(PULL_REQUEST_AGENTS))
    push: list[str] = msgspec.field(default_factory=lambda: list(PUSH_AGENTS))

    def __post_init__(self) -> None:
        for key in ("pull_request", "push"):
            unknown = [name for name in getattr(self, key) if name not in ALL_AGENTS]
            if unknown:
                raise ValueError(f"unknown agent {unknown[0]!r}; the agents are {', '.join(ALL_AGENTS)} "
                                 f"(at `$.agents.{key}`)")

    def for_event(self, pull_request: bool) -> list[str]:
        """The selected agents in the order checks are listed, each once."""
        chosen = set(self.pull_request if pull_request else self.push)
        return [name for name in ALL_AGENTS if name in chosen]


class ReportingConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    max_annotations: int = 200  # per check run; the rest are counted in its summary and listed on the job page

    def __post_init__(self) -> None:
        if not 0 <= self.max_annotations <= 5000:
            raise ValueError("must be between 0 and 5000 (at `$.reporting.max_annotations`)")


class RepoConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    agents: AgentsConfig = msgspec.field(default_factory=AgentsConfig)
    tests: TestsConfig = msgspec.field(default_factory=TestsConfig)
    coverage: CoverageConfig = msgspec.field(default_factory=CoverageConfig)
    quality: QualityConfig = msgspec.field(default_factory=QualityConfig)
    security: SecurityConfig = msgspec.field(default_factory=SecurityConfig)
    test_generation: TestGenerationConfig = msgspec.field(default_factory=TestGenerationConfig)
    performance: PerformanceConfig = msgspec.field(default_factory=PerformanceConfig)
    quality_gate: GateConfig = msgspec.field(default_factory=GateConfig)
    pull_requests: PullRequestsConfig = msgspec.field(default_factory=PullRequestsConfig)
    reporting: ReportingConfig = msgspec.field(default_factory=ReportingConfig)

    def agents_for(self, pull_request: bool) -> list[str]:
        """The agents that run for this event: `agents`, less a load test its `run_on` keeps off it."""
        return [name for name in self.agents.for_event(pull_request)
                if name != "performance" or runs_on(self.performance, pull_request)]

    def section(self, agent: str) -> Any:
        """The agent's own section ("quality-gate" -> `quality_gate`), or None when it has none."""
        return getattr(self, agent.replace("-", "_"), None)


class ConfigError(ValueError):
    """An invalid `.aqe.yml`; the message names the file, the key path and the line."""

    def __init__(self, path: str, message: str, line: int | None) -> None:
        self.path, self.message, self.line = path, message, line
        where = f"{path}, line {line}" if line else path
        super().__init__(f"{where}: {message}")


def _normalise(raw: Any) -> Any:
    """Accept a single string where a list of strings is expected (`setup: make deps`)."""
    lists = {"tests": ("setup", "junit", "coverage"), "coverage": ("reports",), "quality": ("exclude",),
             "agents": ("pull_request", "push"), "security": ("scanners", "ignore_paths", "ignore_rules", "sast_exclude"),
             "performance": ("thresholds",), "test_generation": ("exclude",)}
    for section, keys in lists.items():
        if isinstance(raw, dict) and isinstance(raw.get(section), dict):
            for key in keys:
                if isinstance(raw[section].get(key), str):
                    raw[section][key] = [raw[section][key]]
    return raw


def _line_of(root: yaml.Node | None, keys: list[str]) -> int | None:
    """1-based line of the deepest node along `keys` that exists in the YAML tree."""
    node, line = root, (root.start_mark.line + 1 if root is not None else None)
    for key in keys:
        if not isinstance(node, yaml.MappingNode):
            break
        for k, v in node.value:
            if k.value == key:
                node, line = v, k.start_mark.line + 1
                break
        else:
            break
    return line


_PATH_RE = re.compile(r"`\$((?:\.[A-Za-z0-9_]+|\[\d+\])*)`")


def parse_config(text: str, path: str = ".aqe.yml") -> RepoConfig:
    """Parse and validate a config file's text; raise ConfigError with the line on any problem."""
    try:
        raw = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(path, f"not valid YAML: {problem}", mark.line + 1 if mark else None) from None
    if raw is None:
        return RepoConfig()
    if not isinstance(raw, dict):
        raise ConfigError(path, "the top level must be a mapping of sections: " + ", ".join(RepoConfig.__struct_fields__), 1)
    try:
        return msgspec.convert(_normalise(raw), RepoConfig)
    except msgspec.ValidationError as exc:
        message = str(exc)
        found = _PATH_RE.search(message)
        keys = re.findall(r"\.([A-Za-z0-9_]+)", found.group(1)) if found else []
        if "unknown field" in message:
            unknown = re.search(r"unknown field `([^`]+)`", message)
            if unknown:
                keys.append(unknown.group(1))
        key_path = ".".join(keys) or "(top level)"
        clean = _PATH_RE.sub("", message).replace(" - at ", "").replace(" (at )", "").strip(" -")
        raise ConfigError(path, f"{key_path}: {clean}", _line_of(root, keys)) from None
