"""The `test_generation` section of `.aqe.yml`.

```yaml
test_generation:
  enabled: true          # false: the check is skipped
  max_functions: 10      # at most this many changed functions get tests, the most changed first
  timeout: 180           # seconds for the whole agent (generation and validation runs)
  max_examples: 50       # hypothesis examples per generated property test (`@settings(max_examples=...)`)
  llm: false             # true: the LLM backend (AQE_LLM_URL) also writes pytest tests for Python functions
  framework: pytest      # pytest | jest | vitest | mocha: what the LLM backend writes
  test_type: unit        # unit (the ghostwriter, and the LLM with `llm`) | integration | e2e | api | performance
                         # (written by the LLM backend)
  coverage_target: null  # a line coverage (%) the kept tests must reach on the targeted functions
  exclude: ["scripts/**"]   # replaces the default list (tests and vendored code, as `quality.exclude`)
  fail_on_bugs: false    # true: a likely bug found by a generated test fails the check
```

A function is a target when it is public (no leading underscore), defined at module level or as a
method of a module-level class, its definition spans a changed line, its file is not excluded, and no
test file of the repository mentions its name. The LLM backend is used when the worker has one
(`AQE_LLM_URL`, `AQE_LLM_MODEL`) and either `llm: true` or `framework` is a JavaScript runner: then the
changed exported JavaScript/TypeScript functions are the targets.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from jobs.quality.config import DEFAULT_EXCLUDE, exclude_matcher

Framework = Literal["pytest", "jest", "vitest", "mocha"]
TestType = Literal["unit", "integration", "e2e", "api", "performance"]
FRAMEWORKS: tuple[Framework, ...] = ("pytest", "jest", "vitest", "mocha")
JS_FRAMEWORKS: tuple[Framework, ...] = ("jest", "vitest", "mocha")


class TestGenerationConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Settings of the `test-generation` agent (check run `aqe/test-generation`).

    - `enabled`: run the agent at all.
    - `max_functions`: the cap on targeted functions, the ones with the most changed lines first.
    - `timeout`: seconds for the whole agent; what does not finish in time is reported as not validated.
    - `max_examples`: examples hypothesis tries per generated property test (also in the offered files).
    - `llm`: also ask the LLM backend for pytest tests of the Python functions the ghostwriter could not
      test (no type hints, methods of classes it cannot build...).
    - `framework`: the test framework the LLM backend writes for; jest, vitest and mocha target the changed
      JavaScript/TypeScript functions (and need an LLM backend).
    - `test_type`: `unit` tests come from the ghostwriter (and the LLM with `llm`); the other kinds are written
      by the LLM backend, asked for that kind of test.
    - `coverage_target`: the kept Python tests are run under coverage.py; below this line coverage of the
      targeted Python functions (in %) — or when no test was kept, or it could not be measured — the check fails.
      JavaScript/TypeScript targets are not measured.
    - `exclude`: path globs never targeted (syntax of `quality.exclude`; default: tests, vendored, generated).
    - `fail_on_bugs`: a likely bug (a generated test that fails, with hypothesis' falsifying example) fails
      the check instead of leaving it neutral.
    """

    __test__ = False

    enabled: bool = True
    max_functions: int = 10
    timeout: int = 180
    max_examples: int = 50
    llm: bool = False
    framework: Framework = "pytest"
    test_type: TestType = "unit"
    coverage_target: float | None = None
    exclude: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_EXCLUDE))
    fail_on_bugs: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.max_functions <= 100:
            raise ValueError("must be between 1 and 100 (at `$.test_generation.max_functions`)")
        if not 10 <= self.timeout <= 3600:
            raise ValueError("must be between 10 and 3600 seconds (at `$.test_generation.timeout`)")
        if not 1 <= self.max_examples <= 10_000:
            raise ValueError("must be between 1 and 10000 (at `$.test_generation.max_examples`)")
        if self.coverage_target is not None and not 0.0 <= self.coverage_target <= 100.0:
            raise ValueError("must be between 0 and 100 (at `$.test_generation.coverage_target`)")
        if any(not glob.strip() for glob in self.exclude):
            raise ValueError("must not contain an empty string (at `$.test_generation.exclude`)")

    @property
    def uses_js(self) -> bool:
        return self.framework in JS_FRAMEWORKS

    def wants_llm(self) -> bool:
        """Whether the LLM backend, when the worker has one, is asked for tests."""
        return self.llm or self.uses_js or self.test_type != "unit"

    def is_excluded(self, path: str) -> bool:
        matcher = exclude_matcher(tuple(self.exclude))
        return matcher is not None and matcher.match(path) is not None


def as_testgen_config(config: TestGenerationConfig | dict[str, Any] | None) -> TestGenerationConfig:
    """Accept the parsed `test_generation` section, or its raw mapping (as the Agent protocol passes)."""
    if isinstance(config, TestGenerationConfig):
        return config
    raw = dict(config or {})
    if isinstance(raw.get("exclude"), str):
        raw["exclude"] = [raw["exclude"]]
    return msgspec.convert(raw, TestGenerationConfig)
