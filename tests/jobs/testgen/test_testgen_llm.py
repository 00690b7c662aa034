"""The LLM backend: prompts and answers (pure), and the client against a fake OpenAI-compatible server."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from jobs.agents.base import LlmOptions
from jobs.testgen.llm import (
    LlmClient,
    LlmError,
    Request,
    answer_code,
    first_code_block,
    TEST_TYPES,
    messages_for,
    relative_import,
    shown_url,
)
from jobs.testgen.targets import FunctionSpan, Target
from tests.fakes.llm import FakeLLM, fenced

KEY = "sk-test-fake-key"
TEST = "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"


def target(path: str = "calc.py", qualname: str = "add", language: str = "python") -> Target:
    span = FunctionSpan(qualname=qualname, def_line=1, start_line=1, end_line=2)
    return Target(path, span, language, 2, "def add(a, b):\n    return a + b", module="calc")  # type: ignore[arg-type]


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    with FakeLLM(api_key=KEY, reply=fenced(TEST)) as server:
        yield server


async def ask(fake: FakeLLM, key: str | None = KEY, timeout_s: float = 10.0) -> str:
    async with httpx.AsyncClient() as http:
        client = LlmClient(LlmOptions(fake.url, "gpt-test", key), http, timeout_s)
        return await client.ask(messages_for(Request(target(), "pytest", "tests/generated/test_calc_add_llm.py")))


def test_first_code_block() -> None:
    assert first_code_block(fenced(TEST)) == TEST
    assert first_code_block("```js\nit('a')\n```\n```py\nx\n```") == "it('a')\n"
    assert first_code_block("~~~~\ncode\n~~~~") == "code\n"
    assert first_code_block("no code here") is None
    assert first_code_block("```\n\n```") is None


def test_answers_that_are_not_completions() -> None:
    with pytest.raises(LlmError, match="no `choices`"):
        answer_code({"object": "error"})
    with pytest.raises(LlmError, match=r"choices\[0\]\.message\.content"):
        answer_code({"choices": [{"message": {"role": "assistant", "content": None}}]})
    cut = {"choices": [{"message": {"content": "```python\nimport x"}, "finish_reason": "length"}]}
    with pytest.raises(LlmError, match="cut off"):
        answer_code(cut)


def test_prompts_say_how_to_import() -> None:
    python = messages_for(Request(target(), "pytest", "tests/generated/test_calc_add_llm.py"))
    assert python[0]["role"] == "system" and "fenced code block" in python[0]["content"]
    assert "`from calc import add`" in python[1]["content"] and "def add(a, b)" in python[1]["content"]
    js = messages_for(Request(target("src/lib/math.ts", "sum", "javascript"), "vitest", "src/lib/math.aqe.test.ts"))
    assert "from './math'" in js[1]["content"] and "from 'vitest'" in js[1]["content"]


@pytest.mark.parametrize(
    ("test_path", "source", "expected"),
    [
        ("src/math.aqe.test.js", "src/math.js", "./math"),
        ("test/math.test.js", "src/lib/math.mjs", "../src/lib/math"),
        ("math.test.ts", "math.ts", "./math"),
    ],
)
def test_relative_import(test_path: str, source: str, expected: str) -> None:
    assert relative_import(test_path, source) == expected


def test_shown_url_drops_credentials() -> None:
    assert shown_url("https://user:secret@llm.example/v1/chat/completions?key=1") == \
        "https://llm.example/v1/chat/completions"  # fmt: skip


async def test_a_completion_with_the_key_as_bearer_token(fake: FakeLLM) -> None:
    assert await ask(fake) == TEST
    [call] = fake.calls
    assert call.path == "/v1/chat/completions" and call.authorization == f"Bearer {KEY}"
    assert call.json["model"] == "gpt-test" and call.json["temperature"] == 0
    assert [m["role"] for m in call.json["messages"]] == ["system", "user"]


async def test_a_wrong_key_is_a_clear_fatal_error(fake: FakeLLM) -> None:
    with pytest.raises(LlmError) as caught:
        await ask(fake, key="sk-wrong-key")
    assert caught.value.fatal
    message = str(caught.value)
    assert "refused the credentials (HTTP 401: Incorrect API key provided.)" in message
    assert "AQE_LLM_API_KEY" in message and "sk-wrong-key" not in message and KEY not in message


async def test_rate_limits_and_server_errors_are_retried_once(fake: FakeLLM) -> None:
    fake.fail_next(1, 429)
    assert await ask(fake) == TEST
    fake.fail_next(2, 503)
    with pytest.raises(LlmError, match=r"the LLM API failed \(HTTP 503: The engine is currently overloaded"):
        await ask(fake)
    fake.fail_next(2, 429)
    with pytest.raises(LlmError, match="rate limiting"):
        await ask(fake)
    assert [c.status for c in fake.calls] == [429, 200, 503, 503, 429, 429]


async def test_garbage_and_answers_without_code(fake: FakeLLM) -> None:
    fake.garbage = True
    with pytest.raises(LlmError, match="not JSON"):
        await ask(fake)
    fake.garbage = False
    fake.reply = "I cannot help with that."
    with pytest.raises(LlmError, match="no fenced code block"):
        await ask(fake)


async def test_a_slow_server_times_out(fake: FakeLLM) -> None:
    fake.delay_s = 1.0
    with pytest.raises(LlmError, match="did not answer within 0.3 s"):
        await ask(fake, timeout_s=0.3)


async def test_an_unreachable_server() -> None:
    server = FakeLLM()
    server.start()
    url = server.url
    server.stop()
    async with httpx.AsyncClient() as http:
        client = LlmClient(LlmOptions(url, "m", KEY), http, 2.0)
        with pytest.raises(LlmError, match="cannot reach the LLM API at http://127.0.0.1") as caught:
            await client.ask([{"role": "user", "content": "x"}])
    assert caught.value.fatal


@pytest.mark.parametrize("test_type", ["integration", "e2e", "api", "performance"])
def test_the_prompt_asks_for_the_kind_of_test(test_type: str) -> None:
    [_, user] = messages_for(Request(target(), "pytest", f"tests/generated/test_calc_add_{test_type}_llm.py", test_type))
    assert f"Write pytest {test_type} tests for `add`" in user["content"]
    assert TEST_TYPES[test_type] in user["content"]
    [_, unit] = messages_for(Request(target(), "pytest", "tests/generated/test_calc_add_llm.py"))
    assert "Write pytest tests for `add`" in unit["content"] and TEST_TYPES[test_type] not in unit["content"]


async def test_an_answer_over_the_size_limit_is_refused(fake: FakeLLM) -> None:
    from jobs.testgen.llm import MAX_REPLY_BYTES

    fake.reply = fenced("x = 1\n" * (MAX_REPLY_BYTES // 6 + 10))  # read as it streams in, given up past the limit
    with pytest.raises(LlmError, match="larger than 1024 KiB"):
        await ask(fake)


def test_lines_holding_a_secret_never_reach_the_prompt(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from jobs.agents.testgen import secret_lines
    from jobs.testgen.targets import select_targets
    from jobs.testgen.config import TestGenerationConfig

    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"  # a GitHub token's shape
    (tmp_path / "client.py").write_text(f'def call(path: str) -> str:\n    token = "{token}"\n'
                                        '    return path + token[:0]\n')
    [found] = select_targets(tmp_path, {"client.py": {1, 2, 3}}, TestGenerationConfig(), "python").targets
    hidden = secret_lines(tmp_path, {"client.py"})
    assert hidden == {"client.py": frozenset({2})}
    [_, user] = messages_for(Request(found, "pytest", "tests/test_client.py", secret_lines=hidden["client.py"]))
    assert token not in user["content"] and "this line holds a secret" in user["content"]
    assert "return path + token[:0]" in user["content"]  # the rest of the function is sent
