"""The `security` section of `.aqe.yml`.

```yaml
security:
  scanners: [secrets, sast, dependencies]   # which scans run (default: all three)
  fail_on: high                  # a failing finding has this severity or above: critical | high | medium | low | none
  new_code_only: true            # only findings on changed lines fail; the others are counted and annotated
  ignore_paths: ["fixtures/**"]  # findings in these files are counted as ignored (globs as in `quality.exclude`)
  ignore_rules: [B101, GHSA-x84v-xcm2-53pg, "Hex High Entropy String"]
  severity: {B311: low, CVE-2018-18074: critical}   # the severity of a rule, instead of the tool's own
  sast_exclude: ["tests/"]       # files bandit and semgrep do not analyse (default: tests and vendored code)
```

Rule ids are the tools' own: bandit test ids (`B602`), detect-secrets plugin names or secret types
(`AWSKeyDetector`, `AWS Access Key`), semgrep rule ids (`aqe.js.eval-dynamic`), and OSV, GHSA or CVE
ids for dependencies. They are matched without regard to case. A comment on a finding's line or on
the line above it ignores that one finding: `# aqe: ignore[B602]` (or `// aqe: ignore[...]`, several
ids separated by commas), or `# aqe: ignore` for every rule.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from jobs.quality.config import DEFAULT_EXCLUDE, exclude_matcher

Severity = Literal["critical", "high", "medium", "low"]
FailOn = Literal["critical", "high", "medium", "low", "none"]
Scanner = Literal["secrets", "sast", "dependencies"]

SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low")  # most severe first
SCANNERS: tuple[Scanner, ...] = ("secrets", "sast", "dependencies")


class SecurityConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What the `security` agent (check run `aqe/security`) scans and what fails it.

    - `scanners`: any of `secrets` (detect-secrets), `sast` (bandit; semgrep when installed) and
      `dependencies` (lock and requirement files against the OSV database).
    - `fail_on`: the lowest severity that fails the check (`none`: findings never fail it).
    - `new_code_only`: only findings on changed lines (for a dependency: its line in the lock file)
      fail the check; without a diff every line counts as changed.
    - `ignore_paths` / `ignore_rules`: findings that are counted as ignored, never annotated.
    - `severity`: rule id -> severity, replacing the tool's.
    - `sast_exclude`: path globs the code analysers leave out (by default tests and vendored or generated
      code, as `quality.exclude`); secrets and dependencies are looked for everywhere.
    """

    scanners: list[Scanner] = msgspec.field(default_factory=lambda: list(SCANNERS))
    fail_on: FailOn = "high"
    new_code_only: bool = True
    ignore_paths: list[str] = []
    ignore_rules: list[str] = []
    severity: dict[str, Severity] = {}
    sast_exclude: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_EXCLUDE))

    def __post_init__(self) -> None:
        for key in ("ignore_paths", "ignore_rules", "sast_exclude"):
            if any(not item.strip() for item in getattr(self, key)):
                raise ValueError(f"must not contain an empty string (at `$.security.{key}`)")
        if any(not rule.strip() for rule in self.severity):
            raise ValueError("must not have an empty rule id (at `$.security.severity`)")

    def runs(self, scanner: Scanner) -> bool:
        return scanner in self.scanners

    def fails_at(self, severity: Severity) -> bool:
        """Whether a finding of `severity` is severe enough to fail the check."""
        if self.fail_on == "none":
            return False
        return SEVERITIES.index(severity) <= SEVERITIES.index(self.fail_on)

    def is_ignored_path(self, path: str) -> bool:
        return _matches(self.ignore_paths, path)

    def is_sast_excluded(self, path: str) -> bool:
        return _matches(self.sast_exclude, path)

    def ignores_any(self, ids: tuple[str, ...]) -> bool:
        ignored = {rule.strip().casefold() for rule in self.ignore_rules}
        return any(name.casefold() in ignored for name in ids)

    def severity_of(self, ids: tuple[str, ...], default: Severity) -> Severity:
        """The configured severity of the first of `ids` that has one, else `default`."""
        overrides = {rule.strip().casefold(): level for rule, level in self.severity.items()}
        for name in ids:
            if (level := overrides.get(name.casefold())) is not None:
                return level
        return default


def _matches(globs: list[str], path: str) -> bool:
    matcher = exclude_matcher(tuple(globs))
    return matcher is not None and matcher.match(path) is not None


def as_security_config(config: SecurityConfig | dict[str, Any] | None) -> SecurityConfig:
    """Accept the parsed `security` section, or its raw mapping (as the Agent protocol passes)."""
    if isinstance(config, SecurityConfig):
        return config
    return msgspec.convert(config or {}, SecurityConfig)
