"""The test-generation agent for what an API request names (`AgentOptions.testgen_target`): a function, a file or a
directory of a real git repository, whatever the diff; the coverage the kept tests reach; the kind of test the
LLM is asked for; JavaScript tests offered, marked not run, when nothing here can run them."""

from __future__ import annotations

from pathlib import Path

from jobs.agents.base import AgentOptions, LlmOptions
from tests.fakes.llm import FakeLLM, fenced
from tests.jobs.agents.test_testgen_agent import (  # noqa: F401  (fake_llm is a fixture)
    KEY,
    MATH_JS,
    MOCHA_TEST,
    fake_llm,
    git,
    make_workspace,
    run_agent,
)

SIGN = """\
def sign(x: int) -> int:
    if x < 0:
        return -1
    if x == 0:
        return 0
    return 1


def double(x: int) -> int:
    return x * 2
"""
SIGN_TEST = "from shop.rules import sign\n\n\ndef test_sign():\n    assert sign(2) == 1\n"
SHOP = {"shop/__init__.py": "", "shop/rules.py": SIGN, "tests/test_rules.py": SIGN_TEST}


def named(target: str, llm: FakeLLM | None = None) -> AgentOptions:
    return AgentOptions(testgen_target=target, http_timeout_s=10.0,
                        llm=LlmOptions(llm.url, "gpt-test", KEY) if llm else None)  # fmt: skip


async def test_a_named_function_gets_tests_even_when_a_test_mentions_it(tmp_path: Path) -> None:
    # no diff touches it (base == head content), and tests/test_rules.py mentions `sign`
    workspace = await make_workspace(tmp_path, SHOP, {"README.md": "x\n"}, options=named("shop/rules.py::sign"))
    result = await run_agent(workspace, coverage_target=90)

    assert result.conclusion == "success", result.summary
    assert result.metrics["functions_targeted"] == 1 and result.metrics["tests_kept"] >= 1
    assert result.metrics["target_coverage"] == 100.0 and result.metrics["coverage_target"] == 90
    assert result.title.startswith("Generated ") and "for 1 function, covering 100.0 % of their lines" in result.title
    assert "**Line coverage of the targeted functions by the kept tests:** 100.0 % (target 90 %)" in result.summary
    generated = (workspace.artifacts["generated-tests"] / "tests/generated/test_shop_rules_hypothesis.py").read_text()
    assert "shop.rules.sign(" in generated and "double" not in generated
    assert git(workspace.root, "status", "--porcelain") == ""


async def test_below_the_coverage_target_fails_and_says_so(tmp_path: Path) -> None:
    # `lookup` takes a dict it indexes: the ghostwriter's property test covers what hypothesis reaches, and a
    # branch on a magic value it never finds stays uncovered
    source = ('def lookup(key: str) -> int:\n    if key == "a-very-specific-key-42":\n        x = 1\n        y = x + 1\n'
              '        z = y * 3\n        return z\n    return 0\n')
    workspace = await make_workspace(tmp_path, {"magic.py": source}, {"README.md": "x\n"},
                                     options=named("magic.py::lookup"))  # fmt: skip
    result = await run_agent(workspace, coverage_target=99.5)
    coverage = result.metrics["target_coverage"]
    assert isinstance(coverage, float) and coverage < 99.5 and result.metrics["tests_kept"] >= 1
    assert result.conclusion == "failure", result.summary
    assert f"{coverage:.1f} % (target 99.5 %: not reached)" in result.summary


async def test_a_directory_target_takes_its_source_files_and_leaves_out_excluded_ones(tmp_path: Path) -> None:
    files = {**SHOP, "shop/cart.py": "def total(prices: list[int]) -> int:\n    return sum(prices)\n",
             "shop/vendor/lib.py": "def helper(x: int) -> int:\n    return x\n"}
    workspace = await make_workspace(tmp_path, files, {"README.md": "x\n"}, options=named("shop/"))
    result = await run_agent(workspace, exclude=["shop/vendor/**"])
    targeted = result.summary.split("\n\n")[0]
    assert "`total`" in targeted and "`sign`" in targeted and "`double`" in targeted and "`helper`" not in targeted
    assert result.metrics["functions_targeted"] == 3
    assert "Left out of the target, being test files or excluded by `test_generation.exclude`: " \
           "`shop/vendor/lib.py`." in result.summary
    assert "target_coverage" in result.metrics  # measured for a named target, even without a coverage_target


async def test_a_target_naming_nothing_usable_fails_with_the_reason(tmp_path: Path) -> None:
    workspace = await make_workspace(tmp_path, SHOP, {"README.md": "x\n"}, options=named("shop/rules.py::nope"))
    result = await run_agent(workspace)
    assert (result.conclusion, result.title) == ("failure", "The target names no function")
    assert "`shop/rules.py` has no public function `nope`" in result.summary

    workspace.options = named("tests/test_rules.py")
    result = await run_agent(workspace)
    assert result.conclusion == "failure" and "1 file is a test file or excluded" in result.summary

    workspace.options = named("README.md")
    result = await run_agent(workspace)
    assert "`README.md` is not a Python or JavaScript/TypeScript source file" in result.summary

    (workspace.root / "shop" / "slow.py").write_text("async def fetch(url: str) -> str:\n    return url\n")
    workspace.options = named("shop/slow.py")
    result = await run_agent(workspace, coverage_target=50)
    assert (result.conclusion, result.title) == ("failure", "The target has no function AQE can write tests for")
    assert "`shop/slow.py::fetch`" in result.summary


async def test_an_integration_test_is_asked_of_the_llm_and_validated(tmp_path: Path, fake_llm: FakeLLM) -> None:
    test = ("from shop.rules import double, sign\n\n\ndef test_sign_of_double():\n"
            "    assert sign(double(-3)) == -1\n    assert sign(double(0)) == 0\n    assert sign(double(4)) == 1\n")
    fake_llm.reply = fenced(test)
    workspace = await make_workspace(tmp_path, SHOP, {"README.md": "x\n"},
                                     options=named("shop/rules.py::sign", fake_llm))  # fmt: skip
    result = await run_agent(workspace, test_type="integration", coverage_target=100)

    assert result.conclusion == "success", result.summary
    [prompt] = fake_llm.user_prompts()
    assert prompt.startswith("Write pytest integration tests for `sign`") and "Write integration tests:" in prompt
    offered = workspace.artifacts["generated-tests"] / "tests/generated/test_shop_rules_sign_integration_llm.py"
    assert offered.read_text() == test
    assert result.metrics["target_coverage"] == 100.0 and "ghostwriter" not in result.summary  # no property tests


async def test_named_javascript_tests_that_cannot_run_are_offered_marked_not_run(tmp_path: Path,
                                                                                fake_llm: FakeLLM) -> None:
    fake_llm.reply = fenced(MOCHA_TEST, "javascript")
    workspace = await make_workspace(tmp_path, {"src/math.js": MATH_JS}, {"README.md": "x\n"},
                                     options=named("src/math.js::sum", fake_llm))  # fmt: skip
    result = await run_agent(workspace, framework="jest")  # jest is not in node_modules

    assert result.conclusion == "neutral" and result.title == "1 generated test file offered without being run"
    assert result.metrics["tests_kept"] == 0 and result.metrics["tests_offered_not_run"] == 1
    assert "- `src/math.aqe.test.js` — **not run**: `jest` is not installed" in result.summary
    assert "Those marked **not run** could not be run here and are unverified" in result.summary
    assert "Jest" in fake_llm.user_prompts()[0]
    assert (workspace.artifacts["generated-tests"] / "src/math.aqe.test.js").read_text() == MOCHA_TEST
    assert "generated-tests.patch" in workspace.artifacts
