"""`aqe web`'s uvicorn protocols: a closed WebSocket connection is freed by reference counting, not left as
cycles for the garbage collector (app/uvicorn_protocols.py)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Iterator

import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.asyncio.client import connect
from websockets.server import ServerProtocol

from app.cli import UVICORN_OPTIONS
from tests.fakes.server import ThreadedServer


async def echo_once(scope, receive, send):  # type: ignore[no-untyped-def]
    """Accepts, sends one message, reads the client's, closes."""
    if scope["type"] != "websocket":
        return
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": "hello"})
    message = await receive()
    if message["type"] == "websocket.receive":
        await send({"type": "websocket.close", "code": 1000})


@contextlib.contextmanager
def collector_off() -> Iterator[None]:
    """Only reference counting frees objects meanwhile: what a cycle holds stays visible."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@contextlib.contextmanager
def served(app, options: dict[str, object]) -> Iterator[int]:  # type: ignore[no-untyped-def]
    server = ThreadedServer(app, "uvicorn-protocols-under-test", **options)
    url = server.start()
    try:
        yield int(url.rsplit(":", 1)[1])
    finally:
        server.stop()


def live_protocols() -> list[object]:
    kinds = (HttpToolsProtocol, WebSocketsSansIOProtocol, ServerProtocol)  # uvicorn's two, and websockets' own
    return [o for o in gc.get_objects() if issubclass(type(o), kinds)]


async def connections_closed(port: int, count: int, client_closes: bool) -> None:
    for _ in range(count):
        async with connect(f"ws://127.0.0.1:{port}/stream") as ws:
            assert await ws.recv() == "hello"
            if client_closes:
                await ws.close()
            else:
                await ws.send("bye")
                await ws.wait_closed()


@pytest.mark.parametrize("client_closes", [False, True], ids=["server-closes", "client-closes"])
async def test_closed_websocket_connections_leave_no_protocol_objects(client_closes: bool) -> None:
    with collector_off():
        with served(echo_once, UVICORN_OPTIONS) as port:
            before = len(live_protocols())
            await connections_closed(port, 20, client_closes)
            for _ in range(50):  # the server sees each close a moment after the client
                if len(live_protocols()) == before:
                    break
                await asyncio.sleep(0.02)
            assert len(live_protocols()) == before, [type(o).__name__ for o in live_protocols()]


async def test_the_protocols_serve_plain_requests_too() -> None:
    async def hello(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    with served(hello, UVICORN_OPTIONS) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and await reader.readexactly(2) == b"ok"
        writer.close()
