"""Forge-neutral rendering: titles, summaries, the PR comment body, truncation and batching."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TypeVar

from jobs.model import AgentResult, Finding, JobRecord

COMMENT_MARKER = "<!-- aqe:report -->"
GATE_AGENT = "quality-gate"
GITHUB_TEXT_LIMIT = 65_535  # check run output summary/text
GITHUB_COMMENT_LIMIT = 65_536  # issue comment body
SAFETY_MARGIN = 512
TITLE_LIMIT = 200
LEVEL_ORDER = {"failure": 0, "warning": 1, "notice": 2}
_ICONS = {"success": "✅", "failure": "❌", "neutral": "⚪", "skipped": "⏭️", "cancelled": "⛔",
          "timed_out": "⏱️", "action_required": "⚠️"}

T = TypeVar("T")


def truncate(text: str, limit: int, link: str | None = None) -> str:
    """`text` cut to fit `limit` characters, ending with a note (and a link to the full report)."""
    if len(text) <= limit:
        return text
    note = f"\n\n… truncated. [Full report]({link})" if link else "\n\n… truncated."
    cut = text[: max(0, limit - len(note) - SAFETY_MARGIN)]
    if cut.count("```") % 2:  # do not leave a code fence open
        cut += "\n```"
    return cut + note


def batches(items: Sequence[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def ordered_findings(findings: Sequence[Finding]) -> list[Finding]:
    """Most important first: failures, then warnings, then notices; stable within a level."""
    return sorted(findings, key=lambda f: LEVEL_ORDER.get(f.level, 3))


def check_title(result: AgentResult) -> str:
    title = " ".join(result.title.split())
    return title if len(title) <= TITLE_LIMIT else title[: TITLE_LIMIT - 1] + "…"


def check_summary(result: AgentResult, job_url: str) -> str:
    footer = f"\n\n[Job details]({job_url})"
    return truncate(result.summary, GITHUB_TEXT_LIMIT - len(footer), job_url) + footer


def check_text(result: AgentResult, job_url: str) -> str:
    return truncate(result.text, GITHUB_TEXT_LIMIT, job_url)


def _headline(result: AgentResult) -> str:
    return result.title.replace("|", "\\|").replace("\n", " ")


def comment_body(record: JobRecord, job_url: str, head_sha: str, links: Mapping[str, str] | None = None) -> str:
    """The one PR comment: a row per agent (result, headline, link to its check), the quality gate's
    table, then each other agent's summary folded away — always under GitHub's comment limit."""
    links = links or {}
    rows = [f"| {_check_cell(r.agent, links.get(r.agent))} | {_ICONS.get(r.conclusion, '')} {r.conclusion} | "
            f"{_headline(r)} |" for r in record.results]
    header = (f"{COMMENT_MARKER}\n### AQE report for {head_sha[:7]}\n\n"
              "| Check | Result | Details |\n| --- | --- | --- |\n" + "\n".join(rows) + "\n")
    gate = next((r for r in record.results if r.agent == GATE_AGENT), None)
    if gate is not None:
        header += f"\n#### Quality gate: {_ICONS.get(gate.conclusion, '')} {gate.conclusion}\n\n" + \
            truncate(gate.summary, 8_000, job_url) + "\n"
    footer = f"\n[Job details]({job_url}) · updated on every push\n"
    budget = GITHUB_COMMENT_LIMIT - len(header) - len(footer) - SAFETY_MARGIN
    details = ""
    for result in record.results:
        if result.agent == GATE_AGENT:
            continue
        block = f"\n<details><summary>aqe/{result.agent}</summary>\n\n{result.summary}\n\n</details>\n"
        if len(details) + len(block) > budget:
            details += f"\n… more in the [job details]({job_url}).\n"
            break
        details += block
    return header + details + footer


def _check_cell(agent: str, link: str | None) -> str:
    return f"[`aqe/{agent}`]({link})" if link else f"`aqe/{agent}`"


def failure_summary(reason: str, job_url: str) -> str:
    return truncate(f"AQE could not finish this check.\n\n**Reason:** {reason}", GITHUB_TEXT_LIMIT - 200, job_url) + \
        f"\n\n[Job details]({job_url})"
