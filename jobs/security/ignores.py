"""Inline ignore comments: `# aqe: ignore[B602]`, `// aqe: ignore[rule-a, rule-b]`, bare `# aqe: ignore`.

A comment applies to a finding on its own line or on the line below it. Any comment leader works
(`#`, `//`, `/*`, `--`, `<!--`), so the same syntax serves Python, JavaScript, Go, SQL, YAML and
requirement files. Rule ids are matched without regard to case.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

ALL_RULES: frozenset[str] = frozenset({"*"})

_IGNORE = re.compile(r"(?:#|//|/\*|--|<!--)\s*aqe:\s*ignore\b(?:\[([^\]]*)\])?", re.IGNORECASE)


def ignored_rules(line: str) -> frozenset[str] | None:
    """The rule ids an ignore comment on `line` names (casefolded; ALL_RULES for a bare one), or None."""
    found: set[str] = set()
    for match in _IGNORE.finditer(line):
        if match.group(1) is None:
            return ALL_RULES
        found.update(rule.strip().casefold() for rule in match.group(1).split(",") if rule.strip())
    return frozenset(found) if found else None


def inline_ignores_issue(lines: list[str] | None, start_line: int, end_line: int, ids: Iterable[str]) -> bool:
    """Whether a comment on the lines `start_line`-1 .. `end_line` (1-based) ignores one of `ids`."""
    if not lines:
        return False
    wanted = {name.casefold() for name in ids}
    for number in range(max(1, start_line - 1), min(end_line, len(lines)) + 1):
        rules = ignored_rules(lines[number - 1])
        if rules is not None and ("*" in rules or wanted & rules):
            return True
    return False
