"""The security agent's result: conclusion, title, Markdown summary, metrics and annotations."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from jobs.reporting.markdown import code_cell, code_span, plural
from jobs.model import AgentResult, Conclusion, Finding, Level
from jobs.security.config import SCANNERS, SEVERITIES, Scanner, SecurityConfig, Severity
from jobs.security.issues import Classified, Status

DependencyScan = Literal["ok", "unavailable", "no lock files", "disabled"]

MAX_LISTED_FINDINGS = 20
MAX_LISTED_NOTES = 15
SCANNER_LABELS: dict[Scanner, str] = {
    "secrets": "Secrets",
    "sast": "Code",
    "dependencies": "Dependencies",
}


@dataclass
class ScanOutcome:
    """What one scanner did: its tools, whether it ran in full, and what it wants to tell."""

    scanner: Scanner
    tools: list[str]  # as shown, e.g. ["bandit", "semgrep"]
    ran: bool = True
    failed: dict[str, str] = field(default_factory=dict)  # tool -> why it failed: the scan is incomplete
    notes: list[str] = field(default_factory=list)  # what was not analysed, files that could not be read


@dataclass
class DependencyStatus:
    scan: DependencyScan
    reason: str = ""  # why it is unavailable
    files: int = 0
    packages: int = 0  # distinct (ecosystem, name, version) looked up
    unpinned: int = 0
    not_checked: int = 0  # direct references, editable installs, git dependencies


@dataclass
class SecurityAnalysis:
    config: SecurityConfig
    outcomes: dict[Scanner, ScanOutcome]
    classified: list[Classified]
    dependencies: DependencyStatus
    files_scanned: int = 0

    def with_status(self, status: Status) -> list[Classified]:
        return [item for item in self.classified if item.status == status]

    @property
    def failing(self) -> list[Classified]:
        return [item for item in self.classified if item.fails]

    @property
    def counted(self) -> list[Classified]:
        """Not ignored: new and existing."""
        return [item for item in self.classified if item.status != "ignored"]

    @property
    def ran_any(self) -> bool:
        return any(outcome.ran for outcome in self.outcomes.values())

    @property
    def incomplete(self) -> bool:
        return self.dependencies.scan == "unavailable" or any(o.failed for o in self.outcomes.values())


# ----------------------------------------------------------------------------------- the numbers


def by_severity(items: Iterable[Classified]) -> Counter[Severity]:
    return Counter(item.issue.severity for item in items)


def severity_breakdown(items: Iterable[Classified]) -> str:
    counts = by_severity(items)
    return ", ".join(f"{counts[level]} {level}" for level in SEVERITIES if counts[level])


def security_metrics(analysis: SecurityAnalysis) -> dict[str, float | int | str]:
    new, counted = analysis.with_status("new"), analysis.counted
    per_scanner = Counter(item.issue.scanner for item in counted)
    new_counts = by_severity(new)
    deps = analysis.dependencies
    return {
        **{f"new_{level}": new_counts[level] for level in SEVERITIES},
        "new_total": len(new),
        "existing_total": len(analysis.with_status("existing")),
        "ignored": len(analysis.with_status("ignored")),
        "failing": len(analysis.failing),
        "findings_total": len(counted),
        "secrets": per_scanner["secrets"],
        "sast": per_scanner["sast"],
        "dependency_vulns": per_scanner["dependencies"],
        "packages_scanned": deps.packages,
        "packages_unpinned": deps.unpinned,
        "dependency_files": deps.files,
        "dependency_scan": deps.scan,
        "files_scanned": analysis.files_scanned,
    }


def security_conclusion(analysis: SecurityAnalysis) -> Conclusion:
    """Failure for a failing finding; never success when a scan could not be done in full."""
    if analysis.failing:
        return "failure"
    return "neutral" if analysis.incomplete or not analysis.ran_any else "success"




def security_title(analysis: SecurityAnalysis) -> str:
    if not analysis.ran_any:
        return "No security scan: `security.scanners` is empty"
    if analysis.config.new_code_only:
        items, what = analysis.with_status("new"), "new security issue"
    else:
        items, what = analysis.counted, "security issue"
    title = f"{plural(len(items), what)} ({severity_breakdown(items)})" if items else f"No {what}s"
    if analysis.dependencies.scan == "unavailable":
        title += "; dependency scan unavailable"
    failed_tools = [tool for outcome in analysis.outcomes.values() for tool in outcome.failed]
    if failed_tools:
        title += f"; {', '.join(failed_tools)} failed"
    return title


# ---------------------------------------------------------------------------------- the summary




def _counts_cell(items: list[Classified], bold: bool = False) -> str:
    if not items:
        return "0"
    text = severity_breakdown(items)
    return f"**{text}**" if bold else text


def scanners_table(analysis: SecurityAnalysis) -> str:
    rows = []
    for scanner in SCANNERS:
        outcome = analysis.outcomes.get(scanner)
        label = f"{SCANNER_LABELS[scanner]} ({', '.join(outcome.tools)})" if outcome else SCANNER_LABELS[scanner]
        if outcome is None or not outcome.ran:
            rows.append(f"| {label} | not run | | |")
            continue
        if scanner == "dependencies" and analysis.dependencies.scan == "unavailable":
            rows.append(f"| {label} | unavailable | | |")
            continue
        mine = [item for item in analysis.classified if item.issue.scanner == scanner]
        new = [item for item in mine if item.status == "new"]
        existing = [item for item in mine if item.status == "existing"]
        ignored = sum(item.status == "ignored" for item in mine)
        incomplete = " (incomplete)" if outcome.failed else ""
        rows.append(f"| {label}{incomplete} | {_counts_cell(new, bold=any(i.fails for i in new))} | "
                    f"{_counts_cell(existing)} | {ignored} |")
    return "| Scanner | New | Existing | Ignored |\n| --- | --- | --- | ---: |\n" + "\n".join(rows)


def dependency_line(status: DependencyStatus) -> str:
    if status.scan == "unavailable":
        return (f"⚠️ **Dependency scan unavailable:** {status.reason}. Known vulnerabilities of the dependencies were "
                "not checked, so this check cannot pass.")
    if status.scan == "no lock files":
        return ("**Dependency scan:** no lock or requirement files (requirements*.txt, poetry.lock, Pipfile.lock, "
                "package-lock.json, go.sum) in the repository.")
    if status.scan == "disabled":
        return "**Dependency scan:** disabled by `security.scanners`."
    unchecked = [plural(status.unpinned, "unpinned requirement")] if status.unpinned else []
    if status.not_checked:
        unchecked.append(f"{plural(status.not_checked, 'dependency', 'dependencies')} from git, a path or a URL")
    return (f"**Dependency scan:** {plural(status.packages, 'package')} from {plural(status.files, 'file')} "
            f"checked against the OSV database." + (f" Not checked: {', '.join(unchecked)}." if unchecked else ""))


def findings_table(items: list[Classified], heading: str) -> str:
    if not items:
        return ""
    rows = [
        f"| {'❌ ' if item.fails else ''}{item.issue.severity} | {code_cell(item.issue.rule)} | "
        f"{code_cell(f'{item.issue.path}:{item.issue.start_line}')} | {code_cell(item.issue.title).strip('`')} |"
        for item in items[:MAX_LISTED_FINDINGS]
    ]
    more = len(items) - MAX_LISTED_FINDINGS
    tail = f"\n\n…and {more} more, annotated in the files." if more > 0 else ""
    return (f"### {heading}\n\n| Severity | Rule | Where | Finding |\n| --- | --- | --- | --- |\n"
            + "\n".join(rows) + tail)


def notes_list(analysis: SecurityAnalysis) -> str:
    notes = [f"⚠️ {tool} failed: {why}" for o in analysis.outcomes.values() for tool, why in o.failed.items()]
    notes += [note for o in analysis.outcomes.values() for note in o.notes]
    if not notes:
        return ""
    shown = "\n".join(f"- {note}" for note in notes[:MAX_LISTED_NOTES])
    more = len(notes) - MAX_LISTED_NOTES
    return "### Notes\n\n" + shown + (f"\n- …and {plural(more, 'more note')}" if more > 0 else "")


def policy_line(config: SecurityConfig) -> str:
    if config.fail_on == "none":
        return "Findings never fail this check (`security.fail_on: none` in `.aqe.yml`)."
    levels = "critical" if config.fail_on == "critical" else f"{config.fail_on} or above"
    where = "on changed lines (for a dependency: its line in the lock file)" if config.new_code_only else "anywhere"
    return (f"Findings of severity {levels} {where} fail this check; set `security.fail_on`, "
            "`security.new_code_only` and ignores (`ignore_paths`, `ignore_rules`, `# aqe: ignore[rule]`) "
            "in `.aqe.yml`.")


def security_summary(analysis: SecurityAnalysis) -> str:
    new = analysis.with_status("new")
    heading = "New findings" if analysis.config.new_code_only else "Findings"
    listed = new if analysis.config.new_code_only else analysis.counted
    parts = [
        scanners_table(analysis),
        dependency_line(analysis.dependencies),
        findings_table(listed, heading),
        notes_list(analysis),
        policy_line(analysis.config),
    ]
    return "\n\n".join(part for part in parts if part)


# ---------------------------------------------------------------------------------- annotations


def finding_level(item: Classified) -> Level:
    if item.fails:
        return "failure"
    return "notice" if item.issue.severity == "low" else "warning"


def security_finding(item: Classified) -> Finding:
    issue = item.issue
    prefix = "" if item.status == "new" else "(not on a changed line) "
    return Finding(
        path=issue.path,
        start_line=issue.start_line,
        end_line=issue.end_line,
        level=finding_level(item),
        rule=issue.rule,
        title=issue.title,
        message=prefix + issue.message,
        raw_details=issue.details,
    )


def security_result(name: str, analysis: SecurityAnalysis, duration_s: float) -> AgentResult:
    return AgentResult(
        agent=name,
        conclusion=security_conclusion(analysis),
        title=security_title(analysis),
        summary=security_summary(analysis),
        metrics=security_metrics(analysis),
        findings=[security_finding(item) for item in analysis.counted],
        duration_s=duration_s,
    )
