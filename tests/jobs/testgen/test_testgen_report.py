"""The agent's result from outcomes: conclusion, title, findings, metrics and summary."""

from __future__ import annotations

from jobs.testgen.report import Outcome, Report, conclusion, findings, metrics, result, summary, title
from jobs.testgen.targets import FunctionSpan, Skipped, Target, TargetSelection
from jobs.testgen.validate import FailingExample


def target(qualname: str, line: int = 1) -> Target:
    span = FunctionSpan(qualname=qualname, def_line=line, start_line=line, end_line=line + 1)
    return Target("calc.py", span, "python", 2, "", module="calc")


ADD, MEAN = target("add", 1), target("mean", 5)
EMPTY = FailingExample("test_fuzz_mean", "ZeroDivisionError: division by zero", (("values", "[]"),), "")
SWAP = FailingExample("test_commutative_binary_operation_add", "AssertionError: (1, 0)", (("a", "0"), ("b", "1")), "")


def report(*outcomes: Outcome, fail_on_bugs: bool = False) -> Report:
    selection = TargetSelection(targets=[ADD, MEAN], considered=3,
                                already_tested=[Skipped("calc.py", "tested", "a test file mentions it")])  # fmt: skip
    return Report(selection, TargetSelection(), list(outcomes), files=["tests/generated/test_calc_hypothesis.py"],
                  fail_on_bugs=fail_on_bugs)  # fmt: skip


KEPT = Outcome(ADD, "ghostwriter", "test_identity_binary_operation_add", "kept",
               file="tests/generated/test_calc_hypothesis.py")  # fmt: skip
BUG = Outcome(MEAN, "ghostwriter", "test_fuzz_mean", "bug", examples=(EMPTY,), source="def test_fuzz_mean(): ...")


def test_success_when_tests_are_kept_and_no_bug() -> None:
    done = report(KEPT)
    assert (conclusion(done), title(done)) == ("success", "Generated 1 test for 1 changed function")
    assert findings(done) == []
    assert "- `tests/generated/test_calc_hypothesis.py`: `test_identity_binary_operation_add`" in summary(done)


def test_bugs_are_neutral_unless_they_should_fail() -> None:
    assert conclusion(report(KEPT, BUG)) == "neutral"
    assert conclusion(report(KEPT, BUG, fail_on_bugs=True)) == "failure"
    assert title(report(KEPT, BUG)) == "1 likely bug found; generated 1 test for 1 changed function"


def test_a_fuzz_failure_reads_as_a_call() -> None:
    [finding] = findings(report(BUG))
    assert (finding.path, finding.start_line, finding.end_line, finding.level) == ("calc.py", 5, 5, "warning")
    assert finding.title == "Likely bug in mean"
    assert finding.message == (
        "`mean([])` raises ZeroDivisionError: division by zero — falsifying example: mean(values=[]). Found by the "
        "generated test `test_fuzz_mean`: fix the function, or reject such input explicitly and document it."
    )
    assert finding.raw_details == "def test_fuzz_mean(): ..."


def test_a_property_failure_names_the_property_test() -> None:
    bug = Outcome(ADD, "ghostwriter", "test_commutative_binary_operation_add", "bug", examples=(SWAP,))
    [finding] = findings(report(bug))
    assert finding.message.startswith(
        "The generated property test `test_commutative_binary_operation_add` fails with AssertionError: (1, 0) — "
        "falsifying example: test_commutative_binary_operation_add(a=0, b=1)")


def test_metrics_count_tests_and_functions() -> None:
    dropped = Outcome(MEAN, "llm", "tests/generated/test_calc_mean_llm.py", "dropped", "it fails", count=2)
    assert metrics(report(KEPT, BUG, dropped)) == {
        "functions_considered": 3, "functions_targeted": 2, "tests_generated": 4, "tests_kept": 1,
        "likely_bugs": 1, "tests_dropped": 2, "tests_not_validated": 0,
    }  # fmt: skip


def test_nothing_kept_and_nothing_validated() -> None:
    dropped = report(Outcome(ADD, "ghostwriter", "test_fuzz_add", "dropped", "no strategy"))
    assert (conclusion(dropped), title(dropped)) == ("neutral", "No generated test passed validation")
    unvalidated = report(Outcome(ADD, "llm", "src/a.aqe.test.js", "not-validated", "jest is not installed"))
    assert title(unvalidated) == "The generated tests could not be validated"
    assert "not validated, so not offered: jest is not installed" in summary(unvalidated)


def test_the_summary_table_and_sections() -> None:
    text = result("test-generation", report(KEPT, BUG), 1.5).summary
    assert "| `add` | `calc.py:1` | 2 | ghostwriter | ✅ 1 test kept |" in text
    assert "| `mean` | `calc.py:5` | 2 | ghostwriter | 🐞 likely bug (`test_fuzz_mean`) |" in text
    assert "### Likely bugs" in text and "1 changed function already mentioned by a test file was left alone" in text


def test_the_coverage_target_is_met_missed_or_not_measured() -> None:
    def with_coverage(coverage: float | None, target: float | None, *outcomes: Outcome) -> Report:
        done = report(*outcomes)
        done.coverage, done.coverage_target = coverage, target
        return done

    met = with_coverage(85.0, 80, KEPT)
    assert (conclusion(met), title(met)) == ("success", "Generated 1 test for 1 changed function, covering 85.0 % "
                                                        "of their lines")
    assert "**Line coverage of the targeted functions by the kept tests:** 85.0 % (target 80 %)" in summary(met)
    assert metrics(met)["target_coverage"] == 85.0 and metrics(met)["coverage_target"] == 80
    missed = with_coverage(60.0, 80, KEPT)
    assert conclusion(missed) == "failure" and "60.0 % (target 80 %: not reached)" in summary(missed)
    nothing_kept = with_coverage(0.0, 80, Outcome(ADD, "ghostwriter", "test_fuzz_add", "dropped", "no strategy"))
    assert conclusion(nothing_kept) == "failure" and "0.0 % (no generated test was kept)" in summary(nothing_kept)
    unmeasured = with_coverage(None, 80, KEPT)  # it timed out: the target is not shown to be reached
    assert conclusion(unmeasured) == "failure" and "not measured (see the note below)" in summary(unmeasured)
    measured_only = with_coverage(40.0, None, KEPT)  # a named target without a coverage_target: reported only
    assert conclusion(measured_only) == "success" and "coverage_target" not in metrics(measured_only)

    js = Target("src/a.js", FunctionSpan("sum", 1, 1, 3), "javascript", 3, "")
    only_js = Report(TargetSelection(), TargetSelection(targets=[js]),
                     [Outcome(js, "llm", "src/a.aqe.test.js", "kept", file="src/a.aqe.test.js")],
                     files=["src/a.aqe.test.js"], coverage_target=80)  # fmt: skip
    assert conclusion(only_js) == "success"
    assert "not measured (AQE measures it for Python targets only)" in summary(only_js)


def test_a_named_target_and_tests_offered_without_being_run() -> None:
    js = Target("src/a.js", FunctionSpan("sum", 1, 1, 3), "javascript", 3, "")
    unrun = Outcome(js, "llm", "src/a.aqe.test.js", "not-validated", "`jest` is not installed", file="src/a.aqe.test.js")
    done = Report(TargetSelection(), TargetSelection(targets=[js]), [unrun], files=["src/a.aqe.test.js"], named=True)
    assert (conclusion(done), title(done)) == ("neutral", "1 generated test file offered without being run")
    text = summary(done)
    assert "| `sum` | `src/a.js:1` | 3 | llm | ⚠️ offered, not run: `jest` is not installed |" in text
    assert "- `src/a.aqe.test.js` — **not run**: `jest` is not installed" in text
    assert "Tests not offered" not in text and metrics(done)["tests_offered_not_run"] == 1
    kept = Report(TargetSelection(targets=[ADD]), TargetSelection(), [KEPT], files=[KEPT.file], named=True)
    assert title(kept) == "Generated 1 test for 1 function"  # what was asked for, changed or not
