"""Unit tests of the sans-I/O GitHub webhook code: `verify` (headers + HMAC) and `decide` (payload -> runs).

The payloads in tests/fixtures/github/ have GitHub's complete shape (every field a real delivery carries) and
share one fictional world: acme/widgets (id 1296269), installation 2311213, our App "aqe" (bot `aqe[bot]`).
Each test signs the fixture's exact bytes, as GitHub would, and goes through `verify` before `decide`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from pathlib import Path
from urllib.parse import urlencode

import msgspec
import pytest

from jobs.forges.base import Decision, Delivery, WebhookError
from jobs.forges.commands import command_of
from jobs.forges.github.webhook import MAX_BODY_BYTES, decide, matching_secret_index, verify
from jobs.model import RunRequest

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "github"
SECRET = "whsec-acme-aqe-8d1f2c"

REPO = "acme/widgets"
CLONE_URL = "https://github.com/acme/widgets.git"
INSTALLATION_ID = 2311213

# Commits of the fixture world.
MAIN_TIP = "1db1f75b97b48e9c706afb25f4ca0f212e3b1dc1"    # main while PRs #42-#45 are open
MAIN_AFTER = "c149836273c1ef8fe34a0a39ef7d5b41856c3d78"  # main after push.default
PR42_OPEN = "05fbf64b028802da8941c56071efcce406e00209"
PR42_SYNC = "7c86125b8e4ed565aa05cd41aed42449b2dae340"
PR43_DRAFT = "b1013371cd490b15b8659d3c8aa968a2f974920c"
PR43_READY = "e322e405e7d3c626159cdbbbd4123c576fc04e7f"
PR44_FORK = "e8141f9ab0f8876ddb05394390bfd77c1d8819fe"
FORCED_AFTER = "53d2bdf374e4cc2c9b0343ce39dfa8af87e3f509"

ALL_FIXTURES = {
    "pull_request.opened", "pull_request.synchronize", "pull_request.reopened", "pull_request.ready_for_review",
    "pull_request.closed", "pull_request.edited.base", "pull_request.edited.title", "pull_request.opened.draft",
    "pull_request.opened.fork", "pull_request.labeled", "pull_request.opened.by_own_app",
    "push.default", "push.branch", "push.deleted", "push.forced",
    "check_suite.requested", "check_suite.requested.nopr", "check_suite.rerequested", "check_suite.completed",
    "check_run.rerequested", "check_run.created", "check_run.requested_action",
    "issue_comment.created.run", "issue_comment.created.none", "issue_comment.created.issue",
    "issue_comment.created.bot", "issue_comment.created.chatter", "issue_comment.created.generate",
    "installation.created", "installation_repositories.added", "ping",
}


# ------------------------------------------------------------------------------------------------ helpers
def load(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def delivery_id_for(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://aqe.acme.example/deliveries/{name}"))


def github_headers(event: str, body: bytes, *, delivery_id: str, secret: str = SECRET,
                   content_type: str = "application/json") -> dict[str, str]:
    """The headers of a GitHub App delivery (lower-case keys, as `verify` expects)."""
    return {
        "x-github-event": event,
        "x-github-delivery": delivery_id,
        "x-hub-signature-256": sign(body, secret),
        "x-github-hook-id": "531870244",
        "x-github-hook-installation-target-type": "integration",
        "x-github-hook-installation-target-id": "871234",
        "user-agent": "GitHub-Hookshot/4b6a3f2",
        "content-type": content_type,
        "accept": "*/*",
    }


def event_of(name: str) -> str:
    return name.split(".", 1)[0]


def deliver(name: str, *, event: str | None = None, body: bytes | None = None) -> Delivery:
    """Sign the fixture's bytes like GitHub does and verify them."""
    body = load(name) if body is None else body
    headers = github_headers(event or event_of(name), body, delivery_id=delivery_id_for(name))
    return verify(headers, body, [SECRET])


def decision_for(name: str, **kwargs: object) -> Decision:
    return decide(deliver(name), **kwargs)  # type: ignore[arg-type]


def mutated(name: str, change) -> bytes:
    """The fixture with `change(payload)` applied, re-encoded (for variants GitHub also sends)."""
    payload = json.loads(load(name))
    change(payload)
    return json.dumps(payload).encode()


def expected(name: str, **fields: object) -> RunRequest:
    base: dict[str, object] = {"forge": "github", "repo": REPO, "clone_url": CLONE_URL, "agents": [],
                               "installation_id": INSTALLATION_ID, "delivery_id": delivery_id_for(name)}
    base.update(fields)
    return RunRequest(**base)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ fixtures
def test_fixture_set_is_complete_and_consistent() -> None:
    names = {p.name.removesuffix(".json") for p in FIXTURES.glob("*.json")}
    assert ALL_FIXTURES <= names
    hex40 = re.compile(r"^[0-9a-f]{40}$")
    for name in ALL_FIXTURES:
        payload = json.loads(load(name))
        assert payload["sender"]["login"]
        if event_of(name) in ("installation", "installation_repositories"):
            assert payload["installation"]["id"] == INSTALLATION_ID
            assert payload["installation"]["account"]["login"] == "acme"
            continue
        if name == "ping":
            assert payload["hook"]["app_id"] == 871234 and payload["hook"]["id"] == payload["hook_id"]
            continue
        assert payload["installation"] == {"id": INSTALLATION_ID, "node_id": payload["installation"]["node_id"]}
        repo = payload["repository"]
        assert (repo["id"], repo["full_name"], repo["default_branch"], repo["clone_url"]) == (
            1296269, REPO, "main", CLONE_URL)
        assert repo["owner"]["login"] == "acme"
        if "pull_request" in payload:
            pr = payload["pull_request"]
            for side in ("head", "base"):
                assert hex40.match(pr[side]["sha"])
                assert pr[side]["repo"]["owner"]["login"]
            assert pr["_links"]["self"]["href"].endswith(f"/pulls/{pr['number']}")
    size = len(load("pull_request.opened"))
    assert 20 * 1024 <= size <= 30 * 1024, size


@pytest.mark.parametrize("name", sorted(ALL_FIXTURES))
def test_every_fixture_verifies_and_decides(name: str) -> None:
    delivery = deliver(name)
    assert delivery == Delivery("github", event_of(name), delivery_id_for(name), load(name), 0)
    decision = decide(delivery)
    assert bool(decision.runs) != bool(decision.ignored), decision


# ------------------------------------------------------------------------------------------------ verify
def test_github_published_signature_test_vector() -> None:
    secret, body = "It's a Secret to Everybody", b"Hello, World!"
    signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert sign(body, secret) == signature
    assert matching_secret_index(body, signature, [secret]) == 0
    headers = github_headers("ping", body, delivery_id="72d3162e-cc78-11e3-81ab-4c9367dc0958", secret=secret)
    assert headers["x-hub-signature-256"] == signature
    delivery = verify(headers, body, [secret])
    assert delivery == Delivery("github", "ping", "72d3162e-cc78-11e3-81ab-4c9367dc0958", body, 0)


def _status(exc: pytest.ExceptionInfo[WebhookError]) -> int:
    return exc.value.status_code


def test_tampered_body_is_rejected() -> None:
    body = load("pull_request.opened")
    headers = github_headers("pull_request", body, delivery_id="d-1")
    tampered = body.replace(PR42_OPEN.encode(), b"0" * 40, 1)
    assert tampered != body
    with pytest.raises(WebhookError) as exc:
        verify(headers, tampered, [SECRET])
    assert _status(exc) == 401


def test_missing_signature_header_is_rejected() -> None:
    body = load("push.default")
    headers = github_headers("push", body, delivery_id="d-2")
    del headers["x-hub-signature-256"]
    with pytest.raises(WebhookError) as exc:
        verify(headers, body, [SECRET])
    assert _status(exc) == 401


def test_legacy_sha1_signature_is_rejected() -> None:
    body = load("push.default")
    sha1 = "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    headers = github_headers("push", body, delivery_id="d-3")
    headers["x-hub-signature-256"] = sha1  # a sha1 value where the sha256 one belongs
    with pytest.raises(WebhookError) as exc:
        verify(headers, body, [SECRET])
    assert _status(exc) == 401
    del headers["x-hub-signature-256"]
    headers["x-hub-signature"] = sha1  # only the legacy header
    with pytest.raises(WebhookError) as exc:
        verify(headers, body, [SECRET])
    assert _status(exc) == 401


def test_wrong_secret_is_rejected() -> None:
    body = load("push.default")
    headers = github_headers("push", body, delivery_id="d-4", secret="not-the-secret")
    with pytest.raises(WebhookError) as exc:
        verify(headers, body, [SECRET, "another-secret"])
    assert _status(exc) == 401
    with pytest.raises(WebhookError) as exc:
        verify(github_headers("push", body, delivery_id="d-4"), body, [])
    assert _status(exc) == 401


def test_rotated_secrets_old_and_new_both_verify() -> None:
    body = load("pull_request.synchronize")
    old, new = "whsec-old-2024", "whsec-new-2025"
    by_old = verify(github_headers("pull_request", body, delivery_id="d-5", secret=old), body, [old, new])
    by_new = verify(github_headers("pull_request", body, delivery_id="d-6", secret=new), body, [old, new])
    assert (by_old.secret_index, by_new.secret_index) == (0, 1)
    assert by_old.payload == by_new.payload == body


def test_form_encoded_delivery_verifies_over_the_raw_form_body() -> None:
    json_text = load("pull_request.opened").decode("utf-8")
    assert "C++" in json_text and " " in json_text  # '+' and spaces must survive form decoding
    form = urlencode({"payload": json_text}).encode("ascii")
    headers = github_headers("pull_request", form, delivery_id=delivery_id_for("pull_request.opened"),
                             content_type="application/x-www-form-urlencoded")
    delivery = verify(headers, form, [SECRET])
    assert delivery.payload == json_text.encode("utf-8")
    assert decide(delivery).runs == decision_for("pull_request.opened").runs

    # The HMAC covers the form body as sent; a signature over the JSON inside does not verify it.
    headers["x-hub-signature-256"] = sign(json_text.encode("utf-8"))
    with pytest.raises(WebhookError) as exc:
        verify(headers, form, [SECRET])
    assert _status(exc) == 401


def test_form_encoded_delivery_without_payload_field_is_rejected() -> None:
    form = b"zen=hello"
    headers = github_headers("ping", form, delivery_id="d-7", content_type="application/x-www-form-urlencoded")
    with pytest.raises(WebhookError) as exc:
        verify(headers, form, [SECRET])
    assert _status(exc) == 400


@pytest.mark.parametrize("header", ["x-github-event", "x-github-delivery"])
def test_missing_event_or_delivery_header_is_a_bad_request(header: str) -> None:
    body = load("push.default")
    headers = github_headers("push", body, delivery_id="d-8")
    del headers[header]
    with pytest.raises(WebhookError) as exc:
        verify(headers, body, [SECRET])
    assert _status(exc) == 400


def test_body_over_25_mb_is_rejected() -> None:
    body = b"{" + b" " * MAX_BODY_BYTES + b"}"
    assert MAX_BODY_BYTES == 25 * 1024 * 1024
    with pytest.raises(WebhookError) as exc:
        verify(github_headers("push", body, delivery_id="d-9"), body, [SECRET])
    assert _status(exc) == 413


@pytest.mark.parametrize("body", [b'{"action": "opened", "pull_request": ', b"not json at all", b""])
def test_malformed_json_is_a_400_from_decide(body: bytes) -> None:
    delivery = verify(github_headers("pull_request", body, delivery_id="d-10"), body, [SECRET])
    with pytest.raises(WebhookError) as exc:
        decide(delivery)
    assert _status(exc) == 400


def test_json_without_the_fields_we_need_is_a_400_from_decide() -> None:
    body = b'{"action": "opened", "number": 42}'
    delivery = verify(github_headers("pull_request", body, delivery_id="d-11"), body, [SECRET])
    with pytest.raises(WebhookError) as exc:
        decide(delivery)
    assert _status(exc) == 400


# ------------------------------------------------------------------------------------------------ decide: runs
RUNS: dict[str, dict[str, object]] = {
    "pull_request.opened": dict(
        head_sha=PR42_OPEN, base_sha=MAIN_TIP, head_ref="retry-backoff", base_ref="main", pr_number=42,
        trigger="pull_request.opened", sender="alice-dev"),
    "pull_request.synchronize": dict(
        head_sha=PR42_SYNC, base_sha=MAIN_TIP, head_ref="retry-backoff", base_ref="main", pr_number=42,
        trigger="pull_request.synchronize", sender="alice-dev"),
    "pull_request.reopened": dict(
        head_sha=PR42_SYNC, base_sha=MAIN_TIP, head_ref="retry-backoff", base_ref="main", pr_number=42,
        trigger="pull_request.reopened", sender="alice-dev"),
    "pull_request.ready_for_review": dict(
        head_sha=PR43_READY, base_sha=MAIN_TIP, head_ref="wip-cache", base_ref="main", pr_number=43,
        trigger="pull_request.ready_for_review", sender="alice-dev"),
    "pull_request.edited.base": dict(
        head_sha=PR42_SYNC, base_sha=MAIN_TIP, head_ref="retry-backoff", base_ref="main", pr_number=42,
        trigger="pull_request.edited", sender="alice-dev"),
    "pull_request.opened.draft": dict(
        head_sha=PR43_DRAFT, base_sha=MAIN_TIP, head_ref="wip-cache", base_ref="main", pr_number=43, draft=True,
        trigger="pull_request.opened", sender="alice-dev"),
    "pull_request.opened.fork": dict(
        head_sha=PR44_FORK, base_sha=MAIN_TIP, head_ref="fix-readme-typo", base_ref="main", pr_number=44, fork=True,
        trigger="pull_request.opened", sender="someone"),
    "push.default": dict(
        head_sha=MAIN_AFTER, base_sha=MAIN_TIP, head_ref="main", base_ref="main", trigger="push",
        sender="carol-ops"),
    "push.forced": dict(
        head_sha=FORCED_AFTER, base_sha=None, head_ref="main", base_ref="main", trigger="push", sender="carol-ops"),
    "check_suite.requested": dict(
        head_sha=PR42_SYNC, base_sha=MAIN_TIP, head_ref="retry-backoff", base_ref="main", pr_number=42,
        trigger="check_suite.requested", sender="alice-dev"),
    "check_run.rerequested": dict(
        head_sha=PR42_SYNC, base_sha=MAIN_TIP, head_ref="retry-backoff", base_ref="main", pr_number=42,
        trigger="check_run.rerequested", sender="bob-reviewer"),
    "issue_comment.created.run": dict(
        head_sha="", pr_number=42, trusted=True, trigger="issue_comment.created", sender="carol-ops"),
    "issue_comment.created.generate": dict(
        head_sha="", pr_number=42, trusted=True, trigger="issue_comment.created", sender="carol-ops",
        agents=["tests", "test-generation"], propose_tests=True),
}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_decide_starts_exactly_this_run(name: str) -> None:
    decision = decision_for(name)
    assert decision.ignored is None
    assert decision.record is None
    assert decision.repo == REPO
    assert decision.runs == [expected(name, **RUNS[name])]
    run = decision.runs[0]
    # [] is "as .aqe.yml says for this event" (the worker decides after reading it); only a command names agents.
    assert run.agents == RUNS[name].get("agents", [])
    assert run.propose_tests is (name == "issue_comment.created.generate")
    assert run.delivery_id == delivery_id_for(name)


def test_check_suite_rerequested_on_the_default_branch_without_pr() -> None:
    (run,) = decision_for("check_suite.rerequested").runs
    as_is = msgspec.structs.replace(run, base_sha=None, base_ref=None)  # base: see test_check_suite_without_pr_uses_before_as_base
    assert as_is == expected("check_suite.rerequested", head_sha=MAIN_AFTER, head_ref="main",
                             trigger="check_suite.rerequested", sender="carol-ops")
    assert run.fork is False and run.pr_number is None


def test_fork_pull_request_whose_fork_was_deleted_is_still_a_fork() -> None:
    body = mutated("pull_request.opened.fork", lambda p: p["pull_request"]["head"].update(repo=None))
    (run,) = decide(deliver("pull_request.opened.fork", body=body)).runs
    assert run.fork is True and run.head_sha == PR44_FORK and run.pr_number == 44


def test_own_app_is_recognised_by_slug() -> None:
    assert decision_for("pull_request.opened.by_own_app").runs == []
    (run,) = decision_for("pull_request.opened.by_own_app", app_slug="another-app").runs
    assert run.sender == "aqe[bot]" and run.pr_number == 45


# ------------------------------------------------------------------------------------------------ decide: ignored
IGNORED: dict[str, str] = {  # fixture -> a word the reason must contain
    "pull_request.closed": "closed",
    "pull_request.edited.title": "edited",
    "pull_request.labeled": "labeled",
    "push.branch": "feature-x",
    "push.deleted": "deleted",
    "check_suite.completed": "completed",
    "check_suite.requested.nopr": "pull request",
    "check_run.created": "app",  # sent by aqe[bot]: our own check run
    "check_run.requested_action": "requested_action",
    "issue_comment.created.none": "NONE",
    "issue_comment.created.issue": "issue",
    "issue_comment.created.bot": "app",
    "issue_comment.created.chatter": "/aqe run",
    "pull_request.opened.by_own_app": "app",
    "ping": "ping",
}


@pytest.mark.parametrize("name", sorted(IGNORED))
def test_decide_ignores_with_a_reason(name: str) -> None:
    decision = decision_for(name)
    assert decision.runs == []
    assert decision.record is None
    assert decision.ignored, decision
    assert IGNORED[name] in decision.ignored, decision.ignored
    if name != "ping":
        assert decision.repo == REPO


def test_unknown_event_is_ignored() -> None:
    body = json.dumps({"action": "created", "starred_at": "2025-03-11T09:00:00Z",
                       "repository": json.loads(load("push.default"))["repository"],
                       "sender": json.loads(load("push.default"))["sender"]}).encode()
    decision = decide(deliver("star.created", event="star", body=body))
    assert decision.runs == [] and decision.record is None
    assert decision.ignored and "star" in decision.ignored


def test_issue_comment_ignored_reasons_are_the_specific_ones() -> None:
    """Each comment is dropped for its own reason, not by an earlier, broader rule."""
    assert "sent by this app" in (decision_for("issue_comment.created.bot").ignored or "")
    assert "NONE" in (decision_for("issue_comment.created.none").ignored or "")
    assert "not a pull request" in (decision_for("issue_comment.created.issue").ignored or "")


# ------------------------------------------------------------------------------------------------ comment commands
@pytest.mark.parametrize(("body", "command"), [
    ("/aqe run", "/aqe run"),
    ("/aqe run please", "/aqe run"),
    ("  /aqe run\r\n\nthanks!", "/aqe run"),
    ("/aqe  run", "/aqe run"),
    ("/aqe generate-tests", "/aqe generate-tests"),
    ("/aqe generate-tests for the retry module", "/aqe generate-tests"),
    ("\n/aqe generate-tests\n", "/aqe generate-tests"),
    ("/aqe runner", None),
    ("/aqe run-tests", None),
    ("/aqe generate-testsuite", None),
    ("/aqe generate", None),
    ("/aqe", None),
    ("", None),
    ("please /aqe run", None),
    ("looks good\n/aqe generate-tests", None),
    ("/aqe\nrun", None),
])
def test_command_is_the_first_two_words_of_the_first_line(body: str, command: str | None) -> None:
    assert command_of(body) == command


def _comment(body: str, association: str = "MEMBER", sender_type: str = "User"):
    def change(p: dict) -> None:
        p["comment"]["body"], p["comment"]["author_association"] = body, association
        p["sender"]["type"] = p["comment"]["user"]["type"] = sender_type
    return change


def _decide_comment(body: str, **kwargs: str) -> Decision:
    name = "issue_comment.created.generate"
    return decide(deliver(name, body=mutated(name, _comment(body, **kwargs))))


@pytest.mark.parametrize("association", ["OWNER", "MEMBER", "COLLABORATOR"])
def test_generate_tests_from_a_maintainer_asks_for_test_generation_and_a_pull_request(association: str) -> None:
    (run,) = _decide_comment("/aqe generate-tests for retry.py", association=association).runs
    assert run == expected("issue_comment.created.generate", **RUNS["issue_comment.created.generate"])


@pytest.mark.parametrize("association", ["CONTRIBUTOR", "FIRST_TIME_CONTRIBUTOR", "FIRST_TIMER", "MANNEQUIN", "NONE"])
def test_generate_tests_from_anyone_else_is_ignored(association: str) -> None:
    decision = _decide_comment("/aqe generate-tests", association=association)
    assert decision.runs == []
    assert decision.ignored == (f"'/aqe generate-tests' needs an owner, member or collaborator (author is "
                                f"{association})")


def test_generate_tests_from_another_bot_is_ignored() -> None:
    decision = _decide_comment("/aqe generate-tests", sender_type="Bot")
    assert decision.runs == [] and decision.ignored == "comment written by a bot"


def test_generate_tests_on_an_issue_is_ignored() -> None:
    def on_issue(p: dict) -> None:
        _comment("/aqe generate-tests")(p)
        del p["issue"]["pull_request"]
    name = "issue_comment.created.generate"
    decision = decide(deliver(name, body=mutated(name, on_issue)))
    assert decision.runs == [] and decision.ignored == "comment on an issue, not a pull request"


def test_run_and_generate_tests_do_not_match_each_other() -> None:
    (run,) = _decide_comment("/aqe run").runs
    assert run.agents == [] and run.propose_tests is False and run.trusted
    (generate,) = _decide_comment("/aqe generate-tests").runs
    assert generate.agents == ["tests", "test-generation"] and generate.propose_tests is True
    for body in ("/aqe runner", "/aqe generate-testsuite", "/aqe help"):
        decision = _decide_comment(body)
        assert decision.runs == [], body
        assert "'/aqe run' or '/aqe generate-tests'" in (decision.ignored or ""), decision.ignored


def test_dedupe_key_of_generate_tests_differs_from_aqe_run() -> None:
    (generate,) = decision_for("issue_comment.created.generate").runs
    (run,) = decision_for("issue_comment.created.run").runs
    assert generate.dedupe_key() == f"github:{REPO}:pr42:analyse:test-generation,tests"
    assert generate.dedupe_key() != run.dedupe_key()


# ------------------------------------------------------------------------------------------------ installations
def test_installation_created_is_recorded() -> None:
    decision = decision_for("installation.created")
    assert decision.runs == []
    assert decision.ignored
    assert decision.action == "created"
    assert decision.record == {"installation_id": INSTALLATION_ID, "account": "acme", "action": "created",
                               "added": ["acme/widgets", "acme/gizmos"], "removed": []}


def test_installation_repositories_added_is_recorded() -> None:
    decision = decision_for("installation_repositories.added")
    assert decision.runs == []
    assert decision.record == {"installation_id": INSTALLATION_ID, "account": "acme", "action": "added",
                               "added": ["acme/sprockets"], "removed": []}


def test_installation_repositories_removed_is_recorded() -> None:
    def remove(p: dict) -> None:
        p["action"] = "removed"
        p["repositories_removed"], p["repositories_added"] = p["repositories_added"], []
    decision = decide(deliver("installation_repositories.removed", event="installation_repositories",
                              body=mutated("installation_repositories.added", remove)))
    assert decision.record == {"installation_id": INSTALLATION_ID, "account": "acme", "action": "removed",
                               "added": [], "removed": ["acme/sprockets"]}


# ------------------------------------------------------------------------------------------------ dedupe key
def test_dedupe_key_is_the_commit_not_the_trigger() -> None:
    (push,) = decision_for("push.default").runs
    (pr,) = decision_for("pull_request.opened").runs
    same_sha = msgspec.structs.replace(pr, head_sha=push.head_sha)  # e.g. a PR whose head was pushed to main
    assert push.trigger != same_sha.trigger and push.pr_number != same_sha.pr_number
    assert push.agents == same_sha.agents == []
    assert push.dedupe_key() == same_sha.dedupe_key() == f"github:{REPO}:{MAIN_AFTER}:analyse:configured"
    assert pr.dedupe_key() != push.dedupe_key()
    (suite,) = decision_for("check_suite.requested").runs
    (sync,) = decision_for("pull_request.synchronize").runs
    assert suite.dedupe_key() == sync.dedupe_key()  # GitHub sends both for one push to a PR branch
    assert sync.dedupe_key() != pr.dedupe_key()  # new head, new run


def test_dedupe_key_of_aqe_run_uses_the_pr_number() -> None:
    (run,) = decision_for("issue_comment.created.run").runs
    assert run.dedupe_key() == f"github:{REPO}:pr42:analyse:configured"


# ------------------------------------------------------------------------------------------------ known bugs
def test_check_suite_without_pr_uses_before_as_base() -> None:
    (run,) = decision_for("check_suite.rerequested").runs
    assert run.base_sha == MAIN_TIP  # check_suite.before in the fixture


def test_check_suite_in_a_fork_ignores_upstream_pull_requests() -> None:
    fork_repo = json.loads(load("pull_request.opened.fork"))["pull_request"]["head"]["repo"]

    def in_fork(p: dict) -> None:
        p["repository"] = fork_repo  # someone/widgets, id 733100218, also has the App installed
        pr = p["check_suite"]["pull_requests"][0]
        pr["head"]["repo"] = {"id": 733100218, "url": "https://api.github.com/repos/someone/widgets",
                              "name": "widgets"}  # the branch lives in the fork, the PR in acme/widgets
        p["check_suite"]["head_branch"] = pr["head"]["ref"]

    decision = decide(deliver("check_suite.requested.in_fork", event="check_suite",
                              body=mutated("check_suite.requested", in_fork)))
    assert all(run.pr_number is None for run in decision.runs), decision.runs


def test_installation_deleted_records_no_added_repositories() -> None:
    body = mutated("installation.created", lambda p: p.update(action="deleted"))
    decision = decide(deliver("installation.deleted", event="installation", body=body))
    assert decision.record is not None
    assert decision.record["added"] == []
