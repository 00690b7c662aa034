"""A lean WebSocket client for the connect benchmarks: one asyncio Protocol per connection, no library.

A load generator that shares this 2-core machine with the server must cost little, or its own CPU becomes the
latency it measures (wrk plays that part for the REST figures). `websockets`' client costs ~0.5 ms of CPU per
connect + first message + close here; this one ~0.1 ms. It still does the real thing: an RFC 6455 handshake with a
random key whose `Sec-WebSocket-Accept` it checks, the first frame parsed (it must be a text frame), then a masked
close frame (1000) before it closes the socket.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CLOSE_1000 = b"\x03\xe8"


def masked_close() -> bytes:
    mask = os.urandom(4)
    return b"\x88\x82" + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(CLOSE_1000))


class FirstMessage(asyncio.Protocol):
    """Sends the upgrade request; resolves `done` with the first message's payload (or an error)."""

    def __init__(self, request: bytes, accept: bytes, done: asyncio.Future[bytes]) -> None:
        self.request, self.accept, self.done = request, accept, done
        self.buffer, self.upgraded = b"", False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)  # type: ignore[union-attr]

    def fail(self, error: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(error)
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            return
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buffer = self.buffer[:end], self.buffer[end + 4:]
            if not head.startswith(b"HTTP/1.1 101") or b"\r\nsec-websocket-accept: " + self.accept not in head.lower():
                self.fail(ConnectionError(f"handshake refused: {head[:200]!r}"))
                return
            self.upgraded = True
        payload = first_frame(self.buffer)
        if payload is None:
            return
        if self.buffer[0] & 0x0F != 1:
            self.fail(ConnectionError(f"the first frame is not text (opcode {self.buffer[0] & 0x0F})"))
            return
        self.done.set_result(payload)
        assert self.transport is not None
        self.transport.write(masked_close())
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"closed before the first message: {exc or 'EOF'}"))


def first_frame(buffer: bytes) -> bytes | None:
    """The payload of the (unmasked, server-sent) frame at the start of `buffer`, or None until it is complete."""
    if len(buffer) < 2:
        return None
    size, at = buffer[1] & 0x7F, 2
    if size == 126:
        size, at = (int.from_bytes(buffer[2:4], "big"), 4) if len(buffer) >= 4 else (-1, 0)
    elif size == 127:
        size, at = (int.from_bytes(buffer[2:10], "big"), 10) if len(buffer) >= 10 else (-1, 0)
    if size < 0 or len(buffer) < at + size:
        return None
    return buffer[at:at + size]


async def first_message(host: str, port: int, path: str, headers: dict[str, str]) -> bytes:
    """Connect to ws://host:port/path, and return the first message the server sends."""
    key = base64.b64encode(os.urandom(16))
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest()).lower()
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n").encode()
    loop = asyncio.get_running_loop()
    done: asyncio.Future[bytes] = loop.create_future()
    await loop.create_connection(lambda: FirstMessage(request, accept, done), host, port)
    return await done
