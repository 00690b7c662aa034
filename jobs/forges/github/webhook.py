"""Sans-I/O GitHub webhook handling: verify a delivery, then decide what it asks AQE to run.

Nothing here awaits or touches the network: headers and body in, a `Decision` out.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import parse_qs


from jobs.forges.base import Decision, Delivery, WebhookError, decoded_payload
from jobs.forges.commands import GENERATE_TESTS_COMMAND, RUN_COMMAND, command_fields, command_of
from jobs.forges.github import payloads as p
from jobs.model import RunRequest

MAX_BODY_BYTES = 25 * 1024 * 1024
ZERO_SHA = "0" * 40
PR_ACTIONS = frozenset({"opened", "synchronize", "reopened", "ready_for_review"})
TRUSTED_ASSOCIATIONS = frozenset({"OWNER", "MEMBER", "COLLABORATOR"})


def matching_secret_index(body: bytes, signature: str | None, secrets: Sequence[str]) -> int:
    """Index of the secret whose HMAC-SHA256 of `body` equals `signature`; WebhookError(401) if none."""
    if not signature:
        raise WebhookError(401, "X-Hub-Signature-256 header is missing; set the webhook secret on the GitHub App")
    if not signature.startswith("sha256="):
        raise WebhookError(401, "X-Hub-Signature-256 must be 'sha256=<hex>' (sha1 signatures are not accepted)")
    given = signature[7:].encode()
    found = -1
    for index, secret in enumerate(secrets):  # check all of them: time does not depend on which matched
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
        if hmac.compare_digest(expected, given) and found < 0:
            found = index
    if found < 0:
        raise WebhookError(401, "signature does not match; check GITHUB_WEBHOOK_SECRET")
    return found


def json_body(body: bytes, content_type: str) -> bytes:
    """The JSON document of a delivery, whether sent as JSON or form-encoded (`payload=`)."""
    if content_type.startswith("application/x-www-form-urlencoded"):
        try:
            fields = parse_qs(body.decode("utf-8"), strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            raise WebhookError(400, "form-encoded body could not be decoded") from None
        if "payload" not in fields:
            raise WebhookError(400, "form-encoded delivery has no 'payload' field")
        return fields["payload"][0].encode("utf-8")
    return body


def verify(headers: Mapping[str, str], body: bytes, secrets: Sequence[str]) -> Delivery:
    """Check a delivery's headers and signature; the headers mapping must have lower-case keys."""
    if len(body) > MAX_BODY_BYTES:
        raise WebhookError(413, "payload larger than GitHub's 25 MB cap")
    event = headers.get("x-github-event")
    if not event:
        raise WebhookError(400, "X-GitHub-Event header is missing")
    delivery_id = headers.get("x-github-delivery")
    if not delivery_id or len(delivery_id) > 100:
        raise WebhookError(400, "X-GitHub-Delivery header is missing or invalid")
    index = matching_secret_index(body, headers.get("x-hub-signature-256"), secrets)
    payload = json_body(body, headers.get("content-type", "application/json"))
    return Delivery("github", event, delivery_id, payload, index)


def _is_own(sender: p.User, app_slug: str) -> bool:
    return sender.type == "Bot" and sender.login == f"{app_slug}[bot]"


def _request(repo: p.Repo, installation: p.Installation | None, sender: p.User, delivery: Delivery,
             trigger: str, **fields: object) -> RunRequest:
    fields = {"agents": [], **fields}  # no agents: what `.aqe.yml` says, once the worker has read it
    return RunRequest(forge="github", repo=repo.full_name, clone_url=repo.clone_url, trigger=trigger,
                      installation_id=installation.id if installation else None,
                      delivery_id=delivery.delivery_id, sender=sender.login, **fields)  # type: ignore[arg-type]


def _pull_request(ev: p.PullRequestEvent, d: Delivery) -> Decision:
    pr, trigger = ev.pull_request, f"pull_request.{ev.action}"
    base_changed = ev.action == "edited" and ev.changes is not None and ev.changes.base is not None
    if ev.action not in PR_ACTIONS and not base_changed:
        return Decision.ignore(f"pull_request action '{ev.action}' starts no analysis", action=ev.action)
    if pr.state != "open":
        return Decision.ignore("pull request is not open", action=ev.action)
    head_repo = pr.head.repo
    fork = head_repo is None or head_repo.full_name != ev.repository.full_name
    run = _request(ev.repository, ev.installation, ev.sender, d, trigger, head_sha=pr.head.sha,
                   base_sha=pr.base.sha, head_ref=pr.head.ref, base_ref=pr.base.ref, pr_number=pr.number,
                   fork=fork, draft=pr.draft)
    return Decision(runs=[run], action=ev.action)


def _push(ev: p.PushEvent, d: Delivery) -> Decision:
    if ev.deleted or ev.after == ZERO_SHA:
        return Decision.ignore("branch deleted")
    branch = ev.ref.removeprefix("refs/heads/")
    if ev.ref != f"refs/heads/{ev.repository.default_branch}":
        return Decision.ignore(f"push to '{branch}', not the default branch '{ev.repository.default_branch}'")
    base = None if ev.forced or ev.before in ("", ZERO_SHA) else ev.before
    run = _request(ev.repository, ev.installation, ev.sender, d, "push", head_sha=ev.after, base_sha=base,
                   head_ref=branch, base_ref=branch)
    return Decision(runs=[run])


def _own_pull_requests(refs: list[p.PullRequestRef], repo: p.Repo) -> list[p.PullRequestRef]:
    """A fork's check suite lists the upstream PR too; its number means nothing in the fork."""
    return [pr for pr in refs if pr.base.repo is None or not repo.id or pr.base.repo.id == repo.id]


def _from_pr_refs(refs: list[p.PullRequestRef]) -> dict[str, object]:
    if not refs:
        return {}
    pr = refs[0]
    return {"pr_number": pr.number, "base_sha": pr.base.sha, "base_ref": pr.base.ref}


def _base_of_suite(refs: list[p.PullRequestRef], before: str | None, branch: str | None) -> dict[str, object]:
    if refs:
        return _from_pr_refs(refs)
    if before and before != ZERO_SHA:
        return {"base_sha": before, "base_ref": branch}
    return {}


def _check_suite(ev: p.CheckSuiteEvent, d: Delivery) -> Decision:
    suite = ev.check_suite
    if ev.action not in ("requested", "rerequested"):
        return Decision.ignore(f"check_suite action '{ev.action}' starts no analysis", action=ev.action)
    own = _own_pull_requests(suite.pull_requests, ev.repository)
    on_default = suite.head_branch == ev.repository.default_branch
    if ev.action == "requested" and not own and not on_default:
        return Decision.ignore("check suite of a branch with no pull request", action=ev.action)
    fork = not suite.pull_requests and suite.head_branch is None
    run = _request(ev.repository, ev.installation, ev.sender, d, f"check_suite.{ev.action}", head_sha=suite.head_sha,
                   head_ref=suite.head_branch, fork=fork, **_base_of_suite(own, suite.before, suite.head_branch))
    return Decision(runs=[run], action=ev.action)


def _check_run(ev: p.CheckRunEvent, d: Delivery) -> Decision:
    if ev.action != "rerequested":
        return Decision.ignore(f"check_run action '{ev.action}' starts no analysis", action=ev.action)
    cr = ev.check_run
    head_branch = cr.check_suite.head_branch if cr.check_suite else None
    fork = not cr.pull_requests and head_branch is None
    own = _own_pull_requests(cr.pull_requests, ev.repository)
    run = _request(ev.repository, ev.installation, ev.sender, d, "check_run.rerequested", head_sha=cr.head_sha,
                   head_ref=head_branch, fork=fork, **_from_pr_refs(own))
    return Decision(runs=[run], action=ev.action)


def _issue_comment(ev: p.IssueCommentEvent, d: Delivery) -> Decision:
    if ev.action != "created":
        return Decision.ignore(f"issue_comment action '{ev.action}' starts no analysis", action=ev.action)
    if ev.issue.pull_request is None:
        return Decision.ignore("comment on an issue, not a pull request", action=ev.action)
    if ev.sender.type == "Bot":
        return Decision.ignore("comment written by a bot", action=ev.action)
    command = command_of(ev.comment.body)
    if command is None:
        return Decision.ignore(f"comment does not start with '{RUN_COMMAND}' or '{GENERATE_TESTS_COMMAND}'",
                               action=ev.action)
    if ev.comment.author_association not in TRUSTED_ASSOCIATIONS:
        return Decision.ignore(f"'{command}' needs an owner, member or collaborator "
                               f"(author is {ev.comment.author_association})", action=ev.action)
    # The head sha is not in this payload; the worker asks GitHub for the pull request.
    run = _request(ev.repository, ev.installation, ev.sender, d, "issue_comment.created", head_sha="",
                   pr_number=ev.issue.number, trusted=True, **command_fields(command))
    return Decision(runs=[run], action=ev.action)


def _installation(ev: p.InstallationEvent, d: Delivery) -> Decision:
    listed = ev.repositories or []
    added = ev.repositories_added or (listed if ev.action == "created" else [])
    removed = ev.repositories_removed or (listed if ev.action == "deleted" else [])
    record = {"installation_id": ev.installation.id, "account": ev.installation.account.login,
              "action": ev.action, "added": [r.full_name for r in added], "removed": [r.full_name for r in removed]}
    return Decision(record=record, action=ev.action, ignored="installation change recorded")


_HANDLERS: dict[str, Callable[..., Decision]] = {
    "pull_request": _pull_request,
    "push": _push,
    "check_suite": _check_suite,
    "check_run": _check_run,
    "issue_comment": _issue_comment,
    "installation": _installation,
    "installation_repositories": _installation,
}


def decide(delivery: Delivery, app_slug: str = "aqe") -> Decision:
    """Translate a verified delivery into run requests, or say why it starts nothing."""
    if delivery.event == "ping":
        return Decision.ignore("ping")
    handler = _HANDLERS.get(delivery.event)
    if handler is None:
        return Decision.ignore(f"event '{delivery.event}' is not handled")
    event = decoded_payload(p.DECODERS, delivery.event, delivery.payload)
    sender = getattr(event, "sender", None)
    repo = getattr(getattr(event, "repository", None), "full_name", "")
    if sender is not None and _is_own(sender, app_slug):
        return Decision.ignore("sent by this app", action=getattr(event, "action", ""), repo=repo)
    decision = handler(event, delivery)
    decision.repo = decision.repo or repo
    return decision
