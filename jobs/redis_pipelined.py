"""A pipelining Redis connection for the webhook hot path: many commands in flight on one socket.

redis-py takes a pooled connection, a lock and a full request/response cycle per command, which cost
more CPU than the rest of a webhook delivery together. Here every command is written as soon as it
is issued (hiredis packs it) and replies are matched to waiters in order (hiredis parses them). It
serves the calls every request makes: the enqueue script of a delivery or job request, the API's
rate-limit scripts (which also read the job a status or stream request asks for) and a stream client's
backlog (XRANGE); everything else uses redis-py.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any
from urllib.parse import unquote, urlsplit

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.waiters: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.unsent: list[bytes] = []  # commands issued in this turn of the event loop, written together at its end

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio's classes

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            waiter = self.waiters.popleft()
            if waiter.done():
                continue
            if isinstance(reply, hiredis.ReplyError):
                error = NoScriptError if str(reply).startswith("NOSCRIPT") else ResponseError
                waiter.set_exception(error(str(reply)))
            else:
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(RedisConnectionError(f"connection to Redis lost: {exc or 'closed'}"))

    def send(self, payload: bytes) -> asyncio.Future[Any]:
        """Queue one packed command; its reply comes in the returned future. Under load many requests issue a
        command in the same turn of the event loop: one write (one system call) carries them all."""
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self.waiters.append(waiter)
        if not self.unsent:
            loop.call_soon(self._flush)
        self.unsent.append(payload)
        return waiter

    def _flush(self) -> None:
        unsent, self.unsent = self.unsent, []
        if self.transport is not None and not self.closed:
            self.transport.write(unsent[0] if len(unsent) == 1 else b"".join(unsent))


class PipelinedRedis:
    """`await PipelinedRedis(url).execute("EVALSHA", ...)`; reconnects on the next call after a failure."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "unix"):
            raise ValueError("the pipelined connection supports redis:// and unix:// URLs")
        self.scheme, self.host, self.port = parts.scheme, parts.hostname or "127.0.0.1", parts.port or 6379
        self.path = parts.path if parts.scheme == "unix" else ""
        self.db = int(parts.path.strip("/") or 0) if parts.scheme == "redis" else 0
        self.username, self.password = unquote(parts.username or ""), unquote(parts.password or "")
        self._protocol: _Protocol | None = None
        self._connecting = asyncio.Lock()

    async def _connection(self) -> _Protocol:
        if self._protocol is not None and not self._protocol.closed:
            return self._protocol
        async with self._connecting:
            if self._protocol is None or self._protocol.closed:
                self._protocol = await self._connect()
        return self._protocol

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        try:
            if self.scheme == "unix":
                _, protocol = await loop.create_unix_connection(_Protocol, self.path)
            else:
                _, protocol = await loop.create_connection(_Protocol, self.host, self.port)
        except OSError as exc:
            raise RedisConnectionError(f"cannot connect to Redis: {exc}") from exc
        if self.password:
            auth = (self.username, self.password) if self.username else (self.password,)
            await protocol.send(hiredis.pack_command(("AUTH", *auth)))
        if self.db:
            await protocol.send(hiredis.pack_command(("SELECT", self.db)))
        return protocol

    async def execute(self, *args: Any) -> Any:
        protocol = await self._connection()
        return await protocol.send(hiredis.pack_command(args))

    async def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None
