"""The baseline: a bare ASGI app that reads the body, checks X-Hub-Signature-256 and answers 202.

No parsing, no Redis, no logging: what any webhook receiver must do at least, served by the same
uvicorn settings as `aqe web`, so that AQE's figure can be read as a ratio of it.
"""

from __future__ import annotations

import hashlib
import hmac
import os

SECRET = os.environ.get("GITHUB_WEBHOOK_SECRET", "bench-secret").encode()


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    given = dict(scope["headers"]).get(b"x-hub-signature-256", b"")
    expected = b"sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest().encode()
    status = 202 if hmac.compare_digest(given, expected) else 401
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"ok":true}'})
