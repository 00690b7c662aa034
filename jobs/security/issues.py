"""What every scanner reports, and how a report is sorted into new, existing and ignored issues."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from jobs.security.config import SEVERITIES, Scanner, SecurityConfig, Severity
from jobs.security.ignores import inline_ignores_issue

Status = Literal["new", "existing", "ignored"]


@dataclass(frozen=True, slots=True)
class Issue:
    """One finding of one scanner. Never holds a secret's value or a line of the file."""

    scanner: Scanner
    rule: str  # the tool's id: B602, AWSKeyDetector, aqe.go.exec-shell-dynamic, GHSA-x84v-xcm2-53pg
    severity: Severity
    path: str  # repository-relative, posix
    start_line: int
    end_line: int
    title: str
    message: str
    aliases: tuple[str, ...] = ()  # other ids it is known by (CVE ids, a secret's type), for ignores and overrides
    details: str | None = None

    @property
    def ids(self) -> tuple[str, ...]:
        return (self.rule, *self.aliases)

    def touches(self, lines: set[int] | None) -> bool:
        return lines is not None and any(self.start_line <= line <= self.end_line for line in lines)


@dataclass(frozen=True, slots=True)
class Classified:
    issue: Issue
    status: Status
    fails: bool  # fails the check (severe enough, and new unless `new_code_only` is off)


def status_of(
    issue: Issue,
    config: SecurityConfig,
    changed_lines: Mapping[str, set[int]] | None,
    file_lines: Callable[[str], list[str] | None],
) -> Status:
    """Ignored (by path, rule or an inline comment), else new (on a changed line, or no diff known), else existing."""
    if config.is_ignored_path(issue.path) or config.ignores_any(issue.ids):
        return "ignored"
    if inline_ignores_issue(file_lines(issue.path), issue.start_line, issue.end_line, issue.ids):
        return "ignored"
    if changed_lines is None or issue.touches(changed_lines.get(issue.path)):
        return "new"
    return "existing"


def classify(
    issues: Iterable[Issue],
    config: SecurityConfig,
    changed_lines: Mapping[str, set[int]] | None,
    file_lines: Callable[[str], list[str] | None],
) -> list[Classified]:
    """Each issue with its configured severity and status, the failing and most severe first."""
    out = []
    for issue in issues:
        issue = replace(issue, severity=config.severity_of(issue.ids, issue.severity))
        status = status_of(issue, config, changed_lines, file_lines)
        counts = status == "new" or (status == "existing" and not config.new_code_only)
        out.append(Classified(issue, status, fails=counts and config.fails_at(issue.severity)))
    return sorted(out, key=_priority)


def _priority(item: Classified) -> tuple[int, int, int, str, int, str]:
    status_rank = {"new": 0, "existing": 1, "ignored": 2}[item.status]
    issue = item.issue
    return (not item.fails, status_rank, SEVERITIES.index(issue.severity), issue.path, issue.start_line, issue.rule)


def unique(issues: Iterable[Issue]) -> list[Issue]:
    """Drop repeats of the same rule at the same place (semgrep reports one match per pattern that matched)."""
    seen: set[tuple[str, str, int, int]] = set()
    out = []
    for issue in issues:
        key = (issue.rule, issue.path, issue.start_line, issue.end_line)
        if key not in seen:
            seen.add(key)
            out.append(issue)
    return out
