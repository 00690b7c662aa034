"""Python SAST with bandit, run as a subprocess of the worker's own interpreter.

bandit only parses the files (it never imports or runs them). It still runs in the sandbox, with an
environment built from nothing, and with `python -I` so that a `bandit.py` at the root of the analysed
repository (the working directory) cannot stand in for the real one. The files are given one by one,
never a directory, so a `.bandit` file in the repository cannot change the settings; bandit's own
`# nosec` comments are honoured and counted as ignored.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from jobs.sandbox import run_sandboxed, scrubbed_env
from jobs.security.config import Severity
from jobs.security.issues import Issue

BANDIT_TIMEOUT_S = 600.0
BANDIT_MEMORY_MB = 2048
BANDIT_FILES_PER_RUN = 2000  # keeps the argument list well under the kernel's limit
PYTHON_SUFFIXES = (".py", ".pyw")
BANDIT_SEVERITIES: dict[str, Severity] = {"HIGH": "high", "MEDIUM": "medium", "LOW": "low"}
# bandit quotes the string it found in these ("Possible hardcoded password: '<value>'"), and the value
# can hold quotes of its own: their text is replaced as a whole, no part of bandit's is kept
VALUE_FREE_TEXTS = {
    "B105": "Possible hardcoded password assigned to a variable; the value is not shown.",
    "B106": "Possible hardcoded password passed as an argument; the value is not shown.",
    "B107": "Possible hardcoded password as the default value of an argument; the value is not shown.",
}


class BanditError(Exception):
    """bandit did not produce a report; the message says why (never the content of a file)."""


@dataclass
class BanditReport:
    issues: list[Issue] = field(default_factory=list)
    nosec: int = 0  # findings silenced by `# nosec` (all tests) and `# nosec B602` (one test) comments
    errors: list[str] = field(default_factory=list)  # "path: reason" for files bandit could not parse
    files: int = 0


# -------------------------------------------------------------------------------- pure functions


def is_python(path: str) -> bool:
    return path.endswith(PYTHON_SUFFIXES)


def bandit_argv(python: str, report: Path, paths: list[str]) -> list[str]:
    return [python, "-I", "-m", "bandit", "-f", "json", "-q", "-o", str(report), "--", *paths]


def chunks(paths: list[str], size: int) -> list[list[str]]:
    return [paths[start : start + size] for start in range(0, len(paths), size)]


def parse_bandit(text: str | bytes) -> BanditReport:
    """bandit's JSON report as issues; BanditError when it is not one."""
    try:
        data = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise BanditError(f"bandit wrote a report that is not JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise BanditError("bandit wrote a report without a `results` list")
    totals = data.get("metrics", {}).get("_totals", {}) if isinstance(data.get("metrics"), dict) else {}
    return BanditReport(
        issues=[issue for item in data["results"] if (issue := bandit_issue(item)) is not None],
        nosec=sum(_count(totals.get(key)) for key in ("nosec", "skipped_tests")) if isinstance(totals, dict) else 0,
        errors=[_bandit_error(item) for item in data.get("errors", []) if isinstance(item, dict)],
    )


def bandit_issue(item: Any) -> Issue | None:
    """One bandit result; None when it lacks what an annotation needs. The `code` excerpt is never kept."""
    if not isinstance(item, dict):
        return None
    test_id, path, line = item.get("test_id"), item.get("filename"), item.get("line_number")
    if not isinstance(test_id, str) or not isinstance(path, str) or not isinstance(line, int):
        return None
    path = _relative(path)
    text = issue_text(test_id, str(item.get("issue_text", "")))
    severity = BANDIT_SEVERITIES.get(str(item.get("issue_severity", "")).upper(), "medium")
    confidence = str(item.get("issue_confidence", "UNDEFINED")).lower()
    cwe = _cwe(item.get("issue_cwe"))
    end_line = max([line, *(n for n in item.get("line_range", []) or [] if isinstance(n, int))])
    more = item.get("more_info")
    return Issue(
        scanner="sast",
        rule=test_id,
        severity=severity,
        path=path,
        start_line=line,
        end_line=end_line,
        title=f"{test_id}: {_headline(text)}",
        message=(
            f"{text} (bandit {test_id} {item.get('test_name', '')}, severity {severity}, confidence "
            f"{confidence}{', ' + cwe if cwe else ''}). "
            + (f"What to do: {more}" if isinstance(more, str) and more.startswith("https://") else "")
        ).strip(),
        aliases=tuple(name for name in (str(item.get("test_name", "")), cwe) if name),
    )


def issue_text(test_id: str, text: str) -> str:
    """bandit's text; a fixed one for the hard-coded password tests, whose text quotes the value."""
    return VALUE_FREE_TEXTS.get(test_id) or " ".join(text.split())


def _headline(text: str) -> str:
    headline = text.rstrip(".")
    for tail in (" identified, security issue", ", security issue", " detected"):
        headline = headline.removesuffix(tail)
    return headline[:120]


def _cwe(value: Any) -> str:
    if isinstance(value, dict) and isinstance(value.get("id"), int) and value["id"] > 0:
        return f"CWE-{value['id']}"
    return ""


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value > 0 else 0


def _relative(path: str) -> str:
    return path.removeprefix("./")


def _bandit_error(item: dict[str, Any]) -> str:
    return f"{_relative(str(item.get('filename', '?')))}: {' '.join(str(item.get('reason', 'not analysed')).split())}"


# ------------------------------------------------------------------------------------- adapter


async def run_bandit(root: Path, paths: list[str], scratch: Path, python: str = sys.executable) -> BanditReport:
    """bandit over the Python files at `paths` (relative to `root`), in runs of at most
    BANDIT_FILES_PER_RUN files; BanditError when a run fails."""
    report = BanditReport(files=len(paths))
    home = scratch / "bandit-home"
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    for index, batch in enumerate(chunks(paths, BANDIT_FILES_PER_RUN)):
        output = scratch / f"bandit-{index}.json"
        output.unlink(missing_ok=True)
        result = await run_sandboxed(
            bandit_argv(python, output, batch), cwd=root, env=scrubbed_env(home, [], {}),
            timeout_s=BANDIT_TIMEOUT_S, memory_mb=BANDIT_MEMORY_MB,
        )  # fmt: skip
        if result.timed_out:
            raise BanditError(f"bandit did not finish within {BANDIT_TIMEOUT_S:g} s")
        if result.returncode not in (0, 1) or not output.is_file():
            # its output is not shown: a traceback could quote a line of the analysed code
            raise BanditError(f"bandit exited with {result.returncode} without writing a report")
        part = parse_bandit(output.read_bytes())
        report.issues += part.issues
        report.nosec += part.nosec
        report.errors += part.errors
    return report

