"""SSE (`/events`) and WebSocket (`/stream`) job streams: a real web server, real Redis, real HTTP/WS clients.

Events are appended with the real `JobStore.save`, as the worker does.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import redis as redis_sync
from redis.asyncio import Redis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.main import create_app
from jobs import apikeys
from jobs.links import job_link_token
from jobs.model import JobRecord, RunRequest
from jobs.store import JobStore
from tests.app.conftest import make_key
from tests.fakes.server import ThreadedServer

JWT_SECRET = "stream-test-secret-" + "y" * 32


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, redis_url: str, rsa_key_pair: tuple[bytes, bytes]) -> Iterator[str]:
    from jobs.settings import load_settings
    from tests.conftest import APP_ID, WEBHOOK_SECRET

    key_file = tmp_path_factory.mktemp("key") / "app.pem"
    key_file.write_bytes(rsa_key_pair[0])
    settings = load_settings({"REDIS_URL": redis_url, "GITHUB_APP_ID": str(APP_ID),
                              "GITHUB_PRIVATE_KEY_PATH": str(key_file), "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
                              "AQE_DATA_DIR": str(tmp_path_factory.mktemp("data")), "AQE_JWT_SECRET": JWT_SECRET,
                              "AQE_RATE_LIMIT": "100000/minute"}, dotenv_path=None)
    app = create_app(settings)
    app.state.stream_keepalive_s = 0.5  # 15 s in production
    runner = ThreadedServer(app, "aqe-web-streams", lifespan="on")
    url = runner.start()
    yield url
    runner.stop()


@pytest.fixture
async def store(redis_url: str, server: str) -> AsyncIterator[JobStore]:
    client = Redis.from_url(redis_url)
    yield JobStore(client)
    await client.aclose()


async def _job(store: JobStore, repo: str = "acme/widgets") -> JobRecord:
    request = RunRequest(forge="github", repo=repo, clone_url="u", head_sha=secrets.token_hex(20), trigger="api.test",
                         agents=["tests"])
    outcome = await store.enqueue(request, delivery_key=f"aqe:delivery:api:{secrets.token_hex(8)}")
    assert outcome.state == "queued", outcome
    record = await store.get(outcome.job_id)
    assert record is not None
    return record


async def _progress(store: JobStore, record: JobRecord, progress: float, message: str) -> str:
    record.status, record.progress = "running", progress
    return await store.save(record, "progress", {"progress": progress, "message": message, "status": "running"})


async def _complete(store: JobStore, record: JobRecord) -> str:
    record.status, record.progress, record.conclusion = "completed", 100.0, "success"
    return await store.save(record, "complete", {"status": "completed", "progress": 100.0, "conclusion": "success"})


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class SseClient:
    """Reads `text/event-stream` frames as (id, event, data) and comments."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()

    async def next(self, timeout: float = 10) -> dict[str, Any]:
        frame: dict[str, Any] = {}
        while True:
            line = await asyncio.wait_for(anext(self.lines), timeout)
            if line == "":
                if frame:
                    return frame
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "":
                frame["comment"] = value
            elif field == "data":
                frame["data"] = json.loads(value)
            else:
                frame[field] = value


def _events_url(server: str, job_id: str) -> str:
    return f"{server}/api/v1/job/{job_id}/events"


def _ws_url(server: str, job_id: str, query: str = "") -> str:
    return f"ws{server[4:]}/api/v1/job/{job_id}/stream{query}"


async def test_sse_replays_goes_live_and_closes_after_the_final_event(server: str, store: JobStore,
                                                                      redis_url: str) -> None:
    key, record = make_key(redis_url), await _job(store)
    async with httpx.AsyncClient(timeout=10) as http:
        async with http.stream("GET", _events_url(server, record.id), headers=_auth(key)) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-cache"
            sse = SseClient(response)
            assert (await sse.next())["retry"] == "2000"
            queued = await sse.next()
            assert queued["event"] == "progress" and queued["data"]["status"] == "queued"
            ids = [await _progress(store, record, 30.0, "agent:tests started")]
            live = await sse.next()
            assert (live["id"], live["data"]["progress"], live["data"]["message"]) == (ids[0], 30.0,
                                                                                        "agent:tests started")
            final_id = await _complete(store, record)
            final = await sse.next()
            assert (final["event"], final["id"], final["data"]["status"]) == ("complete", final_id, "completed")
            assert final["data"]["result"]["conclusion"] == "success"
            with pytest.raises(StopAsyncIteration):
                await sse.next()


async def test_sse_resumes_after_a_dropped_connection_with_no_gap_and_no_duplicate(server: str, store: JobStore,
                                                                                   redis_url: str) -> None:
    key, record = make_key(redis_url), await _job(store)
    sent = [await _progress(store, record, float(p), f"step {p}") for p in (10, 20)]
    async with httpx.AsyncClient(timeout=10) as http:
        async with http.stream("GET", _events_url(server, record.id), headers=_auth(key)) as response:
            sse = SseClient(response)
            await sse.next()  # retry
            seen = [(await sse.next())["id"] for _ in range(3)]  # queued, 10, 20
        assert seen[1:] == sent
        missed = [await _progress(store, record, float(p), f"step {p}") for p in (30, 40, 50)]  # while away
        async with http.stream("GET", _events_url(server, record.id),
                               headers={**_auth(key), "Last-Event-ID": seen[-1]}) as response:
            sse = SseClient(response)
            await sse.next()
            again = [(await sse.next())["id"] for _ in range(3)]
            assert again == missed
            live = await _progress(store, record, 60.0, "step 60")
            assert (await sse.next())["id"] == live
            final = await _complete(store, record)
            assert (await sse.next())["id"] == final


async def test_a_finished_job_replays_everything_and_closes(server: str, store: JobStore, redis_url: str) -> None:
    key, record = make_key(redis_url), await _job(store)
    await _progress(store, record, 50.0, "half")
    await _complete(store, record)
    async with connect(_ws_url(server, record.id), additional_headers=_auth(key)) as ws:
        messages = [json.loads(m) async for m in ws]
        assert [m["type"] for m in messages] == ["progress", "progress", "complete"]
        assert messages[1]["progress"] == 50.0 and messages[2]["result"]["conclusion"] == "success"
        assert ws.close_code == 1000
    async with connect(_ws_url(server, record.id, f"?after={messages[1]['id']}"), additional_headers=_auth(key)) as ws:
        assert [json.loads(m)["type"] async for m in ws] == ["complete"]  # resumed after the second event


async def test_websocket_messages_live_with_keepalive_pings(server: str, store: JobStore, redis_url: str) -> None:
    key, record = make_key(redis_url), await _job(store)
    async with connect(_ws_url(server, record.id), additional_headers=_auth(key)) as ws:
        assert json.loads(await ws.recv())["message"] == "queued"
        assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {"type": "ping"}  # idle: 0.5 s in this test
        await _progress(store, record, 45.2, "agent:security started")
        message = json.loads(await asyncio.wait_for(ws.recv(), 5))
        while message["type"] == "ping":
            message = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert {k: message[k] for k in ("type", "progress", "message")} == {
            "type": "progress", "progress": 45.2, "message": "agent:security started"}
        record.status, record.error = "failed", "the job ran longer than 3600 s"
        await store.save(record, "error", {"status": "failed", "progress": 45.2, "error": record.error})
        rest = [json.loads(m) async for m in ws]
        assert rest[-1]["type"] == "error" and rest[-1]["error"] == "the job ran longer than 3600 s"
        assert ws.close_code == 1000


async def test_sse_keepalive_comment_while_idle(server: str, store: JobStore, redis_url: str) -> None:
    key, record = make_key(redis_url), await _job(store)
    async with httpx.AsyncClient(timeout=10) as http:
        async with http.stream("GET", _events_url(server, record.id), headers=_auth(key)) as response:
            sse = SseClient(response)
            await sse.next()
            await sse.next()  # queued
            assert (await sse.next(timeout=5)) == {"comment": "ping"}


async def test_refusals_sse_and_websocket(server: str, store: JobStore, redis_url: str) -> None:
    record = await _job(store, "acme/widgets")
    fleet_only = make_key(redis_url, "f", scopes=["fleet:read"])
    other_repo = make_key(redis_url, "o", repos=["other/*"])
    async with httpx.AsyncClient(timeout=10) as http:
        missing = await http.get(_events_url(server, "f" * 24), headers=_auth(make_key(redis_url)))
        assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
        anonymous = await http.get(_events_url(server, record.id))
        assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Bearer")
        assert (await http.get(_events_url(server, record.id), headers=_auth(fleet_only))).status_code == 403
        assert (await http.get(_events_url(server, record.id), headers=_auth(other_repo))).status_code == 404
        bad_after = await http.get(_events_url(server, record.id) + "?after=nope", headers=_auth(make_key(redis_url)))
        assert bad_after.status_code == 422
        forged = await http.get(_events_url(server, record.id) + "?t=9999999999.AAAA")
        assert forged.status_code == 401
        token = job_link_token(JWT_SECRET, record.id)
        await _complete(store, record)
        async with http.stream("GET", _events_url(server, record.id) + f"?t={token}") as linked:
            assert linked.status_code == 200  # the job page's EventSource: the signed link is enough
        other_job = await _job(store)
        assert (await http.get(_events_url(server, other_job.id) + f"?t={token}")).status_code == 401
    for url, headers, code in [(_ws_url(server, record.id), {}, 4401),
                               (_ws_url(server, record.id), _auth(fleet_only), 4403),
                               (_ws_url(server, "f" * 24), _auth(other_repo), 4404),
                               (_ws_url(server, record.id), _auth(other_repo), 4404)]:
        async with connect(url, additional_headers=headers) as ws:
            refusal = json.loads(await ws.recv())
            assert refusal["type"] == "error" and refusal["error"]
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == code, (url, headers, ws.close_reason)


async def test_many_clients_each_get_every_event_over_one_reader_connection(server: str, store: JobStore,
                                                                           redis_url: str) -> None:
    key, record = make_key(redis_url), await _job(store)
    clients = 200
    before = len(redis_sync.Redis.from_url(redis_url).client_list())

    async def follow(ws_index: int) -> list[str]:
        async with connect(_ws_url(server, record.id), additional_headers=_auth(key)) as ws:
            return [json.loads(m).get("id", "") async for m in ws if json.loads(m)["type"] != "ping"]

    tasks = [asyncio.create_task(follow(i)) for i in range(clients)]
    await asyncio.sleep(1.0)  # everyone connected and waiting
    during = len(redis_sync.Redis.from_url(redis_url).client_list())
    sent = [await _progress(store, record, float(p), f"p{p}") for p in range(1, 21)]
    sent.append(await _complete(store, record))
    received = await asyncio.wait_for(asyncio.gather(*tasks), 60)
    assert all(ids[1:] == sent for ids in received)  # the queued event, then every one of ours, in order
    # not one Redis connection per client: the reader plus what the shared pool grows to while they all
    # authenticate at once (it varies with the machine's load: 2 to 24 seen for 200 clients)
    assert during - before <= clients // 5, (before, during)


async def test_a_job_that_ends_while_the_backlog_is_sent_delivers_every_event_then_the_final_one(
        store: JobStore, redis_url: str) -> None:
    """The race the 1,000-client bench found: the job ended between reading the backlog and going live."""
    from app.api.streams import job_messages
    from jobs.event_hub import EventHub

    record = await _job(store)

    class EndsDuringBacklog(JobStore):
        ended: list[str] = []

        async def events(self, job_id: str, after: str = "0-0", count: int = 1000) -> Any:
            page = await super().events(job_id, after, count)
            if not self.ended:
                self.ended += [await _progress(store, record, 50.0, "half"), await _complete(store, record)]
            return page

    hub = EventHub.for_url(store.redis, redis_url)
    await hub.start()
    try:
        late = EndsDuringBacklog(store.redis)
        messages = [m async for m in job_messages(late, hub, record, "0-0", keepalive_s=5)]
    finally:
        await hub.close()
    assert [m["type"] for m in messages] == ["progress", "progress", "complete"]
    assert [m["id"] for m in messages[1:]] == late.ended and messages[-1]["result"]["conclusion"] == "success"


async def test_websocket_connections_count_against_the_rate_limit(server: str, store: JobStore, redis_url: str) -> None:
    from websockets.exceptions import InvalidStatus

    key, record = make_key(redis_url, "tiny", rate_limit="2/minute"), await _job(store)
    await _complete(store, record)
    for _ in range(2):
        async with connect(_ws_url(server, record.id), additional_headers=_auth(key)) as ws:
            assert [json.loads(m)["type"] async for m in ws][-1] == "complete"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(_ws_url(server, record.id), additional_headers=_auth(key)):
            pass
    response = refused.value.response
    assert response.status_code == 429 and int(response.headers["retry-after"]) >= 1
    assert json.loads(response.body)["code"] == "rate_limited"
    metrics = httpx.get(f"{server}/metrics", timeout=5).text  # counted as the refusal the client saw
    assert 'aqe_api_requests_total{method="GET",route="/job/{job_id}/stream",status="429"}' in metrics


async def test_sse_resumes_with_after_in_the_query(server: str, store: JobStore, redis_url: str) -> None:
    key, record = make_key(redis_url), await _job(store)
    seen = await _progress(store, record, 10.0, "seen")
    missed = [await _progress(store, record, float(p), f"step {p}") for p in (20, 30)]
    async with httpx.AsyncClient(timeout=10) as http:
        async with http.stream("GET", _events_url(server, record.id) + f"?after={seen}", headers=_auth(key)) as r:
            sse = SseClient(r)
            await sse.next()  # retry
            assert [(await sse.next())["id"] for _ in range(2)] == missed
            live = await _progress(store, record, 40.0, "step 40")
            final = await _complete(store, record)
            assert [(await sse.next())["id"] for _ in range(2)] == [live, final]


async def test_websocket_resumes_a_running_job_after_an_id(server: str, store: JobStore, redis_url: str) -> None:
    key, record = make_key(redis_url), await _job(store)
    seen = await _progress(store, record, 10.0, "seen")
    missed = await _progress(store, record, 20.0, "missed")
    async with connect(_ws_url(server, record.id, f"?after={seen}"), additional_headers=_auth(key)) as ws:
        assert json.loads(await ws.recv())["id"] == missed
        final = await _complete(store, record)
        rest = [json.loads(m) async for m in ws if json.loads(m)["type"] != "ping"]
        assert [(m["type"], m["id"]) for m in rest] == [("complete", final)]
        assert ws.close_code == 1000


async def test_head_answers_the_headers_without_following_the_job(server: str, store: JobStore,
                                                                  redis_url: str) -> None:
    key, record = make_key(redis_url), await _job(store)  # running: a GET would stream until it ends
    async with httpx.AsyncClient(timeout=5) as http:
        head = await http.head(_events_url(server, record.id), headers=_auth(key))
    assert head.status_code == 200 and head.headers["content-type"].startswith("text/event-stream")
    assert head.headers["cache-control"] == "no-cache" and head.headers["x-accel-buffering"] == "no"


async def test_websocket_accepts_the_job_link_token_and_refuses_a_bad_one(server: str, store: JobStore) -> None:
    record = await _job(store)
    await _complete(store, record)
    token = job_link_token(JWT_SECRET, record.id)
    async with connect(_ws_url(server, record.id, f"?t={token}")) as ws:
        assert [json.loads(m)["type"] async for m in ws] == ["progress", "complete"]
    other = await _job(store)
    for query in (f"?t={token}", "?t=9999999999.AAAA"):  # another job's token; a forged one
        async with connect(_ws_url(server, other.id, query)) as ws:
            assert json.loads(await ws.recv())["code"] in ("unauthenticated", "invalid_credentials")
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 4401


async def test_a_subscriber_that_falls_behind_is_dropped_without_holding_up_others_and_resumes(
        store: JobStore, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.api.streams import job_messages
    from jobs import event_hub

    monkeypatch.setattr(event_hub, "QUEUE_SIZE", 3)
    record = await _job(store)
    hub = event_hub.EventHub.for_url(store.redis, redis_url)
    await hub.start()
    try:
        slow = job_messages(store, hub, record, "0-0", keepalive_s=5)
        assert (await anext(slow))["status"] == "queued"  # subscribed, backlog sent; now it stops reading
        monkeypatch.setattr(event_hub, "QUEUE_SIZE", 1_000)
        async with hub.subscription(record.id) as fast:
            sent = [await _progress(store, record, float(p), f"p{p}") for p in range(1, 11)]
            got = [(await asyncio.wait_for(fast.queue.get(), 5))[0] for _ in sent]  # type: ignore[index]
            assert got == sent  # the other subscriber got everything, at once
        assert [m async for m in slow] == []  # the slow one ends early (no final message): its client reconnects
        resumed = job_messages(store, hub, record, _first_id(await store.events(record.id)), keepalive_s=5)
        final = await _complete(store, record)
        ids = [m["id"] async for m in resumed]
        assert ids == [*sent, final]  # resuming after its last id: nothing lost, nothing twice
        assert hub.watched == 0
    finally:
        await hub.close()


async def test_a_websocket_that_falls_behind_is_closed_1013_and_resumes_with_after(
        server: str, store: JobStore, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from jobs import event_hub
    from jobs.store import events_key

    key, record = make_key(redis_url), await _job(store)
    monkeypatch.setattr(event_hub, "QUEUE_SIZE", 2)  # the server runs in this process: a queue of 2 for it
    async with connect(_ws_url(server, record.id), additional_headers=_auth(key)) as ws:
        queued = json.loads(await ws.recv())["id"]  # sent from the page read with the key, before going live:
        await asyncio.sleep(0.5)  # let the server read on from it (one XRANGE), so the burst below comes live
        async with store.redis.pipeline(transaction=True) as pipe:  # one XREAD reply of 5: more than the queue
            for p in range(1, 6):
                pipe.xadd(events_key(record.id), {"type": "progress", "data": json.dumps({"progress": float(p)})})
            burst = [eid.decode() for eid in await pipe.execute()]
        rest: list[dict[str, Any]] = []
        with pytest.raises(ConnectionClosed):  # not a normal close: the client is to come back
            while True:
                rest.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
        assert all(m["type"] == "ping" for m in rest)  # nothing of the burst: it was dropped, not sent in part
        assert ws.close_code == 1013 and "?after=" in (ws.close_reason or "")
    monkeypatch.setattr(event_hub, "QUEUE_SIZE", 1_000)
    async with connect(_ws_url(server, record.id, f"?after={queued}"), additional_headers=_auth(key)) as ws:
        resumed = [json.loads(await ws.recv())["id"] for _ in burst]
        final = await _complete(store, record)
        assert resumed == burst and [json.loads(m)["id"] async for m in ws if json.loads(m)["type"] != "ping"] == [final]


async def test_drain_ends_every_subscription_and_refuses_new_ones(store: JobStore, redis_url: str) -> None:
    from jobs.event_hub import EventHub

    record = await _job(store)
    hub = EventHub.for_url(store.redis, redis_url)
    await hub.start()
    try:
        async with hub.subscription(record.id) as a, hub.subscription(record.id) as b:
            hub.drain()
            assert a.queue.get_nowait() is None and b.queue.get_nowait() is None and hub.watched == 0
            async with hub.subscription(record.id) as late:
                assert late.queue.get_nowait() is None and hub.watched == 0
    finally:
        await hub.close()


def test_stopping_the_server_ends_open_sse_streams_at_once(tmp_path: Any, redis_url: str,
                                                           rsa_key_pair: tuple[bytes, bytes]) -> None:
    """SIGTERM (uvicorn's handle_exit) ends the streams now: without it they hold the process for the graceful
    shutdown timeout (10 s for `aqe web`) and are then cut."""
    import signal
    import time

    from app.api.streams import end_streams_on_exit
    from jobs.settings import load_settings
    from tests.conftest import APP_ID, WEBHOOK_SECRET

    key_file = tmp_path / "app.pem"
    key_file.write_bytes(rsa_key_pair[0])
    settings = load_settings({"REDIS_URL": redis_url, "GITHUB_APP_ID": str(APP_ID),
                              "GITHUB_PRIVATE_KEY_PATH": str(key_file), "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
                              "AQE_DATA_DIR": str(tmp_path / "data"), "AQE_JWT_SECRET": JWT_SECRET},
                             dotenv_path=None)
    app = create_app(settings)
    runner = ThreadedServer(app, "aqe-web-drain", lifespan="on", timeout_graceful_shutdown=10)
    url = runner.start()
    server, thread = runner._server, runner._thread
    assert server is not None and thread is not None
    end_streams_on_exit(server, app)

    async def follow() -> tuple[list[str], float]:
        client = Redis.from_url(redis_url)
        try:
            record = await _job(JobStore(client))
            key = await apikeys.create_key(client, "drain")
        finally:
            await client.aclose()
        events: list[str] = []
        async with httpx.AsyncClient(timeout=20) as http:
            async with http.stream("GET", _events_url(url, record.id), headers=_auth(key)) as response:
                sse = SseClient(response)
                await sse.next()  # retry
                events.append((await sse.next())["event"])  # queued: following the running job
                stopped = time.monotonic()
                server.handle_exit(signal.SIGTERM, None)
                with pytest.raises(StopAsyncIteration):  # the stream ends: no final message, no error
                    while True:
                        events.append((await sse.next())["event"])
                return events, time.monotonic() - stopped

    with ThreadPoolExecutor(1) as pool:  # its own loop: the server runs in this thread's
        events, took = pool.submit(asyncio.run, follow()).result()
    thread.join(15)
    assert events == ["progress"] and took < 5 and not thread.is_alive()


def _first_id(events: list[tuple[str, Any]]) -> str:
    return events[0][0]


async def test_the_final_record_is_read_once_for_all_clients_of_a_job(store: JobStore, redis_url: str) -> None:
    from app.api.streams import job_messages
    from jobs.event_hub import EventHub

    record = await _job(store)

    class Counting(JobStore):
        reads = 0

        async def get(self, job_id: str) -> JobRecord | None:
            Counting.reads += 1
            return await super().get(job_id)

    counting = Counting(store.redis)
    hub = EventHub.for_url(store.redis, redis_url)
    await hub.start()
    try:
        followers = [job_messages(counting, hub, record, "0-0", keepalive_s=5) for _ in range(50)]
        for follower in followers:
            assert (await anext(follower))["status"] == "queued"
        await _complete(store, record)
        finals = await asyncio.gather(*(anext(follower) for follower in followers))
        for follower in followers:
            await follower.aclose()
    finally:
        await hub.close()
    assert all(m["type"] == "complete" and m["result"]["conclusion"] == "success" for m in finals)
    assert Counting.reads == len(followers) + 1  # each one's "still running?" after its backlog; the final: once


async def test_the_reader_reconnects_when_its_connection_is_killed(store: JobStore, redis_url: str) -> None:
    from jobs.event_hub import EventHub

    record = await _job(store)
    hub = EventHub.for_url(store.redis, redis_url)
    await hub.start()
    try:
        async with hub.subscription(record.id) as sub:
            first = await _progress(store, record, 10.0, "before")
            assert (await asyncio.wait_for(sub.queue.get(), 5))[0] == first  # type: ignore[index]
            reader_id = hub._reader_id
            assert reader_id is not None
            await store.redis.client_kill_filter(_id=reader_id)
            after = await _progress(store, record, 20.0, "after")
            assert (await asyncio.wait_for(sub.queue.get(), 10))[0] == after  # type: ignore[index]
            assert hub._reader_id not in (None, reader_id)
    finally:
        await hub.close()


async def test_shared_fetches_once_for_concurrent_callers_and_forgets_failures(store: JobStore,
                                                                               redis_url: str) -> None:
    from jobs.event_hub import EventHub

    hub, calls = EventHub.for_url(store.redis, redis_url), []

    async def fetch() -> int:
        calls.append(1)
        await asyncio.sleep(0.01)
        return len(calls)

    assert await asyncio.gather(*(hub.shared("k", fetch) for _ in range(100))) == [1] * 100
    assert await hub.shared("k", fetch) == 1 and len(calls) == 1  # kept a while

    async def failing() -> int:
        raise RuntimeError("redis went away")

    with pytest.raises(RuntimeError):
        await hub.shared("f", failing)
    assert await hub.shared("f", fetch) == 2  # the failure was not kept
    await hub.close()


def test_pure_helpers() -> None:
    from app.api.streams import close_reason, message_of, sse_frame
    from jobs.event_hub import entry_event, id_after, valid_id

    assert id_after("10-0", "9-5") and id_after("9-6", "9-5") and not id_after("9-5", "9-5")
    assert not id_after("9-4", "9-5") and id_after("1732838400000-0", "0-0")
    assert valid_id("1732838400000-0") and valid_id("1732838400000") and valid_id("0-0")
    assert not any(valid_id(v) for v in ("nope", "-1", "1-x", "1" * 41, ""))
    assert entry_event(b"5-1", {b"type": b"progress", b"data": b'{"progress": 5.0}'}) == (
        "5-1", {"type": "progress", "progress": 5.0})
    progress = message_of("5-1", {"type": "progress", "progress": 45.2, "message": "agent:tests started",
                                  "status": "running"})
    assert progress == {"type": "progress", "progress": 45.2, "message": "agent:tests started", "status": "running",
                        "id": "5-1"}
    assert sse_frame(progress) == (b'id: 5-1\nevent: progress\ndata: {"type":"progress","progress":45.2,'
                                   b'"message":"agent:tests started","status":"running","id":"5-1"}\n\n')
    error = message_of("6-0", {"type": "error", "status": "failed", "error": "boom"})
    assert (error["type"], error["error"], error["id"]) == ("error", "boom", "6-0")
    assert sse_frame({"type": "complete", "id": ""}).startswith(b"event: complete\n")  # no id line without an id
    cut = close_reason("no job '" + "é" * 100 + "'")
    assert len(cut.encode()) <= 123 and cut.startswith("no job 'é")


async def test_a_backlog_read_before_subscribing_misses_no_event_that_came_after_it(
        store: JobStore, redis_url: str) -> None:
    """A stream request's first page is read with the caller's key, before the live subscription exists: what is
    appended between the two still arrives, once, in order."""
    from app.api.streams import job_messages
    from jobs.event_hub import EventHub

    record = await _job(store)
    first = await _progress(store, record, 10.0, "read with the key")
    backlog = await store.events(record.id)
    between = await _progress(store, record, 20.0, "before the subscription")
    hub = EventHub.for_url(store.redis, redis_url)
    await hub.start()
    try:
        messages = job_messages(store, hub, record, "0-0", keepalive_s=5, backlog=backlog)
        received = [await anext(messages) for _ in range(3)]
        live = await _progress(store, record, 30.0, "live")
        final = await _complete(store, record)
        received += [m async for m in messages]
    finally:
        await hub.close()
    assert [m["id"] for m in received[1:]] == [first, between, live, final]
    assert [m["type"] for m in received] == ["progress"] * 4 + ["complete"]


async def test_an_ended_job_replays_from_a_prefetched_page_then_reads_on(store: JobStore) -> None:
    from app.api.streams import BACKLOG_PAGE, ended_job_messages

    record = await _job(store)
    ids = [await _progress(store, record, float(p), f"p{p}") for p in range(3)]
    final = await _complete(store, record)
    full_page = [(f"{n}-0", {"type": "progress", "progress": 1.0}) for n in range(1, BACKLOG_PAGE + 1)]
    messages = [m async for m in ended_job_messages(store, record, "0-0", full_page)]
    # a full page means there may be more: the rest is read after its last id (here: every real event)
    assert len(messages) == BACKLOG_PAGE + 5 and [m["id"] for m in messages[BACKLOG_PAGE:]][1:] == [*ids, final]


async def test_a_stream_over_websocket_resumes_after_the_given_id_with_the_backlog_read_with_the_key(
        server: str, store: JobStore, redis_url: str) -> None:
    key = make_key(redis_url)
    record = await _job(store)
    ids = [await _progress(store, record, float(p), f"p{p}") for p in range(4)]
    final = await _complete(store, record)
    async with connect(_ws_url(server, record.id) + f"?after={ids[1]}", additional_headers=_auth(key)) as ws:
        got = [json.loads(m) async for m in ws]
    assert [m["id"] for m in got] == [ids[2], ids[3], final] and got[-1]["result"]["conclusion"] == "success"
