"""Self-tests for the fake GitHub server (tests/fakes/github.py)."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .github import FakeGitHub, iter_link_header

APP_ID = 4242
INSTALLATION_ID = 77
REPO = "acme/widgets"
OTHER_REPO = "acme/secret"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


# --------------------------------------------------------------------------- fixtures


def _pem_pair() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


@pytest.fixture(scope="session")
def keys() -> tuple[bytes, bytes]:
    return _pem_pair()


@pytest.fixture(scope="session")
def other_keys() -> tuple[bytes, bytes]:
    return _pem_pair()


def git(*args: str | Path, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(
        ["git", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, check=check
    )


def commit(repo: Path, name: str, content: str) -> str:
    (repo / name).write_text(content)
    git("add", name, cwd=repo)
    git("commit", "-q", "-m", f"add {name}", cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo).stdout.strip()


@pytest.fixture
def source(tmp_path: Path) -> dict[str, Any]:
    """A source repo: main (2 commits), feature (+1), hidden (+1, later deleted)."""
    repo = tmp_path / "source"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    base = commit(repo, "README.md", "hello\n")
    main = commit(repo, "app.py", "print('hi')\n")
    git("checkout", "-q", "-b", "feature", cwd=repo)
    feature = commit(repo, "feature.py", "x = 1\n")
    git("checkout", "-q", "-b", "hidden", "main", cwd=repo)
    hidden = commit(repo, "hidden.py", "y = 2\n")
    git("checkout", "-q", "main", cwd=repo)
    return {"path": repo, "base": base, "main": main, "feature": feature, "hidden": hidden}


@pytest.fixture
def gh(tmp_path: Path, keys: tuple[bytes, bytes], source: dict[str, Any]) -> Iterator[FakeGitHub]:
    fake = FakeGitHub(APP_ID, keys[1], git_root=tmp_path / "git")
    with fake:
        fake.add_repo(REPO, source["path"])
        fake.add_repo(OTHER_REPO, source["path"])
        fake.install(INSTALLATION_ID, [REPO])
        fake.add_pull(
            REPO, 1, head_sha=source["feature"], base_sha=source["main"], head_ref="feature"
        )
        yield fake


def sign(payload: dict[str, Any], private_key: bytes) -> str:
    """Sign any payload (PyJWT's jwt.encode refuses a non-string iss)."""
    return jwt.PyJWS().encode(json.dumps(payload).encode(), private_key, algorithm="RS256")


def make_jwt(private_key: bytes, *, iss: Any = str(APP_ID), lifetime: int = 540, backdate: int = 60) -> str:
    now = int(time.time())
    return sign({"iat": now - backdate, "exp": now - backdate + lifetime, "iss": iss}, private_key)


@pytest.fixture
def client(gh: FakeGitHub) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gh.url, headers={"User-Agent": "aqe-tests"}, timeout=30) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


@pytest.fixture
def token(gh: FakeGitHub, client: httpx.Client, keys: tuple[bytes, bytes]) -> str:
    response = client.post(
        f"/app/installations/{INSTALLATION_ID}/access_tokens", headers=bearer(make_jwt(keys[0]))
    )
    assert response.status_code == 201, response.text
    return response.json()["token"]


# --------------------------------------------------------------------------- JWT / tokens


def test_valid_jwt_is_accepted_and_recorded(gh: FakeGitHub, client: httpx.Client, keys: tuple[bytes, bytes]) -> None:
    response = client.get("/app", headers=bearer(make_jwt(keys[0])))
    assert response.status_code == 200
    assert response.json()["id"] == APP_ID
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    for header in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Used"):
        assert header in response.headers
    assert response.headers["X-RateLimit-Limit"] == "5000"
    [call] = gh.calls_to("GET", r"^/app$")
    assert (call.auth_kind, call.status) == ("jwt", 200)


def test_jwt_with_integer_issuer_is_accepted(client: httpx.Client, keys: tuple[bytes, bytes]) -> None:
    assert client.get("/app", headers=bearer(make_jwt(keys[0], iss=APP_ID))).status_code == 200


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("wrong_key", "A JSON web token could not be decoded"),
        ("wrong_iss", "A JSON web token could not be decoded"),
        ("too_long", "'Expiration time' claim ('exp') is too far in the future"),
        ("expired", "'Expiration time' claim ('exp')"),
        ("garbage", "A JSON web token could not be decoded"),
        ("missing", "A JSON web token could not be decoded"),
        ("no_iat", "A JSON web token could not be decoded"),
        ("future_iat", "'Issued at' claim ('iat')"),
    ],
)
def test_bad_jwts_are_rejected(
    client: httpx.Client,
    keys: tuple[bytes, bytes],
    other_keys: tuple[bytes, bytes],
    case: str,
    message: str,
) -> None:
    now = int(time.time())
    tokens = {
        "wrong_key": make_jwt(other_keys[0]),
        "wrong_iss": make_jwt(keys[0], iss=APP_ID + 1),
        "too_long": make_jwt(keys[0], lifetime=601, backdate=0),
        "expired": make_jwt(keys[0], lifetime=30, backdate=120),
        "garbage": "not.a.jwt",
        "no_iat": sign({"exp": now + 60, "iss": str(APP_ID)}, keys[0]),
        "future_iat": sign({"iat": now + 300, "exp": now + 600, "iss": str(APP_ID)}, keys[0]),
    }
    headers = bearer(tokens[case]) if case in tokens else {}
    response = client.post(f"/app/installations/{INSTALLATION_ID}/access_tokens", headers=headers)
    assert response.status_code == 401
    assert response.json()["message"].startswith(message)


def test_access_token_issuing(gh: FakeGitHub, client: httpx.Client, keys: tuple[bytes, bytes]) -> None:
    response = client.post(
        f"/app/installations/{INSTALLATION_ID}/access_tokens", headers=bearer(make_jwt(keys[0]))
    )
    assert response.status_code == 201
    data = response.json()
    assert re.fullmatch(r"ghs_[A-Za-z0-9]{36}", data["token"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", data["expires_at"])
    assert data["repository_selection"] == "selected"
    assert data["permissions"]["checks"] == "write"
    assert gh.issued_tokens == [data["token"]]
    [call] = gh.calls_to("POST", r"/access_tokens$")
    assert call.installation_id == INSTALLATION_ID
    unknown = client.post("/app/installations/999/access_tokens", headers=bearer(make_jwt(keys[0])))
    assert unknown.status_code == 404
    with_token = client.post(
        f"/app/installations/{INSTALLATION_ID}/access_tokens", headers=token_auth(data["token"])
    )
    assert with_token.status_code == 401


def test_repo_endpoints_check_token_and_access(
    gh: FakeGitHub, client: httpx.Client, token: str, keys: tuple[bytes, bytes]
) -> None:
    ok = client.get(f"/repos/{REPO}/pulls/1", headers=token_auth(token))
    assert ok.status_code == 200
    pull = ok.json()
    assert pull["number"] == 1 and pull["state"] == "open" and pull["draft"] is False
    assert pull["head"]["repo"]["clone_url"] == f"{gh.url}/{REPO}.git"
    assert pull["head"]["repo"]["fork"] is False
    assert client.get(f"/repos/{REPO}/pulls/1", headers=bearer(token)).status_code == 200
    assert client.get(f"/repos/{REPO}/pulls/2", headers=bearer(token)).status_code == 404
    assert client.get(f"/repos/{OTHER_REPO}/pulls/1", headers=token_auth(token)).status_code == 404
    bad = client.get(f"/repos/{REPO}/pulls/1", headers=token_auth("ghs_" + "x" * 36))
    assert (bad.status_code, bad.json()["message"]) == (401, "Bad credentials")
    bad_bearer = client.get(f"/repos/{REPO}/pulls/1", headers=bearer("ghs_" + "x" * 36))
    assert (bad_bearer.status_code, bad_bearer.json()["message"]) == (401, "Bad credentials")
    assert client.get(f"/repos/{REPO}/pulls/1").status_code == 401
    assert client.get(f"/repos/{REPO}/pulls/1", headers=bearer(make_jwt(keys[0]))).status_code in (401, 403)
    [call] = gh.calls_to("GET", r"/pulls/1$")[:1]
    assert (call.auth_kind, call.installation_id) == ("token", INSTALLATION_ID)
    gh.expire_tokens()
    assert client.get(f"/repos/{REPO}/pulls/1", headers=token_auth(token)).status_code == 401


def test_repo_installation_lookup(client: httpx.Client, keys: tuple[bytes, bytes]) -> None:
    app_auth = bearer(make_jwt(keys[0]))
    found = client.get(f"/repos/{REPO}/installation", headers=app_auth)
    assert (found.status_code, found.json()["id"]) == (200, INSTALLATION_ID)
    assert client.get(f"/repos/{OTHER_REPO}/installation", headers=app_auth).status_code == 404


def test_user_agent_is_required(gh: FakeGitHub, token: str) -> None:
    with httpx.Client(base_url=gh.url) as c:
        c.headers.pop("user-agent")
        response = c.get(f"/repos/{REPO}/pulls/1", headers=token_auth(token))
    assert response.status_code == 403


def test_unknown_route_is_404_and_recorded(gh: FakeGitHub, client: httpx.Client, token: str) -> None:
    assert client.get(f"/repos/{REPO}/nonsense", headers=token_auth(token)).status_code == 404
    assert gh.calls_to("GET", "/nonsense$")[0].status == 404


# --------------------------------------------------------------------------- check runs


def test_check_run_lifecycle(gh: FakeGitHub, client: httpx.Client, token: str, source: dict[str, Any]) -> None:
    auth = token_auth(token)
    created = client.post(
        f"/repos/{REPO}/check-runs",
        headers=auth,
        json={"name": "AQE / tests", "head_sha": source["feature"], "status": "in_progress", "external_id": "job-1"},
    )
    assert created.status_code == 201, created.text
    run = created.json()
    assert run["status"] == "in_progress" and run["conclusion"] is None
    assert run["app"]["id"] == APP_ID and run["pull_requests"][0]["number"] == 1
    assert "annotations" not in run and "history" not in run
    note = {"path": "a.py", "start_line": 3, "end_line": 3, "start_column": 1, "end_column": 4,
            "annotation_level": "warning", "message": "hm"}
    first = {"output": {"title": "t", "summary": "s", "annotations": [note] * 50}}
    assert client.patch(f"/repos/{REPO}/check-runs/{run['id']}", headers=auth, json=first).status_code == 200
    second = {"conclusion": "failure", "output": {"title": "t2", "summary": "s2", "annotations": [note] * 5}}
    done = client.patch(f"/repos/{REPO}/check-runs/{run['id']}", headers=auth, json=second)
    assert done.status_code == 200
    body = done.json()
    assert body["status"] == "completed" and body["conclusion"] == "failure"
    assert body["completed_at"] and body["output"]["annotations_count"] == 55
    stored = gh.check_runs[run["id"]]
    assert len(stored["annotations"]) == 55 and len(stored["history"]) == 3
    assert client.get(f"/repos/{REPO}/check-runs/{run['id']}", headers=auth).json()["output"]["title"] == "t2"
    listing = client.get(f"/repos/{REPO}/commits/{source['feature']}/check-runs", headers=auth).json()
    assert listing["total_count"] == 1 and listing["check_runs"][0]["id"] == run["id"]
    by_branch = client.get(f"/repos/{REPO}/commits/feature/check-runs", headers=auth).json()
    assert by_branch["total_count"] == 1
    assert gh.reopened_runs == []
    reopen = client.patch(f"/repos/{REPO}/check-runs/{run['id']}", headers=auth, json={"status": "in_progress"})
    assert reopen.status_code == 200
    assert gh.reopened_runs == [run["id"]]
    assert client.get(f"/repos/{REPO}/check-runs/999999", headers=auth).status_code == 404


def _annotation(**overrides: Any) -> dict[str, Any]:
    return {"path": "a.py", "start_line": 1, "end_line": 1, "annotation_level": "notice", "message": "m", **overrides}


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"head_sha": "SHA"}, "name"),
        ({"name": "x"}, "head_sha"),
        ({"name": "x", "head_sha": "SHA", "status": "completed"}, "conclusion"),
        ({"name": "x", "head_sha": "SHA", "status": "done"}, "status"),
        ({"name": "x", "head_sha": "SHA", "conclusion": "stale"}, "conclusion"),
        ({"name": "x", "head_sha": "SHA", "output": {"title": "t"}}, "summary"),
        ({"name": "x", "head_sha": "SHA", "output": {"summary": "s"}}, "title"),
        ({"name": "x", "head_sha": "SHA", "output": {"title": "t", "summary": "s" * 65536}}, "too long"),
        ({"name": "x", "head_sha": "SHA", "output": {"title": "t", "summary": "s", "text": "s" * 65536}}, "too long"),
        ({"name": "x", "head_sha": "SHA", "output": {"title": "t", "summary": "s", "annotations": [_annotation()] * 51}}, "50"),
        ({"name": "x", "head_sha": "SHA", "output": {"title": "t", "summary": "s", "annotations": [_annotation(message=None)]}}, "message"),
        ({"name": "x", "head_sha": "SHA", "output": {"title": "t", "summary": "s", "annotations": [_annotation(annotation_level="error")]}}, "annotation_level"),
        ({"name": "x", "head_sha": "SHA", "output": {"title": "t", "summary": "s", "annotations": [_annotation(end_line=2, start_column=1)]}}, "start_column"),
    ],
)
def test_check_run_validation(
    gh: FakeGitHub, client: httpx.Client, token: str, source: dict[str, Any], payload: dict[str, Any], expected: str
) -> None:
    if payload.get("head_sha") == "SHA":
        payload = {**payload, "head_sha": source["main"]}
    response = client.post(f"/repos/{REPO}/check-runs", headers=token_auth(token), json=payload)
    assert response.status_code == 422, response.text
    data = response.json()
    assert data["message"] == "Invalid request."
    assert any(expected in error for error in data["errors"]), data
    assert gh.check_runs == {}


def test_check_run_requires_existing_commit(client: httpx.Client, token: str) -> None:
    for sha in ("0" * 40, "abc123", "f" * 40):
        response = client.post(f"/repos/{REPO}/check-runs", headers=token_auth(token), json={"name": "x", "head_sha": sha})
        assert response.status_code == 422
        assert response.json()["message"].startswith("No commit found for SHA")


def test_check_run_patch_validation(gh: FakeGitHub, client: httpx.Client, token: str, source: dict[str, Any]) -> None:
    auth = token_auth(token)
    run = client.post(f"/repos/{REPO}/check-runs", headers=auth, json={"name": "x", "head_sha": source["main"]}).json()
    assert run["status"] == "queued"
    bad = client.patch(f"/repos/{REPO}/check-runs/{run['id']}", headers=auth, json={"status": "completed"})
    assert bad.status_code == 422
    ok = client.patch(
        f"/repos/{REPO}/check-runs/{run['id']}", headers=auth, json={"status": "completed", "conclusion": "success"}
    )
    assert ok.json()["conclusion"] == "success"
    # A run in another repository is invisible.
    gh.install(INSTALLATION_ID, [REPO, OTHER_REPO])
    assert client.get(f"/repos/{OTHER_REPO}/check-runs/{run['id']}", headers=auth).status_code == 404


# --------------------------------------------------------------------------- comments


def test_comment_pagination_with_link_headers(gh: FakeGitHub, client: httpx.Client, token: str) -> None:
    for index in range(250):
        gh.add_comment(REPO, 1, f"comment {index}")
    auth = token_auth(token)
    first = client.get(f"/repos/{REPO}/issues/1/comments", headers=auth)
    assert len(first.json()) == 30
    rels = dict((rel, url) for url, rel in iter_link_header(first.headers["Link"]))
    assert set(rels) == {"next", "last"}
    assert rels["last"].startswith(gh.url) and "page=9" in rels["last"]

    bodies: list[str] = []
    url: str | None = f"{gh.url}/repos/{REPO}/issues/1/comments?per_page=100"
    pages = 0
    while url:
        response = client.get(url, headers=auth)
        assert response.status_code == 200
        bodies += [c["body"] for c in response.json()]
        links = {rel: link for link, rel in iter_link_header(response.headers.get("Link", ""))}
        if pages == 1:
            assert set(links) == {"prev", "next", "last", "first"}
        url = links.get("next")
        pages += 1
    assert pages == 3
    assert bodies == [f"comment {i}" for i in range(250)]
    capped = client.get(f"/repos/{REPO}/issues/1/comments", headers=auth, params={"per_page": 500})
    assert len(capped.json()) == 100
    assert client.get(f"/repos/{REPO}/issues/5/comments", headers=auth).status_code == 404


def test_comment_create_update_and_limits(gh: FakeGitHub, client: httpx.Client, token: str) -> None:
    auth = token_auth(token)
    created = client.post(f"/repos/{REPO}/issues/1/comments", headers=auth, json={"body": "report v1"})
    assert created.status_code == 201
    comment = created.json()
    assert comment["user"] == {"login": "aqe[bot]", "type": "Bot", "id": comment["user"]["id"]}
    stored = gh.comments[comment["id"]]
    assert stored["issue_number"] == 1 and stored["repo"] == REPO and stored["body"] == "report v1"
    updated = client.patch(f"/repos/{REPO}/issues/comments/{comment['id']}", headers=auth, json={"body": "report v2"})
    assert (updated.status_code, gh.comments[comment["id"]]["body"]) == (200, "report v2")
    exactly = client.post(f"/repos/{REPO}/issues/1/comments", headers=auth, json={"body": "x" * 65536})
    assert exactly.status_code == 201
    too_long = client.post(f"/repos/{REPO}/issues/1/comments", headers=auth, json={"body": "x" * 65537})
    assert too_long.status_code == 422
    assert "Body is too long" in too_long.json()["errors"][0]["message"]
    too_long_patch = client.patch(
        f"/repos/{REPO}/issues/comments/{comment['id']}", headers=auth, json={"body": "x" * 65537}
    )
    assert too_long_patch.status_code == 422
    assert client.post(f"/repos/{REPO}/issues/1/comments", headers=auth, json={}).status_code == 422
    assert client.post(f"/repos/{REPO}/issues/1/comments", headers=auth, content=b"{nope").status_code == 400
    assert client.patch(f"/repos/{REPO}/issues/comments/123", headers=auth, json={"body": "x"}).status_code == 404
    foreign = gh.add_comment(REPO, 1, "not yours")
    client.patch(f"/repos/{REPO}/issues/comments/{foreign}", headers=auth, json={"body": "mine now"})
    assert gh.foreign_comment_edits == [foreign]


# --------------------------------------------------------------------------- fault injection & waiting


def test_fail_next(gh: FakeGitHub, client: httpx.Client, token: str) -> None:
    auth = token_auth(token)
    gh.fail_next("GET", r"/pulls/1$", 502)
    gh.fail_next("GET", r"/pulls/1$", 429, headers={"Retry-After": "1"})
    first = client.get(f"/repos/{REPO}/pulls/1", headers=auth)
    assert first.status_code == 502 and "X-RateLimit-Limit" in first.headers
    second = client.get(f"/repos/{REPO}/pulls/1", headers=auth)
    assert (second.status_code, second.headers["Retry-After"]) == (429, "1")
    assert client.get(f"/repos/{REPO}/pulls/1", headers=auth).status_code == 200

    secondary = {"message": "You have exceeded a secondary rate limit"}
    gh.fail_next("POST", r"/check-runs$", 403, times=2, headers={"Retry-After": "1"}, body=secondary)
    for _ in range(2):
        blocked = client.post(f"/repos/{REPO}/check-runs", headers=auth, json={})
        assert blocked.status_code == 403 and blocked.json() == secondary
    assert client.post(f"/repos/{REPO}/check-runs", headers=auth, json={}).status_code == 422
    assert [c.status for c in gh.calls_to("POST", r"/check-runs$")] == [403, 403, 422]
    gh.reset_calls()
    assert gh.calls == []


def test_wait_for(gh: FakeGitHub, client: httpx.Client, token: str) -> None:
    client.get(f"/repos/{REPO}/pulls/1", headers=token_auth(token))
    assert gh.wait_for(lambda g: g.calls_to("GET", "/pulls/1$"), timeout=2)
    with pytest.raises(AssertionError, match=r"GET /repos/acme/widgets/pulls/1 -> 200"):
        gh.wait_for(lambda g: g.check_runs[1], timeout=0.2)


# --------------------------------------------------------------------------- git smart HTTP


def _basic(token: str) -> str:
    return base64.b64encode(f"x-access-token:{token}".encode()).decode()


def _auth_git(token: str, *args: str | Path, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    return git("-c", f"http.extraHeader=Authorization: Basic {_basic(token)}", *args, cwd=cwd, check=check)


def test_git_clone_with_token_and_filter(gh: FakeGitHub, tmp_path: Path, source: dict[str, Any]) -> None:
    token = gh.issue_token(INSTALLATION_ID)
    dest = tmp_path / "clone"
    _auth_git(token, "clone", "-q", "--filter=blob:none", gh.clone_url(REPO), dest)
    assert git("rev-parse", "HEAD", cwd=dest).stdout.strip() == source["main"]
    assert git("config", "remote.origin.partialclonefilter", cwd=dest).stdout.strip() == "blob:none"
    assert (dest / "app.py").read_text() == "print('hi')\n"  # blobs fetched lazily, with auth
    git_calls = gh.calls_to("*", r"\.git/")
    assert git_calls and all(c.auth_kind == "basic" and c.installation_id == INSTALLATION_ID for c in git_calls)
    assert {c.status for c in git_calls} == {200}


def test_git_clone_without_auth_fails(gh: FakeGitHub, tmp_path: Path) -> None:
    result = git("clone", "-q", gh.clone_url(REPO), tmp_path / "nope", check=False)
    assert result.returncode != 0
    [call] = gh.calls_to("GET", r"/info/refs$")
    assert call.status == 401
    wrong = _auth_git("ghs_" + "y" * 36, "clone", "-q", gh.clone_url(REPO), tmp_path / "nope2", check=False)
    assert wrong.returncode != 0
    token = gh.issue_token(INSTALLATION_ID)
    no_access = _auth_git(token, "clone", "-q", gh.clone_url(OTHER_REPO), tmp_path / "nope3", check=False)
    assert no_access.returncode != 0
    assert gh.calls_to("GET", rf"{OTHER_REPO}\.git/info/refs$")[0].status == 404


def test_git_fetch_unadvertised_sha_and_pull_ref(gh: FakeGitHub, tmp_path: Path, source: dict[str, Any]) -> None:
    bare = gh.repo_path(REPO)
    git("--git-dir", bare, "update-ref", "-d", "refs/heads/hidden")
    token = gh.issue_token(INSTALLATION_ID)
    work = tmp_path / "work"
    work.mkdir()
    git("init", "-q", "-b", "main", cwd=work)
    git("remote", "add", "origin", gh.clone_url(REPO), cwd=work)
    refs = _auth_git(token, "ls-remote", "origin", cwd=work).stdout
    assert source["hidden"] not in refs and "refs/pull/1/head" in refs
    _auth_git(token, "fetch", "-q", "--filter=blob:none", "origin", source["hidden"], cwd=work)
    assert git("rev-parse", "FETCH_HEAD", cwd=work).stdout.strip() == source["hidden"]
    _auth_git(token, "fetch", "-q", "origin", "refs/pull/1/head:refs/remotes/pr/1", cwd=work)
    assert git("rev-parse", "refs/remotes/pr/1", cwd=work).stdout.strip() == source["feature"]


def test_git_push_is_refused(gh: FakeGitHub, tmp_path: Path, source: dict[str, Any]) -> None:
    token = gh.issue_token(INSTALLATION_ID)
    result = _auth_git(token, "push", gh.clone_url(REPO), "main:refs/heads/pushed", cwd=source["path"], check=False)
    assert result.returncode != 0
    assert gh.calls_to("GET", r"/info/refs$")[0].status == 403


def test_update_repo_and_fork_pull(gh: FakeGitHub, tmp_path: Path, source: dict[str, Any]) -> None:
    repo = source["path"]
    new_main = commit(repo, "more.py", "z = 3\n")
    gh.update_repo(REPO, repo)
    assert git("--git-dir", gh.repo_path(REPO), "rev-parse", "main").stdout.strip() == new_main
    fork = tmp_path / "fork"
    git("clone", "-q", repo, fork)
    fork_sha = commit(fork, "fork.py", "f = 1\n")
    pull = gh.add_pull(REPO, 2, head_sha=fork_sha, base_sha=new_main, head_ref="patch-1", fork=True, source_repo=fork)
    assert pull["head"]["repo"]["fork"] is True and pull["head"]["repo"]["full_name"] != REPO
    assert git("--git-dir", gh.repo_path(REPO), "rev-parse", "refs/pull/2/head").stdout.strip() == fork_sha


def test_git_gzip_request_body(gh: FakeGitHub, source: dict[str, Any]) -> None:
    """git http-backend inflates gzip request bodies itself (Content-Encoding passthrough)."""
    import gzip

    token = gh.issue_token(INSTALLATION_ID)
    pkt = lambda s: f"{len(s) + 4:04x}{s}".encode()  # noqa: E731
    request = pkt(f"want {source['main']} ofs-delta\n") + b"0000" + pkt("done\n")
    headers = {
        "Authorization": f"Basic {_basic(token)}",
        "Content-Type": "application/x-git-upload-pack-request",
        "Content-Encoding": "gzip",
        "User-Agent": "git/2.39.5",
    }
    with httpx.Client(timeout=30) as c:
        response = c.post(f"{gh.clone_url(REPO)}/git-upload-pack", headers=headers, content=gzip.compress(request))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-git-upload-pack-result"
    assert b"PACK" in response.content


def test_git_uses_protocol_v2(gh: FakeGitHub, tmp_path: Path) -> None:
    token = gh.issue_token(INSTALLATION_ID)
    _auth_git(token, "-c", "protocol.version=2", "clone", "-q", gh.clone_url(REPO), tmp_path / "v2")
    posts = gh.calls_to("POST", r"/git-upload-pack$")
    assert posts and all(c.headers.get("git-protocol") == "version=2" for c in posts)


# --------------------------------------------------------------------------- gidgethub round trip


def test_gidgethub_round_trip(gh: FakeGitHub, keys: tuple[bytes, bytes], source: dict[str, Any]) -> None:
    """The client the worker uses (gidgethub + httpx) works against the fake."""
    import asyncio

    from gidgethub import BadRequest, ValidationError
    from gidgethub.apps import get_installation_access_token
    from gidgethub.httpx import GitHubAPI

    for index in range(120):
        gh.add_comment(REPO, 1, f"c{index}")

    async def scenario() -> None:
        async with httpx.AsyncClient(timeout=30) as http:
            api = GitHubAPI(http, "aqe-tests", base_url=gh.url)
            access = await get_installation_access_token(
                api, installation_id=str(INSTALLATION_ID), app_id=str(APP_ID), private_key=keys[0].decode()
            )
            token = access["token"]
            run = await api.post(
                f"/repos/{REPO}/check-runs", data={"name": "AQE", "head_sha": source["main"]}, oauth_token=token
            )
            await api.patch(
                f"/repos/{REPO}/check-runs/{run['id']}",
                data={"conclusion": "success", "output": {"title": "ok", "summary": "all good"}},
                oauth_token=token,
            )
            bodies = [c["body"] async for c in api.getiter(f"/repos/{REPO}/issues/1/comments", oauth_token=token)]
            assert bodies == [f"c{i}" for i in range(120)]
            with pytest.raises(ValidationError):
                await api.post(f"/repos/{REPO}/check-runs", data={"name": "AQE"}, oauth_token=token)
            with pytest.raises(BadRequest):
                await api.getitem(f"/repos/{OTHER_REPO}/pulls/1", oauth_token=token)
            assert api.rate_limit is not None and api.rate_limit.limit == 5000

    asyncio.run(scenario())
    [run] = gh.check_runs.values()
    assert run["conclusion"] == "success" and run["output"]["summary"] == "all good"
    assert len(gh.calls_to("GET", r"/issues/1/comments$")) == 4


# --------------------------------------------------------------------------- git data API and pull requests


def _bare(gh: FakeGitHub, *args: str, text: bool = True) -> Any:
    proc = subprocess.run(
        ["git", "--git-dir", str(gh.repo_path(REPO)), *args], capture_output=True, text=text, check=True
    )
    return proc.stdout.strip() if text else proc.stdout


def _branch_on(
    client: httpx.Client, auth: dict[str, str], parent: str, branch: str, files: dict[str, str]
) -> str:
    """A commit with `files` on top of `parent`, as branch `branch`, through the API; its sha."""
    head = client.get(f"/repos/{REPO}/git/commits/{parent}", headers=auth).json()
    entries = [
        {"path": path, "mode": "100644", "type": "blob", "content": text} for path, text in files.items()
    ]
    tree = client.post(
        f"/repos/{REPO}/git/trees", headers=auth, json={"base_tree": head["tree"]["sha"], "tree": entries}
    ).json()
    commit = client.post(
        f"/repos/{REPO}/git/commits",
        headers=auth,
        json={"message": "m", "tree": tree["sha"], "parents": [parent]},
    ).json()
    created = client.post(
        f"/repos/{REPO}/git/refs", headers=auth, json={"ref": f"refs/heads/{branch}", "sha": commit["sha"]}
    )
    assert created.status_code == 201, created.text
    return commit["sha"]


def test_git_data_builds_a_real_commit_on_top_of_the_head(
    gh: FakeGitHub, client: httpx.Client, token: str, source: dict[str, Any]
) -> None:
    auth = token_auth(token)
    binary = bytes(range(256)) + b"\xff\xfe not utf-8"
    blob = client.post(
        f"/repos/{REPO}/git/blobs",
        headers=auth,
        json={"content": base64.b64encode(binary).decode(), "encoding": "base64"},
    )
    assert blob.status_code == 201, blob.text
    assert blob.json() == {
        "url": f"{gh.url}/repos/{REPO}/git/blobs/{blob.json()['sha']}",
        "sha": blob.json()["sha"],
    }
    assert _bare(gh, "cat-file", "-p", blob.json()["sha"], text=False) == binary

    head = client.get(f"/repos/{REPO}/git/commits/{source['feature']}", headers=auth)
    assert head.status_code == 200
    assert head.json()["tree"]["sha"] == _bare(gh, "rev-parse", f"{source['feature']}^{{tree}}")
    assert [p["sha"] for p in head.json()["parents"]] == [source["main"]]
    assert (
        head.json()["author"]["email"] == "test@example.com" and head.json()["message"] == "add feature.py\n"
    )

    tree = client.post(
        f"/repos/{REPO}/git/trees",
        headers=auth,
        json={
            "base_tree": head.json()["tree"]["sha"],
            "tree": [
                {
                    "path": "tests/test_feature.py",
                    "mode": "100644",
                    "type": "blob",
                    "content": "def test(): pass\n",
                },
                {"path": "tests/data.bin", "mode": "100644", "type": "blob", "sha": blob.json()["sha"]},
                {"path": "README.md", "mode": "100644", "type": "blob", "sha": None},
            ],
        },
    )
    assert tree.status_code == 201, tree.text
    top = {entry["path"]: entry for entry in tree.json()["tree"]}
    assert set(top) == {"app.py", "feature.py", "tests"} and top["tests"]["type"] == "tree"
    assert top["app.py"]["size"] == len("print('hi')\n") and tree.json()["truncated"] is False

    commit = client.post(
        f"/repos/{REPO}/git/commits",
        headers=auth,
        json={
            "message": "Add generated tests\n\nby a bot",
            "tree": tree.json()["sha"],
            "parents": [source["feature"]],
        },
    )
    assert commit.status_code == 201, commit.text
    made = commit.json()
    assert made["tree"]["sha"] == tree.json()["sha"] and [p["sha"] for p in made["parents"]] == [
        source["feature"]
    ]
    assert made["author"]["name"] == "aqe[bot]" and made["author"]["email"].endswith(
        "+aqe[bot]@users.noreply.github.com"
    )
    assert made["committer"] == made["author"] and made["html_url"] == f"{gh.url}/{REPO}/commit/{made['sha']}"
    assert client.get(f"/repos/{REPO}/git/commits/{made['sha']}", headers=auth).json() == made

    ref = client.post(
        f"/repos/{REPO}/git/refs", headers=auth, json={"ref": "refs/heads/gen/tests", "sha": made["sha"]}
    )
    assert ref.status_code == 201, ref.text
    assert ref.json()["ref"] == "refs/heads/gen/tests" and ref.json()["object"] == {
        "type": "commit",
        "sha": made["sha"],
        "url": f"{gh.url}/repos/{REPO}/git/commits/{made['sha']}",
    }
    assert (
        client.get(f"/repos/{REPO}/git/ref/heads/gen/tests", headers=auth).json()["object"]["sha"]
        == made["sha"]
    )
    # What git itself sees in the bare repository:
    assert _bare(gh, "rev-parse", "gen/tests^") == source["feature"]
    assert _bare(gh, "show", "gen/tests:tests/test_feature.py") == "def test(): pass"
    assert _bare(gh, "show", "gen/tests:tests/data.bin", text=False) == binary
    assert _bare(gh, "ls-tree", "-r", "--name-only", "gen/tests").split() == [
        "app.py",
        "feature.py",
        "tests/data.bin",
        "tests/test_feature.py",
    ]
    assert _bare(gh, "log", "-1", "--format=%B", "gen/tests") == "Add generated tests\n\nby a bot"


def test_tree_without_base_tree_holds_only_its_entries(
    gh: FakeGitHub, client: httpx.Client, token: str
) -> None:
    entry = {"path": "only.txt", "mode": "100755", "type": "blob", "content": "x"}
    tree = client.post(f"/repos/{REPO}/git/trees", headers=token_auth(token), json={"tree": [entry]})
    assert tree.status_code == 201
    assert [(e["path"], e["mode"]) for e in tree.json()["tree"]] == [("only.txt", "100755")]


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [
        ({"base_tree": "f" * 40, "tree": []}, 422, "base_tree is not a valid tree oid"),
        ({"base_tree": "COMMIT", "tree": []}, 422, "base_tree is not a valid tree oid"),
        (
            {"tree": [{"path": "../x", "mode": "100644", "type": "blob", "content": ""}]},
            422,
            "malformed path",
        ),
        (
            {"tree": [{"path": "a//b", "mode": "100644", "type": "blob", "content": ""}]},
            422,
            "malformed path",
        ),
        (
            {"tree": [{"path": ".git/config", "mode": "100644", "type": "blob", "content": ""}]},
            422,
            "malformed",
        ),
        (
            {"tree": [{"path": "/abs", "mode": "100644", "type": "blob", "content": ""}]},
            422,
            "malformed path",
        ),
        (
            {"tree": [{"path": "a", "mode": "100644", "type": "blob", "content": "", "sha": None}]},
            422,
            "Invalid",
        ),
        ({"tree": [{"path": "a", "mode": "644", "type": "blob", "content": ""}]}, 422, "Invalid request."),
        ({"tree": [{"path": "a", "mode": "100644", "type": "tree", "content": ""}]}, 422, "Invalid request."),
        (
            {"tree": [{"path": "a", "mode": "100644", "type": "blob", "sha": "e" * 40}]},
            422,
            "is not a valid blob",
        ),
        ({"tree": "nope"}, 422, "Invalid request."),
    ],
)
def test_tree_errors(
    gh: FakeGitHub,
    client: httpx.Client,
    token: str,
    source: dict[str, Any],
    payload: dict,
    status: int,
    message: str,
) -> None:
    if payload.get("base_tree") == "COMMIT":
        payload = {**payload, "base_tree": source["main"]}  # a commit is not a tree
    response = client.post(f"/repos/{REPO}/git/trees", headers=token_auth(token), json=payload)
    assert response.status_code == status, response.text
    assert message in response.json()["message"], response.json()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tree": "f" * 40}, "Tree SHA does not exist"),
        (
            {"tree": "TREE_OF_MAIN", "parents": ["e" * 40]},
            "Parent SHA does not exist or is not a commit object",
        ),
        (
            {"tree": "TREE_OF_MAIN", "parents": ["abc123"]},
            "Each SHA in the 'parents' parameter must be exactly 40",
        ),
        (
            {"tree": "TREE_OF_MAIN", "parents": ["TREE_OF_MAIN"]},
            "Parent SHA does not exist or is not a commit",
        ),
        ({"message": None}, "Invalid request."),
        ({"tree": "TREE_OF_MAIN", "author": {"name": "x"}}, "Invalid request."),
    ],
)
def test_commit_errors(
    gh: FakeGitHub, client: httpx.Client, token: str, source: dict[str, Any], change: dict, message: str
) -> None:
    tree_of_main = _bare(gh, "rev-parse", f"{source['main']}^{{tree}}")
    payload = {"message": "m", "tree": tree_of_main, "parents": [source["main"]], **change}
    payload = {k: (tree_of_main if v == "TREE_OF_MAIN" else v) for k, v in payload.items() if v is not None}
    payload["parents"] = [tree_of_main if p == "TREE_OF_MAIN" else p for p in payload["parents"]]
    response = client.post(f"/repos/{REPO}/git/commits", headers=token_auth(token), json=payload)
    assert response.status_code == 422, response.text
    assert response.json()["message"].startswith(message), response.json()


def test_commit_with_author_and_date(
    gh: FakeGitHub, client: httpx.Client, token: str, source: dict[str, Any]
) -> None:
    author = {"name": "Ada", "email": "ada@example.com", "date": "2024-05-01T12:00:00Z"}
    tree = _bare(gh, "rev-parse", f"{source['main']}^{{tree}}")
    made = client.post(
        f"/repos/{REPO}/git/commits",
        headers=token_auth(token),
        json={"message": "m", "tree": tree, "author": author},
    ).json()
    assert made["author"] == author and made["committer"] == author and made["parents"] == []
    assert (
        _bare(gh, "log", "-1", "--format=%an <%ae> %aI", made["sha"])
        == "Ada <ada@example.com> 2024-05-01T12:00:00+00:00"
    )


def test_refs_are_created_once_and_moved_by_fast_forward_or_force(
    gh: FakeGitHub, client: httpx.Client, token: str, source: dict[str, Any]
) -> None:
    auth = token_auth(token)
    create = lambda ref, sha: client.post(
        f"/repos/{REPO}/git/refs", headers=auth, json={"ref": ref, "sha": sha}
    )  # noqa: E731
    assert create("refs/heads/topic", source["main"]).status_code == 201
    again = create("refs/heads/topic", source["feature"])
    assert (again.status_code, again.json()["message"]) == (422, "Reference already exists")
    assert create("refs/heads/other", "e" * 40).json()["message"] == "Object does not exist"
    assert create("heads/other", source["main"]).json()["message"].startswith("Reference name must contain")
    assert create("refs/topic2", source["main"]).status_code == 422
    assert (
        create("refs/heads/a..b", source["main"]).json()["message"]
        == "refs/heads/a..b is not a valid ref name."
    )
    assert _bare(gh, "rev-parse", "topic") == source["main"]

    move = lambda sha, **kw: client.patch(
        f"/repos/{REPO}/git/refs/heads/topic", headers=auth, json={"sha": sha, **kw}
    )  # noqa: E731
    forward = move(source["feature"])  # main -> feature is a fast forward
    assert (forward.status_code, forward.json()["object"]["sha"]) == (200, source["feature"])
    sideways = move(source["hidden"])  # feature -> hidden is not
    assert (sideways.status_code, sideways.json()["message"]) == (422, "Update is not a fast forward")
    assert _bare(gh, "rev-parse", "topic") == source["feature"]
    forced = move(source["hidden"], force=True)
    assert forced.status_code == 200 and _bare(gh, "rev-parse", "topic") == source["hidden"]
    missing = client.patch(f"/repos/{REPO}/git/refs/heads/nope", headers=auth, json={"sha": source["main"]})
    assert (missing.status_code, missing.json()["message"]) == (422, "Reference does not exist")
    assert client.get(f"/repos/{REPO}/git/ref/heads/nope", headers=auth).status_code == 404
    assert client.get(f"/repos/{REPO}/git/commits/{'e' * 40}", headers=auth).status_code == 404


def test_pull_requests_opened_through_the_api(
    gh: FakeGitHub, client: httpx.Client, token: str, source: dict[str, Any]
) -> None:
    auth = token_auth(token)
    first = _branch_on(client, auth, source["feature"], "gen", {"tests/test_a.py": "a\n"})
    opened = client.post(
        f"/repos/{REPO}/pulls",
        headers=auth,
        json={"title": "Tests", "head": "gen", "base": "feature", "body": "b"},
    )
    assert opened.status_code == 201, opened.text
    pull = opened.json()
    assert pull["number"] == 2  # #1 exists already
    assert (pull["head"]["label"], pull["head"]["sha"], pull["base"]["ref"]) == ("acme:gen", first, "feature")
    assert (
        pull["base"]["sha"] == source["feature"]
        and pull["body"] == "b"
        and pull["user"]["login"] == "aqe[bot]"
    )
    assert pull["html_url"] == f"{gh.url}/{REPO}/pull/2" and pull["state"] == "open"
    assert [p["number"] for p in gh.created_pulls] == [2]
    assert client.get(f"/repos/{REPO}/pulls/2", headers=auth).json()["title"] == "Tests"
    assert _bare(gh, "rev-parse", "refs/pull/2/head") == first

    listed = lambda **params: [
        p["number"] for p in client.get(f"/repos/{REPO}/pulls", headers=auth, params=params).json()
    ]  # noqa: E731
    assert listed(head="acme:gen", state="open") == [2]
    assert listed(head="acme:gen", base="feature") == [2]
    assert listed(head="acme:gen", base="main") == []
    assert listed(head="acme:feature") == [1]
    assert listed(head="acme:nope") == [] and listed(state="closed") == []
    assert listed() == [2, 1] and listed(head="gen") == [2, 1]  # GitHub ignores a head without "owner:"
    assert client.get(f"/repos/{REPO}/pulls", headers=auth, params={"state": "merged"}).status_code == 422

    duplicate = client.post(
        f"/repos/{REPO}/pulls", headers=auth, json={"title": "T", "head": "acme:gen", "base": "feature"}
    )
    assert duplicate.status_code == 422
    assert duplicate.json()["errors"] == [
        {
            "resource": "PullRequest",
            "code": "custom",
            "message": "A pull request already exists for acme:gen.",
        }
    ]

    # The pull request follows its branch when the ref moves.
    head_tree = client.get(f"/repos/{REPO}/git/commits/{first}", headers=auth).json()["tree"]["sha"]
    second = client.post(
        f"/repos/{REPO}/git/commits",
        headers=auth,
        json={"message": "again", "tree": head_tree, "parents": [source["feature"]]},
    ).json()["sha"]
    moved = client.patch(
        f"/repos/{REPO}/git/refs/heads/gen", headers=auth, json={"sha": second, "force": True}
    )
    assert moved.status_code == 200
    assert client.get(f"/repos/{REPO}/pulls/2", headers=auth).json()["head"]["sha"] == second
    assert (
        gh.created_pulls[0]["head"]["sha"] == second and _bare(gh, "rev-parse", "refs/pull/2/head") == second
    )

    # Edited and closed: a new pull request for the same branch may then be opened.
    edited = client.patch(f"/repos/{REPO}/pulls/2", headers=auth, json={"body": "new body", "state": "closed"})
    assert (edited.status_code, edited.json()["body"], edited.json()["state"]) == (200, "new body", "closed")
    assert listed(head="acme:gen") == [] and listed(head="acme:gen", state="closed") == [2]
    assert client.patch(f"/repos/{REPO}/pulls/99", headers=auth, json={"body": "x"}).status_code == 404
    assert client.patch(f"/repos/{REPO}/pulls/2", headers=auth, json={"state": "merged"}).status_code == 422
    reopened = client.post(
        f"/repos/{REPO}/pulls", headers=auth, json={"title": "Tests", "head": "gen", "base": "feature"}
    )
    assert reopened.status_code == 201 and reopened.json()["number"] == 3


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            {"title": "T", "head": "nope", "base": "main"},
            {"resource": "PullRequest", "field": "head", "code": "invalid"},
        ),
        (
            {"title": "T", "head": "feature", "base": "nope"},
            {"resource": "PullRequest", "field": "base", "code": "invalid"},
        ),
        (
            {"title": "T", "head": "someone:feature", "base": "main"},
            {"resource": "PullRequest", "field": "head", "code": "invalid"},
        ),
        (
            {"head": "feature", "base": "main"},
            {"resource": "PullRequest", "field": "title", "code": "missing_field"},
        ),
        (
            {"title": "T", "head": "main", "base": "feature"},
            {"resource": "PullRequest", "code": "custom", "message": "No commits between feature and main"},
        ),
    ],
)
def test_pull_request_errors(
    gh: FakeGitHub, client: httpx.Client, token: str, payload: dict, expected: dict
) -> None:
    response = client.post(f"/repos/{REPO}/pulls", headers=token_auth(token), json=payload)
    assert response.status_code == 422, response.text
    assert response.json()["message"] == "Validation Failed" and response.json()["errors"] == [expected]
    assert gh.created_pulls == []


def test_git_data_and_pulls_check_auth_access_and_permissions(
    gh: FakeGitHub, client: httpx.Client, token: str, keys: tuple[bytes, bytes], source: dict[str, Any]
) -> None:
    blob = {"content": "x"}
    assert client.post(f"/repos/{REPO}/git/blobs", json=blob).status_code == 401
    assert (
        client.post(f"/repos/{REPO}/git/blobs", headers=token_auth("ghs_" + "x" * 36), json=blob).status_code
        == 401
    )
    assert (
        client.post(f"/repos/{OTHER_REPO}/git/blobs", headers=token_auth(token), json=blob).status_code == 404
    )
    assert client.post("/repos/acme/nowhere/git/refs", headers=token_auth(token), json={}).status_code == 404
    assert client.post(f"/repos/{REPO}/git/blobs", headers=token_auth(token), json=blob).status_code == 201

    # An installation that has not granted `contents: write` (e.g. it has not accepted the new permissions yet).
    gh.permissions["contents"] = "read"
    app_auth = bearer(make_jwt(keys[0]))
    read_only = client.post(f"/app/installations/{INSTALLATION_ID}/access_tokens", headers=app_auth).json()
    assert read_only["permissions"]["contents"] == "read"
    denied = client.post(f"/repos/{REPO}/git/blobs", headers=token_auth(read_only["token"]), json=blob)
    assert (denied.status_code, denied.json()["message"]) == (403, "Resource not accessible by integration")
    readable = client.get(
        f"/repos/{REPO}/git/commits/{source['main']}", headers=token_auth(read_only["token"])
    )
    assert readable.status_code == 200
    too_much = client.post(
        f"/app/installations/{INSTALLATION_ID}/access_tokens",
        headers=app_auth,
        json={"permissions": {"contents": "write"}},
    )
    assert too_much.status_code == 422

    gh.permissions["contents"] = "write"
    narrowed = client.post(
        f"/app/installations/{INSTALLATION_ID}/access_tokens",
        headers=app_auth,
        json={"permissions": {"contents": "write", "pull_requests": "read"}},
    ).json()
    assert narrowed["permissions"] == {"contents": "write", "pull_requests": "read"}
    no_pulls = client.post(
        f"/repos/{REPO}/pulls",
        headers=token_auth(narrowed["token"]),
        json={"title": "T", "head": "feature", "base": "main"},
    )
    assert no_pulls.status_code == 403 and gh.created_pulls == []
    assert client.get(f"/repos/{REPO}/pulls", headers=token_auth(narrowed["token"])).status_code == 200
