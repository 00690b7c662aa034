"""What the test-generation agent reports: outcomes per generated test, findings for likely bugs, the
metrics, title and Markdown summary. Pure functions over the outcomes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from jobs.reporting.markdown import code_span, plural
from jobs.model import AgentResult, Conclusion, Finding
from jobs.testgen.targets import Skipped, Target, TargetSelection
from jobs.testgen.validate import MAX_EXAMPLES_SHOWN, FailingExample

Status = Literal["kept", "bug", "dropped", "not-validated"]
Origin = Literal["ghostwriter", "llm"]

MAX_LISTED = 20
RULE = "likely-bug"


@dataclass(frozen=True, slots=True)
class Outcome:
    """One generated test (a ghostwriter test function, or an LLM-written file) and what became of it."""

    target: Target
    origin: Origin
    test: str  # the test function's name, or the file's repository path
    status: Status
    reason: str = ""
    examples: tuple[FailingExample, ...] = ()
    count: int = 1  # the tests it stands for (an LLM file: the test cases pytest ran)
    source: str = ""  # the test's code, for a likely bug's details
    file: str = ""  # the repository path of the file it is offered in (kept tests)


@dataclass
class Report:
    python: TargetSelection
    javascript: TargetSelection
    outcomes: list[Outcome] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # offered, repository paths
    notes: list[str] = field(default_factory=list)
    fail_on_bugs: bool = False
    coverage_target: float | None = None  # `test_generation.coverage_target`
    coverage: float | None = None  # line coverage of the targeted Python functions by the kept tests, measured
    named: bool = False  # the targets are what an API request named, not what a change touched

    def below_coverage_target(self) -> bool:
        """A coverage target for Python targets that the kept tests did not reach, or that could not be measured
        (JavaScript/TypeScript targets are not measured, so they never miss it)."""
        if self.coverage_target is None or not self.python.targets:
            return False
        return self.coverage is None or self.coverage < self.coverage_target

    def offered_unrun(self) -> list[Outcome]:
        """Tests offered although they could not be run here (asked for by name, no runner installed)."""
        return [o for o in self.outcomes if o.status == "not-validated" and o.file]

    @property
    def targets(self) -> list[Target]:
        return [*self.python.targets, *self.javascript.targets]

    def count(self, *statuses: Status) -> int:
        return sum(o.count for o in self.outcomes if o.status in statuses)

    def bug_targets(self) -> list[Target]:
        return _unique_targets(o.target for o in self.outcomes if o.status == "bug")

    def kept_targets(self) -> list[Target]:
        return _unique_targets(o.target for o in self.outcomes if o.status == "kept")


def _unique_targets(targets: Iterable[Target]) -> list[Target]:
    return list({t.id: t for t in targets}.values())




# ------------------------------------------------------------------------------------ findings


def is_fuzz_test(outcome: Outcome) -> bool:
    """The ghostwriter's `test_fuzz_<function>` calls the function with the test's own arguments."""
    return outcome.test == f"test_fuzz_{outcome.target.qualname.replace('.', '_')}"


def bug_sentence(outcome: Outcome, example: FailingExample) -> str:
    """"`mean([])` raises ZeroDivisionError: division by zero — falsifying example: mean(values=[])"."""
    error = example.error or "an error"
    if is_fuzz_test(outcome):
        name = outcome.target.qualname
        return f"{code_span(example.call(name, positional=True))} raises {error} — falsifying example: " \
               f"{example.call(name)}"  # fmt: skip
    return (f"the generated property test {code_span(outcome.test)} fails with {error} — falsifying example: "
            f"{example.call(example.test)}")  # fmt: skip


def bug_finding(target: Target, outcomes: list[Outcome]) -> Finding:
    sentences = [bug_sentence(o, e) for o in outcomes for e in o.examples][:MAX_EXAMPLES_SHOWN]
    first = sentences[0][0].upper() + sentences[0][1:]
    more = "; also " + "; ".join(sentences[1:]) if len(sentences) > 1 else ""
    tests = ", ".join(code_span(o.test) for o in outcomes)
    return Finding(
        path=target.path,
        start_line=target.span.def_line,
        end_line=target.span.def_line,
        level="warning",
        rule=RULE,
        title=f"Likely bug in {target.qualname}",
        message=(
            f"{first}{more}. Found by the generated test {tests}: fix the function, or reject such input "
            "explicitly and document it."
        ),
        raw_details="\n\n".join(o.source for o in outcomes if o.source) or None,
    )


def findings(report: Report) -> list[Finding]:
    by_target: dict[str, list[Outcome]] = {}
    for outcome in report.outcomes:
        if outcome.status == "bug" and outcome.examples:
            by_target.setdefault(outcome.target.id, []).append(outcome)
    return [bug_finding(outcomes[0].target, outcomes) for outcomes in by_target.values()]


# ----------------------------------------------------------------------------------- the result


def metrics(report: Report) -> dict[str, float | int | str]:
    return {
        "functions_considered": report.python.considered + report.javascript.considered,
        "functions_targeted": len(report.targets),
        "tests_generated": report.count("kept", "bug", "dropped", "not-validated"),
        "tests_kept": report.count("kept"),
        "likely_bugs": len(report.bug_targets()),
        "tests_dropped": report.count("dropped"),
        "tests_not_validated": report.count("not-validated"),
        **({"target_coverage": report.coverage} if report.coverage is not None else {}),
        **({"coverage_target": report.coverage_target} if report.coverage_target is not None else {}),
        **({"tests_offered_not_run": len(report.offered_unrun())} if report.offered_unrun() else {}),
    }


def coverage_section(report: Report) -> str:
    if report.coverage is None and report.coverage_target is None:
        return ""
    if report.coverage is not None:
        measured = f"{report.coverage:.1f} %" + ("" if report.count("kept") else " (no generated test was kept)")
    elif report.python.targets:
        measured = "not measured (see the note below)"
    else:
        measured = "not measured (AQE measures it for Python targets only)"
    target = f" (target {report.coverage_target:g} %{': not reached' if report.below_coverage_target() else ''})" \
        if report.coverage_target is not None else ""
    return f"**Line coverage of the targeted functions by the kept tests:** {measured}{target}"


def conclusion(report: Report) -> Conclusion:
    if report.below_coverage_target():
        return "failure"
    if report.bug_targets():
        return "failure" if report.fail_on_bugs else "neutral"
    return "success" if report.count("kept") else "neutral"


def title(report: Report) -> str:
    kept, functions, bugs = report.count("kept"), len(report.kept_targets()), len(report.bug_targets())
    kind = "function" if report.named else "changed function"
    generated = f"generated {plural(kept, 'test')} for {plural(functions, kind)}"
    if report.coverage is not None:
        generated += f", covering {report.coverage:.1f} % of their lines"
    if bugs:
        return f"{plural(bugs, 'likely bug')} found; {generated}"
    if kept:
        return generated[0].upper() + generated[1:]
    if report.offered_unrun() and not report.count("dropped"):
        return f"{plural(len(report.offered_unrun()), 'generated test file')} offered without being run"
    if report.count("not-validated") and not report.count("dropped"):
        return "The generated tests could not be validated"
    return "No generated test passed validation"


def outcome_cell(outcomes: list[Outcome]) -> str:
    parts = []
    kept = sum(o.count for o in outcomes if o.status == "kept")
    bugs = [o for o in outcomes if o.status == "bug"]
    if kept:
        parts.append(f"✅ {plural(kept, 'test')} kept")
    if bugs:
        parts.append(f"🐞 likely bug ({', '.join(code_span(o.test) for o in bugs)})")
    others = [o for o in outcomes if o.status in ("dropped", "not-validated")]
    if others and not parts:
        first = others[0]
        label = "➖ dropped: " if first.status == "dropped" else "⚠️ offered, not run: " if first.file else \
            "⚠️ not validated: "
        parts.append(label + first.reason)
    elif others:
        parts.append(f"{plural(sum(o.count for o in others), 'test')} dropped")
    return "; ".join(parts).replace("|", "\\|").replace("\n", " ") or "➖ no test"


def targets_table(report: Report) -> str:
    rows = []
    for target in report.targets[:MAX_LISTED]:
        mine = [o for o in report.outcomes if o.target.id == target.id]
        origins = ", ".join(dict.fromkeys(o.origin for o in mine)) or "—"
        rows.append(f"| {code_span(target.qualname)} | {code_span(f'{target.path}:{target.span.def_line}')} | "
                    f"{target.changed} | {origins} | {outcome_cell(mine)} |")  # fmt: skip
    more = len(report.targets) - MAX_LISTED
    tail = f"\n\n…and {plural(more, 'more function')}." if more > 0 else ""
    return ("| Function | Where | Changed lines | Generated by | Result |\n|---|---|---:|---|---|\n"
            + "\n".join(rows) + tail)  # fmt: skip


def bugs_section(report: Report) -> str:
    found = findings(report)
    if not found:
        return ""
    lines = [f"- {code_span(f'{f.path}:{f.start_line}')}: {f.message}" for f in found[:MAX_LISTED]]
    effect = "fail this check (`test_generation.fail_on_bugs: true`)" if report.fail_on_bugs else (
        "are warnings (set `test_generation.fail_on_bugs: true` to fail the check on them)")
    return f"### Likely bugs\n\nA generated test fails on these functions; they {effect}.\n\n" + "\n".join(lines)


def files_section(report: Report) -> str:
    if not report.files:
        return ""
    tests: dict[str, list[str]] = {}
    for outcome in report.outcomes:
        if outcome.status == "kept" and outcome.file and outcome.file != outcome.test:
            tests.setdefault(outcome.file, []).append(code_span(outcome.test))
    unrun = {o.file: o.reason for o in report.offered_unrun()}
    listed = "\n".join(f"- {code_span(path)}" + (f": {', '.join(tests[path])}" if path in tests else "")
                       + (f" — **not run**: {unrun[path]}" if path in unrun else "")
                       for path in report.files)  # fmt: skip
    checked = ("Each passed when AQE ran it." if not unrun else
               "Those marked **not run** could not be run here and are unverified; the others passed when AQE ran "
               "them.")  # fmt: skip
    return (f"### Generated tests\n\n{listed}\n\n{checked} They are attached to the job as "
            "`generated-tests.patch` (`git apply generated-tests.patch`).")  # fmt: skip


def dropped_section(report: Report) -> str:
    dropped = [o for o in report.outcomes if o.status in ("dropped", "not-validated") and not o.file]
    if not dropped:
        return ""
    lines = [f"- {code_span(o.target.qualname)} ({o.origin}, {code_span(o.test)}): "
             f"{'not validated, so not offered: ' if o.status == 'not-validated' else ''}{o.reason}"
             for o in dropped[:MAX_LISTED]]  # fmt: skip
    more = len(dropped) - MAX_LISTED
    if more > 0:
        lines.append(f"- …and {plural(more, 'more')}")
    return "<details><summary>Tests not offered</summary>\n\n" + "\n".join(lines) + "\n\n</details>"


def skipped_section(selections: Iterable[TargetSelection]) -> str:
    skipped: list[Skipped] = [s for selection in selections for s in selection.skipped]
    tested = sum(len(selection.already_tested) for selection in selections)
    lines = [f"- {code_span(f'{s.path}::{s.qualname}')}: {s.reason}" for s in skipped[:MAX_LISTED]]
    if len(skipped) > MAX_LISTED:
        lines.append(f"- …and {plural(len(skipped) - MAX_LISTED, 'more')}")
    parts = [f"{plural(tested, 'changed function')} already mentioned by a test file "
             f"{'was' if tested == 1 else 'were'} left alone."] if tested else []  # fmt: skip
    if lines:
        parts.append("Not targeted:\n" + "\n".join(lines))
    return "\n\n".join(parts)


def summary(report: Report) -> str:
    parts = [
        targets_table(report),
        coverage_section(report),
        bugs_section(report),
        files_section(report),
        dropped_section(report),
        skipped_section([report.python, report.javascript]),
        "\n".join(f"> {note}" for note in report.notes),
    ]
    return "\n\n".join(part for part in parts if part)


def result(name: str, report: Report, duration_s: float) -> AgentResult:
    return AgentResult(agent=name, conclusion=conclusion(report), title=title(report), summary=summary(report),
                       metrics=metrics(report), findings=findings(report), duration_s=duration_s)  # fmt: skip


def nothing_to_do_summary(python: TargetSelection, javascript: TargetSelection, why: str) -> str:
    parts = [why, skipped_section([python, javascript])]
    return "\n\n".join(part for part in parts if part)


def nothing_to_do_reason(python: TargetSelection, javascript: TargetSelection, js_wanted: bool,
                         llm_configured: bool) -> str:  # fmt: skip
    if js_wanted and javascript.targets and not llm_configured:
        return (f"{plural(len(javascript.targets), 'changed JavaScript/TypeScript function')} could get tests, but "
                "writing jest, vitest or mocha tests needs the LLM backend, and this AQE has none (`AQE_LLM_URL`, "
                "`AQE_LLM_MODEL`).")  # fmt: skip
    considered = python.considered + javascript.considered
    if not considered:
        kinds = "Python or JavaScript/TypeScript" if js_wanted else "Python"
        return (f"No public {kinds} function was changed outside tests and excluded paths "
                "(`test_generation.exclude`), so there is nothing to generate tests for.")
    return (f"None of the {plural(considered, 'changed public function')} needs a generated test: each is "
            "already mentioned by a test file, or cannot be imported and called (see below).")


def named_nothing_reason(python: TargetSelection, javascript: TargetSelection, js_wanted: bool,
                         llm_configured: bool) -> str:  # fmt: skip
    """Why a target an API request named got no test."""
    if js_wanted and javascript.targets and not llm_configured:
        return nothing_to_do_reason(python, javascript, js_wanted, llm_configured)
    if not python.considered + javascript.considered:
        kinds = "Python or JavaScript/TypeScript" if js_wanted else "Python (`framework: pytest`)"
        return f"The target holds no public {kinds} function."
    return (f"None of the {plural(python.considered + javascript.considered, 'public function')} of the target can "
            "get a generated test: see why below.")


def empty_metrics(python: TargetSelection, javascript: TargetSelection) -> dict[str, float | int | str]:
    return {"functions_considered": python.considered + javascript.considered, "functions_targeted": 0,
            "tests_generated": 0, "tests_kept": 0, "likely_bugs": 0, "tests_dropped": 0,
            "tests_not_validated": 0}  # fmt: skip
