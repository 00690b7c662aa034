"""The "security" agent (`aqe/security`): committed secrets, insecure code and vulnerable dependencies.

Three scanners run at the same time over the repository's tracked files (`jobs.security.files`):

- secrets: detect-secrets in-process (`jobs.security.secrets`); reported by type and place only;
- sast: bandit over the Python files, semgrep with AQE's own rules over JavaScript, TypeScript and Go
  when it is installed (`jobs.security.sast`, `jobs.security.semgrep`); tests and vendored code are
  left out (`security.sast_exclude`);
- dependencies: the lock and requirement files (`jobs.security.lockfiles`) looked up in the OSV
  database (`jobs.security.osv`, `AQE_OSV_URL`).

Each finding is new (on a changed line; everything is new without a diff), existing, or ignored
(`security.ignore_paths`, `security.ignore_rules`, an `aqe: ignore` comment). New findings of severity
`security.fail_on` or above fail the check; when the advisory source cannot be used, the check says
"dependency scan unavailable" and is neutral rather than successful.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jobs.agents.base import Progress, Workspace
from jobs.model import AgentResult
from jobs.reporting.markdown import plural
from jobs.security.config import SecurityConfig, as_security_config
from jobs.security.files import RepoFiles, tracked_paths
from jobs.security.issues import Issue, classify
from jobs.security.lockfiles import read_dependency_files
from jobs.security.osv import OsvClient, OsvUnavailable, package_key, vulnerability_issues
from jobs.security.report import DependencyStatus, ScanOutcome, SecurityAnalysis, security_result
from jobs.security.sast import BanditError, is_python, run_bandit
from jobs.security.secrets import scan_secrets, secret_issue
from jobs.security.semgrep import SemgrepError, find_semgrep, is_semgrep_target, run_semgrep

log = logging.getLogger("aqe.security")

LOCKFILE_MAX_BYTES = 32 * 1024 * 1024  # lock files are often larger than the 1 MiB cap on scanned files
MAX_NOTED_PATHS = 5

Scan = tuple[ScanOutcome, list[Issue]]


class SecurityAgent:
    """Secrets, SAST and dependency vulnerabilities (`aqe/security`)."""

    __test__ = False
    name = "security"
    needs: tuple[str, ...] = ()

    def __init__(self, semgrep: Callable[[], Path | None] = find_semgrep, osv_retries: int = 2,
                 osv_backoff_s: float = 0.5) -> None:
        self.semgrep = semgrep  # where semgrep is, if installed (looked up on each run)
        self.osv_retries, self.osv_backoff_s = osv_retries, osv_backoff_s

    def applies_to(self, workspace: Workspace, config: Any) -> bool:
        return True  # every repository can hold a secret

    async def run(
        self, workspace: Workspace, config: SecurityConfig | dict[str, Any] | None, progress: Progress
    ) -> AgentResult:
        started, cfg = time.monotonic(), as_security_config(config)
        scratch = workspace.scratch / "security"
        await progress(0.05, "Listing the repository's files")
        tracked = await tracked_paths(workspace.root, scratch / "home")
        files = await asyncio.to_thread(RepoFiles.scan, workspace.root, tracked)
        await progress(0.1, f"Scanning {', '.join(cfg.scanners) or 'nothing'}")
        (secrets, secret_issues), (sast, sast_issues), (deps, status, dep_issues) = await asyncio.gather(
            self._secrets(files, cfg), self._sast(files, cfg, scratch), self._dependencies(files, cfg, workspace),
        )  # fmt: skip
        await progress(0.9, "Reporting")
        classified = await asyncio.to_thread(
            classify, [*secret_issues, *sast_issues, *dep_issues], cfg, workspace.changed_lines, files.lines
        )
        analysis = SecurityAnalysis(cfg, {"secrets": secrets, "sast": sast, "dependencies": deps}, classified,
                                    status, files_scanned=len(files.paths))
        result = security_result(self.name, analysis, round(time.monotonic() - started, 3))
        log.info("security scan: %s files, %s findings (%s new), dependency scan %s", len(files.paths),
                 result.metrics["findings_total"], result.metrics["new_total"], status.scan)
        return result

    # ----------------------------------------------------------------------------- the scanners

    async def _secrets(self, files: RepoFiles, cfg: SecurityConfig) -> Scan:
        outcome = ScanOutcome("secrets", ["detect-secrets"], ran=cfg.runs("secrets"))
        if not outcome.ran:
            return outcome, []
        hits = await asyncio.to_thread(scan_secrets, files.root, files.paths)
        if files.too_large:
            outcome.notes.append(f"{plural(len(files.too_large), 'file')} over {files.max_bytes // 1024} KiB not "
                                 f"scanned for secrets: {_some(files.too_large)}")
        return outcome, [secret_issue(hit) for hit in hits]

    async def _sast(self, files: RepoFiles, cfg: SecurityConfig, scratch: Path) -> Scan:
        semgrep = self.semgrep()
        outcome = ScanOutcome("sast", ["bandit", "semgrep"] if semgrep else ["bandit"], ran=cfg.runs("sast"))
        if not outcome.ran:
            return outcome, []
        analysed = [path for path in files.paths if not cfg.is_sast_excluded(path)]
        python = [path for path in analysed if is_python(path)]
        others = [path for path in analysed if is_semgrep_target(path)]
        if others and semgrep is None:
            what = plural(len(others), "JavaScript, TypeScript or Go file")
            outcome.notes.append(f"semgrep is not installed: {what} not analysed (install AQE's `semgrep` extra)")
        scratch.mkdir(parents=True, exist_ok=True)
        bandit_issues, semgrep_issues = await asyncio.gather(
            _bandit(files.root, python, scratch, outcome),
            _semgrep(semgrep, files.root, others, scratch, outcome) if semgrep and others else _nothing(),
        )
        return outcome, [*bandit_issues, *semgrep_issues]

    async def _dependencies(
        self, files: RepoFiles, cfg: SecurityConfig, workspace: Workspace
    ) -> tuple[ScanOutcome, DependencyStatus, list[Issue]]:
        outcome = ScanOutcome("dependencies", ["OSV"], ran=cfg.runs("dependencies"))
        if not outcome.ran:
            return outcome, DependencyStatus("disabled"), []
        found = await asyncio.to_thread(read_dependency_files, list(files.sizes),
                                        lambda path: files.text(path, LOCKFILE_MAX_BYTES))
        outcome.notes += found.problems
        if not found.files:
            return outcome, DependencyStatus("no lock files"), []
        keys = sorted({package_key(package) for package in found.packages})
        status = DependencyStatus("ok", files=len(found.files), packages=len(keys), unpinned=len(found.unpinned),
                                  not_checked=len(found.unchecked) - len(found.unpinned))
        if not keys:
            return outcome, status, []
        client = OsvClient(workspace.options.osv_url, workspace.options.http_timeout_s,
                           retries=self.osv_retries, backoff_s=self.osv_backoff_s)
        try:
            vulnerable, advisories = await client.scan(keys)
        except OsvUnavailable as exc:
            status.scan, status.reason = "unavailable", str(exc)
            return outcome, status, []
        return outcome, status, vulnerability_issues(found.packages, vulnerable, advisories)


async def _bandit(root: Path, paths: list[str], scratch: Path, outcome: ScanOutcome) -> list[Issue]:
    if not paths:
        return []
    try:
        report = await run_bandit(root, paths, scratch)
    except BanditError as exc:
        outcome.failed["bandit"] = str(exc)
        return []
    if report.errors:
        outcome.notes.append(f"bandit could not analyse {plural(len(report.errors), 'file')}: {_some(report.errors)}")
    if report.nosec:
        outcome.notes.append(f"{plural(report.nosec, 'bandit finding')} silenced by `# nosec` comments")
    return report.issues


async def _semgrep(semgrep: Path, root: Path, paths: list[str], scratch: Path, outcome: ScanOutcome) -> list[Issue]:
    try:
        report = await run_semgrep(semgrep, root, paths, scratch)
    except SemgrepError as exc:
        outcome.failed["semgrep"] = str(exc)
        return []
    if report.errors:
        outcome.notes.append(f"semgrep could not analyse {plural(len(report.errors), 'file')}: {_some(report.errors)}")
    return report.issues


async def _nothing() -> list[Issue]:
    return []




def _some(items: list[str]) -> str:
    shown = ", ".join(f"`{item}`" for item in items[:MAX_NOTED_PATHS])
    return shown + (f" and {len(items) - MAX_NOTED_PATHS} more" if len(items) > MAX_NOTED_PATHS else "")
