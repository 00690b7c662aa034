"""Sans-I/O GitLab webhook handling: verify a delivery, then decide what it asks AQE to run.

GitLab sends the webhook's secret token itself in `X-Gitlab-Token` (it is not a signature); newer GitLab can also
sign deliveries with a signing token, the Standard Webhooks way (`webhook-id`, `webhook-timestamp`,
`webhook-signature`). Events AQE does not act on are answered 2xx: GitLab counts every 4xx towards disabling
the hook.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping, Sequence


from jobs.forges.base import Decision, Delivery, WebhookError, decoded_payload
from jobs.forges.commands import GENERATE_TESTS_COMMAND, RUN_COMMAND, command_fields, command_of
from jobs.forges.gitlab import payloads as p
from jobs.model import RunRequest

MAX_BODY_BYTES = 25 * 1024 * 1024
ZERO_SHA = "0" * 40
MR_ACTIONS = frozenset({"open", "reopen"})
SIGNATURE_TOLERANCE_S = 300


def _token_matches(given: str | None, secrets: Sequence[str]) -> bool:
    if not given:
        return False
    matched = False
    for secret in secrets:  # compare with all of them: the time taken does not tell which one matched
        matched |= hmac.compare_digest(secret.encode(), given.encode())
    return matched


def signature_valid(headers: Mapping[str, str], body: bytes, signing_tokens: Sequence[str],
                    now: float | None = None) -> bool:
    """A Standard Webhooks signature (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`) by one of the tokens."""
    msg_id, stamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    if not msg_id or not stamp.isdigit() or abs((now or time.time()) - int(stamp)) > SIGNATURE_TOLERANCE_S:
        return False
    given = [part.removeprefix("v1,") for part in headers.get("webhook-signature", "").split() if part.startswith("v1,")]
    signed = f"{msg_id}.{stamp}.".encode() + body
    matched = False
    for token in signing_tokens:
        try:
            key = base64.b64decode(token.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError):
            continue
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        for signature in given:
            matched |= hmac.compare_digest(expected, signature)
    return matched


def check_authentic(headers: Mapping[str, str], body: bytes, secrets: Sequence[str],
                    signing_tokens: Sequence[str]) -> None:
    """WebhookError(401) unless the delivery is signed by a signing token or carries a configured secret token."""
    if signing_tokens and "webhook-signature" in headers:
        if signature_valid(headers, body, signing_tokens):
            return
        raise WebhookError(401, "webhook-signature does not match (or webhook-timestamp is over 5 minutes off); "
                                "check GITLAB_WEBHOOK_SIGNING_TOKEN")
    if _token_matches(headers.get("x-gitlab-token"), secrets):
        return
    if not headers.get("x-gitlab-token"):
        raise WebhookError(401, "X-Gitlab-Token header is missing; set the webhook's secret token to "
                                "GITLAB_WEBHOOK_SECRET" + (" (or sign it: GITLAB_WEBHOOK_SIGNING_TOKEN)"
                                                           if signing_tokens else ""))
    raise WebhookError(401, "X-Gitlab-Token does not match; check GITLAB_WEBHOOK_SECRET")


def delivery_id(headers: Mapping[str, str], body: bytes) -> str:
    """What identifies a delivery across retries and resends: `Idempotency-Key` (GitLab 17.4+), else the event's
    UUID, else the body's digest (an older GitLab resends the same body)."""
    for name in ("idempotency-key", "webhook-id", "x-gitlab-event-uuid"):
        value = headers.get(name, "")
        if 0 < len(value) <= 100:
            return value
    return "sha256-" + hashlib.sha256(body).hexdigest()[:40]


def verify(headers: Mapping[str, str], body: bytes, secrets: Sequence[str],
           signing_tokens: Sequence[str] = ()) -> Delivery:
    """Check a delivery's headers and token or signature; the headers mapping must have lower-case keys."""
    if len(body) > MAX_BODY_BYTES:
        raise WebhookError(413, "payload larger than GitLab's 25 MB cap")
    event = headers.get("x-gitlab-event")
    if not event:
        raise WebhookError(400, "X-Gitlab-Event header is missing")
    check_authentic(headers, body, secrets, signing_tokens)
    return Delivery("gitlab", event, delivery_id(headers, body), body)


def clone_url(project: p.Project, instance_url: str) -> str:
    """The project's clone URL on the configured instance (`GITLAB_URL`), not the payload's `git_http_url`:
    the token goes with every fetch, and only ever to the GitLab it belongs to."""
    return f"{instance_url}/{project.path_with_namespace}.git"


def _request(project: p.Project, sender: str, delivery: Delivery, trigger: str, instance_url: str,
             **fields: object) -> RunRequest:
    fields = {"agents": [], **fields}  # no agents: what `.aqe.yml` says, once the worker has read it
    return RunRequest(forge="gitlab", repo=project.path_with_namespace, clone_url=clone_url(project, instance_url),
                      trigger=trigger, delivery_id=delivery.delivery_id, sender=sender,
                      **fields)  # type: ignore[arg-type]


def _push(ev: p.PushEvent, d: Delivery, instance_url: str) -> Decision:
    if ev.after == ZERO_SHA:
        return Decision.ignore("branch deleted")
    if not ev.ref.startswith("refs/heads/"):
        return Decision.ignore(f"push of {ev.ref}, not of a branch")
    branch, default = ev.ref.removeprefix("refs/heads/"), ev.project.default_branch
    if branch != default:
        return Decision.ignore(f"push to '{branch}', not the default branch '{default}'")
    base = None if ev.before in ("", ZERO_SHA) else ev.before
    run = _request(ev.project, ev.user_username, d, "push", instance_url, head_sha=ev.after, base_sha=base,
                   head_ref=branch, base_ref=branch)
    return Decision(runs=[run])


def _merge_request(ev: p.MergeRequestEvent, d: Delivery, instance_url: str) -> Decision:
    mr, action = ev.object_attributes, ev.object_attributes.action or ""
    pushed = action == "update" and mr.oldrev is not None
    if action not in MR_ACTIONS and not pushed:
        why = "an update without new commits" if action == "update" else f"merge request action '{action}'"
        return Decision.ignore(f"{why} starts no analysis", action=action)
    if mr.state != "opened":
        return Decision.ignore("merge request is not open", action=action)
    run = _request(ev.project, ev.user.username, d, f"merge_request.{action}", instance_url,
                   head_sha=mr.last_commit.id, head_ref=mr.source_branch, base_ref=mr.target_branch,
                   pr_number=mr.iid, fork=mr.source_project_id != mr.target_project_id,
                   draft=mr.draft or mr.work_in_progress)
    return Decision(runs=[run], action=action)


def _note(ev: p.NoteEvent, d: Delivery, instance_url: str) -> Decision:
    note, action = ev.object_attributes, ev.object_attributes.action or "create"
    if action != "create":
        return Decision.ignore(f"note action '{action}' starts no analysis", action=action)
    mr = ev.merge_request
    if note.noteable_type != "MergeRequest" or mr is None:
        return Decision.ignore(f"note on a {note.noteable_type}, not a merge request", action=action)
    command = command_of(note.note)
    if command is None:
        return Decision.ignore(f"note does not start with '{RUN_COMMAND}' or '{GENERATE_TESTS_COMMAND}'",
                               action=action)
    if mr.state != "opened":
        return Decision.ignore("merge request is not open", action=action)
    # The payload does not say the author's role: the worker asks GitLab (GitLabReporter.resolve) before it
    # trusts the command with a fork's code or lets it push a branch. It reads the merge request's head then.
    run = _request(ev.project, ev.user.username, d, "note.create", instance_url, head_sha="",
                   head_ref=mr.source_branch, base_ref=mr.target_branch, pr_number=mr.iid,
                   fork=mr.source_project_id != mr.target_project_id, draft=mr.draft, **command_fields(command))
    return Decision(runs=[run], action=action)


_HANDLERS: dict[str, Callable[..., Decision]] = {
    "Push Hook": _push,
    "Merge Request Hook": _merge_request,
    "Note Hook": _note,
}


def decide(delivery: Delivery, instance_url: str) -> Decision:
    """Translate a verified delivery into run requests, or say why it starts nothing."""
    handler = _HANDLERS.get(delivery.event)
    if handler is None:
        return Decision.ignore(f"event '{delivery.event}' is not handled")
    event = decoded_payload(p.DECODERS, delivery.event, delivery.payload)
    decision = handler(event, delivery, instance_url)
    decision.repo = decision.repo or event.project.path_with_namespace  # type: ignore[attr-defined]
    return decision
