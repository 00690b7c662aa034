"""Tests written by an OpenAI-compatible chat completions API (`AQE_LLM_URL`, `AQE_LLM_MODEL`, `AQE_LLM_API_KEY`).

`POST {url}/chat/completions` with `{"model", "messages", "temperature": 0}` and the key as a Bearer token;
the test is the first fenced code block of `choices[0].message.content`. Prompts, the request body and the
reading of the answer are pure; `ask` is the HTTP adapter. Every failure is an `LlmError` whose message says
what went wrong and never holds the key (nor any user info of the URL).
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from jobs.agents.base import LlmOptions
from jobs.testgen.config import Framework
from jobs.testgen.targets import Target

MAX_SOURCE_CHARS = 12_000
MAX_REPLY_BYTES = 1024 * 1024
MAX_RETRY_AFTER_S = 5.0
DEFAULT_RETRY_AFTER_S = 0.5
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

SYSTEM_PROMPT = (
    "You are a senior software engineer writing unit tests. Answer with exactly one fenced code block that "
    "holds a complete, runnable test file, and nothing else."
)

FRAMEWORK_RULES: dict[Framework, str] = {
    "pytest": "Use plain pytest (no plugins, no fixtures beyond pytest's own such as `tmp_path`); name the test "
              "functions `test_...`.",
    "jest": "Use Jest's global `describe`, `it` and `expect`.",
    "vitest": "Import `describe`, `it` and `expect` from 'vitest'.",
    "mocha": "Use Mocha's global `describe` and `it`, and Node's `assert` (from 'node:assert/strict').",
}


class LlmError(Exception):
    """The LLM backend gave no usable answer; the message is shown to users. `fatal`: do not ask again."""

    def __init__(self, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal


# ------------------------------------------------------------------------------------- prompts


@dataclass(frozen=True, slots=True)
class Request:
    target: Target
    framework: Framework
    test_path: str  # where the test file will live in the repository
    test_type: str = "unit"
    secret_lines: frozenset[int] = frozenset()  # lines of the file holding a secret: never sent to the LLM


def without_secret_lines(source: str, first_line: int, secret_lines: frozenset[int]) -> str:
    """`source` (starting at line `first_line` of its file) with every line that holds a secret replaced."""
    if not secret_lines:
        return source
    out = []
    for number, line in enumerate(source.splitlines(), first_line):
        indent = line[: len(line) - len(line.lstrip())]
        out.append(f"{indent}...  # this line holds a secret: it is not sent" if number in secret_lines else line)
    return "\n".join(out)


TEST_TYPES = {  # what each kind of test asks of the model
    "unit": "",
    "integration": ("Write integration tests: exercise it together with the real modules of the repository it "
                    "uses (no mocks of the repository's own code); fake only what leaves the process."),
    "e2e": ("Write end-to-end tests: drive it the way a user of the project would, through its public entry "
            "point, and check the observable result."),
    "api": ("Write API tests: call it through its public interface as a client would, covering valid input, "
            "invalid input and the errors it reports."),
    "performance": ("Write performance tests: check that it handles large inputs within generous time budgets "
                    "(measure with a monotonic clock; budgets at least 10 times what it needs here)."),
}


def import_hint(request: Request) -> str:
    target = request.target
    if request.framework == "pytest":
        owner = target.qualname.split(".")[0]
        if target.span.is_method:
            return (f"Import the class with `from {target.module} import {owner}`, build instances and call "
                    f"`{target.name}` on them.")  # fmt: skip
        return f"Import it with `from {target.module} import {target.name}`."
    module = relative_import(request.test_path, target.path)
    return (f"The test file will be saved as `{request.test_path}`: import `{target.name}` from '{module}', with "
            "the module syntax the source uses (ES `import` when it uses `export`, `require` otherwise).")  # fmt: skip


def relative_import(test_path: str, source_path: str) -> str:
    """The specifier that imports `source_path` from a file at `test_path` (both repository-relative)."""
    test_dir = test_path.split("/")[:-1]
    source = source_path.split("/")
    common = 0
    while common < min(len(test_dir), len(source) - 1) and test_dir[common] == source[common]:
        common += 1
    ups = [".."] * (len(test_dir) - common)
    stem = re.sub(r"\.(?:[cm]?[jt]sx?)$", "", source[-1])
    return "/".join(ups or ["."]) + "/" + "/".join([*source[common:-1], stem])


def messages_for(request: Request) -> list[dict[str, str]]:
    target = request.target
    language = "python" if target.language == "python" else "javascript"
    source = without_secret_lines(target.source, target.span.start_line, request.secret_lines)[:MAX_SOURCE_CHARS]
    kind = "" if request.test_type == "unit" else f"{request.test_type} "
    user = (
        f"Write {request.framework} {kind}tests for `{target.qualname}`, defined in `{target.path}`:\n\n"
        f"```{language}\n{source}\n```\n\n"
        f"{import_hint(request)} {FRAMEWORK_RULES[request.framework]} The tests must pass against this "
        "implementation: test what it does, including the edge cases it handles, and nothing it does not do. "
        "No network access, no sleeping, no files outside a temporary directory."
        + (f" {TEST_TYPES[request.test_type]}" if TEST_TYPES.get(request.test_type) else "")
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def request_body(model: str, messages: list[dict[str, str]]) -> dict[str, Any]:
    return {"model": model, "messages": messages, "temperature": 0}


# ------------------------------------------------------------------------------------- answers

_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$",
                    re.MULTILINE | re.DOTALL)  # fmt: skip


def first_code_block(content: str) -> str | None:
    """The body of the first fenced code block of a Markdown answer, or None."""
    match = _FENCE.search(content)
    if match is None:
        return None
    body = match.group("body")
    return body if body.strip() else None


def completion_content(data: Any) -> tuple[str, str]:
    """(`choices[0].message.content`, `finish_reason`) of a chat completion; LlmError for anything else."""
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise LlmError("the LLM API answered something that is not a chat completion (no `choices`)")
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        raise LlmError("the LLM API answered a chat completion without `choices[0].message.content`")
    reason = choices[0].get("finish_reason")
    return content, reason if isinstance(reason, str) else ""


def answer_code(data: Any) -> str:
    """The test file in a chat completion; LlmError when there is none."""
    content, finish_reason = completion_content(data)
    code = first_code_block(content)
    if code is None:
        cut = " (the answer was cut off: finish_reason `length`)" if finish_reason == "length" else ""
        raise LlmError(f"the LLM's answer holds no fenced code block{cut}")
    return code


def shown_url(url: str) -> str:
    """The URL without user info, query or fragment: what messages may show."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def status_error(status: int, body: bytes, endpoint: str) -> LlmError:
    detail = _error_detail(body)
    if status in (401, 403):
        return LlmError(f"the LLM API at {endpoint} refused the credentials (HTTP {status}{detail}): check "
                        "`AQE_LLM_API_KEY`", fatal=True)  # fmt: skip
    if status == 404:
        return LlmError(f"the LLM API answered HTTP 404 at {endpoint}{detail}: check `AQE_LLM_URL` (the base URL, "
                        "e.g. https://api.openai.com/v1) and `AQE_LLM_MODEL`", fatal=True)  # fmt: skip
    if status == 429:
        return LlmError(f"the LLM API is rate limiting AQE (HTTP 429{detail}); try again later", fatal=True)
    if status >= 500:
        return LlmError(f"the LLM API failed (HTTP {status}{detail})")
    return LlmError(f"the LLM API rejected the request (HTTP {status}{detail})")


def _error_detail(body: bytes) -> str:
    """`: <error.message>` of an OpenAI error body, shortened; "" when there is none."""
    try:
        data = json.loads(body[:65536])
    except ValueError:
        return ""
    error = data.get("error") if isinstance(data, dict) else None
    message = error.get("message") if isinstance(error, dict) else error if isinstance(error, str) else None
    if not isinstance(message, str) or not message.strip():
        return ""
    text = " ".join(message.split())
    return f": {text[:197]}..." if len(text) > 200 else f": {text}"


def retry_after_s(headers: httpx.Headers) -> float:
    """The server's `retry-after` (seconds, at most MAX_RETRY_AFTER_S), else DEFAULT_RETRY_AFTER_S."""
    try:
        return min(max(float(headers.get("retry-after", DEFAULT_RETRY_AFTER_S)), 0.0), MAX_RETRY_AFTER_S)
    except ValueError:
        return DEFAULT_RETRY_AFTER_S


# ------------------------------------------------------------------------------------ the adapter


class LlmClient:
    """Asks the chat completions endpoint; one retry after a 429 or 5xx answer."""

    def __init__(self, options: LlmOptions, client: httpx.AsyncClient, timeout_s: float) -> None:
        self.options, self.client, self.timeout_s = options, client, timeout_s
        self.endpoint = f"{options.url.rstrip('/')}/chat/completions"

    def _scrub(self, text: str) -> str:
        key = self.options.api_key
        return text.replace(key, "***") if key else text

    async def ask(self, messages: list[dict[str, str]]) -> str:
        """The test code of the answer; LlmError with a clear message otherwise."""
        try:
            return answer_code(await self._completion(messages))
        except LlmError as exc:
            raise LlmError(self._scrub(str(exc)), fatal=exc.fatal) from None

    async def _completion(self, messages: list[dict[str, str]]) -> Any:
        shown = shown_url(self.endpoint)
        headers = {"Authorization": f"Bearer {self.options.api_key}"} if self.options.api_key else {}
        body = request_body(self.options.model, messages)
        for attempt in (1, 2):
            try:
                status, reply_headers, content = await self._post(body, headers)
            except httpx.TimeoutException:
                raise LlmError(f"the LLM API at {shown} did not answer within {self.timeout_s:g} s") from None
            except httpx.HTTPError as exc:
                raise LlmError(f"cannot reach the LLM API at {shown}: {type(exc).__name__}", fatal=True) from None
            if status in RETRY_STATUSES and attempt == 1:
                await asyncio.sleep(retry_after_s(reply_headers))
                continue
            if status != 200:
                raise status_error(status, content or b"", shown)
            if content is None:
                raise LlmError(f"the LLM API's answer is larger than {MAX_REPLY_BYTES // 1024} KiB")
            try:
                return json.loads(content)
            except ValueError:
                raise LlmError(f"the LLM API at {shown} answered something that is not JSON "
                               f"({reply_headers.get('content-type', 'no content type')})") from None  # fmt: skip
        raise LlmError("unreachable")  # pragma: no cover

    async def _post(self, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, httpx.Headers, bytes | None]:
        """Status, headers and body; the body is read as it streams in and given up (None) past MAX_REPLY_BYTES,
        so a huge or endless answer never sits whole in the worker's memory."""
        async with self.client.stream("POST", self.endpoint, json=body, headers=headers,
                                      timeout=self.timeout_s) as response:
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_REPLY_BYTES:
                    return response.status_code, response.headers, None
                chunks.append(chunk)
            return response.status_code, response.headers, b"".join(chunks)
