"""Live job events for many stream clients: one Redis reader per web process, fanned out to subscribers.

Every stream client (SSE or WebSocket) of a job needs the entries its Redis Stream `aqe:job:{id}:events` gets
after it connected. A blocking `XREAD` per client would hold one Redis connection per client (the pool has 256);
instead one reader task holds one dedicated connection and blocks on the streams of every job watched in this
process at once, and hands each entry to the subscribers' queues. When a job is first watched the reader is woken
(`CLIENT UNBLOCK`) so it adds that stream at once. A subscriber too slow to keep up (its queue full) is dropped
with a `None` in its queue, so it never holds up the others: its client reconnects and resumes from its last event
id, so nothing is lost.

What every subscriber of a job needs at the same moment — the job's record when its final event arrives — is
read once for all of them (`shared`), not once per client.

The backlog (what happened before the client connected, or since the id it resumes after) is read by the
subscriber with `XRANGE` after it subscribed; ids it already had are skipped, so nothing is seen twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
from redis.asyncio import Redis

from jobs.store import events_key

log = logging.getLogger("aqe.events")

BLOCK_MS = 15_000  # the reader's XREAD BLOCK; a new job wakes it sooner
BATCH = 500  # entries per stream per XREAD
QUEUE_SIZE = 1_000  # events a subscriber may be behind before it is dropped (and resumes)
SHARED_KEEP_S = 5.0  # how long a `shared` answer is reused
T = TypeVar("T")
Event = tuple[str, dict[str, Any]]  # (stream entry id, {"type": ..., **data})


def entry_event(entry_id: bytes | str, fields: dict[bytes, bytes]) -> Event:
    """A stream entry as `(id, {"type": ..., **data})`."""
    eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    data = msgspec.json.decode(fields.get(b"data", b"{}"))
    return eid, {"type": fields.get(b"type", b"progress").decode(), **(data if isinstance(data, dict) else {})}


def id_after(entry_id: str, last: str) -> bool:
    """Whether stream id `entry_id` comes after `last` ("ms-seq" ids compare as pairs of numbers)."""
    return _id_pair(entry_id) > _id_pair(last)


def _id_pair(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms or 0), int(seq or 0)


def valid_id(entry_id: str) -> bool:
    ms, _, seq = entry_id.partition("-")
    return ms.isdigit() and (seq.isdigit() or seq == "") and len(entry_id) <= 40


@dataclass(eq=False)
class Subscription:
    job_id: str
    queue: asyncio.Queue[Event | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))

    def offer(self, event: Event) -> bool:
        """Queue `event`; False (and the queue ends with None) when the subscriber has fallen too far behind."""
        try:
            self.queue.put_nowait(event)
            return True
        except asyncio.QueueFull:
            self.end()
            return False

    def end(self) -> None:
        """What is queued is dropped and None follows: the client resumes from the last id it got."""
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


class Subscribed:
    """`async with hub.subscription(job_id) as sub:` (a class, not a generator: a stream's generator closed by the
    loop at exit, or by the collector, unsubscribes whatever order the generators are closed in)."""

    def __init__(self, hub: EventHub, job_id: str) -> None:
        self.hub, self.job_id = hub, job_id
        self.sub: Subscription | None = None

    async def __aenter__(self) -> Subscription:
        self.sub = await self.hub.subscribe(self.job_id)
        return self.sub

    async def __aexit__(self, *exc: object) -> None:
        if self.sub is not None:
            self.hub.unsubscribe(self.sub)


@dataclass
class _Watch:
    cursor: str  # the last entry id the reader has read for this job
    subscribers: set[Subscription] = field(default_factory=set)


class EventHub:
    """`async with hub.subscription(job_id) as sub:` live events in `sub.queue` (None: fell behind, reconnect)."""

    def __init__(self, redis: Redis, reader: Redis) -> None:
        self.redis, self._reader = redis, reader  # the shared pool; a single-connection client for XREAD BLOCK
        self._watches: dict[str, _Watch] = {}
        self._changed = asyncio.Event()
        self._generation = 0  # bumped when a job is added; the reader records the one it reads with
        self._read_generation = 0
        self._reader_id: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._kicks: set[asyncio.Task[None]] = set()
        self._shared: dict[str, asyncio.Future[Any]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining = False

    @classmethod
    def for_url(cls, redis: Redis, url: str) -> EventHub:
        return cls(redis, Redis.from_url(url, single_connection_client=True))

    async def start(self) -> None:
        """Start the reader task (it connects when a job is first watched, and again after Redis went away)."""
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._read_forever(), name="aqe-event-hub")

    def drain(self) -> None:
        """The server is stopping: end every subscription now, and any made from now on, so that each stream
        ends (without a final message) and its client resumes by its last id on another web process, instead of
        being held until the server's graceful-shutdown timeout cuts it."""
        self._draining = True
        for watch in self._watches.values():
            for sub in watch.subscribers:
                sub.end()
        self._watches.clear()

    def drain_threadsafe(self) -> None:
        """`drain` from any thread or a signal handler."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.drain)

    async def close(self) -> None:
        for task in (self._task, *self._kicks):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self._reader.aclose()

    @property
    def watched(self) -> int:
        return len(self._watches)

    async def shared(self, key: str, fetch: Callable[[], Awaitable[T]], keep_s: float = SHARED_KEEP_S) -> T:
        """`await fetch()` once for every caller asking for `key` within `keep_s` s (e.g. a job's record when its
        final event reaches a thousand clients at once). A failed fetch is not kept."""
        future = self._shared.get(key)
        if future is None:
            future = asyncio.ensure_future(fetch())
            self._shared[key] = future
            future.add_done_callback(lambda done: self._forget(key, done, keep_s))
        return await asyncio.shield(future)

    def _forget(self, key: str, done: asyncio.Future[Any], keep_s: float) -> None:
        if done.cancelled() or done.exception() is not None:
            self._shared.pop(key, None)
        else:
            asyncio.get_running_loop().call_later(keep_s, self._shared.pop, key, None)

    def subscription(self, job_id: str) -> Subscribed:
        return Subscribed(self, job_id)

    async def subscribe(self, job_id: str) -> Subscription:
        sub = Subscription(job_id)
        if self._draining:
            sub.end()
            return sub
        watch = self._watches.get(job_id)
        if watch is None:
            newest = await self.redis.xrevrange(events_key(job_id), count=1)
            if self._draining:  # began while we asked
                sub.end()
                return sub
            cursor = entry_event(*newest[0])[0] if newest else "0-0"
            watch = self._watches.setdefault(job_id, _Watch(cursor))
            self._generation += 1
            self._changed.set()
            self._kick(self._generation)
        watch.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        watch = self._watches.get(sub.job_id)
        if watch is None:
            return
        watch.subscribers.discard(sub)
        if not watch.subscribers:
            del self._watches[sub.job_id]  # the reader drops its stream from the next XREAD

    def _kick(self, generation: int) -> None:
        """Wake the reader until it reads with `generation` (a CLIENT UNBLOCK sent just before it blocks is lost)."""
        task = asyncio.create_task(self._unblock_until(generation))
        self._kicks.add(task)
        task.add_done_callback(self._kicks.discard)

    async def _unblock_until(self, generation: int) -> None:
        for attempt in range(50):
            if self._read_generation >= generation or self._reader_id is None:
                return
            try:
                await self.redis.client_unblock(self._reader_id)
            except Exception:  # noqa: BLE001 - the reader reconnects; it reads the new job then
                return
            await asyncio.sleep(0.002 * (attempt + 1))

    async def _read_forever(self) -> None:
        while True:
            try:
                await self._read_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - Redis went away: retry, the subscribers keep waiting
                log.exception("the job event reader failed; retrying")
                self._reader_id = None
                await asyncio.sleep(0.5)

    async def _read_once(self) -> None:
        if not self._watches:
            self._changed.clear()
            await self._changed.wait()
            return
        if self._reader_id is None:  # (re)connected: the id CLIENT UNBLOCK wakes this connection by
            self._reader_id = int(await self._reader.client_id())
        self._read_generation = self._generation
        streams = {events_key(job_id): watch.cursor for job_id, watch in self._watches.items()}
        replies = await self._reader.xread(streams, count=BATCH, block=BLOCK_MS)  # type: ignore[arg-type]
        for key, entries in replies or []:
            job_id = (key.decode() if isinstance(key, bytes) else key).split(":")[2]
            watch = self._watches.get(job_id)
            if watch is None or not entries:
                continue
            events = [entry_event(entry_id, fields) for entry_id, fields in entries]
            watch.cursor = events[-1][0]
            for sub in list(watch.subscribers):
                for event in events:
                    if not sub.offer(event):
                        watch.subscribers.discard(sub)
                        break
            if not watch.subscribers:
                self._watches.pop(job_id, None)
