"""What is done with the ghostwriter's output: dropping the unresolved, merging per module, rendering."""

from __future__ import annotations

import ast
import importlib

import pytest
from hypothesis.extra import ghostwriter

from jobs.testgen.ghostwriter import (
    TestModule,
    add_pieces,
    conflict_reason,
    cut,
    header_for,
    parse_driver_answers,
    render,
    unresolved_reason,
    with_built_self,
)
from jobs.testgen.targets import FunctionSpan, Target

CALC = """\
def add(a: int, b: int) -> int:
    return a + b


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def untyped(x, y):
    return x


class Box:
    def __init__(self, size: int) -> None:
        self.size = size

    def grow(self, by: int) -> int:
        return self.size + by
"""


def target(qualname: str, *, method: bool = False) -> Target:
    span = FunctionSpan(qualname=qualname, def_line=1, start_line=1, end_line=2, is_method=method)
    return Target("gwcalc.py", span, "python", 2, "", module="gwcalc")


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The real ghostwriter's output for the functions of a module written to a temporary directory."""
    root = tmp_path_factory.mktemp("gw")
    (root / "gwcalc.py").write_text(CALC)
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(root))
        module = importlib.import_module("gwcalc")
        return {name: ghostwriter.magic(obj) for name, obj in
                [("add", module.add), ("mean", module.mean), ("untyped", module.untyped),
                 ("Box.grow", module.Box.grow)]}  # fmt: skip


def test_usable_output_has_no_reason(written: dict[str, str]) -> None:
    assert unresolved_reason(written["add"]) is None
    assert unresolved_reason(written["mean"]) is None


def test_unresolved_strategies_are_dropped_with_the_parameters(written: dict[str, str]) -> None:
    reason = unresolved_reason(written["untyped"])
    assert reason == "the ghostwriter found no strategy for `x`, `y` (add type hints)"
    assert "class cannot be built" in str(unresolved_reason(written["Box.grow"]))
    assert unresolved_reason("# TODO: write this\nimport x\n") == "the ghostwriter left a TODO in its output"
    assert unresolved_reason("import calc\n") == "the ghostwriter wrote no test function"
    assert "does not parse" in str(unresolved_reason("def test_x(:\n"))


def test_a_method_gets_its_class_built_from_type_hints(written: dict[str, str]) -> None:
    code = with_built_self(written["Box.grow"], target("Box.grow", method=True), self_buildable=True)
    assert "self=st.builds(gwcalc.Box)" in code and "TODO" not in code
    assert unresolved_reason(code) is None
    unchanged = with_built_self(written["Box.grow"], target("Box.grow", method=True), self_buildable=False)
    assert unchanged == written["Box.grow"]


def test_render_merges_the_tests_of_one_module(written: dict[str, str]) -> None:
    module = TestModule("gwcalc.py", "gwcalc")
    for name in ("add", "mean"):
        pieces = cut(written[name])
        assert conflict_reason(module, pieces) is None
        add_pieces(module, f"gwcalc.py::{name}", pieces)
    assert module.owner == {
        "test_associative_binary_operation_add": "gwcalc.py::add",
        "test_commutative_binary_operation_add": "gwcalc.py::add",
        "test_identity_binary_operation_add": "gwcalc.py::add",
        "test_fuzz_mean": "gwcalc.py::mean",
    }
    assert module.repo_path == "tests/generated/test_gwcalc_hypothesis.py"
    text = render(module, 7, header=header_for(module, ["add", "mean"], "f" * 40))
    tree = ast.parse(text)
    tests = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    assert [t.name for t in tests] == list(module.owner)
    for test in tests:
        assert ast.unparse(test.decorator_list[0]) == "settings(max_examples=7, deadline=None)"
    assert text.count("import gwcalc") == 1 and "from hypothesis import settings" in text
    assert text.startswith("# Property tests for gwcalc.py (add, mean) at ffffffffffff")


def test_render_keeps_only_the_named_tests_and_what_they_use(written: dict[str, str]) -> None:
    module = TestModule("gwcalc.py", "gwcalc")
    add_pieces(module, "gwcalc.py::add", cut(written["add"]))
    add_pieces(module, "gwcalc.py::mean", cut(written["mean"]))
    only_mean = render(module, 5, keep={"test_fuzz_mean"})
    assert "add_operands" not in only_mean and "test_commutative" not in only_mean
    assert "def test_fuzz_mean" in only_mean
    only_add = render(module, 5, keep={"test_identity_binary_operation_add"})
    assert "add_operands = st.integers()" in only_add and "test_fuzz_mean" not in only_add


def test_conflicting_names_are_refused(written: dict[str, str]) -> None:
    module = TestModule("gwcalc.py", "gwcalc")
    add_pieces(module, "gwcalc.py::add", cut(written["add"]))
    assert "another generated test" in str(conflict_reason(module, cut(written["add"])))
    other = cut("import st\nadd_operands = st.floats()\n\ndef test_other():\n    pass\n")
    assert "helper `add_operands`" in str(conflict_reason(module, other))


def test_driver_answers_are_read_as_untrusted_data() -> None:
    answers = parse_driver_answers(
        '{"a.py::f": {"code": "x"}, "a.py::g": {"error": "importing `a` failed: boom"}, "a.py::h": 3,'
        ' "a.py::i": {"code": 5}, "a.py::j": {"code": "y", "self_buildable": "yes"}}'
    )
    assert answers["a.py::f"].code == "x"
    assert answers["a.py::g"].error == "importing `a` failed: boom"
    assert "a.py::h" not in answers
    assert answers["a.py::i"].error == "the driver answered no code"
    assert answers["a.py::j"].self_buildable is False
    assert parse_driver_answers("not json") == {} and parse_driver_answers("[1]") == {}


def test_the_driver_script_is_valid_python() -> None:
    from jobs.testgen.ghostwriter import DRIVER

    compile(DRIVER, "ghostwriter_driver.py", "exec")
