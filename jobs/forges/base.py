"""What every forge provides, and the forge-neutral outcome of reading one webhook delivery."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import msgspec

from jobs.model import JobRecord, RunRequest

if TYPE_CHECKING:
    from jobs.checkout import Source
    from jobs.reporting.base import Reporter
    from jobs.services import Services
    from jobs.settings import Settings


class WebPaths(NamedTuple):
    """How a forge's web pages are addressed under a repository's URL (the job page links to them)."""

    blob: str  # then /<sha>/<path>
    pull: str  # then /<number>
    commit: str  # then /<sha>
    pull_name: str  # "pull request #{}"
    last_line: str  # the end of a line range: "-L{}" on GitHub, "-{}" on GitLab


class Forge(Protocol):
    """What the pipeline needs from a forge: credentials, where the code is, and a reporter."""

    name: str
    web_paths: WebPaths | None  # None: no web pages to link to (a plain git server)

    def web_url(self, settings: Settings) -> str:
        """Where its repositories' pages are, and (with `/<repo>.git`) where they are cloned from."""
        ...

    async def token(self, services: Services, request: RunRequest) -> str: ...

    async def reporter(self, services: Services, record: JobRecord, token: str) -> Reporter: ...

    def git_auth(self, token: str) -> str: ...

    def source(self, request: RunRequest) -> Source: ...


class WebhookError(Exception):
    """A delivery we refuse; `status_code` is what the sender gets back."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def decoded_payload(decoders: Mapping[str, msgspec.json.Decoder], event: str, payload: bytes) -> Any:
    """The delivery's payload as its event's struct; WebhookError(400) naming what is missing or malformed."""
    try:
        return decoders[event].decode(payload)
    except msgspec.ValidationError as exc:
        raise WebhookError(400, f"{event} payload is missing fields we need: {exc}") from None
    except msgspec.DecodeError:
        raise WebhookError(400, "body is not valid JSON") from None


@dataclass(frozen=True)
class Delivery:
    """A verified delivery: who sent what, and the id used to drop redeliveries."""

    forge: str
    event: str
    delivery_id: str
    payload: bytes
    secret_index: int = 0


@dataclass
class Decision:
    """What a delivery asks for: runs to enqueue, or nothing (with the reason), or a fact to record."""

    runs: list[RunRequest] = field(default_factory=list)
    ignored: str | None = None
    action: str = ""
    repo: str = ""
    record: dict[str, Any] | None = None  # e.g. an installation change

    @classmethod
    def ignore(cls, reason: str, *, action: str = "", repo: str = "") -> Decision:
        return cls(ignored=reason, action=action, repo=repo)
