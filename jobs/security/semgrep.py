"""SAST for languages other than Python with semgrep, when it is installed (AQE's `semgrep` extra).

It runs offline with the rule files shipped in `jobs/security/rules` only, `--metrics=off
--disable-version-check`, in the sandbox with an environment built from nothing, over the files
the agent gives it (tracked, not excluded). Rule ids come back prefixed with the rules directory
(`work.aqe.jobs.security.rules.aqe.js.eval-dynamic`); they are reported as written in the rule files,
with the message of the rule file: semgrep's copy has metavariables (`$X`) replaced with the matched code.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import msgspec
import yaml

from jobs.sandbox import run_sandboxed, scrubbed_env
from jobs.security.config import Severity
from jobs.security.issues import Issue, unique
from jobs.security.sast import chunks

RULES_DIR = Path(__file__).parent / "rules"
SEMGREP_TIMEOUT_S = 600.0
SEMGREP_MEMORY_MB = 8192
SEMGREP_FILES_PER_RUN = 2000
SEMGREP_SUFFIXES = (".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".mts", ".cts", ".go")
SEMGREP_SEVERITIES: dict[str, Severity] = {
    "ERROR": "high", "WARNING": "medium", "INFO": "low",
    "CRITICAL": "critical", "HIGH": "high", "MEDIUM": "medium", "LOW": "low",
}  # fmt: skip


class SemgrepError(Exception):
    """semgrep did not produce a report; the message says why (never the content of a file)."""


@dataclass
class SemgrepReport:
    issues: list[Issue] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # what semgrep could not analyse
    files: int = 0


# -------------------------------------------------------------------------------- pure functions


def find_semgrep() -> Path | None:
    """semgrep on PATH, or next to the worker's interpreter (installed as AQE's extra in its venv)."""
    found = shutil.which("semgrep") or shutil.which("semgrep", path=str(Path(sys.executable).parent))
    return Path(found) if found else None


def is_semgrep_target(path: str) -> bool:
    return path.endswith(SEMGREP_SUFFIXES)


@lru_cache(maxsize=4)
def shipped_rules(rules_dir: Path = RULES_DIR) -> Mapping[str, str]:
    """Rule id -> its message as written in the rule file (never with matched code in it)."""
    rules: dict[str, str] = {}
    for rule_file in sorted(rules_dir.glob("*.yml")):
        document = yaml.safe_load(rule_file.read_text(encoding="utf-8")) or {}
        rules.update((str(rule["id"]), " ".join(str(rule.get("message", "")).split()))
                     for rule in document.get("rules", []))
    return rules


def shipped_rule_ids(rules_dir: Path = RULES_DIR) -> frozenset[str]:
    return frozenset(shipped_rules(rules_dir))


def semgrep_argv(semgrep: Path, rules_dir: Path, report: Path, paths: list[str]) -> list[str]:
    return [
        str(semgrep), "scan", "--config", str(rules_dir), "--metrics=off", "--disable-version-check",
        "--json", "--quiet", "--output", str(report), "--timeout", "30", "--jobs", "1", "--", *paths,
    ]  # fmt: skip


def rule_id(check_id: str, known: Collection[str]) -> str:
    """The id as written in the rule file: semgrep prefixes it with the rules directory's path."""
    for rule in known:
        if check_id == rule or check_id.endswith("." + rule):
            return rule
    return check_id


def parse_semgrep(text: str | bytes, rules: Mapping[str, str]) -> SemgrepReport:
    """semgrep's `--json` output as issues (`rules`: `shipped_rules()`); SemgrepError when it is not one."""
    try:
        data = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise SemgrepError(f"semgrep wrote a report that is not JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise SemgrepError("semgrep wrote a report without a `results` list")
    return SemgrepReport(
        issues=unique(issue for item in data["results"] if (issue := semgrep_issue(item, rules)) is not None),
        errors=[_semgrep_error(item) for item in data.get("errors", []) if isinstance(item, dict)],
    )


def semgrep_issue(item: Any, rules: Mapping[str, str]) -> Issue | None:
    """One semgrep result; None when it lacks a place. The matched `lines` are never kept, nor semgrep's
    message (a rule's `$X` in it is replaced with the matched code, a secret or all): the rule file's is."""
    if not isinstance(item, dict) or not isinstance(item.get("check_id"), str) or not isinstance(item.get("path"), str):
        return None
    start, end, extra = item.get("start"), item.get("end"), item.get("extra")
    if not isinstance(start, dict) or not isinstance(start.get("line"), int) or not isinstance(extra, dict):
        return None
    rule = rule_id(item["check_id"], rules)
    line = start["line"]
    end_line = end["line"] if isinstance(end, dict) and isinstance(end.get("line"), int) else line
    severity = SEMGREP_SEVERITIES.get(str(extra.get("severity", "")).upper(), "medium")
    message = rules.get(rule) or f"Matched by the semgrep rule {rule}."
    cwe = _cwe(extra.get("metadata"))
    return Issue(
        scanner="sast",
        rule=rule,
        severity=severity,
        path=item["path"].removeprefix("./"),
        start_line=line,
        end_line=max(line, end_line),
        title=f"{rule}: {_headline(message)}",
        message=f"{message} (semgrep {rule}, severity {severity}{', ' + cwe if cwe else ''})",
        aliases=(cwe,) if cwe else (),
    )


def _headline(message: str) -> str:
    first = message.split(";")[0].split(". ")[0].rstrip(".")
    return first[:120]


def _cwe(metadata: Any) -> str:
    value = metadata.get("cwe") if isinstance(metadata, dict) else None
    value = value[0] if isinstance(value, list) and value else value
    return str(value).split(":")[0].strip() if isinstance(value, str) and value.upper().startswith("CWE-") else ""


def _semgrep_error(item: dict[str, Any]) -> str:
    where = item.get("path") or "semgrep"
    kind = item.get("type")
    kind = kind[0] if isinstance(kind, list) and kind else kind
    return f"{where}: {kind or item.get('level', 'error')}"


# ------------------------------------------------------------------------------------- adapter


async def run_semgrep(semgrep: Path, root: Path, paths: list[str], scratch: Path,
                      rules_dir: Path = RULES_DIR) -> SemgrepReport:
    """semgrep with the shipped rules over `paths` (relative to `root`); SemgrepError when a run fails."""
    report, rules = SemgrepReport(files=len(paths)), shipped_rules(rules_dir)
    home = scratch / "semgrep-home"
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    env = scrubbed_env(home, [semgrep.parent], {"SEMGREP_SEND_METRICS": "off", "SEMGREP_ENABLE_VERSION_CHECK": "0"})
    for index, batch in enumerate(chunks(paths, SEMGREP_FILES_PER_RUN)):
        output = scratch / f"semgrep-{index}.json"
        output.unlink(missing_ok=True)
        result = await run_sandboxed(semgrep_argv(semgrep, rules_dir, output, batch), cwd=root, env=env,
                                     timeout_s=SEMGREP_TIMEOUT_S, memory_mb=SEMGREP_MEMORY_MB)
        if result.timed_out:
            raise SemgrepError(f"semgrep did not finish within {SEMGREP_TIMEOUT_S:g} s")
        if not output.is_file():  # exit codes: 0 clean, 1 findings, 2+ errors that may still come with a report
            raise SemgrepError(f"semgrep exited with {result.returncode} without writing a report")
        part = parse_semgrep(output.read_bytes(), rules)
        report.issues += part.issues
        report.errors += part.errors
    return report
