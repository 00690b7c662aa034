"""The `quality_gate` section of `.aqe.yml`: the conditions on new code, Sonar-style.

```yaml
quality_gate:
  tests_pass: true            # every test passes
  min_patch_coverage: 80      # % of the changed coverable lines covered (null: no condition)
  min_total_coverage: null    # % total coverage (null: no condition)
  small_change_lines: 5       # fewer coverable changed lines than this never fail the coverage condition
  fail_on_security: high      # no new finding of this severity or above: critical | high | medium | low | none
  max_ccn: 15                 # no changed function with a cyclomatic complexity above this (null: no condition)
  max_duplication: 3.0        # % of duplicated lines in the new code (null: no condition)
  performance: true           # the performance thresholds hold, when a load test ran
```
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

Severity = Literal["critical", "high", "medium", "low", "none"]
SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low")  # most severe first


class GateConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    tests_pass: bool = True
    min_patch_coverage: float | None = 80.0
    min_total_coverage: float | None = None
    small_change_lines: int = 5
    fail_on_security: Severity = "high"
    max_ccn: int | None = 15
    max_duplication: float | None = 3.0
    performance: bool = True

    def __post_init__(self) -> None:
        for key in ("min_patch_coverage", "min_total_coverage", "max_duplication"):
            value = getattr(self, key)
            if value is not None and not 0.0 <= value <= 100.0:
                raise ValueError(f"must be between 0 and 100 (at `$.quality_gate.{key}`)")
        if not 0 <= self.small_change_lines <= 100_000:
            raise ValueError("must be between 0 and 100000 (at `$.quality_gate.small_change_lines`)")
        if self.max_ccn is not None and not 1 <= self.max_ccn <= 1000:
            raise ValueError("must be between 1 and 1000 (at `$.quality_gate.max_ccn`)")

    def failing_severities(self) -> tuple[str, ...]:
        """The severities a new security finding must not have, e.g. ("critical", "high")."""
        if self.fail_on_security == "none":
            return ()
        return SEVERITIES[: SEVERITIES.index(self.fail_on_security) + 1]


def as_gate_config(config: GateConfig | dict[str, Any] | None) -> GateConfig:
    if isinstance(config, GateConfig):
        return config
    return msgspec.convert(config or {}, GateConfig)
