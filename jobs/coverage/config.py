"""The `coverage` section of `.aqe.yml`.

```yaml
coverage:
  reports: ["coverage/lcov.info", "build/reports/jacoco/**/*.xml"]  # extra reports to read
  patch_target: 80          # patch coverage below this fails the check (%)
  total_target: 75          # optional: total coverage below this fails the check (%)
  small_change_lines: 5     # a change with fewer coverable lines never fails on patch coverage
```

Reports are read from what the tests agent produced (its Cobertura XML) and from the `reports`
globs (Cobertura XML, LCOV, coverage.py JSON or JaCoCo XML, detected from the content), matched
against the repository root and kept only inside it. Several reports are merged.

Percentages are compared as the check shows them (one decimal, coverage.py's rounding: a figure
under 100 never shows as 100).
"""

from __future__ import annotations

from typing import Any

import msgspec


class CoverageConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Settings of the `coverage` agent (check run `aqe/coverage`).

    - `reports`: globs of coverage reports, relative to the repository root (default: none; the
      report of the tests agent is always read when there is one).
    - `patch_target`: the minimum patch coverage (covered / coverable changed lines, as diff-cover
      counts them), in %; below it the check fails.
    - `total_target`: the minimum total coverage (coverage.py's TOTAL: statements and branches), in
      %; `None` (default) never fails on the total.
    - `small_change_lines`: a change with fewer coverable changed lines than this never fails on patch
      coverage (the figure of 1 or 2 lines is mostly noise).
    """

    reports: list[str] = []
    patch_target: float = 80.0
    total_target: float | None = None
    small_change_lines: int = 5

    def __post_init__(self) -> None:
        if not 0.0 <= self.patch_target <= 100.0:
            raise ValueError("must be between 0 and 100 (at `$.coverage.patch_target`)")
        if self.total_target is not None and not 0.0 <= self.total_target <= 100.0:
            raise ValueError("must be between 0 and 100 (at `$.coverage.total_target`)")
        if not 0 <= self.small_change_lines <= 100_000:
            raise ValueError("must be between 0 and 100000 (at `$.coverage.small_change_lines`)")


def as_coverage_config(config: CoverageConfig | dict[str, Any] | None) -> CoverageConfig:
    """Accept the parsed `coverage` section, or its raw mapping (as the Agent protocol passes)."""
    if isinstance(config, CoverageConfig):
        return config
    raw = dict(config or {})
    if isinstance(raw.get("reports"), str):
        raw["reports"] = [raw["reports"]]
    return msgspec.convert(raw, CoverageConfig)
