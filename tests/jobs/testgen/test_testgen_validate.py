"""Reading generated tests' outcomes: falsifying examples as hypothesis 6.170 prints them, and verdicts."""

from __future__ import annotations

from pathlib import Path

from jobs.junit import TestCase
from jobs.testgen.validate import (
    collection_errors,
    failing_examples,
    judge_example_test,
    judge_property_test,
    pytest_argv,
)

# pytest's long repr of a failing ghostwriter test (hypothesis 6.170.17), as it is in the junit XML
SINGLE = """\
@settings(max_examples=20, deadline=None)
>   @given(values=st.lists(st.floats()))
                   ^^^

test_calc_hypothesis.py:6:
_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _
test_calc_hypothesis.py:8: in test_fuzz_mean
    calc.mean(values=values)
_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _

values = []

    def mean(values: list[float]) -> float:
>       return sum(values) / len(values)
               ^^^^^^^^^^^^^^^^^^^^^^^^^
E       ZeroDivisionError: division by zero
E       Failing test case: test_fuzz_mean(
E           values=[],
E       )

../calc.py:6: ZeroDivisionError"""

COMMENTED = """\
E       AttributeError: 'NoneType' object has no attribute 'size'
E       Failing test case: test_fuzz_Box_grow(
E           # The test always failed when commented parts were varied together.
E           self=None,  # or any other generated value
E           by=0,  # or any other generated value
E       )"""

GROUP = """\
+ Exception Group Traceback (most recent call last):
  |   File "/tmp/gw/run/test_two.py", line 5, in test_fuzz_two
  |     @given(x=st.integers())
  | ExceptionGroup: Hypothesis found 2 distinct failures. (2 sub-exceptions)
  +-+---------------- 1 ----------------
    | Traceback (most recent call last):
    |   File "/tmp/gw/calc2.py", line 5, in two
    |     raise KeyError("neg")
    | KeyError: 'neg'
    | Failing test case: test_fuzz_two(
    |     x=-1,
    | )
    | Explanation:
    |     These lines were always and only run by failing test cases:
    |         /tmp/gw/calc2.py:5
    +---------------- 2 ----------------
    | Traceback (most recent call last):
    |   File "/tmp/gw/calc2.py", line 3, in two
    |     raise ValueError("zero")
    | ValueError: zero
    | Failing test case: test_fuzz_two(
    |     x=0,
    | )
    +------------------------------------"""

OLD_STYLE = """\
E       ValueError: could not convert string to float: ''
E       Falsifying example: test_fuzz_parse_price(text='')"""


def case(status: str, message: str = "", details: str = "", name: str = "test_fuzz_mean",
         classname: str = "test_calc_hypothesis") -> TestCase:  # fmt: skip
    return TestCase(classname=classname, name=name, status=status, message=message, details=details)  # type: ignore[arg-type]


def test_a_single_failure() -> None:
    [example] = failing_examples(SINGLE)
    assert example.test == "test_fuzz_mean"
    assert example.error == "ZeroDivisionError: division by zero"
    assert example.arguments == (("values", "[]"),)
    assert example.call("mean") == "mean(values=[])"
    assert example.call("mean", positional=True) == "mean([])"


def test_comments_are_left_out() -> None:
    [example] = failing_examples(COMMENTED)
    assert example.arguments == (("self", "None"), ("by", "0"))
    assert example.raw == "test_fuzz_Box_grow(self=None, by=0)"


def test_every_failure_of_an_exception_group() -> None:
    examples = failing_examples(GROUP)
    assert [(e.error, e.call("two")) for e in examples] == [("KeyError: 'neg'", "two(x=-1)"),
                                                           ("ValueError: zero", "two(x=0)")]


def test_the_older_falsifying_example_wording() -> None:
    [example] = failing_examples(OLD_STYLE)
    assert example.call("parse_price", positional=True) == "parse_price('')"
    assert example.error == "ValueError: could not convert string to float: ''"


def test_unparsable_examples_keep_the_printed_text() -> None:
    text = "E   RuntimeError: x\nE   Failing test case: test_fuzz_f(\nE       obj=<calc.Box object at 0x7f>,\nE   )"
    [example] = failing_examples(text)
    assert example.arguments is None
    assert example.call("f") == "f(obj=<calc.Box object at 0x7f>)"


def test_the_same_example_in_message_and_details_counts_once() -> None:
    message = "ZeroDivisionError: division by zero\nFailing test case: test_fuzz_mean(\n    values=[],\n)"
    verdict = judge_property_test(case("failed", message, SINGLE))
    assert verdict.verdict == "bug" and len(verdict.examples) == 1


def test_verdicts_of_property_tests() -> None:
    assert judge_property_test(case("passed")).verdict == "passed"
    health = case("failed", "hypothesis.errors.FailedHealthCheck: It looks like this test is filtering out a lot")
    verdict = judge_property_test(health)
    assert verdict.verdict == "dropped" and "FailedHealthCheck" in verdict.reason
    no_example = case("error", "failed on setup with \"fixture 'x' not found\"", "E       fixture 'x' not found")
    verdict = judge_property_test(no_example)
    assert verdict.verdict == "dropped" and "without a falsifying example: fixture 'x' not found" in verdict.reason


def test_an_llm_test_that_fails_is_dropped_not_a_bug() -> None:
    verdict = judge_example_test(case("failed", "assert 3 == 4", "E       assert 3 == 4", name="test_add"))
    assert verdict.verdict == "dropped"
    assert verdict.reason == "`test_add` fails against the current code: assert 3 == 4"


def test_collection_errors_by_file() -> None:
    broken = case("error", "collection failure", "ImportError while importing test module\nE   ModuleNotFoundError: "
                  "No module named 'numpy'", name="test_calc_hypothesis", classname="")  # fmt: skip
    assert collection_errors([broken, case("passed")]) == {
        "test_calc_hypothesis": "ModuleNotFoundError: No module named 'numpy'"
    }


def test_pytest_argv() -> None:
    argv = pytest_argv(Path("/v/bin/python"), ["test_a.py"], Path("/r/junit.xml"), ["test_a.py::test_x"])
    assert argv[:3] == ["/v/bin/python", "-m", "pytest"]
    assert "--hypothesis-seed=0" in argv and "--junitxml=/r/junit.xml" in argv
    assert argv[argv.index("--deselect") + 1] == "test_a.py::test_x" and argv[-1] == "test_a.py"
    assert argv[argv.index("-p") + 1] == "_hypothesis_pytestplugin"
