"""Self-tests for the fake GitLab server (tests/fakes/gitlab.py): real git repositories, real HTTP."""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .gitlab import (
    ZERO_SHA,
    FakeGitLab,
    encode_path,
    hook_headers,
    mask_token,
    merge_request_event,
    note_event,
    push_event,
)

PROJECT = "acme/platform/app"  # nested groups
SECRET = "acme/secret"
PUBLIC = "acme/open"
FORK = "mallory/app"
TOKEN = "glpat-all-projects-token"
SCOPED = "glpat-app-only-token"
GIT_ENV = {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com", "GIT_COMMITTER_NAME": "Test",
           "GIT_COMMITTER_EMAIL": "test@example.com", "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_CONFIG_GLOBAL": os.devnull}


def git(*args: str | Path, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-c", "credential.helper=", *map(str, args)], cwd=cwd, env={**os.environ, **GIT_ENV},
                          capture_output=True, text=True, check=check, timeout=60)


def commit(repo: Path, name: str, content: str, message: str | None = None) -> str:
    (repo / name).write_text(content)
    git("add", name, cwd=repo)
    git("commit", "-q", "-m", message or f"add {name}", cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo).stdout.strip()


def basic(username: str, password: str) -> str:
    return "Authorization: Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@pytest.fixture
def source(tmp_path: Path) -> dict[str, Any]:
    """main (2 commits); feature: 1 commit on main's first; release/1.0: 1 commit on main."""
    repo = tmp_path / "source"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    base = commit(repo, "README.md", "hello\n")
    main = commit(repo, "app.py", "print('hi')\n")
    git("checkout", "-q", "-b", "feature", base, cwd=repo)
    feature = commit(repo, "feature.py", "x = 1\n", "feature: add x\n\nA longer body.")
    git("checkout", "-q", "-b", "release/1.0", "main", cwd=repo)
    release = commit(repo, "VERSION", "1.0\n")
    git("checkout", "-q", "main", cwd=repo)
    return {"path": repo, "base": base, "main": main, "feature": feature, "release": release}


@pytest.fixture
def fork(tmp_path: Path, source: dict[str, Any]) -> dict[str, Any]:
    repo = tmp_path / "fork"
    git("clone", "-q", source["path"], repo)
    git("checkout", "-q", "-b", "fix", cwd=repo)
    return {"path": repo, "fix": commit(repo, "fix.py", "fixed = True\n")}


@pytest.fixture
def gl(tmp_path: Path, source: dict[str, Any]) -> Iterator[FakeGitLab]:
    with FakeGitLab(git_root=tmp_path / "git") as fake:
        fake.add_token(TOKEN)
        fake.add_token(SCOPED, username="scoped-bot", projects=[PROJECT])
        fake.add_project(PROJECT, source["path"])
        fake.add_project(SECRET, source["path"])
        fake.add_project(PUBLIC, source["path"], visibility="public")
        fake.add_merge_request(PROJECT, 1, source_branch="feature", target_branch="main")
        yield fake


@pytest.fixture
def api(gl: FakeGitLab) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{gl.base_url}/api/v4", headers={"PRIVATE-TOKEN": TOKEN}, timeout=30) as client:
        yield client


P = f"/projects/{encode_path(PROJECT)}"


# --------------------------------------------------------------------------- authentication and projects


def test_missing_or_invalid_tokens_get_401_and_calls_never_hold_the_token(gl: FakeGitLab, api: httpx.Client) -> None:
    anonymous = httpx.Client(base_url=api.base_url)
    assert anonymous.get("/user").status_code == 401
    answer = anonymous.post(f"{P}/statuses/{'a' * 40}", json={"state": "pending"})
    assert (answer.status_code, answer.json()) == (401, {"message": "401 Unauthorized"})
    assert anonymous.get(f"{P}/merge_requests/1/notes").status_code == 401
    bad = anonymous.get("/user", headers={"PRIVATE-TOKEN": "glpat-wrong"})
    assert (bad.status_code, bad.json()) == (401, {"message": "401 Unauthorized"})
    assert anonymous.get("/user", headers={"Authorization": "Bearer glpat-wrong"}).status_code == 401
    # reading a private project anonymously: GitLab hides it (404), a public one is readable
    assert anonymous.get(P).json() == {"message": "404 Project Not Found"}
    assert anonymous.get(f"/projects/{encode_path(PUBLIC)}").status_code == 200

    me = anonymous.get("/user", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert me["username"] == "aqe-bot" and me["bot"] is True and isinstance(me["id"], int)
    assert api.get("/user").json()["id"] == me["id"]

    [call] = [c for c in gl.calls_to("GET", r"^/api/v4/user$") if c.auth == "bearer" and c.status == 200]
    assert call.token == mask_token(TOKEN) and call.username == "aqe-bot"
    assert TOKEN not in gl.summary() and TOKEN not in repr(gl.calls) and "glpat-wrong" not in gl.summary()
    assert all(TOKEN not in str(c.headers) for c in gl.calls)


def test_a_project_the_token_may_not_see_is_not_found(gl: FakeGitLab, api: httpx.Client) -> None:
    scoped = {"PRIVATE-TOKEN": SCOPED}
    assert api.get(P, headers=scoped).status_code == 200
    hidden = api.get(f"/projects/{encode_path(SECRET)}", headers=scoped)
    assert (hidden.status_code, hidden.json()) == (404, {"message": "404 Project Not Found"})
    assert api.get(f"/projects/{gl.project_id(SECRET)}", headers=scoped).status_code == 404
    assert api.post(f"/projects/{encode_path(SECRET)}/statuses/{'a' * 40}", headers=scoped,
                    json={"state": "pending"}).status_code == 404
    assert api.get("/projects/acme%2Fnope").json() == {"message": "404 Project Not Found"}
    # a public project is readable by anyone, but only members may post statuses
    open_id = encode_path(PUBLIC)
    assert api.get(f"/projects/{open_id}", headers=scoped).status_code == 200
    main = api.get(f"/projects/{open_id}/repository/branches/main").json()["commit"]["id"]
    refused = api.post(f"/projects/{open_id}/statuses/{main}", headers=scoped, json={"state": "pending"})
    assert (refused.status_code, refused.json()) == (403, {"message": "403 Forbidden"})


def test_a_project_by_id_and_by_encoded_nested_path(gl: FakeGitLab, api: httpx.Client) -> None:
    by_path = api.get(P).json()
    assert by_path == api.get(f"/projects/{gl.project_id(PROJECT)}").json()
    assert by_path["id"] == gl.project_id(PROJECT) and by_path["path_with_namespace"] == PROJECT
    assert (by_path["name"], by_path["path"], by_path["default_branch"]) == ("app", "app", "main")
    assert by_path["visibility"] == "private" and by_path["namespace"]["full_path"] == "acme/platform"
    assert by_path["web_url"] == f"{gl.base_url}/{PROJECT}"
    assert by_path["http_url_to_repo"] == f"{gl.base_url}/{PROJECT}.git"
    unencoded = api.get(f"/projects/{PROJECT}")  # GitLab needs the slashes encoded
    assert (unencoded.status_code, unencoded.json()) == (404, {"error": "404 Not Found"})
    assert api.get("/nothing/here").json() == {"error": "404 Not Found"}
    assert api.delete(P).status_code == 405
    assert gl.calls_to("GET", r"/projects/acme%2Fplatform%2Fapp$")[0].project == PROJECT


def test_branches_and_commits(api: httpx.Client, source: dict[str, Any]) -> None:
    branch = api.get(f"{P}/repository/branches/release%2F1.0").json()
    assert branch["name"] == "release/1.0" and branch["commit"]["id"] == source["release"]
    assert branch["default"] is False and api.get(f"{P}/repository/branches/main").json()["default"] is True
    missing = api.get(f"{P}/repository/branches/nope")
    assert (missing.status_code, missing.json()) == (404, {"message": "404 Branch Not Found"})

    found = api.get(f"{P}/repository/commits/{source['feature']}").json()
    assert found["id"] == source["feature"] and found["short_id"] == source["feature"][:8]
    assert found["title"] == "feature: add x" and found["message"] == "feature: add x\n\nA longer body.\n"
    assert found["parent_ids"] == [source["base"]] and found["author_email"] == "test@example.com"
    assert api.get(f"{P}/repository/commits/main").json()["id"] == source["main"]
    for bad in ("f" * 40, "--all"):
        gone = api.get(f"{P}/repository/commits/{bad}")
        assert (gone.status_code, gone.json()) == (404, {"message": "404 Commit Not Found"})


def test_rate_limit_headers_and_fail_next(gl: FakeGitLab, api: httpx.Client) -> None:
    headers = api.get("/user").headers
    assert int(headers["RateLimit-Limit"]) == int(headers["RateLimit-Remaining"]) + int(headers["RateLimit-Observed"])
    assert int(headers["RateLimit-Reset"]) > 1_700_000_000
    gl.fail_next("GET", r"^/api/v4/user$", 429, times=2, headers={"Retry-After": "1"})
    first, second, third = (api.get("/user") for _ in range(3))
    assert (first.status_code, first.headers["Retry-After"], first.json()) == (429, "1",
                                                                               {"message": "429 Too Many Requests"})
    assert (second.status_code, third.status_code) == (429, 200)
    gl.fail_next("*", r"/statuses/", 500, body={"message": "500 Internal Server Error"})
    assert api.post(f"{P}/statuses/{'a' * 40}", json={"state": "pending"}).status_code == 500
    assert [c.status for c in gl.calls_to("GET", r"/user$")][-3:] == [429, 429, 200]
    gl.reset_calls()
    assert gl.calls == []


def test_wait_for_returns_the_value_or_fails_with_a_summary(gl: FakeGitLab) -> None:
    assert gl.wait_for(lambda f: f.project_id(PROJECT)) == gl.project_id(PROJECT)
    with pytest.raises(AssertionError, match=r"fake GitLab at http://127\.0\.0\.1"):
        gl.wait_for(lambda f: f.notes_on(PROJECT, 1), timeout=0.2, description="a note")


# --------------------------------------------------------------------------- commit statuses


def post_status(api: httpx.Client, sha: str, state: str, **fields: Any) -> httpx.Response:
    return api.post(f"{P}/statuses/{sha}", json={"state": state, **fields})


def test_a_status_goes_pending_running_final_and_refuses_repeated_states(gl: FakeGitLab, api: httpx.Client,
                                                                         source: dict[str, Any]) -> None:
    sha, url = source["main"], "https://aqe.example.com/jobs/1"
    pending = post_status(api, sha, "pending", name="aqe/tests", ref="main", target_url=url, description="Queued")
    assert pending.status_code == 201
    status = pending.json()
    assert {k: status[k] for k in ("sha", "ref", "status", "name", "target_url", "description")} == {
        "sha": sha, "ref": "main", "status": "pending", "name": "aqe/tests", "target_url": url, "description": "Queued"}
    assert status["author"]["username"] == "aqe-bot" and status["started_at"] is None
    again = post_status(api, sha, "pending", name="aqe/tests", ref="main")
    assert (again.status_code, again.json()) == (
        400, {"message": "Cannot transition status via :enqueue from :pending"})

    running = post_status(api, sha, "running", name="aqe/tests", ref="main", description="Running").json()
    assert running["id"] == status["id"] and running["status"] == "running" and running["started_at"]
    assert running["target_url"] == url  # kept: only the given fields change
    twice = post_status(api, sha, "running", name="aqe/tests", ref="main")
    assert (twice.status_code, twice.json()) == (400, {"message": "Cannot transition status via :run from :running"})
    assert post_status(api, sha, "pending", name="aqe/tests", ref="main").json() == {
        "message": "Cannot transition status via :enqueue from :running"}
    assert post_status(api, sha, "skipped", name="aqe/tests", ref="main").json() == {
        "message": "Cannot transition status via :skip from :running"}

    done = post_status(api, sha, "success", name="aqe/tests", ref="main", coverage="87.5")
    assert done.status_code == 201
    assert done.json()["id"] == status["id"] and done.json()["coverage"] == 87.5 and done.json()["finished_at"]
    after = post_status(api, sha, "failed", name="aqe/tests", ref="main")  # final after final: a new status
    assert after.status_code == 201 and after.json()["id"] != status["id"]
    post_status(api, sha, "running", context="aqe/coverage", ref="main")  # `context` is an alias of `name`

    latest = api.get(f"{P}/repository/commits/{sha}/statuses").json()
    assert [(s["name"], s["status"]) for s in latest] == [("aqe/tests", "failed"), ("aqe/coverage", "running")]
    every = api.get(f"{P}/repository/commits/{sha}/statuses", params={"all": "true"}).json()
    assert [s["status"] for s in every] == ["success", "failed", "running"]
    named = api.get(f"{P}/repository/commits/{sha}/statuses", params={"name": "aqe/coverage"}).json()
    assert [s["name"] for s in named] == ["aqe/coverage"]
    assert api.get(f"{P}/repository/commits/{sha}/statuses", params={"ref": "other"}).json() == []
    assert [s["status"] for s in gl.statuses_for(PROJECT, sha)] == ["success", "failed", "running"]
    assert gl.statuses_for(SECRET, sha) == []


def test_status_validation_like_gitlab(api: httpx.Client, gl: FakeGitLab, source: dict[str, Any]) -> None:
    sha = source["main"]
    invalid = post_status(api, sha, "error")
    assert (invalid.status_code, invalid.json()) == (400, {"error": "state does not have a valid value"})
    unknown = post_status(api, "f" * 40, "pending")
    assert (unknown.status_code, unknown.json()) == (404, {"message": "404 Commit Not Found"})
    long = post_status(api, sha, "pending", description="d" * 256, target_url="https://x/" + "u" * 250)
    assert (long.status_code, long.json()) == (400, {"message": {
        "target_url": ["is too long (maximum is 255 characters)"],
        "description": ["is too long (maximum is 255 characters)"]}})
    assert post_status(api, sha, "pending", name="n" * 256).json() == {
        "message": {"name": ["is too long (maximum is 255 characters)"]}}
    assert post_status(api, sha, "pending", description="d" * 255).status_code == 201
    # form-encoded bodies work too; without `ref` GitLab picks a branch that contains the commit
    form = api.post(f"{P}/statuses/{source['release']}", data={"state": "running", "name": "form"})
    assert form.status_code == 201 and form.json()["ref"] == "release/1.0" and form.json()["name"] == "form"
    assert post_status(api, sha, "success").json()["name"] == "default"
    # a commit on no branch (only a merge request head) needs a ref
    gl.add_merge_request(PROJECT, 2, source_branch="main", target_branch="main", sha=commit_only_on_mr(gl, source))
    head = gl.merge_request(PROJECT, 2)["sha"]
    refless = post_status(api, head, "pending", name="aqe/tests")
    assert (refless.status_code, refless.json()) == (404, {"message": "404 References for commit Not Found"})
    assert post_status(api, head, "pending", name="aqe/tests", ref="refs/merge-requests/2/head").status_code == 201
    # ... after which its pipeline's ref is used
    assert post_status(api, head, "running", name="aqe/tests").json()["ref"] == "refs/merge-requests/2/head"


def commit_only_on_mr(gl: FakeGitLab, source: dict[str, Any]) -> str:
    """A commit pushed to a branch, used for a merge request, and then the branch deleted."""
    repo = source["path"]
    git("checkout", "-q", "-b", "gone", cwd=repo)
    sha = commit(repo, "gone.py", "gone = 1\n")
    gl.update_project(PROJECT, repo)
    gl.add_merge_request(PROJECT, 9, source_branch="gone", target_branch="main")
    git("checkout", "-q", "main", cwd=repo)
    git("branch", "-q", "-D", "gone", cwd=repo)
    gl.update_project(PROJECT, repo)
    return sha


def test_statuses_are_paginated(api: httpx.Client, source: dict[str, Any]) -> None:
    for index in range(5):
        post_status(api, source["main"], "success", name=f"s{index}", ref="main")
    page = api.get(f"{P}/repository/commits/{source['main']}/statuses", params={"per_page": 2, "page": 3})
    assert [s["name"] for s in page.json()] == ["s4"]
    assert (page.headers["x-page"], page.headers["x-total"], page.headers["x-next-page"]) == ("3", "5", "")


# --------------------------------------------------------------------------- merge requests and notes


def test_a_merge_request_has_diff_refs(gl: FakeGitLab, api: httpx.Client, source: dict[str, Any],
                                       fork: dict[str, Any]) -> None:
    mr = api.get(f"{P}/merge_requests/1").json()
    assert (mr["iid"], mr["sha"], mr["state"], mr["source_branch"], mr["target_branch"]) == (
        1, source["feature"], "opened", "feature", "main")
    assert mr["source_project_id"] == mr["target_project_id"] == mr["project_id"] == gl.project_id(PROJECT)
    assert mr["diff_refs"] == {"base_sha": source["base"], "head_sha": source["feature"], "start_sha": source["main"]}
    assert mr["web_url"] == f"{gl.base_url}/{PROJECT}/-/merge_requests/1" and mr["draft"] is False
    missing = api.get(f"{P}/merge_requests/99")
    assert (missing.status_code, missing.json()) == (404, {"message": "404 Not found"})

    gl.add_project(FORK, fork["path"])
    gl.add_merge_request(PROJECT, 3, source_branch="fix", target_branch="main", source_project=FORK)
    forked = api.get(f"{P}/merge_requests/3").json()
    assert forked["source_project_id"] == gl.project_id(FORK) != forked["target_project_id"]
    assert forked["sha"] == fork["fix"] and forked["diff_refs"]["base_sha"] == source["main"]


def test_notes_are_created_listed_paginated_edited_by_their_author_only(gl: FakeGitLab, api: httpx.Client) -> None:
    notes = f"{P}/merge_requests/1/notes"
    first = api.post(notes, json={"body": "report v1"})
    assert first.status_code == 201
    note = first.json()
    assert note["body"] == "report v1" and note["author"]["username"] == "aqe-bot" and note["system"] is False
    assert (note["noteable_type"], note["noteable_iid"]) == ("MergeRequest", 1)
    assert note["author"]["id"] == api.get("/user").json()["id"]
    other = gl.add_note(PROJECT, 1, "looks good", username="bob")
    system = gl.add_note(PROJECT, 1, "added 1 commit", username="alice", system=True)
    api.post(notes, data={"body": "form body"})  # form-encoded

    blank = api.post(notes, json={"body": "  "})
    assert (blank.status_code, blank.json()) == (400, {"message": "400 Bad request - Note can't be blank"})
    assert api.post(notes, json={}).json() == {"error": "body is missing"}
    too_long = api.post(notes, json={"body": "x" * 1_000_001})
    assert (too_long.status_code, too_long.json()) == (400, {
        "message": {"note": ["is too long (maximum is 1000000 characters)"]}})
    assert api.post(notes, json={"body": "x" * 1_000_000}).status_code == 201

    newest_first = api.get(notes).json()
    assert [n["id"] for n in newest_first] == sorted((n["id"] for n in newest_first), reverse=True)
    page1 = api.get(notes, params={"sort": "asc", "order_by": "updated_at", "per_page": 2})
    assert [n["id"] for n in page1.json()] == [note["id"], other["id"]]
    assert {k: page1.headers[k] for k in ("x-page", "x-per-page", "x-next-page", "x-total", "x-total-pages")} == {
        "x-page": "1", "x-per-page": "2", "x-next-page": "2", "x-total": "5", "x-total-pages": "3"}
    assert 'rel="next"' in page1.headers["Link"] and "page=2" in page1.headers["Link"]
    last = api.get(notes, params={"sort": "asc", "per_page": 2, "page": 3})
    assert last.headers["x-next-page"] == "" and 'rel="next"' not in last.headers["Link"] and len(last.json()) == 1
    assert api.get(notes, params={"per_page": 500}).headers["x-per-page"] == "100"
    assert api.get(notes, params={"sort": "sideways"}).status_code == 400
    assert any(n["system"] for n in api.get(notes).json())

    edited = api.put(f"{notes}/{note['id']}", json={"body": "report v2"})
    assert edited.status_code == 200 and edited.json()["body"] == "report v2" and edited.json()["id"] == note["id"]
    assert edited.json()["updated_at"] >= note["updated_at"]
    for foreign in (other, system):
        refused = api.put(f"{notes}/{foreign['id']}", json={"body": "hijack"})
        assert (refused.status_code, refused.json()) == (403, {"message": "403 Forbidden"})
    assert api.put(f"{notes}/{note['id']}", json={"body": ""}).status_code == 400
    assert api.get(f"{notes}/{note['id']}").json()["body"] == "report v2"
    assert api.delete(f"{notes}/{other['id']}").status_code == 403
    assert api.delete(f"{notes}/{note['id']}").status_code == 204
    assert api.get(f"{notes}/{note['id']}").status_code == 404
    assert [n["body"][:10] for n in gl.notes_on(PROJECT, 1)] == ["looks good", "added 1 co", "form body", "x" * 10]
    assert api.get(f"{P}/merge_requests/42/notes").status_code == 404


# --------------------------------------------------------------------------- git over HTTP


def clone(url: str, dest: Path, *extra: str, header: str | None = None) -> subprocess.CompletedProcess[str]:
    config = ["-c", f"http.extraHeader={header}"] if header else []
    return git(*config, "clone", "-q", *extra, url, dest, check=False)


def test_git_clone_with_the_token_as_basic_password(gl: FakeGitLab, tmp_path: Path, source: dict[str, Any]) -> None:
    done = clone(gl.clone_url(PROJECT), tmp_path / "c1", header=basic("oauth2", TOKEN))
    assert done.returncode == 0, done.stderr
    assert git("rev-parse", "HEAD", cwd=tmp_path / "c1").stdout.strip() == source["main"]
    assert clone(gl.clone_url(PROJECT), tmp_path / "c2", header=basic("anything", SCOPED)).returncode == 0
    refs = gl.calls_to("GET", r"^/acme/platform/app\.git/info/refs$")
    assert [c.status for c in refs] == [200, 200] and [c.username for c in refs] == ["aqe-bot", "scoped-bot"]
    assert refs[0].token == mask_token(TOKEN) and refs[0].project == PROJECT
    assert all(c.status == 200 for c in gl.calls_to("POST", r"git-upload-pack$"))


def test_git_refuses_what_gitlab_refuses(gl: FakeGitLab, tmp_path: Path) -> None:
    refused = clone(gl.clone_url(PROJECT), tmp_path / "c1")
    assert refused.returncode != 0
    info = f"{gl.base_url}/{PROJECT}.git/info/refs?service=git-upload-pack"
    anonymous = httpx.get(info)
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"] == 'Basic realm="GitLab"'
    wrong = httpx.get(info, auth=("oauth2", "glpat-wrong"))
    assert wrong.status_code == 401 and "WWW-Authenticate" in wrong.headers
    assert httpx.get(info, auth=("", TOKEN)).status_code == 401  # a username is needed
    assert httpx.get(info, headers={"PRIVATE-TOKEN": TOKEN}).status_code == 401  # git wants Basic
    hidden = f"{gl.base_url}/{SECRET}.git/info/refs?service=git-upload-pack"
    assert httpx.get(hidden, auth=("oauth2", SCOPED)).status_code == 404
    assert httpx.get(f"{gl.base_url}/acme/none.git/info/refs?service=git-upload-pack").status_code == 401
    push = f"{gl.base_url}/{PROJECT}.git/info/refs?service=git-receive-pack"
    assert httpx.get(push, auth=("oauth2", TOKEN)).status_code == 403
    public = clone(gl.clone_url(PUBLIC), tmp_path / "c2")
    assert public.returncode == 0, public.stderr


def test_fetching_merge_request_heads_from_the_target_project(gl: FakeGitLab, tmp_path: Path,
                                                             source: dict[str, Any], fork: dict[str, Any]) -> None:
    gl.add_project(FORK, fork["path"])
    gl.add_merge_request(PROJECT, 2, source_branch="fix", target_branch="main", source_project=FORK)
    work = tmp_path / "work"
    git("init", "-q", work)
    header = ["-c", f"http.extraHeader={basic('oauth2', SCOPED)}"]
    for iid, expected in ((1, source["feature"]), (2, fork["fix"])):
        fetched = git(*header, "fetch", "-q", gl.clone_url(PROJECT), f"refs/merge-requests/{iid}/head", cwd=work,
                      check=False)
        assert fetched.returncode == 0, fetched.stderr
        assert git("rev-parse", "FETCH_HEAD", cwd=work).stdout.strip() == expected
    # a push to the fork's branch moves the merge request head (refs and the API)
    newer = commit(fork["path"], "more.py", "more = 1\n")
    gl.update_project(FORK, fork["path"])
    assert gl.merge_request(PROJECT, 2)["sha"] == newer
    assert git(*header, "ls-remote", gl.clone_url(PROJECT), "refs/merge-requests/2/head",
               cwd=work).stdout.split()[0] == newer


# --------------------------------------------------------------------------- webhook payloads


def test_push_event_payloads(gl: FakeGitLab, source: dict[str, Any]) -> None:
    event = push_event(gl, PROJECT, before=source["base"], after=source["main"])
    assert (event["object_kind"], event["event_name"], event["ref"]) == ("push", "push", "refs/heads/main")
    assert event["checkout_sha"] == source["main"] and event["user_username"] == "alice"
    assert event["project_id"] == event["project"]["id"] == gl.project_id(PROJECT)
    project = event["project"]
    assert project["path_with_namespace"] == PROJECT and project["git_http_url"] == gl.clone_url(PROJECT)
    assert project["web_url"] == f"{gl.base_url}/{PROJECT}" and project["default_branch"] == "main"
    [pushed] = event["commits"]
    assert pushed["id"] == source["main"] and pushed["added"] == ["app.py"] and event["total_commits_count"] == 1

    deleted = push_event(gl, PROJECT, before=source["feature"], after=ZERO_SHA, ref="refs/heads/feature")
    assert deleted["checkout_sha"] is None and deleted["commits"] == [] and deleted["total_commits_count"] == 0
    new_branch = push_event(gl, PROJECT, before=ZERO_SHA, after=source["release"], ref="refs/heads/release/1.0")
    assert [c["id"] for c in new_branch["commits"]] == [source["release"]]  # only what main lacks

    repo = source["path"]
    shas = [commit(repo, f"f{index}.txt", f"{index}\n") for index in range(22)]
    gl.update_project(PROJECT, repo)
    many = push_event(gl, PROJECT, before=source["main"], after=shas[-1])
    assert many["total_commits_count"] == 22 and [c["id"] for c in many["commits"]] == shas[-20:]  # newest 20, ASC


def test_merge_request_and_note_event_payloads(gl: FakeGitLab, source: dict[str, Any]) -> None:
    opened = merge_request_event(gl, PROJECT, 1)
    assert (opened["object_kind"], opened["event_type"], opened["user"]["username"]) == (
        "merge_request", "merge_request", "alice")
    attrs = opened["object_attributes"]
    assert attrs["action"] == "open" and "oldrev" not in attrs and attrs["state"] == "opened"
    assert attrs["last_commit"]["id"] == source["feature"] and attrs["last_commit"]["message"].startswith("feature")
    assert (attrs["iid"], attrs["source_branch"], attrs["target_branch"]) == (1, "feature", "main")
    assert attrs["source_project_id"] == attrs["target_project_id"] == opened["project"]["id"]
    assert attrs["source"]["path_with_namespace"] == attrs["target"]["git_http_url"].removeprefix(
        f"{gl.base_url}/").removesuffix(".git") == PROJECT
    assert attrs["draft"] is False and attrs["url"].endswith("/-/merge_requests/1")
    assert opened["labels"] == [] and opened["changes"] == {}
    pushed = merge_request_event(gl, PROJECT, 1, action="update", oldrev=source["base"])
    assert pushed["object_attributes"]["oldrev"] == source["base"]
    assert merge_request_event(gl, PROJECT, 1, action="close")["object_attributes"]["state"] == "closed"

    note = note_event(gl, PROJECT, 1, "/aqe run", user="carol")
    assert (note["object_kind"], note["event_type"], note["user"]["username"]) == ("note", "note", "carol")
    assert note["object_attributes"]["note"] == "/aqe run"
    assert note["object_attributes"]["noteable_type"] == "MergeRequest"
    assert note["object_attributes"]["action"] == "create"
    assert note["merge_request"]["iid"] == 1 and note["merge_request"]["last_commit"]["id"] == source["feature"]
    assert note["project"]["id"] == gl.project_id(PROJECT)
    [saved] = gl.notes_on(PROJECT, 1)
    assert saved["id"] == note["object_attributes"]["id"] and saved["author"]["username"] == "carol"


def test_hook_headers() -> None:
    headers = hook_headers("Merge Request Hook", token="s3cret", uuid="delivery-1")
    assert headers["X-Gitlab-Event"] == "Merge Request Hook" and headers["X-Gitlab-Token"] == "s3cret"
    assert headers["X-Gitlab-Event-UUID"] == headers["Idempotency-Key"] == "delivery-1"
    assert headers["User-Agent"] == "GitLab/18.6.0" and headers["Content-Type"] == "application/json"
    assert headers["X-Gitlab-Instance"].startswith("https://")
    assert hook_headers("push", token=None)["X-Gitlab-Event"] == "Push Hook"
    assert "X-Gitlab-Token" not in hook_headers("Note Hook", token=None)
    assert hook_headers("Note", token=None)["Idempotency-Key"] != hook_headers("Note", token=None)["Idempotency-Key"]


# --------------------------------------------------------------------------- members


def test_token_users_are_developers_and_added_members_have_their_level(gl: FakeGitLab, api: httpx.Client) -> None:
    bot = api.get("/user").json()
    members = api.get(f"{P}/members/all").json()
    assert [(m["username"], m["access_level"], m["state"]) for m in members] == [
        ("aqe-bot", 30, "active"), ("scoped-bot", 30, "active")]
    assert members[0]["id"] == bot["id"] and members[0]["name"] == "aqe-bot"
    secret = api.get(f"/projects/{encode_path(SECRET)}/members/all").json()
    assert [m["username"] for m in secret] == ["aqe-bot"]  # the scoped token does not reach it

    alice = gl.add_member(PROJECT, "alice", 40, name="Alice Liddell")
    gl.add_member(PROJECT, "bob", 20)
    carol = gl.add_member(SECRET, "carol", 50)
    assert (alice["username"], alice["name"], alice["access_level"]) == ("alice", "Alice Liddell", 40)
    members = api.get(f"{P}/members/all").json()
    assert {m["username"]: m["access_level"] for m in members} == {
        "aqe-bot": 30, "scoped-bot": 30, "alice": 40, "bob": 20}
    assert [m["username"] for m in api.get(f"{P}/members/all", params={"query": "LIDDELL"}).json()] == ["alice"]
    assert [m["username"] for m in api.get(f"{P}/members/all", params={"query": "bot"}).json()] == [
        "aqe-bot", "scoped-bot"]
    assert api.get(f"{P}/members/all", params={"query": "nobody"}).json() == []
    assert api.get(f"{P}/members").json() == members  # no groups here: direct members are all of them
    by_ids = api.get(f"{P}/members/all", params=[("user_ids[]", alice["id"]), ("user_ids[]", bot["id"])]).json()
    assert {m["username"] for m in by_ids} == {"alice", "aqe-bot"}
    assert [m["username"] for m in api.get(f"{P}/members/all", params={"user_ids": f"{alice['id']}"}).json()] == [
        "alice"]
    assert api.get(f"{P}/members/all", params={"user_ids[]": "x"}).status_code == 400
    page = api.get(f"{P}/members/all", params={"per_page": 3, "page": 2})
    assert len(page.json()) == 1 and page.headers["x-total"] == "4" and page.headers["x-next-page"] == ""

    one = api.get(f"{P}/members/all/{alice['id']}")
    assert one.status_code == 200 and one.json() == alice
    assert api.get(f"{P}/members/all/{bot['id']}").json()["access_level"] == 30
    for absent in (carol["id"], 999999):  # a member elsewhere; nobody
        gone = api.get(f"{P}/members/all/{absent}")
        assert (gone.status_code, gone.json()) == (404, {"message": "404 Not found"})
    # a private project's members are hidden from anonymous callers and tokens that do not reach it
    assert httpx.get(f"{gl.base_url}/api/v4{P}/members/all").status_code == 404
    assert api.get(f"/projects/{encode_path(SECRET)}/members/all", headers={"PRIVATE-TOKEN": SCOPED}).status_code == 404
    assert httpx.get(f"{gl.base_url}/api/v4/projects/{encode_path(PUBLIC)}/members/all").status_code == 200
    with pytest.raises(ValueError, match="access_level"):
        gl.add_member(PROJECT, "dave", 35)


def test_a_token_user_added_as_reporter_may_read_but_not_write(gl: FakeGitLab, api: httpx.Client,
                                                               source: dict[str, Any]) -> None:
    gl.add_member(PROJECT, "scoped-bot", 20)
    scoped = {"PRIVATE-TOKEN": SCOPED}
    me = api.get("/user", headers=scoped).json()
    assert api.get(f"{P}/members/all/{me['id']}").json()["access_level"] == 20
    assert api.get(f"{P}/merge_requests/1", headers=scoped).status_code == 200
    refused = api.post(f"{P}/statuses/{source['main']}", headers=scoped, json={"state": "pending"})
    assert (refused.status_code, refused.json()) == (403, {"message": "403 Forbidden"})
    assert api.get(f"{P}/repository/branches/main", headers=scoped).json()["can_push"] is False
    gl.add_member(SECRET, "scoped-bot", 40)  # an added member reaches a project its token is not scoped to
    assert api.get(f"/projects/{encode_path(SECRET)}", headers=scoped).status_code == 200


# --------------------------------------------------------------------------- commits from file actions


def post_commit(api: httpx.Client, branch: str, actions: list[dict[str, Any]], message: str = "bot commit",
                project: str = P, headers: dict[str, str] | None = None, **extra: Any) -> httpx.Response:
    return api.post(f"{project}/repository/commits", headers=headers,
                    json={"branch": branch, "commit_message": message, "actions": actions, **extra})


def test_a_commit_on_top_of_a_branch_with_every_action(gl: FakeGitLab, api: httpx.Client,
                                                       source: dict[str, Any]) -> None:
    created = post_commit(api, "main", [
        {"action": "create", "file_path": "tests/test_new.py", "content": "def test_x():\n    assert True\n"},
        {"action": "create", "file_path": "/bin/data.bin", "content": base64.b64encode(b"\x00\x01\xff").decode(),
         "encoding": "base64"},
        {"action": "update", "file_path": "app.py", "content": "print('bye')\n"},
        {"action": "move", "file_path": "docs/README.md", "previous_path": "README.md"},
    ], message="Add tests\n\nGenerated by AQE.")
    assert created.status_code == 201, created.text
    commit = created.json()
    assert commit["parent_ids"] == [source["main"]] and commit["title"] == "Add tests"
    assert commit["message"] == "Add tests\n\nGenerated by AQE.\n" and commit["short_id"] == commit["id"][:8]
    assert (commit["author_name"], commit["committer_name"]) == ("aqe-bot", "aqe-bot")
    assert commit["stats"]["additions"] >= 3 and commit["web_url"].endswith(f"/-/commit/{commit['id']}")
    assert gl.branch_sha(PROJECT, "main") == commit["id"]
    assert api.get(f"{P}/repository/branches/main").json()["commit"]["id"] == commit["id"]
    assert gl.file_at(PROJECT, "main", "tests/test_new.py") == b"def test_x():\n    assert True\n"
    assert gl.file_at(PROJECT, "main", "bin/data.bin") == b"\x00\x01\xff"
    assert gl.file_at(PROJECT, "main", "app.py") == b"print('bye')\n"
    assert gl.file_at(PROJECT, "main", "docs/README.md") == b"hello\n"  # a move without content keeps it
    assert gl.file_at(PROJECT, "main", "README.md") is None
    assert gl.file_at(PROJECT, source["main"], "README.md") == b"hello\n"
    assert gl.file_at(SECRET, "main", "docs/README.md") is None  # another project's repository

    second = post_commit(api, "main", [
        {"action": "delete", "file_path": "app.py"},
        {"action": "chmod", "file_path": "tests/test_new.py", "execute_filemode": True},
        {"action": "move", "file_path": "README.txt", "previous_path": "docs/README.md", "content": "moved\n"},
    ], author_name="Someone Else", author_email="else@example.com").json()
    assert second["parent_ids"] == [commit["id"]] and second["author_email"] == "else@example.com"
    assert second["committer_name"] == "aqe-bot"
    assert gl.file_at(PROJECT, "main", "app.py") is None and gl.file_at(PROJECT, "main", "README.txt") == b"moved\n"
    mode = subprocess.run(["git", "--git-dir", gl.repo_path(PROJECT), "ls-tree", "main", "tests/test_new.py"],
                          capture_output=True, text=True, check=True).stdout.split()[0]
    assert mode == "100755"
    assert [(c["branch"], c["commit"]["id"]) for c in gl.created_commits] == [("main", commit["id"]),
                                                                            ("main", second["id"])]
    assert gl.created_commits[0]["project"] == PROJECT and gl.created_commits[0]["actions"][0]["action"] == "create"
    without_stats = post_commit(api, "main", [{"action": "create", "file_path": "s.txt", "content": "s"}],
                                stats=False).json()
    assert "stats" not in without_stats


def test_commit_actions_refused_like_gitlab(gl: FakeGitLab, api: httpx.Client, source: dict[str, Any]) -> None:
    cases = [
        ([{"action": "create", "file_path": "README.md", "content": "x"}], "A file with this name already exists"),
        ([{"action": "create", "file_path": "README.md/inner", "content": "x"}],
         "A file with this name already exists"),
        ([{"action": "update", "file_path": "nope.txt", "content": "x"}], "A file with this name doesn't exist"),
        ([{"action": "delete", "file_path": "nope.txt"}], "A file with this name doesn't exist"),
        ([{"action": "chmod", "file_path": "nope.txt", "execute_filemode": True}],
         "A file with this name doesn't exist"),
        ([{"action": "move", "file_path": "new.txt", "previous_path": "nope.txt"}],
         "A file with this name doesn't exist"),
        ([{"action": "move", "file_path": "app.py", "previous_path": "README.md"}],
         "A file with this name already exists"),
        ([{"action": "create", "file_path": "a.txt", "content": "1"}, {"action": "create", "file_path": "a.txt"}],
         "A file with this name already exists"),  # actions apply in order: nothing is committed
        ([{"action": "create", "file_path": "../escape.txt", "content": "x"}],
         "Path cannot include directory traversal"),
    ]
    for actions, message in cases:
        refused = post_commit(api, "main", actions)
        assert (refused.status_code, refused.json()) == (400, {"message": message}), actions
    assert gl.branch_sha(PROJECT, "main") == source["main"] and gl.created_commits == []

    grape = [({"branch": "main"}, "commit_message is missing, actions is missing"),
             ({"branch": "main", "commit_message": "m", "actions": []}, "actions is empty"),
             ({"branch": "main", "commit_message": "m", "actions": [{"action": "rename", "file_path": "x"}]},
              "actions[0][action] does not have a valid value"),
             ({"branch": "main", "commit_message": "m", "actions": [{"action": "create"}]},
              "actions[0][file_path] is missing"),
             ({"branch": "main", "commit_message": "m", "force": "maybe",
               "actions": [{"action": "create", "file_path": "x"}]}, "force is invalid")]
    for body, error in grape:
        answer = api.post(f"{P}/repository/commits", json=body)
        assert (answer.status_code, answer.json()) == (400, {"error": error}), body

    create = [{"action": "create", "file_path": "x.txt", "content": "x"}]
    anonymous = httpx.post(f"{gl.base_url}/api/v4{P}/repository/commits",
                           json={"branch": "main", "commit_message": "m", "actions": create})
    assert anonymous.status_code == 401
    scoped = {"PRIVATE-TOKEN": SCOPED}
    assert post_commit(api, "main", create, project=f"/projects/{encode_path(SECRET)}", headers=scoped
                       ).status_code == 404
    forbidden = post_commit(api, "main", create, project=f"/projects/{encode_path(PUBLIC)}", headers=scoped)
    assert (forbidden.status_code, forbidden.json()) == (403, {"message": "403 Forbidden"})
    assert post_commit(api, "main", create, headers=scoped).status_code == 201  # its own project


def test_commits_on_new_and_existing_branches_with_start_points(gl: FakeGitLab, api: httpx.Client,
                                                                source: dict[str, Any]) -> None:
    create = [{"action": "create", "file_path": "gen.py", "content": "x = 1\n"}]
    missing = post_commit(api, "aqe/tests", create)  # a new branch needs a start point
    assert (missing.status_code, missing.json()) == (
        400, {"message": "You can only create or edit files when you are on a branch"})
    assert post_commit(api, "aqe/tests", create, start_branch="nope").json() == {
        "message": "You can only create or edit files when you are on a branch"}

    first = post_commit(api, "aqe/tests", create, start_branch="feature")
    assert first.status_code == 201 and first.json()["parent_ids"] == [source["feature"]]
    assert gl.branch_sha(PROJECT, "aqe/tests") == first.json()["id"]
    exists = post_commit(api, "aqe/tests", create, start_branch="main")
    assert (exists.status_code, exists.json()) == (400, {
        "message": "A branch called 'aqe/tests' already exists. Switch to that branch in order to make changes"})
    again = post_commit(api, "aqe/tests", create, start_sha=source["main"])
    assert again.json() == exists.json()
    on_top = post_commit(api, "aqe/tests", [{"action": "update", "file_path": "gen.py", "content": "x = 2\n"}])
    assert on_top.json()["parent_ids"] == [first.json()["id"]]  # no start point: on top of the branch

    forced = post_commit(api, "aqe/tests", create, start_sha=source["main"], force=True)
    assert forced.status_code == 201 and forced.json()["parent_ids"] == [source["main"]]
    assert gl.branch_sha(PROJECT, "aqe/tests") == forced.json()["id"]
    assert gl.file_at(PROJECT, "aqe/tests", "gen.py") == b"x = 1\n"
    assert gl.file_at(PROJECT, "aqe/tests", "feature.py") is None  # the old history is gone

    fresh = post_commit(api, "from-sha", create, start_sha=source["base"])
    assert fresh.status_code == 201 and fresh.json()["parent_ids"] == [source["base"]]
    for start_sha, message in (("f" * 40, f"Cannot find start_sha '{'f' * 40}'"), ("main", "Invalid start_sha 'main'")):
        assert post_commit(api, "other", create, start_sha=start_sha).json() == {"message": message}
    both = post_commit(api, "other", create, start_sha=source["base"], start_branch="main")
    assert both.json() == {"message": "You can't pass both start_branch and start_sha"}
    bad_name = post_commit(api, "bad..name", create, start_branch="main")
    assert bad_name.status_code == 400 and "Branch name is invalid" in bad_name.json()["message"]

    # the new branch is real: git sees it over HTTP
    remote = git("-c", f"http.extraHeader={basic('oauth2', TOKEN)}", "ls-remote", gl.clone_url(PROJECT),
                 "refs/heads/from-sha").stdout.split()
    assert remote[0] == fresh.json()["id"]


def test_a_commit_to_a_source_branch_moves_its_merge_requests(gl: FakeGitLab, api: httpx.Client,
                                                              source: dict[str, Any]) -> None:
    assert gl.merge_request(PROJECT, 1)["sha"] == source["feature"]
    pushed = post_commit(api, "feature", [{"action": "create", "file_path": "more.py", "content": "y = 2\n"}]).json()
    assert gl.merge_request(PROJECT, 1)["sha"] == pushed["id"]
    assert api.get(f"{P}/merge_requests/1").json()["diff_refs"]["head_sha"] == pushed["id"]
    ref = subprocess.run(["git", "--git-dir", gl.repo_path(PROJECT), "rev-parse", "refs/merge-requests/1/head"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert ref == pushed["id"]


# --------------------------------------------------------------------------- merge requests through the API


def test_merge_requests_are_created_listed_and_updated(gl: FakeGitLab, api: httpx.Client,
                                                       source: dict[str, Any]) -> None:
    mrs = f"{P}/merge_requests"
    created = api.post(mrs, json={"source_branch": "release/1.0", "target_branch": "main", "title": "Release 1.0",
                                  "description": "Generated tests", "remove_source_branch": True})
    assert created.status_code == 201, created.text
    mr = created.json()
    assert (mr["iid"], mr["state"], mr["title"], mr["description"]) == (2, "opened", "Release 1.0", "Generated tests")
    assert (mr["source_branch"], mr["target_branch"], mr["sha"]) == ("release/1.0", "main", source["release"])
    assert mr["author"]["username"] == "aqe-bot" and mr["force_remove_source_branch"] is True
    assert mr["diff_refs"]["base_sha"] == source["main"] and mr["draft"] is False
    assert mr["web_url"] == f"{gl.base_url}/{PROJECT}/-/merge_requests/2"
    assert gl.created_merge_requests == [mr] and gl.merge_request(PROJECT, 2) == mr

    duplicate = api.post(mrs, json={"source_branch": "release/1.0", "target_branch": "main", "title": "Again"})
    assert (duplicate.status_code, duplicate.json()) == (409, {
        "message": ["Another open merge request already exists for this source branch: !2"]})
    untitled = api.post(mrs, json={"source_branch": "release/1.0", "target_branch": "main"})
    assert (untitled.status_code, untitled.json()) == (400, {"error": "title is missing"})
    assert api.post(mrs, json={}).json() == {
        "error": "title is missing, source_branch is missing, target_branch is missing"}
    nowhere = api.post(mrs, json={"source_branch": "nope", "target_branch": "main", "title": "t"})
    assert (nowhere.status_code, nowhere.json()) == (400, {"message": {"source_branch": ["does not exist"]}})
    same = api.post(mrs, json={"source_branch": "main", "target_branch": "main", "title": "t"})
    assert (same.status_code, same.json()) == (422, {
        "message": ["You can't use same project/branch for source and target"]})
    draft = api.post(mrs, json={"source_branch": "feature", "target_branch": "release/1.0", "title": "Draft: wip"})
    assert draft.json()["iid"] == 3 and draft.json()["draft"] is True

    listed = api.get(mrs).json()
    assert [m["iid"] for m in listed] == [3, 2, 1]  # newest first
    assert [m["iid"] for m in api.get(mrs, params={"source_branch": "feature"}).json()] == [3, 1]
    assert [m["iid"] for m in api.get(mrs, params={"target_branch": "main", "sort": "asc"}).json()] == [1, 2]
    page = api.get(mrs, params={"per_page": 2, "page": 2})
    assert [m["iid"] for m in page.json()] == [1] and page.headers["x-total"] == "3"
    assert api.get(mrs, params={"state": "sideways"}).status_code == 400

    edited = api.put(f"{mrs}/2", json={"title": "Release 1.0 (tests)", "description": "Now with tests"})
    assert edited.status_code == 200
    assert (edited.json()["title"], edited.json()["description"]) == ("Release 1.0 (tests)", "Now with tests")
    assert api.get(f"{mrs}/2").json()["description"] == "Now with tests"
    assert api.put(f"{mrs}/3", json={"title": "Ready"}).json()["draft"] is False
    nothing = api.put(f"{mrs}/2", json={})
    assert nothing.status_code == 400 and "at least one parameter must be provided" in nothing.json()["error"]
    assert api.put(f"{mrs}/2", json={"title": " "}).json() == {"message": {"title": ["can't be blank"]}}
    assert api.put(f"{mrs}/99", json={"title": "x"}).status_code == 404

    closed = api.put(f"{mrs}/2", json={"state_event": "close"}).json()
    assert closed["state"] == "closed" and closed["closed_at"]
    assert [m["iid"] for m in api.get(mrs, params={"state": "opened"}).json()] == [3, 1]
    assert [m["iid"] for m in api.get(mrs, params={"state": "closed"}).json()] == [2]
    gl.set_merge_request_state(PROJECT, 1, "merged")
    assert [m["iid"] for m in api.get(mrs, params={"state": "merged"}).json()] == [1]
    assert api.get(mrs, params={"state": "all"}).headers["x-total"] == "3"
    reopened = api.post(mrs, json={"source_branch": "release/1.0", "target_branch": "main", "title": "Once more"})
    assert reopened.status_code == 201 and reopened.json()["iid"] == 4  # the other one is closed
    assert [m["iid"] for m in gl.created_merge_requests] == [2, 3, 4]


def test_created_merge_requests_follow_their_source_branch_and_need_write_access(
        gl: FakeGitLab, api: httpx.Client, source: dict[str, Any], fork: dict[str, Any]) -> None:
    mrs = f"{P}/merge_requests"
    post_commit(api, "aqe/generated", [{"action": "create", "file_path": "t.py", "content": "1"}],
                start_branch="main")
    mr = api.post(mrs, json={"source_branch": "aqe/generated", "target_branch": "main", "title": "Tests"}).json()
    newer = post_commit(api, "aqe/generated", [{"action": "update", "file_path": "t.py", "content": "2"}]).json()
    assert api.get(f"{mrs}/{mr['iid']}").json()["sha"] == newer["id"]
    repo = source["path"]  # ... and a push of that branch (update_project) moves it too
    git("fetch", "-q", gl.repo_path(PROJECT), "refs/heads/aqe/generated:refs/heads/aqe/generated", cwd=repo)
    git("checkout", "-q", "aqe/generated", cwd=repo)
    pushed = commit(repo, "t2.py", "3\n")
    git("checkout", "-q", "main", cwd=repo)
    gl.update_project(PROJECT, repo)
    assert gl.merge_request(PROJECT, mr["iid"])["sha"] == pushed

    body = {"source_branch": "feature", "target_branch": "release/1.0", "title": "t"}
    assert httpx.post(f"{gl.base_url}/api/v4{mrs}", json=body).status_code == 401
    public = f"/projects/{encode_path(PUBLIC)}/merge_requests"
    refused = api.post(public, json=body, headers={"PRIVATE-TOKEN": SCOPED})
    assert (refused.status_code, refused.json()) == (403, {"message": "403 Forbidden"})
    assert api.put(f"{mrs}/1", json={"title": "x"}, headers={"PRIVATE-TOKEN": "glpat-wrong"}).status_code == 401

    gl.add_project(FORK, fork["path"])  # from a fork: `:id` is the source, target_project_id the target
    forked = api.post(f"/projects/{encode_path(FORK)}/merge_requests",
                      json={**body, "source_branch": "fix", "target_branch": "main",
                            "target_project_id": gl.project_id(PROJECT)})
    assert forked.status_code == 201, forked.text
    assert forked.json()["source_project_id"] == gl.project_id(FORK) and forked.json()["sha"] == fork["fix"]
    assert forked.json()["project_id"] == gl.project_id(PROJECT)
