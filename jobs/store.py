"""Job records, progress streams and the enqueue script: the Redis side of the job model.

Key layout (all under `aqe:` except arq's own):
  aqe:delivery:{forge}:{delivery id}  -> job id(s) or "ignored:<reason>"      (TTL 4 days)
  aqe:active:{dedupe key}             -> the job id currently queued/running for that key
  aqe:job:{id}                        -> JobRecord as JSON                       (TTL 30 days)
  aqe:job:{id}:events                 -> Redis Stream of progress events          (TTL 30 days)
  aqe:job:{id}:prs                    -> extra PR numbers coalesced into the job
  aqe:job:{id}:artifact:{name}        -> a file the job offers, e.g. generated-tests.patch (TTL 30 days)
  aqe:upload:{sha256}                 -> a file an API request brought, e.g. a coverage report (TTL 1 day)
  aqe:jobs                            -> sorted set of job ids by creation time
  aqe:queued:{priority}               -> sorted set of the jobs of that priority waiting for a worker
  aqe:deliveries                      -> Redis Stream log of every delivery and what became of it
  aqe:baseline:{forge}:{repo}:{branch} -> a branch's figures from its latest push (JSON)  (TTL 90 days)
  arq:job:{id}, arq:queue             -> arq's own job and queue keys
"""

from __future__ import annotations

import hashlib
import json
import pickle
import random
import secrets
import time
from dataclasses import dataclass
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from jobs import audit
from jobs.redis_pipelined import PipelinedRedis
from jobs.model import TERMINAL_STATUSES, JobRecord, RunRequest, Step, json_encoder, now, record_decoder

DELIVERY_TTL_S = 4 * 24 * 3600  # GitHub lets a delivery be redelivered for 3 days
RECORD_TTL_S = 30 * 24 * 3600
BASELINE_TTL_S = 90 * 24 * 3600
UPLOAD_TTL_S = 24 * 3600
ACTIVE_TTL_S = 2 * 3600  # longer than any job may run (the worker's job_timeout)
STREAM_MAXLEN = 2000
DELIVERY_LOG_MAXLEN = 100_000
ARQ_JOB_PREFIX = "arq:job:"
ARQ_QUEUE = "arq:queue"
ARQ_FUNCTION = "analyse"
ARQ_CALLBACK_FUNCTION = "callback"  # jobs.tasks.callback: the callback of a job no worker ran
ARQ_EXPIRES_MS = 24 * 3600 * 1000
# arq takes the lowest score first and only scores not in the future: a higher priority is an earlier score, by
# more than any job can wait (arq drops a job not started within ARQ_EXPIRES_MS), so every high job goes before
# every normal one, and every normal one before every low one; each priority in the order its jobs came.
PRIORITY_HEAD_START_MS = {"high": 2 * ARQ_EXPIRES_MS, "normal": ARQ_EXPIRES_MS, "low": 0}


def job_key(job_id: str) -> str:
    return f"aqe:job:{job_id}"


def stored_record(raw: bytes) -> JobRecord:
    """A job record as `job_key` holds it (read there by the store, or by a script that read it with other keys)."""
    return record_decoder.decode(raw)


def artifact_key(job_id: str, name: str) -> str:
    return f"aqe:job:{job_id}:artifact:{name}"


def baseline_key(forge: str, repo: str, branch: str) -> str:
    return f"aqe:baseline:{forge}:{repo}:{branch}"


def events_key(job_id: str) -> str:
    return f"aqe:job:{job_id}:events"


def queued_key(priority: str) -> str:
    """The jobs of one priority waiting for a worker (the queue depth per priority of fleet status)."""
    return f"aqe:queued:{priority}"


def prs_key(job_id: str) -> str:
    return f"aqe:job:{job_id}:prs"


_ids = random.Random(secrets.randbits(128))  # seeded once from the OS: no system call per delivery


def new_job_id() -> str:
    """Time-ordered and unique: 12 hex digits of milliseconds + 48 random bits.

    Not a secret: the job page needs a signed link and the API a key."""
    return f"{int(time.time() * 1000):012x}{_ids.getrandbits(48):012x}"


# KEYS: delivery key, active key. ARGV: job id, arq job bytes, score (ms), record json, PR number or "",
# event, action, repo, queue score (ms: the score less the priority's head start), priority, how long the delivery
# key is kept (s; 0: not at all, nothing will ask for it again), then optionally an audit entry's fields without
# its target (the job queued or joined; jobs.audit.Draft). The other keys derive from the job id; the constants are
# formatted in below.
_ENQUEUE_LUA = """
local function audit(target)
  if #ARGV > 11 then
    redis.call('XADD', '%(audit_stream)s', 'MAXLEN', '~', %(audit_maxlen)d, '*', 'target', target, unpack(ARGV, 12))
  end
end
local function remember(id)
  if ARGV[11] ~= '0' then redis.call('SET', KEYS[1], id, 'EX', ARGV[11]) end
end
local seen = redis.call('GET', KEYS[1])
if seen then return {'duplicate', seen} end
local active = redis.call('GET', KEYS[2])
if active then
  if ARGV[5] ~= '' then
    redis.call('SADD', 'aqe:job:' .. active .. ':prs', ARGV[5])
    redis.call('EXPIRE', 'aqe:job:' .. active .. ':prs', %(record_ttl)d)
  end
  remember(active)
  redis.call('XADD', 'aqe:deliveries', 'MAXLEN', '~', %(log_maxlen)d, '*', 'event', ARGV[6], 'action', ARGV[7],
             'repo', ARGV[8], 'outcome', 'coalesced', 'job', active)
  audit(active)
  return {'coalesced', active}
end
local id = ARGV[1]
redis.call('SET', KEYS[2], id, 'EX', %(active_ttl)d)
redis.call('SET', '%(arq_prefix)s' .. id, ARGV[2], 'PX', %(arq_expires_ms)d)
redis.call('ZADD', '%(arq_queue)s', ARGV[9], id)
redis.call('ZADD', 'aqe:queued:' .. ARGV[10], ARGV[3], id)
redis.call('SET', 'aqe:job:' .. id, ARGV[4], 'EX', %(record_ttl)d)
redis.call('XADD', 'aqe:job:' .. id .. ':events', 'MAXLEN', '~', %(stream_maxlen)d, '*', 'type', 'queued',
           'data', '{"status":"queued","progress":0.0}')
redis.call('EXPIRE', 'aqe:job:' .. id .. ':events', %(record_ttl)d)
redis.call('ZADD', 'aqe:jobs', ARGV[3], id)
remember(id)
redis.call('XADD', 'aqe:deliveries', 'MAXLEN', '~', %(log_maxlen)d, '*', 'event', ARGV[6], 'action', ARGV[7],
           'repo', ARGV[8], 'outcome', 'queued', 'job', id)
audit(id)
return {'queued', id}
""" % {"audit_stream": audit.STREAM, "audit_maxlen": audit.MAXLEN, "record_ttl": RECORD_TTL_S,
       "log_maxlen": DELIVERY_LOG_MAXLEN, "active_ttl": ACTIVE_TTL_S,
       "arq_prefix": ARQ_JOB_PREFIX, "arq_expires_ms": ARQ_EXPIRES_MS, "arq_queue": ARQ_QUEUE,
       "stream_maxlen": STREAM_MAXLEN}

# KEYS: arq's in-progress key, the arq queue, arq's job key, arq's abort set. ARGV: job id, now (ms).
# A job no worker has taken leaves the queue here (a worker then finds no score and skips it); one that is
# running is flagged for arq to cancel.
_CANCEL_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
  return 'aborting'
end
if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then
  redis.call('DEL', KEYS[3])
  return 'removed'
end
return 'gone'
"""

_RELEASE_LUA = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"

_EXCEPTION_EXT = 1


def _exception_ext(obj: Any) -> Any:
    """arq stores a failed job's exception as its result; keep it an exception for arq's client API."""
    if isinstance(obj, BaseException):
        try:
            return msgspec.msgpack.Ext(_EXCEPTION_EXT, pickle.dumps(obj))
        except Exception:
            return msgspec.msgpack.Ext(_EXCEPTION_EXT, pickle.dumps(RuntimeError(f"{type(obj).__name__}: {obj}")))
    raise NotImplementedError(f"cannot store {type(obj).__name__} in a job")


def _ext(code: int, data: memoryview) -> Any:
    if code == _EXCEPTION_EXT:
        return pickle.loads(data)  # only exceptions arq itself stored as results
    raise ValueError(f"unknown msgpack extension {code}")


_arq_encoder = msgspec.msgpack.Encoder(enc_hook=_exception_ext)
_arq_decoder = msgspec.msgpack.Decoder(ext_hook=_ext)


def arq_job_bytes(job_id: str, enqueue_ms: int, function: str = ARQ_FUNCTION) -> bytes:
    """The job exactly as arq's `serialize_job` would store it, with our msgpack serializer."""
    return _arq_encoder.encode({"t": None, "f": function, "a": [job_id], "k": {}, "et": enqueue_ms})


def arq_serialize(obj: Any) -> bytes:
    return _arq_encoder.encode(obj)


def arq_deserialize(data: bytes) -> Any:
    return _arq_decoder.decode(data)


@dataclass(frozen=True)
class EnqueueOutcome:
    state: str  # "queued" | "coalesced" | "duplicate" | "created" (answered at once, see create_finished)
    job_id: str


_ENQUEUE_SHA = hashlib.sha1(_ENQUEUE_LUA.encode()).hexdigest()


class JobStore:
    """Reads and writes job records; the only code that knows the key layout above.

    `pipelined` (the web process) carries the enqueue script: one write, one read, many in flight."""

    def __init__(self, redis: Redis, pipelined: PipelinedRedis | None = None) -> None:
        self.redis, self.pipelined = redis, pipelined
        self._enqueue = redis.register_script(_ENQUEUE_LUA)

    async def _run_enqueue(self, keys: list[str], args: list[Any]) -> list[bytes]:
        if self.pipelined is None:
            return await self._enqueue(keys=keys, args=args)
        try:
            return await self.pipelined.execute("EVALSHA", _ENQUEUE_SHA, len(keys), *keys, *args)
        except NoScriptError:
            return await self.pipelined.execute("EVAL", _ENQUEUE_LUA, len(keys), *keys, *args)

    async def enqueue(self, request: RunRequest, *, delivery_key: str, event: str = "", action: str = "",
                      audited: audit.Draft | None = None, remember_s: int = DELIVERY_TTL_S) -> EnqueueOutcome:
        """Dedupe by delivery, coalesce by meaning, enqueue for arq and create the record: one round trip, which
        also appends `audited` to the audit log with the job queued or joined as its target (not for a duplicate).
        `remember_s`: how long a retry with the same `delivery_key` gets this job (0: no retry will come)."""
        job_id, created = new_job_id(), now()
        record = JobRecord(id=job_id, status="queued", request=request, created_at=created)
        score = int(created * 1000)
        queue_score = score - PRIORITY_HEAD_START_MS[request.priority]
        keys = [delivery_key, f"aqe:active:{request.dedupe_key()}"]
        args = [job_id, arq_job_bytes(job_id, score), score, json_encoder.encode(record),
                request.pr_number or "", event, action, request.repo, queue_score, request.priority, remember_s,
                *(audited.fields_without_target() if audited is not None else ())]
        state, found = await self._run_enqueue(keys, args)
        outcome = EnqueueOutcome(state.decode(), found.decode())
        if audited is not None and outcome.state != "duplicate":
            audited.logged(outcome.job_id)
        return outcome

    async def create_finished(self, record: JobRecord, delivery_key: str,
                              remember_s: int = DELIVERY_TTL_S) -> EnqueueOutcome:
        """A job the web process answered itself (e.g. the gate on given metrics): listed like any other, with
        its stream's final event; a retried request with the same delivery key gets the first one (for
        `remember_s`; 0: no retry will come)."""
        if remember_s and not await self.redis.set(delivery_key, record.id, ex=remember_s, nx=True):
            existing = await self.redis.get(delivery_key)
            return EnqueueOutcome("duplicate", existing.decode() if existing else record.id)
        await self.redis.zadd("aqe:jobs", {record.id: int(record.created_at * 1000)})
        await self.save(record, "complete", {"status": record.status, "progress": record.progress,
                                             "conclusion": record.conclusion})
        return EnqueueOutcome("created", record.id)

    async def record_ignored(self, delivery_key: str, *, event: str, action: str, repo: str, reason: str) -> bool:
        """Remember an answered delivery that starts nothing. False if it was seen before."""
        if not await self.redis.set(delivery_key, f"ignored:{reason}", ex=DELIVERY_TTL_S, nx=True):
            return False
        await self.redis.xadd("aqe:deliveries", {"event": event, "action": action, "repo": repo, "outcome": "ignored",
                                                 "reason": reason}, maxlen=DELIVERY_LOG_MAXLEN, approximate=True)
        return True

    async def get(self, job_id: str) -> JobRecord | None:
        raw = await self.redis.get(job_key(job_id))
        return None if raw is None else stored_record(raw)

    async def save(self, record: JobRecord, event_type: str, data: dict[str, Any]) -> str:
        """Store the record and append one event to its stream, atomically. Returns the event id.

        A record saved as ended also frees its analysis key in the same transaction, so a request that
        sees the job ended never joins it."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(job_key(record.id), json_encoder.encode(record), ex=RECORD_TTL_S)
            pipe.xadd(events_key(record.id), {"type": event_type, "data": json_encoder.encode(data)},
                      maxlen=STREAM_MAXLEN, approximate=True)
            pipe.expire(events_key(record.id), RECORD_TTL_S)
            if record.status == "queued":  # waiting (again, e.g. after its worker stopped)
                pipe.zadd(queued_key(record.request.priority), {record.id: int(record.created_at * 1000)})
            else:
                pipe.zrem(queued_key(record.request.priority), record.id)
            if record.status in TERMINAL_STATUSES:
                pipe.eval(_RELEASE_LUA, 1, f"aqe:active:{record.request.dedupe_key()}", record.id)
            replies = await pipe.execute()
        event_id = replies[1]
        return event_id.decode() if isinstance(event_id, bytes) else str(event_id)

    async def update(self, record: JobRecord) -> None:
        """Store the record without an event (e.g. a callback attempt after the job's final event)."""
        await self.redis.set(job_key(record.id), json_encoder.encode(record), ex=RECORD_TTL_S)

    async def extra_prs(self, job_id: str) -> set[int]:
        return {int(n) for n in await self.redis.smembers(prs_key(job_id))}

    async def release(self, record: JobRecord) -> None:
        """Let the next request with the same meaning start a new job (compare-and-delete)."""
        await self.redis.eval(_RELEASE_LUA, 1, f"aqe:active:{record.request.dedupe_key()}", record.id)

    async def cancel(self, job_id: str) -> str:
        """"removed" (it had not started: the caller ends its record), "aborting" (arq cancels it where it
        runs, and the pipeline ends it), or "gone" (no longer queued nor running)."""
        keys = [f"arq:in-progress:{job_id}", ARQ_QUEUE, f"{ARQ_JOB_PREFIX}{job_id}", "arq:abort"]
        answer = await self.redis.eval(_CANCEL_LUA, len(keys), *keys, job_id, int(time.time() * 1000))
        return answer.decode() if isinstance(answer, bytes) else str(answer)

    async def enqueue_callback(self, job_id: str) -> None:
        """Have a worker send the callback of a job that ended without one (once: arq job `callback:<id>`), before
        any analysis waiting (it takes a moment, and its job has ended already)."""
        arq_id, at_ms = f"callback:{job_id}", int(time.time() * 1000)
        if await self.redis.set(ARQ_JOB_PREFIX + arq_id, arq_job_bytes(job_id, at_ms, ARQ_CALLBACK_FUNCTION),
                                px=ARQ_EXPIRES_MS, nx=True):
            await self.redis.zadd(ARQ_QUEUE, {arq_id: at_ms - PRIORITY_HEAD_START_MS["high"] - ARQ_EXPIRES_MS})

    async def recent(self, *, before_ms: int | None, batch: int) -> list[tuple[str, int]]:
        """Job ids with their creation time (ms), newest first, created before `before_ms`."""
        top = f"({before_ms}" if before_ms is not None else "+inf"
        rows = await self.redis.zrevrangebyscore("aqe:jobs", top, "-inf", start=0, num=batch, withscores=True)
        return [(member.decode(), int(score)) for member, score in rows]

    async def get_many(self, job_ids: list[str]) -> list[JobRecord | None]:
        raws = await self.redis.mget([job_key(job_id) for job_id in job_ids]) if job_ids else []
        return [None if raw is None else stored_record(raw) for raw in raws]

    async def save_upload(self, data: bytes) -> str:
        """Keep a file a request brought until its job runs; the Redis key it is under (by content)."""
        key = f"aqe:upload:{hashlib.sha256(data).hexdigest()}"
        await self.redis.set(key, data, ex=UPLOAD_TTL_S)
        return key

    async def blob(self, key: str) -> bytes | None:
        """An upload or a job's artifact, by the key a request named."""
        if not (key.startswith("aqe:upload:") or ":artifact:" in key):
            return None
        return await self.redis.get(key)

    async def save_artifact(self, job_id: str, name: str, data: bytes) -> None:
        await self.redis.set(artifact_key(job_id, name), data, ex=RECORD_TTL_S)

    async def artifact(self, job_id: str, name: str) -> bytes | None:
        return await self.redis.get(artifact_key(job_id, name))

    async def baseline(self, forge: str, repo: str, branch: str) -> dict[str, Any] | None:
        """The last stored figures of a branch (from its latest push), e.g. its total coverage."""
        raw = await self.redis.get(baseline_key(forge, repo, branch))
        return json.loads(raw) if raw else None

    async def save_baseline(self, forge: str, repo: str, branch: str, figures: dict[str, Any]) -> None:
        await self.redis.set(baseline_key(forge, repo, branch), json.dumps(figures), ex=BASELINE_TTL_S)

    async def events(self, job_id: str, after: str = "0-0", count: int = 1000) -> list[tuple[str, dict[str, Any]]]:
        if self.pipelined is None:
            entries = await self.redis.xrange(events_key(job_id), min=events_start(after), count=count)
            return [(eid.decode(), event_of(f[b"type"], f[b"data"])) for eid, f in entries]
        # every stream client reads its backlog here: no pooled connection nor lock for it
        return parsed_events(await self.pipelined.execute("XRANGE", events_key(job_id), events_start(after), "+",
                                                          "COUNT", count))


def events_start(after: str) -> str:
    """The XRANGE start of the events after `after` ("0-0": all of them)."""
    return f"({after}" if after != "0-0" else "-"


def event_of(kind: bytes, data: bytes) -> dict[str, Any]:
    return {"type": kind.decode(), **msgspec.json.decode(data)}


def parsed_events(entries: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    """A job's events as a raw XRANGE reply holds them ([id, [field, value, ...]], as the pipelined connection
    and scripts get it), each as (id, {"type": ..., **data})."""
    events = []
    for eid, fields in entries:
        named = dict(zip(fields[::2], fields[1::2], strict=True))
        events.append((eid.decode(), event_of(named[b"type"], named[b"data"])))
    return events


def start_step(record: JobRecord, name: str, progress: float) -> None:
    record.steps.append(Step(name=name, started_at=now()))
    record.step, record.progress = name, round(progress, 1)


def finish_step(record: JobRecord, name: str | None = None) -> None:
    """End the last step (or the last one called `name`: agents' steps overlap)."""
    for step in reversed(record.steps):
        if name is None or step.name == name:
            if step.finished_at is None:
                step.finished_at = now()
            return
