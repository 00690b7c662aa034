"""A job's progress, live: `GET /api/v1/job/{id}/events` (Server-Sent Events) and `WS /api/v1/job/{id}/stream`.

Both read the job's Redis Stream, so any web replica serves any job. A client first gets what it missed — all
of the job's events, or those after the id it resumes from (SSE `Last-Event-ID`, or `?after=<id>` on either) —
then the live ones (`jobs.event_hub`), then the final message (`complete` or `error`), and the stream closes.
A finished job's stream replays and closes. While nothing happens a keep-alive goes out every 15 s.

Messages (the WebSocket's JSON, and each SSE event's `data`, whose `id:` is the event id and `event:` the type):
`{"type": "progress", "progress": 45.2, "message": "agent:tests started", "status": "running", "id": "…"}`,
`{"type": "complete", "progress": 100.0, "status": "completed", "result": {…}, "id": "…"}` (the `result` of
the status endpoint), `{"type": "error", "status": "failed", "error": "…", "id": "…"}`, `{"type": "ping"}`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from types import FrameType
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from app.api.auth import require_job_visible, require_scope
from app.api.errors import ApiError
from app.api.jobs import JOB_ID_RE, prefetched_backlog, read_job, status_view
from jobs.event_hub import EventHub, id_after, valid_id
from jobs.links import job_link_valid
from jobs.model import TERMINAL_STATUSES, JobRecord
from jobs.store import JobStore, parsed_events

KEEPALIVE_S = 15.0
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no proxy caches or buffers the stream
FINAL_TYPES = ("complete", "error")
BACKLOG_PAGE = 1_000
_encode = msgspec.json.Encoder().encode


def message_of(event_id: str, event: dict[str, Any], record: JobRecord | None = None) -> dict[str, Any]:
    """The client's message for one stored event (`record`: the job, for a final message's result)."""
    kind = event.get("type", "progress")
    if kind in FINAL_TYPES:
        out: dict[str, Any] = {"type": kind, "status": event.get("status"), "progress": event.get("progress"),
                               "conclusion": event.get("conclusion"), "id": event_id}
        if kind == "error":
            out["error"] = event.get("error") or (record.error if record else None)
        if record is not None:
            out["result"] = status_view(record)["result"]
        return out
    return {"type": "progress", "progress": float(event.get("progress") or 0.0),
            "message": event.get("message") or event.get("status") or kind, "status": event.get("status"),
            "id": event_id}


def final_of(record: JobRecord) -> dict[str, Any]:
    """The final message of an ended job whose final event is no longer in its stream (trimmed or expired)."""
    kind = "complete" if record.status in ("completed", "skipped") else "error"
    return message_of("", {"type": kind, "status": record.status, "progress": record.progress,
                           "conclusion": record.conclusion, "error": record.error}, record)


def sse_frame(message: dict[str, Any]) -> bytes:
    head = f"id: {message['id']}\n" if message.get("id") else ""
    return f"{head}event: {message['type']}\ndata: ".encode() + _encode(message) + b"\n\n"


def query_param(connection: HTTPConnection, name: str) -> str | None:
    """A query parameter. Most stream connections carry no query string, and parsing an empty one costs as much
    as a short one (this runs twice per connection: for the rate limit's read, then for the endpoint)."""
    return connection.query_params.get(name) if connection.scope["query_string"] else None


def resume_after(connection: HTTPConnection) -> str | None:
    """The event id a client resumes after: `Last-Event-ID` (SSE reconnects) or `?after=`; "0-0" = everything;
    None when it is not an event id."""
    after = connection.headers.get("last-event-id") or query_param(connection, "after") or "0-0"
    return after if valid_id(after) else None


def resume_point(connection: HTTPConnection) -> str:
    if (after := resume_after(connection)) is None:
        raise ApiError(422, "invalid_request", "after / Last-Event-ID: an event id like 1732838400000-0")
    return after


async def visible_record(connection: HTTPConnection, job_id: str) -> JobRecord:
    """The job, for a caller with `jobs:read` on its repository or a signed link to it (`?t=`, the job page)."""
    if not JOB_ID_RE.match(job_id):
        raise ApiError(404, "job_not_found", f"no job '{job_id[:40]}' (job ids are 24 hex characters)")
    token = query_param(connection, "t")
    linked = token is not None and job_link_valid(connection.app.state.settings.jwt_secret, job_id, token)
    principal = None if linked else await require_scope(connection, "jobs:read")  # type: ignore[arg-type]
    record = await read_job(connection, job_id)
    if record is None:
        raise ApiError(404, "job_not_found", f"no job '{job_id}' (records are kept 30 days)")
    if principal is not None:
        require_job_visible(principal, job_id, record.request.repo, record.request.forge)
    return record


async def job_messages(store: JobStore, hub: EventHub, record: JobRecord, after: str,
                       keepalive_s: float = KEEPALIVE_S,
                       backlog: list[tuple[str, dict[str, Any]]] | None = None) -> AsyncIterator[dict[str, Any]]:
    """Missed events, then live ones, then the final message; `{"type": "ping"}` while idle. Ends after the final
    message, or early (without one) when this client fell too far behind: it resumes from its last id.
    `backlog`: the first page of events after `after` (up to BACKLOG_PAGE), read with `record`."""
    if record.status in TERMINAL_STATUSES:  # nothing more will come: replay without watching the stream
        async for message in ended_job_messages(store, record, after, backlog):
            yield message
        return
    async with hub.subscription(record.id) as sub:
        last, current, page = after, record, backlog
        while True:  # the backlog, in pages, until it is read to the end
            read_now = page is None
            if page is None:
                page = await store.events(record.id, last, count=BACKLOG_PAGE)
            for event_id, event in page:
                last = event_id
                if event["type"] in FINAL_TYPES:
                    yield message_of(event_id, event, await final_record(store, hub, record, event_id))
                    return
                yield message_of(event_id, event)
            if len(page) == BACKLOG_PAGE or not read_now:  # a page read before subscribing: read on from it
                page = None
                continue
            page = None
            current = await store.get(record.id) or current
            if current.status not in TERMINAL_STATUSES:
                break
            # Ended while we sent the backlog (the final event is saved with the record): read on to it.
            if not await store.events(record.id, last, count=1):
                yield final_of(current)  # ended, but its final event is gone from the stream (trimmed)
                return
        while True:
            if not sub.queue.empty():
                item = sub.queue.get_nowait()  # no timer (wait_for makes a task) when events are waiting
            else:
                try:
                    item = await asyncio.wait_for(sub.queue.get(), keepalive_s)
                except TimeoutError:
                    yield {"type": "ping"}
                    continue
            if item is None:
                return  # too slow: the client reconnects with its last id and misses nothing
            event_id, event = item
            if not id_after(event_id, last):
                continue  # already sent from the backlog
            last = event_id
            if event["type"] in FINAL_TYPES:
                yield message_of(event_id, event, await final_record(store, hub, current, event_id))
                return
            yield message_of(event_id, event)


async def final_record(store: JobStore, hub: EventHub, record: JobRecord, event_id: str) -> JobRecord:
    """The job as its final event left it, read once for all this process's clients of the job (a thousand
    clients reaching the final event together would otherwise make a thousand reads of the same record)."""
    return await hub.shared(f"record:{record.id}:{event_id}", lambda: store.get(record.id)) or record


async def ended_job_messages(store: JobStore, record: JobRecord, after: str,
                             backlog: list[tuple[str, dict[str, Any]]] | None = None) -> AsyncIterator[dict[str, Any]]:
    """An ended job's events after `after`, then its final message (from the stream, else from the record)."""
    last, page = after, backlog
    while True:
        if page is None:
            page = await store.events(record.id, last, count=BACKLOG_PAGE)
        for event_id, event in page:
            last = event_id
            if event["type"] in FINAL_TYPES:
                yield message_of(event_id, event, record)
                return
            yield message_of(event_id, event)
        if len(page) < BACKLOG_PAGE:
            yield final_of(record)
            return
        page = None


def end_streams_on_exit(server: Any, app: Starlette) -> None:
    """Make the uvicorn `server`'s SIGTERM/SIGINT end this process's open job streams at once
    (`EventHub.drain`): their clients resume on another web process by their last id, instead of being held
    until uvicorn's graceful-shutdown timeout cuts them. (WebSockets are closed 1012 by uvicorn itself.)"""
    stop = server.handle_exit

    def handle_exit(sig: int, frame: FrameType | None) -> None:
        stop(sig, frame)
        hub: EventHub | None = getattr(app.state, "event_hub", None)
        if hub is not None:
            hub.drain_threadsafe()

    server.handle_exit = handle_exit


def first_page(connection: HTTPConnection, job_id: str, after: str) -> list[tuple[str, dict[str, Any]]] | None:
    """The events after `after` read with the job's record and the caller's key (None: read them now)."""
    entries = prefetched_backlog(connection, job_id, after)
    return None if entries is None else parsed_events(entries)


def keepalive_interval(connection: HTTPConnection) -> float:
    return float(getattr(connection.app.state, "stream_keepalive_s", KEEPALIVE_S))


async def job_events(request: Request) -> Response:
    """GET /api/v1/job/{id}/events: Server-Sent Events. (HEAD: the headers alone; a stream would never end.)"""
    record = await visible_record(request, request.path_params["job_id"])
    after = resume_point(request)
    if request.method == "HEAD":
        return Response(media_type="text/event-stream", headers=SSE_HEADERS)
    messages = job_messages(request.app.state.store, request.app.state.event_hub, record, after,
                            keepalive_interval(request), first_page(request, record.id, after))

    async def frames() -> AsyncIterator[bytes]:
        try:
            yield b"retry: 2000\n\n"
            async for message in messages:
                yield b": ping\n\n" if message["type"] == "ping" else sse_frame(message)
        finally:  # the client left: unsubscribe now, in order (not whenever the collector gets to it)
            await messages.aclose()

    return StreamingResponse(frames(), media_type="text/event-stream", headers=SSE_HEADERS)


CLOSE_CODES = {401: 4401, 403: 4403, 404: 4404, 422: 4422, 429: 4429}
CLOSE_REASON_MAX = 123  # bytes of UTF-8 a WebSocket close frame has room for
CLOSE_FELL_BEHIND = 1013  # "try again later": the client reconnects with ?after=<the last id it got>


def close_reason(detail: str) -> str:
    """`detail` cut to fit a close frame (it may quote a path with any characters)."""
    return detail.encode()[:CLOSE_REASON_MAX].decode(errors="ignore")


class JobStream:
    """WS /api/v1/job/{id}/stream: the same messages as JSON; closed (1000) after the final one, 1013 when the
    client fell too far behind (it resumes with ?after=). A refused connection is accepted and closed with
    4401/4403/4404 and the reason.

    A plain ASGI app rather than a Starlette WebSocket endpoint: Starlette's wrapper (a state machine and an
    exception handler around every message) was ~6 % of a connection's CPU for clients that connect, read and leave."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        connection = HTTPConnection(scope)
        try:
            record = await visible_record(connection, scope["path_params"]["job_id"])
            after = resume_point(connection)
        except ApiError as exc:
            await send_text(send, {"type": "error", "code": exc.code, "error": exc.detail})
            await send({"type": "websocket.close", "code": CLOSE_CODES.get(exc.status, 4400),
                        "reason": close_reason(exc.detail)})
            return
        messages = job_messages(connection.app.state.store, connection.app.state.event_hub, record, after,
                                keepalive_interval(connection), first_page(connection, record.id, after))
        try:
            if record.status in TERMINAL_STATUSES:  # a replay: it ends by itself, at once; no client message to await
                with contextlib.suppress(OSError):  # the client left during the replay (uvicorn's ClientDisconnected)
                    await send_all(send, messages)
                return
            await until_sent_or_left(send_all(send, messages), until_disconnect(receive))
        finally:
            await messages.aclose()


async def send_text(send: Send, message: dict[str, Any]) -> None:
    await send({"type": "websocket.send", "text": _encode(message).decode()})


async def send_all(send: Send, messages: AsyncIterator[dict[str, Any]]) -> None:
    kind = ""
    async for message in messages:
        kind = message["type"]
        await send_text(send, message)
    if kind in FINAL_TYPES:
        await send({"type": "websocket.close", "code": 1000})
    else:  # dropped for falling too far behind (see jobs.event_hub)
        await send({"type": "websocket.close", "code": CLOSE_FELL_BEHIND,
                    "reason": "fell behind: reconnect with ?after=<the last id you got>"})


async def until_disconnect(receive: Receive) -> None:
    """What the client sends is ignored; its close ends the stream at once."""
    while (await receive())["type"] != "websocket.disconnect":
        pass


async def until_sent_or_left(sending_all: Awaitable[None], client_leaving: Awaitable[None]) -> None:
    sending, listening = asyncio.ensure_future(sending_all), asyncio.ensure_future(client_leaving)
    try:
        await asyncio.wait({sending, listening}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sending, listening):
            task.cancel()
        for task in (sending, listening):
            with contextlib.suppress(asyncio.CancelledError, OSError, RuntimeError):
                await task
