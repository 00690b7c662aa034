"""The test-generation agent against real git repositories built in tmp_path, real sandboxed runs of hypothesis and
pytest, and a fake OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from jobs.agents.base import AgentOptions, LlmOptions, Workspace
from jobs.agents.testgen import TestGenerationAgent
from jobs.coverage.diff import changed_lines_between
from jobs.model import AgentResult
from jobs.testgen.config import TestGenerationConfig
from tests.fakes.llm import FakeLLM, fenced

KEY = "sk-test-5ecret-key-for-testgen"
WORKER_VENV = Path(sys.executable).parent.parent

BASE = """\
def tested(x: int) -> int:
    return x
"""

CALC = """\
def tested(x: int) -> int:
    return x + 0


def add(a: int, b: int) -> int:
    return a + b


def mean(values: list[float]) -> float:
    return sum(values) / len(values)
"""

EXISTING_TEST = "from calc import tested\n\n\ndef test_tested():\n    assert tested(1) == 1\n"

UNTYPED = """\
def first(x, y):
    return x
"""


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []

    async def __call__(self, fraction: float, message: str) -> None:
        self.calls.append((fraction, message))


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip


async def make_workspace(tmp_path: Path, base: dict[str, str], head: dict[str, str], *,
                         options: AgentOptions | None = None, venv: bool = True) -> Workspace:  # fmt: skip
    """A repository with a base and a head commit, checked out at head, with the change's changed lines."""
    root = tmp_path / "repo"
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    for commit in (base, head):
        for rel, text in commit.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        git(root, "add", "-A")
        git(root, "commit", "-q", "--allow-empty", "-m", "change")
    base_sha, head_sha = git(root, "rev-parse", "HEAD~1"), git(root, "rev-parse", "HEAD")
    (tmp_path / "scratch").mkdir(parents=True)
    workspace = Workspace(root=root, scratch=tmp_path / "scratch", head_sha=head_sha, base_sha=base_sha,
                          changed_lines=await changed_lines_between(root, base_sha, head_sha),
                          options=options or AgentOptions())  # fmt: skip
    if venv:  # as the tests agent leaves it; without it the agent makes its own
        workspace.artifacts["venv"] = WORKER_VENV
    return workspace


async def run_agent(workspace: Workspace, **config: object) -> AgentResult:
    settings = {"max_examples": 25, "timeout": 120, **config}
    return await TestGenerationAgent().run(workspace, msgspec.convert(settings, TestGenerationConfig), Recorder())


def line_of(source: str, needle: str) -> int:
    return next(i for i, line in enumerate(source.splitlines(), 1) if needle in line)


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    with FakeLLM(api_key=KEY) as server:
        yield server


async def test_tests_are_kept_and_bugs_reported_with_the_falsifying_example(tmp_path: Path) -> None:
    workspace = await make_workspace(tmp_path, {"calc.py": BASE, "tests/test_calc.py": EXISTING_TEST},
                                     {"calc.py": CALC}, venv=False)  # fmt: skip
    result = await run_agent(workspace)

    assert result.conclusion == "neutral"  # a likely bug, and fail_on_bugs is false
    assert result.title == "1 likely bug found; generated 3 tests for 1 changed function"
    assert result.metrics == {"functions_considered": 3, "functions_targeted": 2, "tests_generated": 4,
                              "tests_kept": 3, "likely_bugs": 1, "tests_dropped": 0,
                              "tests_not_validated": 0}  # fmt: skip
    [finding] = result.findings
    assert (finding.path, finding.start_line, finding.level, finding.rule) == (
        "calc.py", line_of(CALC, "def mean"), "warning", "likely-bug")
    assert finding.message.startswith(
        "`mean([])` raises ZeroDivisionError: division by zero — falsifying example: mean(values=[])")
    assert "test_fuzz_mean" in finding.message and "calc.mean(values=values)" in str(finding.raw_details)
    assert "`tests/generated/test_calc_hypothesis.py`" in result.summary
    assert "1 changed function already mentioned by a test file was left alone" in result.summary
    assert "| `add` | `calc.py:5` | 2 | ghostwriter | ✅ 3 tests kept |" in result.summary

    out = workspace.artifacts["generated-tests"]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "tests/generated/test_calc_hypothesis.py"]
    generated = (out / "tests/generated/test_calc_hypothesis.py").read_text()
    assert "calc.add(" in generated and "test_fuzz_mean" not in generated and "tested" not in generated
    assert "max_examples=25" in generated

    assert git(workspace.root, "status", "--porcelain", "--ignored") == ""  # nothing was written to the work tree
    # the patch applies to the checkout, and plain pytest passes the kept tests there
    patch = workspace.artifacts["generated-tests.patch"]
    git(workspace.root, "apply", "--check", str(patch))
    git(workspace.root, "apply", str(patch))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "tests/generated/test_calc_hypothesis.py"], cwd=workspace.root, capture_output=True,
                         text=True)  # fmt: skip
    assert run.returncode == 0, run.stdout
    assert "3 passed" in run.stdout


async def test_fail_on_bugs_fails_the_check(tmp_path: Path) -> None:
    workspace = await make_workspace(tmp_path, {"calc.py": BASE}, {"calc.py": CALC})
    result = await run_agent(workspace, fail_on_bugs=True)
    assert result.conclusion == "failure"
    assert result.metrics["likely_bugs"] == 1 and result.metrics["functions_targeted"] == 3  # `tested` too: no test
    assert "fail this check" in result.summary


async def test_only_passing_functions_give_success(tmp_path: Path) -> None:
    head = {"shop/__init__.py": "", "shop/cart.py": "def total(prices: list[int]) -> int:\n    return sum(prices)\n"}
    workspace = await make_workspace(tmp_path, {"README.md": "x\n"}, head)
    result = await run_agent(workspace)
    assert result.conclusion == "success"
    assert result.title == "Generated 1 test for 1 changed function"
    generated = workspace.artifacts["generated-tests"] / "tests/generated/test_shop_cart_hypothesis.py"
    assert "shop.cart.total(" in generated.read_text()


async def test_nothing_to_do_is_neutral_and_says_why(tmp_path: Path) -> None:
    workspace = await make_workspace(tmp_path, {"calc.py": BASE, "tests/test_calc.py": EXISTING_TEST},
                                     {"calc.py": "def tested(x: int) -> int:\n    return x * 1\n"})  # fmt: skip
    result = await run_agent(workspace)
    assert (result.conclusion, result.title) == ("neutral", "No changed function needs generated tests")
    assert "already mentioned by a test file" in result.summary
    assert result.metrics["functions_considered"] == 1 and result.metrics["tests_generated"] == 0
    assert "generated-tests" not in workspace.artifacts

    docs_only = await make_workspace(tmp_path / "docs", {"README.md": "a\n"}, {"README.md": "b\n"})
    result = await run_agent(docs_only)
    assert result.conclusion == "neutral" and "No public Python function was changed" in result.summary


async def test_disabled_is_skipped(tmp_path: Path) -> None:
    workspace = await make_workspace(tmp_path, {"calc.py": BASE}, {"calc.py": CALC})
    assert not TestGenerationAgent().applies_to(workspace, {"enabled": False})
    result = await run_agent(workspace, enabled=False)
    assert result.conclusion == "skipped"


async def test_an_unimportable_module_is_dropped_with_the_reason(tmp_path: Path) -> None:
    head = {"broken.py": "import not_a_real_dependency\n\n\ndef f(x: int) -> int:\n    return x\n"}
    workspace = await make_workspace(tmp_path, {"README.md": "x\n"}, head)
    result = await run_agent(workspace)
    assert result.conclusion == "neutral" and result.title == "No generated test passed validation"
    assert "importing `broken` failed: ModuleNotFoundError: No module named 'not_a_real_dependency'" in result.summary
    assert result.metrics["tests_dropped"] == 1


# ------------------------------------------------------------------------------------------ the LLM


def llm_options(server: FakeLLM, key: str = KEY) -> AgentOptions:
    return AgentOptions(llm=LlmOptions(server.url, "gpt-test", key), http_timeout_s=10.0)


PASSING_LLM_TEST = f"""\
import os

from calc import first


def test_first_returns_its_first_argument():
    assert first(1, 2) == 1
    assert first("a", None) == "a"


def test_no_secret_reaches_the_tests():
    assert [name for name in os.environ if name.startswith("AQE_")] == []
    assert not any("{KEY}" in value for value in os.environ.values())
"""


async def test_the_llm_writes_tests_the_ghostwriter_cannot(tmp_path: Path, fake_llm: FakeLLM,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("AQE_LLM_API_KEY", KEY)  # as in the worker: it must not reach the sandbox
    fake_llm.reply = fenced(PASSING_LLM_TEST)
    workspace = await make_workspace(tmp_path, {"README.md": "x\n"}, {"calc.py": UNTYPED},
                                     options=llm_options(fake_llm))  # fmt: skip
    result = await run_agent(workspace, llm=True)

    assert result.conclusion == "success", result.summary
    assert result.title == "Generated 2 tests for 1 changed function"
    [call] = fake_llm.calls
    assert call.authorization == f"Bearer {KEY}" and call.json["model"] == "gpt-test"
    assert "def first(x, y):" in fake_llm.user_prompts()[0]
    assert "`from calc import first`" in fake_llm.user_prompts()[0]
    offered = workspace.artifacts["generated-tests"] / "tests/generated/test_calc_first_llm.py"
    assert offered.read_text() == PASSING_LLM_TEST
    assert "| ghostwriter, llm | ✅ 2 tests kept; 1 test dropped |" in result.summary
    assert KEY not in msgspec.json.encode(result).decode()


async def test_a_failing_llm_test_is_dropped(tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.reply = fenced("from calc import first\n\n\ndef test_first():\n    assert first(1, 2) == 2\n")
    workspace = await make_workspace(tmp_path, {"README.md": "x\n"}, {"calc.py": UNTYPED},
                                     options=llm_options(fake_llm))  # fmt: skip
    result = await run_agent(workspace, llm=True)
    assert result.conclusion == "neutral" and result.title == "No generated test passed validation"
    assert "`test_first` fails against the current code" in result.summary
    assert result.findings == []  # a wrong LLM test is not a bug of the code
    assert "generated-tests" not in workspace.artifacts and result.metrics["tests_kept"] == 0


async def test_a_refused_key_is_reported_clearly(tmp_path: Path, fake_llm: FakeLLM) -> None:
    workspace = await make_workspace(tmp_path, {"README.md": "x\n"}, {"calc.py": UNTYPED},
                                     options=llm_options(fake_llm, key="sk-wrong-key-123"))  # fmt: skip
    result = await run_agent(workspace, llm=True)
    assert [c.status for c in fake_llm.calls] == [401]
    assert "The LLM backend failed: the LLM API at http://127.0.0.1" in result.summary
    assert "refused the credentials (HTTP 401" in result.summary and "AQE_LLM_API_KEY" in result.summary
    assert "sk-wrong-key-123" not in msgspec.json.encode(result).decode()


async def test_without_llm_true_the_llm_is_not_asked(tmp_path: Path, fake_llm: FakeLLM) -> None:
    workspace = await make_workspace(tmp_path, {"README.md": "x\n"}, {"calc.py": UNTYPED},
                                     options=llm_options(fake_llm))  # fmt: skip
    result = await run_agent(workspace)
    assert fake_llm.calls == [] and result.conclusion == "neutral"
    assert "no strategy for `x`, `y`" in result.summary


# ------------------------------------------------------------------------------------ JavaScript

MATH_JS = "function sum(a, b) {\n  return a + b;\n}\n\nmodule.exports = { sum };\n"
MOCHA_TEST = """\
const assert = require("node:assert/strict");
const { sum } = require("./math");

describe("sum", () => {
  it("adds", () => {
    assert.equal(sum(1, 2), 3);
  });
});
"""
# A stand-in for mocha installed in the repository's node_modules: global describe/it, exit 1 on a failure.
FAKE_MOCHA = """\
#!/usr/bin/env node
const path = require("path");
const tests = [];
global.describe = (name, body) => body();
global.it = (name, body) => tests.push([name, body]);
for (const file of process.argv.slice(2)) require(path.resolve(file));
let failed = 0;
for (const [name, body] of tests) {
  try { body(); console.log(`ok ${name}`); }
  catch (error) { failed += 1; console.log(`not ok ${name}: ${error.message}`); }
}
process.exit(failed ? 1 : 0);
"""


def install_fake_mocha(root: Path) -> None:
    package = root / "node_modules" / "mocha"
    (package / "bin").mkdir(parents=True)
    (package / "package.json").write_text('{"name": "mocha", "version": "0.0.0", "bin": {"mocha": "bin/mocha.js"}}')
    (package / "bin" / "mocha.js").write_text(FAKE_MOCHA)
    (package / "bin" / "mocha.js").chmod(0o755)
    (root / "node_modules" / ".bin").mkdir()
    (root / "node_modules" / ".bin" / "mocha").symlink_to("../mocha/bin/mocha.js")


async def test_javascript_tests_are_run_with_the_repository_runner(tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.reply = fenced(MOCHA_TEST, "javascript")
    workspace = await make_workspace(tmp_path, {"README.md": "x\n"}, {"src/math.js": MATH_JS},
                                     options=llm_options(fake_llm))  # fmt: skip
    install_fake_mocha(workspace.root)
    result = await run_agent(workspace, framework="mocha")
    assert result.conclusion == "success", result.summary
    assert "from './math'" in fake_llm.user_prompts()[0] and "Mocha" in fake_llm.user_prompts()[0]
    assert (workspace.artifacts["generated-tests"] / "src/math.aqe.test.js").read_text() == MOCHA_TEST
    assert not (workspace.root / "src/math.aqe.test.js").exists()  # run in a copy of the work tree


async def test_javascript_tests_that_cannot_be_run_are_not_offered(tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.reply = fenced(MOCHA_TEST, "javascript")
    workspace = await make_workspace(tmp_path, {"README.md": "x\n"}, {"src/math.js": MATH_JS},
                                     options=llm_options(fake_llm))  # fmt: skip
    result = await run_agent(workspace, framework="jest")
    assert result.conclusion == "neutral"
    assert "not validated, so not offered: `jest` is not installed in the repository's `node_modules`" in result.summary
    assert result.metrics["tests_not_validated"] == 1 and "generated-tests" not in workspace.artifacts


async def test_javascript_without_an_llm_says_it_needs_one(tmp_path: Path) -> None:
    workspace = await make_workspace(tmp_path, {"README.md": "x\n"}, {"src/math.js": MATH_JS})
    result = await run_agent(workspace, framework="vitest")
    assert result.conclusion == "neutral" and "needs the LLM backend" in result.summary


async def test_python_runs_and_javascript_waits_for_an_llm(tmp_path: Path) -> None:
    head = {"src/math.js": MATH_JS, "shop.py": "def total(prices: list[int]) -> int:\n    return sum(prices)\n"}
    workspace = await make_workspace(tmp_path, {"README.md": "x\n"}, head)
    result = await run_agent(workspace, framework="mocha")
    assert result.conclusion == "success" and result.metrics["functions_targeted"] == 1
    assert "> 1 changed JavaScript/TypeScript function could get tests, but writing jest" in result.summary
    assert "`src/math.js::sum`: needs the LLM backend" in result.summary


CLAMP = """\
def clamp(value: int, low: int, high: int) -> int:
    if low > high:
        raise ValueError("low must not exceed high")
    return max(low, min(value, high))
"""


async def test_an_exception_the_function_raises_itself_is_its_contract_not_a_bug(tmp_path: Path) -> None:
    workspace = await make_workspace(tmp_path, {"README.md": "x\n"}, {"limits.py": CLAMP}, venv=False)
    result = await run_agent(workspace)

    assert result.findings == [] and result.metrics["likely_bugs"] == 0, result.summary
    assert result.metrics["tests_kept"] >= 1
    generated = (workspace.artifacts["generated-tests"] / "tests/generated/test_limits_hypothesis.py").read_text()
    assert "ValueError" in generated  # the ghostwriter was told: rejecting low > high is expected
