"""A fake OpenAI-compatible chat completions API for the test-generation agent's tests.

`FakeLLM` is a real HTTP server on 127.0.0.1 (uvicorn in a daemon thread) serving `POST /v1/chat/completions`
(its `url` is the base, `http://127.0.0.1:<port>/v1`, as `AQE_LLM_URL` would be). It checks the Bearer key
the way OpenAI does (401 with an `invalid_api_key` error body otherwise), validates the request's shape
(400 otherwise), records every request in `calls`, and answers in the real response shape: `id`, `object`
"chat.completion", `created`, `model`, `choices[{index, message{role, content, refusal}, logprobs,
finish_reason}]`, `usage`. The reply is `reply` (a string, or a function of the request's JSON).
`fail_next(n, status)` answers the next `n` requests with `status` (a 429 carries `retry-after: 0`);
`garbage = True` answers 200 with HTML; `delay_s` holds every answer back.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import FakeServer

Reply = str | Callable[[dict[str, Any]], str]

ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("invalid_request_error", "Incorrect API key provided."),
    429: ("rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", "The server had an error while processing your request."),
    503: ("server_error", "The engine is currently overloaded, please try again later."),
}


@dataclass(frozen=True)
class Call:
    path: str
    authorization: str | None
    json: Any
    status: int


def fenced(code: str, info: str = "python") -> str:
    """A reply as models write them: a sentence, then the code in a fenced block."""
    return f"Here are the tests:\n\n```{info}\n{code.rstrip()}\n```\n\nThey cover the main cases."


class FakeLLM(FakeServer):
    def __init__(self, api_key: str | None = "sk-test-fake-key", reply: Reply = "") -> None:
        self.api_key = api_key
        self.reply: Reply = reply
        self.calls: list[Call] = []
        self.garbage = False
        self.delay_s = 0.0
        self.lock = threading.Lock()
        self._failures: list[int] = []
        self._ids = itertools.count(1)
        self.app = Starlette(routes=[Route("/v1/chat/completions", self._completions, methods=["POST"])])
        self.serve(self.app, "fake-llm")

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """The base URL, as `AQE_LLM_URL` holds it."""
        return f"{self.base_url}/v1"


    # ------------------------------------------------------------------ test-side controls

    def fail_next(self, count: int, status: int = 500) -> None:
        with self.lock:
            self._failures += [status] * count

    def user_prompts(self) -> list[str]:
        with self.lock:
            return [m["content"] for c in self.calls if isinstance(c.json, dict)
                    for m in c.json.get("messages", []) if m.get("role") == "user"]

    # ------------------------------------------------------------------ the endpoint

    def _record(self, request: Request, body: Any, status: int) -> None:
        with self.lock:
            self.calls.append(Call(request.url.path, request.headers.get("authorization"), body, status))

    def _error(self, request: Request, body: Any, status: int, code: str | None = None) -> Response:
        self._record(request, body, status)
        kind, message = ERRORS.get(status, ("server_error", "Error."))
        headers = {"retry-after": "0"} if status == 429 else {}
        return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": code}},
                            status_code=status, headers=headers)

    async def _completions(self, request: Request) -> Response:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        try:
            body = json.loads(await request.body())
        except ValueError:
            return self._error(request, None, 400)
        if self.api_key is not None and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return self._error(request, body, 401, "invalid_api_key")
        with self.lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            return self._error(request, body, failure)
        if not _valid_request(body):
            return self._error(request, body, 400)
        self._record(request, body, 200)
        if self.garbage:
            return Response("<html><body>502 Bad Gateway</body></html>", media_type="text/html")
        content = self.reply(body) if callable(self.reply) else self.reply
        return JSONResponse(self._completion(body["model"], content))

    def _completion(self, model: str, content: str) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-fake{next(self._ids):06d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }],
            "usage": {"prompt_tokens": 100, "completion_tokens": len(content.split()),
                      "total_tokens": 100 + len(content.split())},
        }  # fmt: skip


def _valid_request(body: Any) -> bool:
    if not isinstance(body, dict) or not isinstance(body.get("model"), str) or not body["model"]:
        return False
    messages = body.get("messages")
    return isinstance(messages, list) and bool(messages) and all(
        isinstance(m, dict) and m.get("role") in ("system", "user", "assistant") and isinstance(m.get("content"), str)
        for m in messages
    )
