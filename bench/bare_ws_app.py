"""The WebSocket baseline: a bare ASGI app that accepts, sends two messages and closes.

No authentication, no rate limit, no Redis, no routing: what any WebSocket endpoint served by uvicorn costs at
least. It sends what AQE's stream sends to a client of an ended job (a `progress` message, then a `complete`
one of about the same size, then a 1000 close), so that `bench/streams.py --baseline` can read AQE's closed-loop
figure as a ratio of it. Served by `uvicorn` with the options `aqe web` uses.
"""

from __future__ import annotations

QUEUED = ('{"type":"progress","progress":0.0,"message":"queued","status":"queued","id":"1732838400000-0"}')
COMPLETE = ('{"type":"complete","status":"completed","progress":100.0,"conclusion":"success",'
            '"id":"1732838400001-0","result":{"conclusion":"success","agents":[]}}')


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] == "http":  # the readiness probe of bench/common.start
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    if scope["type"] != "websocket" or (await receive())["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": QUEUED})
    await send({"type": "websocket.send", "text": COMPLETE})
    await send({"type": "websocket.close", "code": 1000})
