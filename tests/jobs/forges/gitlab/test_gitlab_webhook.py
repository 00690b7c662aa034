"""Unit tests of the sans-I/O GitLab webhook code: `verify` (secret token or Standard Webhooks signature) and
`decide` (payload -> runs). The payloads have the shape of GitLab's documented examples (webhook_events.md)."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import time
from typing import Any

import pytest

from jobs.forges.base import Delivery, WebhookError
from jobs.forges.gitlab.webhook import MAX_BODY_BYTES, decide, delivery_id, signature_valid, verify

SECRET = "gl-hook-secret-7f3a"
SIGNING = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
INSTANCE = "https://gitlab.example.com"
HEAD = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"
BEFORE = "95790bf891e76fee5e1747ab589903a6a1f80f22"
ZERO = "0" * 40

PROJECT = {"id": 15, "name": "app", "description": "", "web_url": f"{INSTANCE}/acme/platform/app",
           "avatar_url": None, "git_ssh_url": "git@gitlab.example.com:acme/platform/app.git",
           "git_http_url": f"{INSTANCE}/acme/platform/app.git", "namespace": "platform", "visibility_level": 0,
           "path_with_namespace": "acme/platform/app", "default_branch": "main", "ci_config_path": None,
           "homepage": f"{INSTANCE}/acme/platform/app", "url": "git@gitlab.example.com:acme/platform/app.git",
           "ssh_url": "git@gitlab.example.com:acme/platform/app.git",
           "http_url": f"{INSTANCE}/acme/platform/app.git"}
USER = {"id": 1, "name": "Alice", "username": "alice", "avatar_url": "", "email": "[REDACTED]"}

PUSH = {"object_kind": "push", "event_name": "push", "before": BEFORE, "after": HEAD, "ref": "refs/heads/main",
        "ref_protected": True, "checkout_sha": HEAD, "message": None, "user_id": 1, "user_name": "Alice",
        "user_username": "alice", "user_email": "", "user_avatar": "", "project_id": 15, "project": PROJECT,
        "commits": [{"id": HEAD, "message": "Fix the cart total", "title": "Fix the cart total",
                     "timestamp": "2026-11-29T08:00:00+00:00", "url": f"{INSTANCE}/acme/platform/app/-/commit/{HEAD}",
                     "author": {"name": "Alice", "email": "[REDACTED]"}, "added": [], "modified": ["cart.py"],
                     "removed": []}],
        "total_commits_count": 1, "push_options": {}, "repository": {"name": "app", "homepage": PROJECT["homepage"]}}

MR = {"object_kind": "merge_request", "event_type": "merge_request", "user": USER, "project": PROJECT,
      "object_attributes": {
          "id": 99, "iid": 7, "target_branch": "main", "source_branch": "feature/cart", "source_project_id": 15,
          "author_id": 1, "title": "Cart totals", "created_at": "2026-11-29 08:00:00 UTC", "state": "opened",
          "merge_status": "unchecked", "detailed_merge_status": "checking", "target_project_id": 15,
          "description": "", "url": f"{INSTANCE}/acme/platform/app/-/merge_requests/7", "source": PROJECT,
          "target": PROJECT, "last_commit": {"id": HEAD, "message": "Fix the cart total", "title": "Fix the cart total",
                                             "timestamp": "2026-11-29T08:00:00+00:00", "url": "",
                                             "author": {"name": "Alice", "email": "[REDACTED]"}},
          "work_in_progress": False, "draft": False, "action": "open"},
      "labels": [], "changes": {}, "repository": {"name": "app"}}

NOTE = {"object_kind": "note", "event_type": "note", "user": USER, "project_id": 15, "project": PROJECT,
        "object_attributes": {"id": 1244, "note": "/aqe run", "noteable_type": "MergeRequest", "author_id": 1,
                              "project_id": 15, "system": False, "noteable_id": 99, "action": "create",
                              "url": f"{INSTANCE}/acme/platform/app/-/merge_requests/7#note_1244"},
        "merge_request": {"id": 99, "iid": 7, "target_branch": "main", "source_branch": "feature/cart",
                          "source_project_id": 15, "target_project_id": 15, "state": "opened", "draft": False,
                          "last_commit": {"id": HEAD}}}

EVENTS = {"push": "Push Hook", "merge_request": "Merge Request Hook", "note": "Note Hook"}


def headers(event: str, *, token: str | None = SECRET, **extra: str) -> dict[str, str]:
    out = {"x-gitlab-event": event, "content-type": "application/json", "x-gitlab-event-uuid": "ev-1",
           "idempotency-key": "idem-1", "user-agent": "GitLab/18.6.0", "x-gitlab-instance": INSTANCE}
    if token is not None:
        out["x-gitlab-token"] = token
    return {**out, **extra}


def deliver(payload: dict[str, Any]) -> Delivery:
    body = json.dumps(payload).encode()
    return verify(headers(EVENTS[payload["object_kind"]]), body, [SECRET])


def runs(payload: dict[str, Any]) -> list[Any]:
    return decide(deliver(payload), INSTANCE).runs


def changed(payload: dict[str, Any], **attributes: Any) -> dict[str, Any]:
    out = copy.deepcopy(payload)
    out["object_attributes"].update(attributes)
    return out


def sign(body: bytes, msg_id: str, stamp: int, token: str = SIGNING) -> str:
    key = base64.b64decode(token.removeprefix("whsec_"))
    return "v1," + base64.b64encode(hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()).decode()


# --------------------------------------------------------------------------------------------- verify


def test_the_secret_token_is_accepted_among_several_and_the_idempotency_key_names_the_delivery() -> None:
    delivery = verify(headers("Push Hook"), b"{}", ["old-secret", SECRET])
    assert (delivery.forge, delivery.event, delivery.delivery_id) == ("gitlab", "Push Hook", "idem-1")


@pytest.mark.parametrize(("token", "words"), [(None, "X-Gitlab-Token header is missing"),
                                              ("wrong", "does not match")])
def test_a_missing_or_wrong_token_is_refused_with_401(token: str | None, words: str) -> None:
    with pytest.raises(WebhookError) as caught:
        verify(headers("Push Hook", token=token), b"{}", [SECRET])
    assert caught.value.status_code == 401 and words in caught.value.message


def test_a_delivery_without_an_event_header_is_a_400() -> None:
    with pytest.raises(WebhookError) as caught:
        verify({"x-gitlab-token": SECRET}, b"{}", [SECRET])
    assert caught.value.status_code == 400


def test_a_body_over_25_mb_is_refused_before_anything_else() -> None:
    with pytest.raises(WebhookError) as caught:
        verify(headers("Push Hook"), b" " * (MAX_BODY_BYTES + 1), [SECRET])
    assert caught.value.status_code == 413


def test_a_signed_delivery_is_checked_by_its_signature_and_a_forged_one_refused() -> None:
    body, stamp = b'{"object_kind":"push"}', int(time.time())
    signed = headers("Push Hook", token=None, **{"webhook-id": "msg_1", "webhook-timestamp": str(stamp),
                                                 "webhook-signature": f"v1,bogus {sign(body, 'msg_1', stamp)}"})
    assert verify(signed, body, [], [SIGNING]).delivery_id == "idem-1"
    with pytest.raises(WebhookError) as caught:
        verify(signed, body + b" ", [SECRET], [SIGNING])  # a signature is required once sent, even with a token
    assert caught.value.status_code == 401 and "webhook-signature" in caught.value.message


def test_a_signature_older_than_five_minutes_does_not_count() -> None:
    body, stamp = b"{}", int(time.time()) - 301
    signed = {"webhook-id": "m", "webhook-timestamp": str(stamp), "webhook-signature": sign(body, "m", stamp)}
    assert not signature_valid(signed, body, [SIGNING])
    assert signature_valid(signed, body, [SIGNING], now=stamp + 10)


def test_without_an_idempotency_key_the_event_uuid_then_the_body_names_the_delivery() -> None:
    assert delivery_id({"x-gitlab-event-uuid": "ev-9"}, b"{}") == "ev-9"
    assert delivery_id({}, b"{}") == delivery_id({}, b"{}") != delivery_id({}, b"[]")


# --------------------------------------------------------------------------------------------- decide


def test_a_push_to_the_default_branch_analyses_it_from_the_commit_before() -> None:
    [run] = runs(PUSH)
    assert (run.forge, run.repo, run.clone_url) == ("gitlab", "acme/platform/app", PROJECT["git_http_url"])
    assert (run.head_sha, run.base_sha, run.head_ref, run.base_ref) == (HEAD, BEFORE, "main", "main")
    assert (run.trigger, run.sender, run.delivery_id, run.agents) == ("push", "alice", "idem-1", [])


@pytest.mark.parametrize(("change", "why"), [
    ({"after": ZERO, "checkout_sha": None}, "branch deleted"),
    ({"ref": "refs/heads/feature/cart"}, "not the default branch 'main'"),
    ({"ref": "refs/tags/v1.0"}, "not of a branch"),
])
def test_other_pushes_are_ignored_saying_why(change: dict[str, Any], why: str) -> None:
    decision = decide(deliver({**PUSH, **change}), INSTANCE)
    assert not decision.runs and why in (decision.ignored or "")


def test_a_new_branch_push_has_no_base() -> None:
    [run] = runs({**PUSH, "before": ZERO})
    assert run.base_sha is None


def test_an_opened_merge_request_is_analysed_at_its_last_commit() -> None:
    [run] = runs(MR)
    assert (run.pr_number, run.head_sha, run.head_ref, run.base_ref) == (7, HEAD, "feature/cart", "main")
    assert (run.trigger, run.fork, run.draft) == ("merge_request.open", False, False)


def test_an_update_runs_only_when_it_pushed_code() -> None:
    assert runs(changed(MR, action="update", oldrev=BEFORE))[0].trigger == "merge_request.update"
    decision = decide(deliver(changed(MR, action="update")), INSTANCE)  # a title or label change
    assert not decision.runs and "without new commits" in (decision.ignored or "")


@pytest.mark.parametrize("action", ["close", "merge", "approved", "unapproved"])
def test_other_merge_request_actions_start_nothing(action: str) -> None:
    assert not runs(changed(MR, action=action))


def test_a_merge_request_from_a_fork_or_a_draft_says_so() -> None:
    [run] = runs(changed(MR, source_project_id=16, draft=True))
    assert run.fork and run.draft


def test_a_closed_merge_request_is_not_analysed() -> None:
    assert not runs(changed(MR, action="reopen", state="closed"))


def test_aqe_run_in_a_note_analyses_the_merge_requests_head_as_it_is_then() -> None:
    [run] = runs(NOTE)
    assert (run.trigger, run.pr_number, run.head_sha, run.trusted) == ("note.create", 7, "", False)


def test_aqe_generate_tests_runs_the_tests_and_the_generation_and_asks_for_a_merge_request() -> None:
    [run] = runs(changed(NOTE, note="/aqe generate-tests"))
    assert (run.agents, run.propose_tests, run.trusted) == (["tests", "test-generation"], True, False)


def test_other_notes_start_nothing() -> None:
    decision = decide(deliver(changed(NOTE, note="/aqe runner")), INSTANCE)
    assert not decision.runs and "does not start with '/aqe run' or '/aqe generate-tests'" in (decision.ignored or "")


def test_an_edited_note_or_a_note_on_an_issue_starts_nothing() -> None:
    assert not runs(changed(NOTE, action="update"))
    on_issue = changed(NOTE, noteable_type="Issue")
    del on_issue["merge_request"]
    assert not runs(on_issue)


def test_events_aqe_does_not_handle_are_ignored_not_refused() -> None:
    decision = decide(verify(headers("Pipeline Hook"), b"{}", [SECRET]), INSTANCE)
    assert decision.ignored == "event 'Pipeline Hook' is not handled"


def test_a_payload_without_the_fields_aqe_needs_is_a_400_naming_them() -> None:
    with pytest.raises(WebhookError) as caught:
        decide(verify(headers("Push Hook"), b'{"object_kind": "push"}', [SECRET]), INSTANCE)
    assert caught.value.status_code == 400 and "missing required field" in caught.value.message


def test_the_clone_url_is_on_the_configured_instance_whatever_the_payload_says() -> None:
    elsewhere = {**PUSH, "project": {**PROJECT, "git_http_url": "https://attacker.example/acme/platform/app.git"}}
    [run] = runs(elsewhere)
    assert run.clone_url == f"{INSTANCE}/acme/platform/app.git"  # the token is sent with every fetch
