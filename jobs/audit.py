"""The audit log: who created or revoked a key, issued a token, started a job through the API, logged in to the
dashboard (or was refused) or out, from where.

Entries are appended to the Redis stream `aqe:audit` (about the last 100,000 kept) and logged on `aqe.audit`.
Callers pass names, hints and ids — never a key or token value.
"""

from __future__ import annotations

import logging
import time

import msgspec
from redis.asyncio import Redis

from jobs.redis_pipelined import PipelinedRedis

STREAM = "aqe:audit"
MAXLEN = 100_000
ACTIONS = ("key.created", "key.revoked", "token.issued", "job.started", "session.started", "session.refused",
           "session.ended")
log = logging.getLogger("aqe.audit")


class AuditEntry(msgspec.Struct, kw_only=True):
    id: str  # the stream entry id
    at: float
    actor: str  # "key:jenkins", "jwt:ci-bot", "cli:alice@host"
    action: str
    target: str  # the key's name and first characters, the token's subject and jti, the job id
    ip: str = ""
    detail: str = ""


class Draft(msgspec.Struct, frozen=True):
    """An entry whose target is not known yet: the job id a request's enqueue script settles on. The script
    appends it (`fields_without_target`) in the same round trip, and the caller then calls `logged`."""

    actor: str
    action: str
    ip: str
    detail: str
    at: float

    def fields_without_target(self) -> list[str]:
        return ["at", repr(self.at), "actor", self.actor, "action", self.action, "ip", self.ip, "detail", self.detail]

    def logged(self, target: str) -> None:
        log.info("audit %s by %s on %s from %s %s", self.action, self.actor, target, self.ip or "-", self.detail)


async def record(redis: Redis | PipelinedRedis, *, actor: str, action: str, target: str, ip: str = "",
                 detail: str = "", at: float | None = None) -> str:
    """Append one entry; its stream id. E.g. after the API enqueued a job:
    `await audit.record(redis, actor=principal.actor, action="job.started", target=job_id, ip=client_ip,
    detail="api.test-execute acme/widgets")`. The web process passes its pipelined connection: every job the
    API starts writes an entry, and its XADD through redis-py was about a quarter of such a request's CPU (py-spy)."""
    fields = {"at": repr(at if at is not None else time.time()), "actor": actor, "action": action,
              "target": target, "ip": ip, "detail": detail}
    if isinstance(redis, PipelinedRedis):
        entry_id = await redis.execute("XADD", STREAM, "MAXLEN", "~", MAXLEN, "*",
                                       *(part for pair in fields.items() for part in pair))
    else:
        entry_id = await redis.xadd(STREAM, fields, maxlen=MAXLEN, approximate=True)  # type: ignore[arg-type]
    log.info("audit %s by %s on %s from %s %s", action, actor, target, ip or "-", detail)
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


def entry_of(entry_id: bytes | str, fields: dict[bytes, bytes]) -> AuditEntry:
    text = {k.decode(): v.decode(errors="replace") for k, v in fields.items()}
    try:
        at = float(text.get("at", "0"))
    except ValueError:
        at = 0.0
    return AuditEntry(id=entry_id.decode() if isinstance(entry_id, bytes) else entry_id, at=at,
                      actor=text.get("actor", ""), action=text.get("action", ""), target=text.get("target", ""),
                      ip=text.get("ip", ""), detail=text.get("detail", ""))


async def recent(redis: Redis, limit: int = 50) -> list[AuditEntry]:
    """The newest `limit` entries, newest first."""
    return [entry_of(entry_id, fields) for entry_id, fields in await redis.xrevrange(STREAM, count=limit)]


def entry_line(entry: AuditEntry) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(entry.at))
    return "\t".join([f"{when}Z", entry.actor, entry.action, entry.target, entry.ip or "-", entry.detail])
