"""A fake GitLab for end-to-end tests.

`FakeGitLab` is a real HTTP server on 127.0.0.1 (uvicorn in a daemon thread) that speaks the parts of GitLab's
REST API v4 that AQE uses (projects, branches, commits, commit statuses, merge requests and their notes), checks
authentication the way GitLab does (`PRIVATE-TOKEN` or `Authorization: Bearer`; 401 for a missing or bad token,
404 for a project the token may not see) and serves bare git repositories over smart HTTP through
`git http-backend` (HTTP Basic auth with the token as password).  Every request is recorded in `calls`.

Beyond reading, it writes the way a bot would: project members (`add_member()`; `GET .../members/all`, where token
users count as Developers of the projects their token reaches), commits built from file actions
(`POST .../repository/commits`, real commits in the bare repository; read files back with `file_at()`) and merge
requests (`POST/GET .../merge_requests`, `PUT .../merge_requests/:iid`; those created are in
`created_merge_requests`, the commits in `created_commits`).  Merge requests follow their source branch whichever
way it moves (`update_project()` or an API commit).

The server runs on its own event loop in its own thread, so shared state is guarded by `self.lock` (re-entrant);
`wait_for()` evaluates predicates while holding it.

Paths in `calls`, `calls_to()` and `fail_next()` are the *raw* request paths (no query string), as sent on the
wire: a project given by its path appears URL-encoded (`/api/v4/projects/acme%2Fapp/...`).  `Call.project`
holds the resolved `path_with_namespace` whatever form the id had.  Regexes are matched with `re.search`.

Tokens are never stored in `calls` or printed by `summary()`: calls carry `mask_token(token)` instead.

The module also builds webhook bodies (`push_event`, `merge_request_event`, `note_event`) and headers
(`hook_headers`) as GitLab sends them, for tests to POST to the bot's `/webhooks/gitlab`.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import itertools
import json
import math
import re
import subprocess
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from http import HTTPStatus
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, unquote, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.git_http import cgi_env, http_backend, serve_bare_clone
from tests.fakes.git_http import git as _git
from tests.fakes.git_http import git_env as _git_env
from tests.fakes.git_http import run_git as _run_git
from tests.fakes.server import FakeServer, Fault, Waitable, take_fault

JsonDict = dict[str, Any]
ZERO_SHA = "0" * 40
GITLAB_VERSION = "18.6.0"
FIELD_LIMIT = 255  # status name, ref, target_url, description
NOTE_LIMIT = 1_000_000
DEFAULT_PER_PAGE, MAX_PER_PAGE = 20, 100
RATE_LIMIT = 2000  # requests per minute, like GitLab.com's authenticated API limit
VISIBILITY_LEVELS = {"private": 0, "internal": 10, "public": 20}
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# CommitStatus state machine: the event each posted state fires and the states it may leave from.
STATUS_EVENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "pending": ("enqueue", ("created",)),
    "running": ("run", ("created", "pending")),  # GitLab does `enqueue` (created -> pending), then `run!`
    "success": ("success", ("created", "pending", "running")),
    "failed": ("drop", ("created", "pending", "running")),
    "canceled": ("cancel", ("created", "pending", "running")),
    "skipped": ("skip", ("created", "pending")),
}
ACCESS_LEVELS = {10: "guest", 20: "reporter", 30: "developer", 40: "maintainer", 50: "owner"}
TOKEN_ACCESS_LEVEL = 30  # a token's user is a Developer of the projects its token reaches (unless add_member'd)
MR_STATES = ("opened", "closed", "locked", "merged")
COMMIT_ACTIONS = ("create", "update", "delete", "move", "chmod")
MR_UPDATE_PARAMS = ("title", "description", "state_event", "target_branch", "remove_source_branch", "squash")
_DRAFT_RE = re.compile(r"^\s*(\[draft\]|\(draft\)|draft:|draft\s+-\s+)", re.IGNORECASE)
_SHA_RE = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_PROJECT_PATH_RE = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+")
_GIT_PATH_RE = re.compile(r"/(?P<path>[A-Za-z0-9_./-]+?)\.git/(?P<rest>info/refs|git-upload-pack|git-receive-pack)")


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Call:
    """One request the fake received, with the status it answered (tokens masked)."""

    method: str
    path: str  # raw path, no query
    query: dict[str, str]
    status: int
    auth: str | None  # "private-token" | "bearer" | "basic" | None
    token: str | None  # mask_token() of the credential, never the token itself
    username: str | None  # whose token it was (None: anonymous or invalid)
    project: str | None = None  # path_with_namespace the request resolved to
    params: Any = None  # parsed JSON or form body of POST/PUT
    headers: dict[str, str] = field(default_factory=dict, repr=False)  # credentials redacted

    def __str__(self) -> str:
        query = f"?{urlencode(self.query)}" if self.query else ""
        who = f"{self.auth}:{self.username or '?'}:{self.token}" if self.auth else "anonymous"
        return f"{self.method} {self.path}{query} -> {self.status} [{who}]"


@dataclass
class _User:
    id: int
    username: str
    bot: bool
    name: str = ""  # display name; the username when not set

    @property
    def display_name(self) -> str:
        return self.name or self.username

    @property
    def email(self) -> str:
        return f"{self.username}@noreply.gitlab.example.com"

    def brief(self, base_url: str) -> JsonDict:
        return {"id": self.id, "username": self.username, "name": self.display_name, "state": "active",
                "avatar_url": None, "web_url": f"{base_url}/{self.username}"}


@dataclass
class _Token:
    user: _User
    projects: frozenset[str] | None  # None: every project


@dataclass
class _Project:
    id: int
    path: str  # path_with_namespace
    default_branch: str
    visibility: str


@dataclass
class _MergeRequest:
    id: int
    iid: int
    project: str  # target
    source_project: str
    source_branch: str
    target_branch: str
    sha: str
    follows_branch: bool  # no explicit sha: the head moves with the source branch on update_project()
    title: str
    draft: bool
    author: str
    created_at: str
    description: str = ""
    state: str = "opened"  # opened | closed | locked | merged
    remove_source_branch: bool | None = None
    updated_at: str = ""


@dataclass
class _Status:
    project: str
    username: str
    pipeline_id: int
    retried: bool
    obj: JsonDict


@dataclass
class _Ctx:
    request: Request
    path: str  # raw path
    auth: str | None
    credential: str | None
    basic_user: str | None
    token: _Token | None
    project: str | None = None
    params: Any = None


class _HTTPError(Exception):
    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, body)
        self.status, self.body, self.headers = status, body, headers or {}


_N = TypeVar("_N", int, float)
_Result = tuple[int, Any] | tuple[int, Any, dict[str, str]]
_Handler = Callable[..., Awaitable[_Result]]


# --------------------------------------------------------------------------- helpers


def _sorting(query: Mapping[str, str]) -> tuple[str, str]:
    """A listing's `sort` (asc|desc, default desc) and `order_by` (created_at|updated_at), or GitLab's 400."""
    sort, order_by = query.get("sort", "desc"), query.get("order_by", "created_at")
    if sort not in ("asc", "desc"):
        raise _HTTPError(400, {"error": "sort does not have a valid value"})
    if order_by not in ("created_at", "updated_at"):
        raise _HTTPError(400, {"error": "order_by does not have a valid value"})
    return sort, order_by


def mask_token(token: str) -> str:
    """How calls and summaries name a token: a short digest, never the value."""
    return "tok-" + hashlib.sha256(token.encode()).hexdigest()[:8]


def _now_iso(ts: float | None = None) -> str:
    moment = datetime.fromtimestamp(time.time() if ts is None else ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _not_found(what: str) -> _HTTPError:
    return _HTTPError(404, {"message": f"404 {what} Not Found"})


def _git_bytes(*args: str | Path, stdin: bytes | None = None, env: dict[str, str] | None = None) -> bytes:
    proc = subprocess.run(["git", *map(str, args)], input=stdin, capture_output=True, env={**_git_env(), **(env or {})},
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(map(str, args))} failed:\n{proc.stderr.decode(errors='replace')}")
    return proc.stdout


def _branch_tip(git_dir: Path, branch: str) -> str | None:
    if not branch:
        return None
    code, out = _run_git("--git-dir", git_dir, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}")
    return out.strip() if code == 0 else None


def _file_path(raw: Any) -> str:
    """Gitaly's path rules for commit actions: leading slashes dropped, no traversal."""
    path = str(raw).lstrip("/")
    if not path:
        raise _HTTPError(400, {"message": "You must provide a file path"})
    parts = path.split("/")
    if ".." in parts:
        raise _HTTPError(400, {"message": "Path cannot include directory traversal"})
    if "" in parts or "." in parts or ".git" in parts:
        raise _HTTPError(400, {"message": f"Invalid path: {path}"})
    return path


def _action_content(action: JsonDict) -> bytes | None:
    content = action.get("content")
    if content is None:
        return None
    if action.get("encoding") == "base64":
        try:
            return base64.b64decode(str(content), validate=False)
        except ValueError:
            raise _HTTPError(400, {"message": "Invalid base64 content"}) from None
    return str(content).encode()


def _parse_credentials(request: Request) -> tuple[str | None, str | None, str | None]:
    """(kind, credential, basic username) from PRIVATE-TOKEN or Authorization."""
    if token := request.headers.get("private-token"):
        return "private-token", token, None
    scheme, _, value = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return "bearer", value.strip(), None
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return "basic", "", ""
        return "basic", password, user
    return None, None, None


def _commit_info(git_dir: Path, rev: str) -> JsonDict | None:
    """GitLab's commit object (without web_url) for `rev` (a sha or ref name), or None if there is no such commit."""
    if not rev or rev.startswith("-"):
        return None
    code, sha = _run_git("--git-dir", git_dir, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if code != 0:
        return None
    fmt = "%H%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B"
    sha, parents, an, ae, ad, cn, ce, cd, message = _git(
        "--git-dir", git_dir, "show", "-s", f"--format={fmt}", sha.strip()).split("\x00", 8)
    return {"id": sha, "short_id": sha[:8], "created_at": cd, "parent_ids": parents.split(),
            "title": message.split("\n", 1)[0], "message": message.rstrip("\n") + "\n",
            "author_name": an, "author_email": ae, "authored_date": ad,
            "committer_name": cn, "committer_email": ce, "committed_date": cd, "trailers": {}, "extended_trailers": {}}


# --------------------------------------------------------------------------- the fake


class FakeGitLab(FakeServer, Waitable):
    """A fake GitLab instance; see the module docstring."""

    def __init__(self, *, git_root: Path) -> None:
        self.git_root = Path(git_root)
        self.git_root.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        # Public state read by tests (guard with `self.lock` when racing the server).
        self.calls: list[Call] = []
        self.server_errors: list[str] = []
        self.git_stderr: list[str] = []
        self.created_merge_requests: list[JsonDict] = []  # POST .../merge_requests answers, oldest first
        self.created_commits: list[JsonDict] = []  # {"project", "branch", "commit", "actions"} per API commit
        # Private state.
        self._users: dict[str, _User] = {}
        self._tokens: dict[str, _Token] = {}
        self._projects: dict[str, _Project] = {}
        self._mrs: dict[tuple[str, int], _MergeRequest] = {}
        self._statuses: dict[int, _Status] = {}
        self._pipelines: dict[tuple[str, str, str], int] = {}  # (project, sha, ref) -> pipeline id
        self._notes: dict[int, tuple[str, int, JsonDict]] = {}  # id -> (project, iid, note)
        self._members: dict[tuple[str, int], tuple[int, str]] = {}  # (project, user id) -> (access level, since)
        self._write_lock = threading.Lock()  # one API commit or merge request creation at a time
        self._faults: list[Fault] = []
        self._ids = {name: itertools.count(start) for name, start in
                     (("user", 11), ("project", 101), ("mr", 5001), ("status", 7001), ("pipeline", 3001),
                      ("note", 90001))}
        self._rate_window, self._rate_observed = 0, 0
        self._routes = self._route_table()
        self.app = Starlette(routes=[Route("/{rest:path}", self._endpoint, methods=ALL_METHODS)])
        self.serve(self.app, "fake-gitlab", timeout_graceful_shutdown=3)

    # ------------------------------------------------------------------ test-side setup

    def add_token(self, token: str, username: str = "aqe-bot", projects: list[str] | None = None) -> None:
        """Register a token of `username` (a bot user) that may see `projects` (None: all of them), where its user
        is a Developer (30) unless add_member() says otherwise."""
        with self.lock:
            user = self._user(username, bot=True)
            self._tokens[token] = _Token(user, frozenset(projects) if projects is not None else None)

    def add_project(self, path_with_namespace: str, source_repo: Path, *, default_branch: str = "main",
                    visibility: str = "private") -> int:
        """Bare-clone `source_repo` as `path_with_namespace` (nested groups allowed); return the project id."""
        if not _PROJECT_PATH_RE.fullmatch(path_with_namespace) or ".." in path_with_namespace:
            raise ValueError(f"project path must look like group[/subgroup]/name: {path_with_namespace!r}")
        if visibility not in VISIBILITY_LEVELS:
            raise ValueError(f"visibility must be one of {', '.join(VISIBILITY_LEVELS)}")
        dest = self.repo_path(path_with_namespace)
        if dest.exists():
            raise ValueError(f"{path_with_namespace} already exists; use update_project()")
        serve_bare_clone(source_repo, dest, default_branch)
        with self.lock:
            project = _Project(next(self._ids["project"]), path_with_namespace, default_branch, visibility)
            self._projects[path_with_namespace] = project
            return project.id

    def update_project(self, path: str, source_repo: Path) -> None:
        """Force-fetch all branches and tags of `source_repo` (pruning deleted branches); heads of merge requests
        whose source branch lives here follow it, like GitLab's refs/merge-requests/<iid>/head."""
        self._known(path)
        _git("--git-dir", self.repo_path(path), "fetch", "--quiet", "--force", "--prune", source_repo,
             "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
        self._follow_branches(path)

    def add_merge_request(self, path: str, iid: int, *, source_branch: str, target_branch: str,
                          sha: str | None = None, source_project: str | None = None, title: str | None = None,
                          draft: bool = False, author: str = "alice") -> JsonDict:
        """Open (or re-point) merge request `iid` of `path`; set refs/merge-requests/<iid>/head in the target repo
        to `sha` or the tip of `source_branch` in `source_project` (a fork; default: `path` itself)."""
        source = source_project or path
        self._known(path)
        self._known(source)
        head = self._set_mr_head(path, iid, source, source_branch, sha)
        with self.lock:
            old = self._mrs.get((path, iid))
            mr = _MergeRequest(
                id=old.id if old else next(self._ids["mr"]), iid=iid, project=path, source_project=source,
                source_branch=source_branch, target_branch=target_branch, sha=head, follows_branch=sha is None,
                title=title or (old.title if old else f"Merge {source_branch} into {target_branch}"), draft=draft,
                author=author, created_at=old.created_at if old else _now_iso(),
                description=old.description if old else "")
            self._user(author)
            self._mrs[(path, iid)] = mr
        return self._mr_object(mr)

    def set_merge_request_state(self, path: str, iid: int, state: str) -> JsonDict:
        """Close, merge, lock or reopen merge request `iid` (as if done in the UI)."""
        if state not in MR_STATES:
            raise ValueError(f"state must be one of {', '.join(MR_STATES)}")
        with self.lock:
            mr = self._test_mr(path, iid)
            mr.state, mr.updated_at = state, _now_iso()
        return self._mr_object(mr)

    def add_member(self, path: str, username: str, access_level: int, *, name: str | None = None) -> JsonDict:
        """Make `username` a member of `path` with `access_level` (10 guest, 20 reporter, 30 developer,
        40 maintainer, 50 owner); a token's user added this way gets that level instead of Developer.  Returns the
        member as `GET .../members/all/:user_id` answers it."""
        if access_level not in ACCESS_LEVELS:
            raise ValueError(f"access_level must be one of {sorted(ACCESS_LEVELS)}")
        project = self._known(path)
        with self.lock:
            user = self._user(username)
            if name is not None:
                user.name = name
            self._members[(project.path, user.id)] = (access_level, _now_iso())
            return self._member_object(user, access_level, self._members[(project.path, user.id)][1])

    def file_at(self, path: str, ref: str, file_path: str) -> bytes | None:
        """The content of `file_path` at `ref` (a branch, tag or sha) of `path`; None if there is no such file."""
        self._known(path)
        proc = subprocess.run(["git", "--git-dir", str(self.repo_path(path)), "cat-file", "blob",
                               f"{ref}:{file_path.lstrip('/')}"], capture_output=True, env=_git_env(), check=False)
        return proc.stdout if proc.returncode == 0 else None

    def branch_sha(self, path: str, branch: str) -> str | None:
        """The tip of `branch` in `path`, or None if there is no such branch."""
        self._known(path)
        return _branch_tip(self.repo_path(path), branch)

    def add_note(self, path: str, iid: int, body: str, username: str = "someone", *, system: bool = False) -> JsonDict:
        """A note by another user (or a system note, e.g. "added 1 commit") on merge request `iid`."""
        with self.lock:
            return copy.deepcopy(self._new_note(self._test_mr(path, iid), body, self._user(username), system=system))

    def fail_next(self, method: str, path_regex: str, status: int, body: Any = None, times: int = 1, *,
                  headers: dict[str, str] | None = None) -> None:
        """Answer the next `times` requests matching (method, raw-path regex) with `status` ("*": any method).
        The default body is GitLab's `{"message": "<status> <reason>"}`."""
        if body is None and status not in (204, 304):
            body = {"message": f"{status} {HTTPStatus(status).phrase}"}
        with self.lock:
            self._faults.append(Fault(method.upper(), re.compile(path_regex), status, times, body,
                                      dict(headers or {})))

    # ------------------------------------------------------------------ test-side inspection

    def repo_path(self, path: str) -> Path:
        return self.git_root / f"{path}.git"

    def clone_url(self, path: str) -> str:
        return f"{self.base_url}/{path}.git"

    def web_url(self, path: str) -> str:
        return f"{self.base_url}/{path}"

    def project_id(self, path: str) -> int:
        return self._known(path).id

    def statuses_for(self, path: str, sha: str) -> list[JsonDict]:
        """Every status posted on `sha` in `path` (retried ones too), oldest first."""
        with self.lock:
            return [copy.deepcopy(s.obj) for _, s in sorted(self._statuses.items())
                    if s.project == path and s.obj["sha"] == sha]

    def notes_on(self, path: str, iid: int) -> list[JsonDict]:
        """The notes of merge request `iid`, oldest first."""
        with self.lock:
            return [copy.deepcopy(note) for _, (p, i, note) in sorted(self._notes.items()) if (p, i) == (path, iid)]

    def merge_request(self, path: str, iid: int) -> JsonDict:
        """The merge request as `GET /projects/:id/merge_requests/:iid` answers it."""
        with self.lock:
            mr = self._test_mr(path, iid)
        return self._mr_object(mr)

    def calls_to(self, method: str, path_regex: str) -> list[Call]:
        pattern = re.compile(path_regex)
        with self.lock:
            return [c for c in self.calls if method.upper() in ("*", c.method) and pattern.search(c.path)]

    def reset_calls(self) -> None:
        with self.lock:
            self.calls.clear()

    def summary(self, last: int = 60) -> str:
        with self.lock:
            lines = [f"fake GitLab at {self._base_url}: {len(self.calls)} calls (last {last}):"]
            lines += [f"  {call}" for call in self.calls[-last:]]
            lines.append(f"statuses ({len(self._statuses)}):")
            lines += [f"  #{sid} {s.project} {s.obj['sha'][:12]} {s.obj['name']!r} ref={s.obj['ref']} "
                      f"{s.obj['status']}{' (retried)' if s.retried else ''}"
                      for sid, s in sorted(self._statuses.items())]
            lines.append(f"notes ({len(self._notes)}):")
            lines += [f"  #{nid} {p}!{i} by {n['author']['username']}: {n['body'][:60]!r}"
                      for nid, (p, i, n) in sorted(self._notes.items())]
            lines += [f"server error:\n{error}" for error in self.server_errors[-3:]]
            lines += [f"git stderr: {text}" for text in self.git_stderr[-3:]]
            return "\n".join(lines)

    # ------------------------------------------------------------------ state helpers (hold the lock)

    def _user(self, username: str, *, bot: bool = False) -> _User:
        with self.lock:
            if username not in self._users:
                self._users[username] = _User(next(self._ids["user"]), username, bot)
            return self._users[username]

    def _known(self, path: str) -> _Project:
        with self.lock:
            if path not in self._projects:
                raise KeyError(f"unknown project {path!r}; add_project() it first")
            return self._projects[path]

    def _test_mr(self, path: str, iid: int) -> _MergeRequest:
        with self.lock:
            if (path, iid) not in self._mrs:
                raise KeyError(f"no merge request !{iid} in {path!r}; add_merge_request() it first")
            return self._mrs[(path, iid)]

    def _follow_branches(self, path: str, branches: set[str] | None = None) -> None:
        """Move the heads of open merge requests whose source branch (in `branches`, default: any) lives in `path`
        to that branch's tip; a deleted source branch leaves the head where it was."""
        with self.lock:
            following = [mr for mr in self._mrs.values() if mr.follows_branch and mr.source_project == path
                         and mr.state == "opened" and (branches is None or mr.source_branch in branches)]
        for mr in following:
            if _branch_tip(self.repo_path(path), mr.source_branch) is not None:
                head = self._set_mr_head(mr.project, mr.iid, mr.source_project, mr.source_branch, None)
                with self.lock:
                    mr.sha = head

    def _member_object(self, user: _User, access_level: int, since: str) -> JsonDict:
        return {**user.brief(self.base_url), "access_level": access_level, "created_at": since, "created_by": None,
                "expires_at": None, "locked": False, "membership_state": "active", "group_saml_identity": None}

    def _members_of(self, project: _Project) -> list[JsonDict]:
        """Direct members and the users of tokens that reach the project (as Developers), by user id."""
        with self.lock:
            levels = {uid: level for (path, uid), level in self._members.items() if path == project.path}
            for token in self._tokens.values():
                if token.user.id not in levels and (token.projects is None or project.path in token.projects):
                    levels[token.user.id] = (TOKEN_ACCESS_LEVEL, _now_iso(0))
            users = {user.id: user for user in self._users.values()}
            return [self._member_object(users[uid], level, since) for uid, (level, since) in sorted(levels.items())]

    def _mr(self, path: str, iid: int) -> _MergeRequest:
        mr = self._mrs.get((path, iid))
        if mr is None:
            raise _HTTPError(404, {"message": "404 Not found"})
        return mr

    def _set_mr_head(self, path: str, iid: int, source: str, branch: str, sha: str | None) -> str:
        """Point refs/merge-requests/<iid>/head of `path` at `sha` or the source branch tip; return the sha."""
        target_dir, source_dir = self.repo_path(path), self.repo_path(source)
        if source != path:  # bring the fork's objects over, as GitLab does for fork merge requests
            _git("--git-dir", target_dir, "fetch", "--quiet", "--force", source_dir,
                 f"+refs/heads/*:refs/fake-import/{iid}/*")
        try:
            rev = f"{sha}^{{commit}}" if sha else f"refs/heads/{branch}^{{commit}}"
            head = _git("--git-dir", target_dir if sha else source_dir, "rev-parse", "--verify", rev).strip()
            _git("--git-dir", target_dir, "update-ref", f"refs/merge-requests/{iid}/head", head)
        finally:
            if source != path:
                refs = _git("--git-dir", target_dir, "for-each-ref", "--format=%(refname)", f"refs/fake-import/{iid}/")
                for ref in refs.split():
                    _git("--git-dir", target_dir, "update-ref", "-d", ref)
        return head

    def _new_note(self, mr: _MergeRequest, body: str, user: _User, *, system: bool = False) -> JsonDict:
        now, note_id = _now_iso(), next(self._ids["note"])
        note: JsonDict = {"id": note_id, "type": None, "body": body, "attachment": None,
                "author": user.brief(self.base_url), "created_at": now, "updated_at": now, "system": system,
                "noteable_id": mr.id, "noteable_type": "MergeRequest", "project_id": self._projects[mr.project].id,
                "resolvable": False, "confidential": False, "internal": False, "noteable_iid": mr.iid,
                "commands_changes": {}}
        self._notes[note_id] = (mr.project, mr.iid, note)
        return note

    def _project_object(self, project: _Project) -> JsonDict:
        namespace, _, name = project.path.rpartition("/")
        group = namespace.rsplit("/", 1)[-1]
        return {"id": project.id, "description": None, "name": name, "path": name,
                "name_with_namespace": project.path.replace("/", " / "), "path_with_namespace": project.path,
                "created_at": _now_iso(0), "default_branch": project.default_branch, "visibility": project.visibility,
                "web_url": self.web_url(project.path), "http_url_to_repo": self.clone_url(project.path),
                "ssh_url_to_repo": f"git@127.0.0.1:{project.path}.git", "archived": False, "empty_repo": False,
                "namespace": {"id": 1, "name": group, "path": group, "kind": "group", "full_path": namespace,
                              "web_url": f"{self.base_url}/groups/{namespace}"}}

    def _mr_object(self, mr: _MergeRequest) -> JsonDict:
        target_dir = self.repo_path(mr.project)
        code, out = _run_git("--git-dir", target_dir, "rev-parse", "--verify", "--quiet",
                             f"refs/heads/{mr.target_branch}^{{commit}}")
        start = out.strip() if code == 0 else None
        code, base = _run_git("--git-dir", target_dir, "merge-base", mr.sha, start) if start else (1, "")
        with self.lock:
            source_id, target_id = self._projects[mr.source_project].id, self._projects[mr.project].id
            author = self._user(mr.author).brief(self.base_url)
        closed_at = mr.updated_at if mr.state == "closed" else None
        merged_at = mr.updated_at if mr.state == "merged" else None
        return {"id": mr.id, "iid": mr.iid, "project_id": target_id, "title": mr.title, "description": mr.description,
                "state": mr.state, "created_at": mr.created_at, "updated_at": mr.updated_at or mr.created_at,
                "closed_at": closed_at, "merged_at": merged_at,
                "force_remove_source_branch": mr.remove_source_branch,
                "source_branch": mr.source_branch, "target_branch": mr.target_branch,
                "source_project_id": source_id, "target_project_id": target_id, "author": author,
                "draft": mr.draft, "work_in_progress": mr.draft, "merge_status": "can_be_merged",
                "detailed_merge_status": "mergeable", "sha": mr.sha, "merge_commit_sha": None,
                "web_url": f"{self.web_url(mr.project)}/-/merge_requests/{mr.iid}",
                "references": {"short": f"!{mr.iid}", "full": f"{mr.project}!{mr.iid}"},
                "diff_refs": {"base_sha": base.strip() if code == 0 else None, "head_sha": mr.sha, "start_sha": start}}

    # ------------------------------------------------------------------ dispatch

    def _route_table(self) -> list[tuple[str, re.Pattern[str], _Handler]]:
        project, mr = r"/api/v4/projects/(?P<pid>[^/]+)", r"/merge_requests/(?P<iid>\d+)"
        table: list[tuple[str, str, _Handler]] = [
            ("GET", r"/api/v4/user", self._get_user),
            ("GET", project, self._get_project),
            ("GET", project + r"/repository/branches/(?P<branch>[^/]+)", self._get_branch),
            ("GET", project + r"/repository/commits/(?P<sha>[^/]+)", self._get_commit),
            ("GET", project + r"/repository/commits/(?P<sha>[^/]+)/statuses", self._list_statuses),
            ("POST", project + r"/statuses/(?P<sha>[^/]+)", self._create_status),
            ("GET", project + mr, self._get_mr),
            ("GET", project + mr + r"/notes", self._list_notes),
            ("POST", project + mr + r"/notes", self._create_note),
            ("GET", project + mr + r"/notes/(?P<note_id>\d+)", self._get_note),
            ("PUT", project + mr + r"/notes/(?P<note_id>\d+)", self._update_note),
            ("DELETE", project + mr + r"/notes/(?P<note_id>\d+)", self._delete_note),
            ("GET", project + r"/members(?:/all)?", self._list_members),
            ("GET", project + r"/members(?:/all)?/(?P<user_id>\d+)", self._get_member),
            ("POST", project + r"/repository/commits", self._create_commit),
            ("GET", project + r"/merge_requests", self._list_mrs),
            ("POST", project + r"/merge_requests", self._create_mr),
            ("PUT", project + mr, self._update_mr),
        ]
        return [(method, re.compile(pattern), handler) for method, pattern, handler in table]

    async def _endpoint(self, request: Request) -> Response:
        raw = request.scope.get("raw_path") or request.url.path.encode()
        path = raw.decode("latin-1").split("?", 1)[0]
        auth, credential, basic_user = _parse_credentials(request)
        with self.lock:
            token = self._tokens.get(credential) if credential else None
        ctx = _Ctx(request, path, auth, credential, basic_user, token)
        git = _GIT_PATH_RE.fullmatch(path)
        try:
            self._raise_fault(request.method, path)
            if git:
                response = await self._serve_git(ctx, git["path"], git["rest"])
            else:
                response = await self._serve_api(ctx)
        except _HTTPError as exc:
            response = self._error_response(exc, git=bool(git))
        except Exception:  # noqa: BLE001 - report, don't kill the server
            with self.lock:
                self.server_errors.append(traceback.format_exc())
            response = self._error_response(_HTTPError(500, {"message": "500 Internal Server Error"}), git=bool(git))
        self._record(ctx, response.status_code)
        return response

    async def _serve_api(self, ctx: _Ctx) -> Response:
        request_method = "GET" if ctx.request.method == "HEAD" else ctx.request.method
        routes = [(method, match, handler) for method, pattern, handler in self._routes
                  if (match := pattern.fullmatch(ctx.path))]
        if not routes:
            raise _HTTPError(404, {"error": "404 Not Found"})
        found = next(((match, handler) for method, match, handler in routes if method == request_method), None)
        if found is None:
            raise _HTTPError(405, {"error": "405 Not Allowed"})
        if ctx.auth == "basic":  # the API ignores HTTP Basic credentials: anonymous
            ctx.token = None
        elif ctx.credential is not None and ctx.token is None:
            raise _HTTPError(401, {"message": "401 Unauthorized"})
        if ctx.request.method in ("POST", "PUT"):
            ctx.params = await self._params(ctx.request)
        match, handler = found
        status, body, headers = self._unpack(await handler(ctx, **match.groupdict()))
        return self._json_response(status, body, headers)

    @staticmethod
    async def _params(request: Request) -> JsonDict:
        """Query and body parameters merged, like Grape (JSON, form-urlencoded or multipart bodies)."""
        params: JsonDict = dict(request.query_params)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "multipart/form-data":
            form = await request.form()
            return {**params, **{k: v for k, v in form.items() if isinstance(v, str)}}
        raw = await request.body()
        if not raw.strip():
            return params
        if content_type == "application/x-www-form-urlencoded":
            return {**params, **dict(parse_qsl(raw.decode(), keep_blank_values=True))}
        try:
            body = json.loads(raw)
        except ValueError:
            raise _HTTPError(400, {"error": "The provided content-type is not supported or the body is invalid JSON"}) \
                from None
        if not isinstance(body, dict):
            raise _HTTPError(400, {"error": "body must be a JSON object"})
        return {**params, **body}

    @staticmethod
    def _unpack(result: _Result) -> tuple[int, Any, dict[str, str]]:
        return (result[0], result[1], {}) if len(result) == 2 else result

    def _json_response(self, status: int, body: Any, headers: dict[str, str]) -> Response:
        content = b"" if body is None or status in (204, 304) else json.dumps(body).encode()
        response = Response(content, status, {**self._rate_limit_headers(), **headers})
        if content:
            response.headers["content-type"] = "application/json"
        return response

    def _error_response(self, exc: _HTTPError, *, git: bool) -> Response:
        if not git:
            return self._json_response(exc.status, exc.body, exc.headers)
        message = exc.body.get("message", "") if isinstance(exc.body, dict) else str(exc.body or "")
        return Response(f"{message}\n", exc.status, exc.headers, media_type="text/plain")

    def _rate_limit_headers(self) -> dict[str, str]:
        now = time.time()
        with self.lock:
            window = int(now // 60)
            if window != self._rate_window:
                self._rate_window, self._rate_observed = window, 0
            self._rate_observed += 1
            observed = self._rate_observed
        reset = (window + 1) * 60
        return {"RateLimit-Limit": str(RATE_LIMIT), "RateLimit-Observed": str(observed),
                "RateLimit-Remaining": str(max(0, RATE_LIMIT - observed)), "RateLimit-Reset": str(reset),
                "RateLimit-ResetTime": formatdate(reset, usegmt=True)}

    def _record(self, ctx: _Ctx, status: int) -> None:
        secret = {"private-token", "authorization"}
        headers = {k: ("[masked]" if k.lower() in secret else v) for k, v in ctx.request.headers.items()}
        call = Call(method=ctx.request.method, path=ctx.path, query=dict(ctx.request.query_params), status=status,
                    auth=ctx.auth, token=mask_token(ctx.credential) if ctx.credential else None,
                    username=ctx.token.user.username if ctx.token else None, project=ctx.project,
                    params=ctx.params, headers=headers)
        with self.lock:
            self.calls.append(call)

    def _raise_fault(self, method: str, path: str) -> None:
        with self.lock:
            if fault := take_fault(self._faults, method, path):
                raise _HTTPError(fault.status, copy.deepcopy(fault.body), dict(fault.headers))

    # ------------------------------------------------------------------ auth

    def _may_see(self, token: _Token | None, project: _Project) -> bool:
        """Public projects are visible to all, internal ones to every user, private ones to members."""
        if token is None:
            return project.visibility == "public"
        return self._is_member(token, project) or project.visibility != "private"

    def _is_member(self, token: _Token | None, project: _Project) -> bool:
        return self._access_level(token, project) is not None

    def _access_level(self, token: _Token | None, project: _Project) -> int | None:
        """The token user's role in the project: its add_member() level, else Developer when the token reaches the
        project, else None."""
        if token is None:
            return None
        with self.lock:
            member = self._members.get((project.path, token.user.id))
        if member is not None:
            return member[0]
        return TOKEN_ACCESS_LEVEL if token.projects is None or project.path in token.projects else None

    def _require_write(self, ctx: _Ctx, project: _Project) -> None:
        """Developer or more (push code, post statuses, open merge requests); 403 otherwise, like GitLab."""
        if (self._access_level(ctx.token, project) or 0) < TOKEN_ACCESS_LEVEL:
            raise _HTTPError(403, {"message": "403 Forbidden"})

    def _project(self, ctx: _Ctx, pid: str, *, anonymous: bool = False, write: bool = False) -> _Project:
        """Resolve `:id` (numeric or URL-encoded path).  Without a token only `anonymous` endpoints answer (for
        public projects); a project the token may not see is "not found", like GitLab."""
        if ctx.token is None and not anonymous:
            raise _HTTPError(401, {"message": "401 Unauthorized"})
        key = unquote(pid)
        with self.lock:
            project = next((p for p in self._projects.values() if str(p.id) == key), None) if key.isdigit() \
                else self._projects.get(key)
            if project is None or not self._may_see(ctx.token, project):
                raise _not_found("Project")
            ctx.project = project.path
            if write:
                self._require_write(ctx, project)
            return project

    # ------------------------------------------------------------------ API endpoints

    async def _get_user(self, ctx: _Ctx) -> _Result:
        if ctx.token is None:
            raise _HTTPError(401, {"message": "401 Unauthorized"})
        user = ctx.token.user
        return 200, {**user.brief(self.base_url), "bot": user.bot, "email": None,
                     "created_at": _now_iso(0), "locked": False}

    async def _get_project(self, ctx: _Ctx, pid: str) -> _Result:
        return 200, self._project_object(self._project(ctx, pid, anonymous=True))

    async def _get_branch(self, ctx: _Ctx, pid: str, branch: str) -> _Result:
        project = self._project(ctx, pid, anonymous=True)
        name = unquote(branch)
        commit = await asyncio.to_thread(_commit_info, self.repo_path(project.path), f"refs/heads/{name}")
        if commit is None:
            raise _not_found("Branch")
        commit["web_url"] = f"{self.web_url(project.path)}/-/commit/{commit['id']}"
        return 200, {"name": name, "commit": commit, "merged": False, "protected": name == project.default_branch,
                     "default": name == project.default_branch, "developers_can_push": False,
                     "developers_can_merge": False,
                     "can_push": (self._access_level(ctx.token, project) or 0) >= TOKEN_ACCESS_LEVEL,
                     "web_url": f"{self.web_url(project.path)}/-/tree/{name}"}

    async def _get_commit(self, ctx: _Ctx, pid: str, sha: str) -> _Result:
        project = self._project(ctx, pid, anonymous=True)
        commit = await asyncio.to_thread(_commit_info, self.repo_path(project.path), unquote(sha))
        if commit is None:
            raise _not_found("Commit")
        return 200, {**commit, "web_url": f"{self.web_url(project.path)}/-/commit/{commit['id']}"}

    async def _create_status(self, ctx: _Ctx, pid: str, sha: str) -> _Result:
        params = ctx.params or {}
        state = params.get("state")
        if state is None:
            raise _HTTPError(400, {"error": "state is missing"})
        if not isinstance(state, str) or state not in STATUS_EVENTS:
            raise _HTTPError(400, {"error": "state does not have a valid value"})
        coverage, pipeline_id = self._number(params, "coverage", float), self._number(params, "pipeline_id", int)
        project = self._project(ctx, pid, write=True)
        commit = await asyncio.to_thread(_commit_info, self.repo_path(project.path), unquote(sha))
        if commit is None:
            raise _not_found("Commit")
        ref = None if params.get("ref") is None else str(params["ref"])
        name = str(params.get("name") or params.get("context") or "default")
        branches = [] if ref else (await asyncio.to_thread(
            _git, "--git-dir", self.repo_path(project.path), "for-each-ref", "--contains", commit["id"],
            "--format=%(refname:short)", "refs/heads/")).split()
        assert ctx.token is not None
        with self.lock:
            return 201, self._post_status(
                project, commit["id"], ctx.token.user, state=state, name=name, ref=ref, branches=branches,
                pipeline_id=pipeline_id, attrs={"target_url": params.get("target_url"),
                                                "description": params.get("description"), "coverage": coverage})

    def _post_status(self, project: _Project, sha: str, user: _User, *, state: str, name: str, ref: str | None,
                     branches: list[str], pipeline_id: int | None, attrs: JsonDict) -> JsonDict:
        """Ci::CreateCommitStatusService, reduced: find the pipeline, validate, then fire the state's event on the
        running/pending status of (pipeline, name, ref, user) or on a new one."""
        pipelines = sorted(((pid, r) for (p, s, r), pid in self._pipelines.items()
                            if (p, s) == (project.path, sha) and (ref is None or r == ref)
                            and (pipeline_id is None or pid == pipeline_id)), reverse=True)
        ref = ref or (pipelines[0][1] if pipelines else None) or (branches[0] if branches else None)
        if not ref:
            raise _not_found("References for commit")
        if pipeline_id is not None and not pipelines:
            raise _not_found("Pipeline for pipeline_id, sha and ref")
        given = {key: value for key, value in attrs.items() if value is not None}
        too_long = {key: ["is too long (maximum is 255 characters)"]
                    for key, value in (("name", name), ("ref", ref), *given.items())
                    if key != "coverage" and len(str(value)) > FIELD_LIMIT}
        if too_long:
            raise _HTTPError(400, {"message": too_long})
        pipeline = pipelines[0][0] if pipelines else self._pipelines.setdefault(
            (project.path, sha, ref), next(self._ids["pipeline"]))
        current = next((s for s in self._statuses.values() if s.pipeline_id == pipeline and not s.retried
                        and s.obj["name"] == name and s.obj["ref"] == ref and s.username == user.username
                        and s.obj["status"] in ("pending", "running")), None)
        event, allowed = STATUS_EVENTS[state]
        if current is not None and current.obj["status"] not in allowed:
            raise _HTTPError(400, {"message": f"Cannot transition status via :{event} from :{current.obj['status']}"})
        now = _now_iso()
        if current is None:
            for older in self._statuses.values():  # GitLab marks older jobs of that name in the pipeline retried
                if older.pipeline_id == pipeline and older.obj["name"] == name:
                    older.retried = True
            status_id = next(self._ids["status"])
            obj: JsonDict = {"id": status_id, "sha": sha, "ref": ref, "status": "created", "name": name,
                             "target_url": None, "description": None, "coverage": None, "allow_failure": False,
                             "created_at": now, "started_at": None, "finished_at": None, "pipeline_id": pipeline,
                             "author": user.brief(self.base_url)}
            current = _Status(project.path, user.username, pipeline, False, obj)
            self._statuses[status_id] = current
        current.obj.update(given)
        current.obj["status"] = state
        if state == "running":
            current.obj["started_at"] = now
        if state in ("success", "failed", "canceled"):
            current.obj["finished_at"] = now
        return copy.deepcopy(current.obj)

    async def _list_statuses(self, ctx: _Ctx, pid: str, sha: str) -> _Result:
        project = self._project(ctx, pid)
        commit = await asyncio.to_thread(_commit_info, self.repo_path(project.path), unquote(sha))
        if commit is None:
            raise _not_found("Commit")
        query = ctx.request.query_params
        show_all = query.get("all", "false").lower() in ("true", "1", "yes")
        with self.lock:
            found = [copy.deepcopy(s.obj) for _, s in sorted(self._statuses.items())
                     if s.project == project.path and s.obj["sha"] == commit["id"] and (show_all or not s.retried)
                     and all(query.get(key) in (None, "", s.obj[key]) for key in ("ref", "name"))]
        return self._paginate(ctx, found)

    async def _get_mr(self, ctx: _Ctx, pid: str, iid: str) -> _Result:
        project = self._project(ctx, pid, anonymous=True)
        with self.lock:
            mr = self._mr(project.path, int(iid))
        return 200, await asyncio.to_thread(self._mr_object, mr)

    async def _list_notes(self, ctx: _Ctx, pid: str, iid: str) -> _Result:
        project = self._project(ctx, pid)
        query = ctx.request.query_params
        sort, order_by = _sorting(query)
        with self.lock:
            self._mr(project.path, int(iid))
            notes = [copy.deepcopy(n) for _, (p, i, n) in self._notes.items() if (p, i) == (project.path, int(iid))]
        notes.sort(key=lambda n: (n[order_by], n["id"]), reverse=sort == "desc")
        return self._paginate(ctx, notes)

    async def _create_note(self, ctx: _Ctx, pid: str, iid: str) -> _Result:
        body = self._note_body(ctx)
        project = self._project(ctx, pid)
        assert ctx.token is not None
        with self.lock:
            return 201, copy.deepcopy(self._new_note(self._mr(project.path, int(iid)), body, ctx.token.user))

    async def _get_note(self, ctx: _Ctx, pid: str, iid: str, note_id: str) -> _Result:
        with self.lock:
            return 200, copy.deepcopy(self._find_note(ctx, pid, iid, note_id))

    async def _update_note(self, ctx: _Ctx, pid: str, iid: str, note_id: str) -> _Result:
        body = self._note_body(ctx)
        with self.lock:
            note = self._find_note(ctx, pid, iid, note_id, author_only=True)
            note.update(body=body, updated_at=_now_iso())
            return 200, copy.deepcopy(note)

    async def _delete_note(self, ctx: _Ctx, pid: str, iid: str, note_id: str) -> _Result:
        with self.lock:
            note = self._find_note(ctx, pid, iid, note_id, author_only=True)
            del self._notes[note["id"]]
        return 204, None

    def _find_note(self, ctx: _Ctx, pid: str, iid: str, note_id: str, *, author_only: bool = False) -> JsonDict:
        project = self._project(ctx, pid)
        self._mr(project.path, int(iid))
        found = self._notes.get(int(note_id))
        if found is None or found[:2] != (project.path, int(iid)):
            raise _HTTPError(404, {"message": "404 Not found"})
        note = found[2]
        if author_only and (ctx.token is None or note["author"]["username"] != ctx.token.user.username):
            raise _HTTPError(403, {"message": "403 Forbidden"})
        return note

    # ------------------------------------------------------------------ members

    async def _list_members(self, ctx: _Ctx, pid: str) -> _Result:
        """`query` matches a username or name (case-insensitive substring, like User.search); `user_ids[]` (or
        `user_ids=1,2`) keeps those users."""
        project = self._project(ctx, pid, anonymous=True)
        query = ctx.request.query_params
        raw_ids = [*query.getlist("user_ids[]"),
                   *(part for value in query.getlist("user_ids") for part in value.split(","))]
        try:
            user_ids = {int(value) for value in raw_ids if value.strip()}
        except ValueError:
            raise _HTTPError(400, {"error": "user_ids is invalid"}) from None
        needle = (query.get("query") or "").strip().lower()
        members = [member for member in self._members_of(project) if (not user_ids or member["id"] in user_ids)
                   and (not needle or needle in member["username"].lower() or needle in member["name"].lower())]
        return self._paginate(ctx, members)

    async def _get_member(self, ctx: _Ctx, pid: str, user_id: str) -> _Result:
        project = self._project(ctx, pid, anonymous=True)
        member = next((m for m in self._members_of(project) if m["id"] == int(user_id)), None)
        if member is None:
            raise _HTTPError(404, {"message": "404 Not found"})
        return 200, member

    # ------------------------------------------------------------------ commits from file actions

    async def _create_commit(self, ctx: _Ctx, pid: str) -> _Result:
        project = self._project(ctx, pid)
        params = ctx.params or {}
        missing = [f"{key} is missing" for key in ("branch", "commit_message", "actions") if params.get(key) is None]
        if missing:
            raise _HTTPError(400, {"error": ", ".join(missing)})
        actions = self._commit_actions(params["actions"])
        force, stats = self._boolean(params, "force"), self._boolean(params, "stats")
        self._require_write(ctx, project)
        assert ctx.token is not None
        detail = await asyncio.to_thread(self._commit, project, ctx.token.user, params, actions, bool(force))
        if stats is False:
            detail.pop("stats")
        return 201, detail

    @staticmethod
    def _commit_actions(raw: Any) -> list[JsonDict]:
        """Grape's validation of `actions[]`."""
        if not isinstance(raw, list):
            raise _HTTPError(400, {"error": "actions is invalid"})
        if not raw:
            raise _HTTPError(400, {"error": "actions is empty"})
        for index, action in enumerate(raw):
            where = f"actions[{index}]"
            if not isinstance(action, dict):
                raise _HTTPError(400, {"error": f"{where} is invalid"})
            for key in ("action", "file_path"):
                if action.get(key) is None:
                    raise _HTTPError(400, {"error": f"{where}[{key}] is missing"})
            if action["action"] not in COMMIT_ACTIONS:
                raise _HTTPError(400, {"error": f"{where}[action] does not have a valid value"})
            if action.get("encoding") not in (None, "text", "base64"):
                raise _HTTPError(400, {"error": f"{where}[encoding] does not have a valid value"})
        return raw

    def _commit(self, project: _Project, user: _User, params: JsonDict, actions: list[JsonDict],
                force: bool) -> JsonDict:
        """Commits::CreateService's checks, then a commit built with plumbing on a temporary index."""
        git_dir, branch = self.repo_path(project.path), str(params["branch"])
        start_sha = None if params.get("start_sha") in (None, "") else str(params["start_sha"])
        start_branch = None if params.get("start_branch") in (None, "") else str(params["start_branch"])
        with self._write_lock:
            empty = not _git("--git-dir", git_dir, "for-each-ref", "--count=1", "refs/heads/").strip()
            if start_sha is not None:
                if start_branch is not None:
                    raise _HTTPError(400, {"message": "You can't pass both start_branch and start_sha"})
                if not _SHA_RE.fullmatch(start_sha):
                    raise _HTTPError(400, {"message": f"Invalid start_sha '{start_sha}'"})
                if _commit_info(git_dir, start_sha) is None:
                    raise _HTTPError(400, {"message": f"Cannot find start_sha '{start_sha}'"})
            else:  # the API starts from the branch itself unless told otherwise
                start_branch = start_branch or branch
            if start_branch is not None and not empty and _branch_tip(git_dir, start_branch) is None:
                raise _HTTPError(400, {"message": "You can only create or edit files when you are on a branch"})
            current = _branch_tip(git_dir, branch)
            different = start_branch != branch or start_sha is not None
            if not empty and different and current is not None and not force:
                raise _HTTPError(400, {"message": f"A branch called '{branch}' already exists. Switch to that branch "
                                                  "in order to make changes"})
            if different and _run_git("--git-dir", git_dir, "check-ref-format", "--branch", branch)[0] != 0:
                raise _HTTPError(400, {"message": f"Something went wrong when we tried to create '{branch}' for you: "
                                                  "Branch name is invalid"})
            parent = start_sha or (_branch_tip(git_dir, start_branch) if start_branch else None)
            tree = self._tree_after(git_dir, parent, actions)
            env = {"GIT_AUTHOR_NAME": str(params.get("author_name") or user.display_name),
                   "GIT_AUTHOR_EMAIL": str(params.get("author_email") or user.email),
                   "GIT_COMMITTER_NAME": user.display_name, "GIT_COMMITTER_EMAIL": user.email}
            sha = _git_bytes("--git-dir", git_dir, "commit-tree", tree, *(["-p", parent] if parent else []), "-F", "-",
                             stdin=str(params["commit_message"]).encode(), env=env).decode().strip()
            _git("--git-dir", git_dir, "update-ref", f"refs/heads/{branch}", sha, current or ZERO_SHA)
            self._follow_branches(project.path, {branch})
            info = _commit_info(git_dir, sha)
            assert info is not None
            additions = deletions = 0
            for line in _git("--git-dir", git_dir, "diff-tree", "--numstat", "-r", "--root", "--no-commit-id",
                             sha).splitlines():
                added, deleted, _ = line.split("\t", 2)
                additions += int(added) if added.isdigit() else 0
                deletions += int(deleted) if deleted.isdigit() else 0
        detail = {**info, "web_url": f"{self.web_url(project.path)}/-/commit/{sha}", "status": None,
                  "project_id": project.id, "last_pipeline": None,
                  "stats": {"additions": additions, "deletions": deletions, "total": additions + deletions}}
        with self.lock:
            self.created_commits.append({"project": project.path, "branch": branch, "commit": copy.deepcopy(detail),
                                         "actions": copy.deepcopy(actions)})
        return detail

    @staticmethod
    def _tree_after(git_dir: Path, parent: str | None, actions: list[JsonDict]) -> str:
        """Apply the actions in order to `parent`'s tree (Gitaly's index rules and messages); write the tree."""
        entries: dict[str, tuple[str, str]] = {}  # path -> (mode, blob sha)
        if parent:
            for record in _git_bytes("--git-dir", git_dir, "ls-tree", "-r", "-z", "--full-tree", parent).split(b"\0"):
                if record:
                    meta, _, name = record.partition(b"\t")
                    mode, _kind, sha = meta.decode().split()
                    entries[name.decode("utf-8", "surrogateescape")] = (mode, sha)

        def blob(content: bytes | None) -> str:
            return _git_bytes("--git-dir", git_dir, "hash-object", "-w", "--no-filters", "--stdin",
                              stdin=content or b"").decode().strip()

        def taken(path: str) -> str | None:
            if path in entries or any("/".join(path.split("/")[:n]) in entries for n in range(1, path.count("/") + 1)):
                return "A file with this name already exists"
            if any(name.startswith(path + "/") for name in entries):
                return "A directory with this name already exists"
            return None

        missing = "A file with this name doesn't exist"
        for action in actions:
            kind, path, content = action["action"], _file_path(action["file_path"]), _action_content(action)
            if kind == "create":
                if error := taken(path):
                    raise _HTTPError(400, {"message": error})
                entries[path] = ("100644", blob(content))
            elif kind == "move":
                previous = _file_path(action.get("previous_path") or "") if action.get("previous_path") else None
                if previous is None or previous not in entries:
                    raise _HTTPError(400, {"message": missing})
                mode, sha = entries.pop(previous)
                if error := taken(path):
                    raise _HTTPError(400, {"message": error})
                entries[path] = (mode, sha if content is None else blob(content))
            elif path not in entries:
                raise _HTTPError(400, {"message": missing})
            elif kind == "update":
                entries[path] = (entries[path][0], blob(content))
            elif kind == "delete":
                del entries[path]
            else:  # chmod
                executable = str(action.get("execute_filemode", False)).lower() in ("true", "1")
                entries[path] = ("100755" if executable else "100644", entries[path][1])
        with tempfile.TemporaryDirectory(prefix="fake-gitlab-index-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            _git_bytes("--git-dir", git_dir, "read-tree", "--empty", env=env)
            info = b"".join(f"{mode} {sha}\t".encode() + name.encode("utf-8", "surrogateescape") + b"\0"
                            for name, (mode, sha) in sorted(entries.items()))
            _git_bytes("--git-dir", git_dir, "update-index", "-z", "--index-info", stdin=info, env=env)
            return _git_bytes("--git-dir", git_dir, "write-tree", env=env).decode().strip()

    # ------------------------------------------------------------------ merge requests through the API

    async def _list_mrs(self, ctx: _Ctx, pid: str) -> _Result:
        project = self._project(ctx, pid, anonymous=True)
        query = ctx.request.query_params
        state = query.get("state") or "all"
        if state not in (*MR_STATES, "all"):
            raise _HTTPError(400, {"error": "state does not have a valid value"})
        sort, order_by = _sorting(query)
        with self.lock:
            found = [mr for (path, _), mr in self._mrs.items() if path == project.path
                     and state in ("all", mr.state) and query.get("author_username") in (None, "", mr.author)
                     and all(query.get(key) in (None, "", getattr(mr, key))
                             for key in ("source_branch", "target_branch"))]
        objects = await asyncio.to_thread(lambda: [self._mr_object(mr) for mr in found])
        objects.sort(key=lambda m: (m[order_by], m["id"]), reverse=sort == "desc")
        return self._paginate(ctx, objects)

    async def _create_mr(self, ctx: _Ctx, pid: str) -> _Result:
        """`:id` is the source project; `target_project_id` (optional) the project the merge request goes to."""
        source = self._project(ctx, pid)
        params = ctx.params or {}
        missing = [f"{key} is missing" for key in ("title", "source_branch", "target_branch")
                   if params.get(key) is None]
        if missing:
            raise _HTTPError(400, {"error": ", ".join(missing)})
        remove = self._boolean(params, "remove_source_branch")
        target = source
        if params.get("target_project_id") not in (None, ""):
            target = self._project(ctx, str(params["target_project_id"]))
            ctx.project = source.path
        self._require_write(ctx, source)
        assert ctx.token is not None
        return 201, await asyncio.to_thread(self._open_mr, source, target, ctx.token.user, params, remove)

    def _open_mr(self, source: _Project, target: _Project, user: _User, params: JsonDict,
                 remove: bool | None) -> JsonDict:
        """MergeRequests::CreateService, reduced, with the API's answers to what the model refuses."""
        title, source_branch, target_branch = (str(params[key]) for key in ("title", "source_branch", "target_branch"))
        with self._write_lock:
            if source.path == target.path and source_branch == target_branch:
                raise _HTTPError(422, {"message": ["You can't use same project/branch for source and target"]})
            with self.lock:
                duplicate = next((mr for mr in self._mrs.values() if mr.state == "opened" and mr.project == target.path
                                  and mr.source_project == source.path and mr.source_branch == source_branch
                                  and mr.target_branch == target_branch), None)
            if duplicate is not None:
                raise _HTTPError(409, {"message": [f"Another open merge request already exists for this source "
                                                   f"branch: !{duplicate.iid}"]})
            errors = {key: [error] for key, error, bad in (
                ("title", "can't be blank", not title.strip()),
                ("source_branch", "does not exist", _branch_tip(self.repo_path(source.path), source_branch) is None),
                ("target_branch", "does not exist", _branch_tip(self.repo_path(target.path), target_branch) is None),
            ) if bad}
            if errors:
                raise _HTTPError(400, {"message": errors})
            with self.lock:
                iid = max((i for (path, i) in self._mrs if path == target.path), default=0) + 1
            head = self._set_mr_head(target.path, iid, source.path, source_branch, None)
            now = _now_iso()
            with self.lock:
                mr = _MergeRequest(
                    id=next(self._ids["mr"]), iid=iid, project=target.path, source_project=source.path,
                    source_branch=source_branch, target_branch=target_branch, sha=head, follows_branch=True,
                    title=title, draft=bool(_DRAFT_RE.match(title)), author=user.username, created_at=now,
                    description=str(params.get("description") or ""), remove_source_branch=remove, updated_at=now)
                self._mrs[(target.path, iid)] = mr
        created = self._mr_object(mr)
        with self.lock:
            self.created_merge_requests.append(copy.deepcopy(created))
        return created

    async def _update_mr(self, ctx: _Ctx, pid: str, iid: str) -> _Result:
        project = self._project(ctx, pid)
        params = ctx.params or {}
        given = {key: params[key] for key in MR_UPDATE_PARAMS if params.get(key) is not None}
        if not given:
            raise _HTTPError(400, {"error": f"{', '.join(MR_UPDATE_PARAMS)} are missing, at least one parameter must "
                                            "be provided"})
        if given.get("state_event") not in (None, "close", "reopen"):
            raise _HTTPError(400, {"error": "state_event does not have a valid value"})
        remove = self._boolean(params, "remove_source_branch")
        self._require_write(ctx, project)
        with self.lock:
            mr = self._mr(project.path, int(iid))
        errors: dict[str, list[str]] = {}
        if "title" in given and not str(given["title"]).strip():
            errors["title"] = ["can't be blank"]
        if "target_branch" in given and _branch_tip(self.repo_path(project.path), str(given["target_branch"])) is None:
            errors["target_branch"] = ["does not exist"]
        if errors:
            raise _HTTPError(400, {"message": errors})
        with self.lock:
            if "title" in given:
                mr.title = str(given["title"])
                mr.draft = bool(_DRAFT_RE.match(mr.title))
            if "description" in given:
                mr.description = str(given["description"])
            if "target_branch" in given:
                mr.target_branch = str(given["target_branch"])
            if remove is not None:
                mr.remove_source_branch = remove
            if given.get("state_event") == "close" and mr.state == "opened":
                mr.state = "closed"
            elif given.get("state_event") == "reopen" and mr.state == "closed":
                mr.state = "opened"
            mr.updated_at = _now_iso()
        if given.get("state_event") == "reopen":
            await asyncio.to_thread(self._follow_branches, mr.source_project, {mr.source_branch})
        return 200, await asyncio.to_thread(self._mr_object, mr)

    @staticmethod
    def _boolean(params: JsonDict, key: str) -> bool | None:
        """An optional Grape Boolean: JSON true/false or "true"/"false"/"1"/"0"; 400 "<key> is invalid" else."""
        value = params.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "t", "yes", "y"):
            return True
        if text in ("false", "0", "f", "no", "n"):
            return False
        raise _HTTPError(400, {"error": f"{key} is invalid"})

    @staticmethod
    def _note_body(ctx: _Ctx) -> str:
        params = ctx.params or {}
        if "body" not in params:  # Grape's `requires :body`
            raise _HTTPError(400, {"error": "body is missing"})
        body = "" if params["body"] is None else str(params["body"])
        if not body.strip():
            raise _HTTPError(400, {"message": "400 Bad request - Note can't be blank"})
        if len(body) > NOTE_LIMIT:
            raise _HTTPError(400, {"message": {"note": [f"is too long (maximum is {NOTE_LIMIT} characters)"]}})
        return body

    @staticmethod
    def _number(params: JsonDict, key: str, kind: type[_N]) -> _N | None:
        """An optional numeric parameter; Grape's 400 "<key> is invalid" when it does not parse."""
        if params.get(key) in (None, ""):
            return None
        try:
            value = kind(str(params[key]))
        except ValueError:
            raise _HTTPError(400, {"error": f"{key} is invalid"}) from None
        if not math.isfinite(value):
            raise _HTTPError(400, {"error": f"{key} is invalid"})
        return value

    def _paginate(self, ctx: _Ctx, items: list[JsonDict]) -> _Result:
        """GitLab's offset pagination: page/per_page (default 20, at most 100) and the x-* and Link headers."""
        query = dict(ctx.request.query_params)
        try:
            page, per_page = max(1, int(query.get("page", 1))), int(query.get("per_page", DEFAULT_PER_PAGE))
        except ValueError:
            raise _HTTPError(400, {"error": "page is invalid"}) from None
        per_page = min(MAX_PER_PAGE, per_page if per_page > 0 else DEFAULT_PER_PAGE)
        total_pages = max(1, math.ceil(len(items) / per_page))

        def link(number: int) -> str:
            return f"{self.base_url}{ctx.path}?{urlencode({**query, 'page': number, 'per_page': per_page})}"

        rels = {"prev": page - 1 if page > 1 else None, "next": page + 1 if page < total_pages else None,
                "first": 1, "last": total_pages}
        headers = {"x-page": str(page), "x-per-page": str(per_page), "x-total": str(len(items)),
                   "x-total-pages": str(total_pages), "x-next-page": str(rels["next"] or ""),
                   "x-prev-page": str(rels["prev"] or ""),
                   "Link": ", ".join(f'<{link(n)}>; rel="{rel}"' for rel, n in rels.items() if n is not None)}
        return 200, items[(page - 1) * per_page: page * per_page], headers

    # ------------------------------------------------------------------ git smart HTTP

    async def _serve_git(self, ctx: _Ctx, path: str, rest: str) -> Response:
        service = ctx.request.query_params.get("service")
        if rest == "git-receive-pack" or service == "git-receive-pack":
            raise _HTTPError(403, {"message": "You are not allowed to push code to this project."})
        if rest == "info/refs" and service != "git-upload-pack":
            raise _HTTPError(403, {"message": "Git dumb HTTP protocol is not supported."})
        challenge = {"WWW-Authenticate": 'Basic realm="GitLab"'}
        denied = "HTTP Basic: Access denied. If a password was provided for Git authentication, the password was " \
                 "incorrect or you're required to use a token instead of a password."
        with self.lock:
            project = self._projects.get(path)
            ctx.project = project.path if project else None
        if ctx.auth is None:
            if project is None or project.visibility != "public":
                raise _HTTPError(401, {"message": denied}, challenge)
        elif ctx.auth != "basic" or not ctx.basic_user or ctx.token is None:
            raise _HTTPError(401, {"message": denied}, challenge)
        elif project is None or not self._may_see(ctx.token, project):
            raise _HTTPError(404, {"message": "The project you were looking for could not be found or you don't have "
                                              "permission to view it."})
        return await self._http_backend(ctx, path, rest)

    async def _http_backend(self, ctx: _Ctx, path: str, rest: str) -> Response:
        env = cgi_env(ctx.request, project_root=self.git_root, path_info=f"/{path}.git/{rest}",
                      remote_user=ctx.basic_user or "")
        return await http_backend(
            ctx.request, env, on_stderr=self._record_git_stderr,
            no_response=lambda: _HTTPError(500, {"message": "git http-backend produced no response"}))

    def _record_git_stderr(self, text: str) -> None:
        with self.lock:
            self.git_stderr.append(text)


# --------------------------------------------------------------------------- webhook payloads


def _hook_user(fake: FakeGitLab, username: str) -> JsonDict:
    user = fake._user(username)
    return {"id": user.id, "name": user.display_name, "username": username, "avatar_url": None, "email": "[REDACTED]"}


def _hook_project(fake: FakeGitLab, path: str) -> JsonDict:
    project = fake._known(path)
    namespace, _, name = path.rpartition("/")
    web, ssh = fake.web_url(path), f"git@127.0.0.1:{path}.git"
    return {"id": project.id, "name": name, "description": "", "web_url": web, "avatar_url": None,
            "git_ssh_url": ssh, "git_http_url": fake.clone_url(path), "namespace": namespace.rsplit("/", 1)[-1],
            "visibility_level": VISIBILITY_LEVELS[project.visibility], "path_with_namespace": path,
            "default_branch": project.default_branch, "ci_config_path": None, "homepage": web, "url": ssh,
            "ssh_url": ssh, "http_url": fake.clone_url(path)}


def _hook_repository(fake: FakeGitLab, path: str) -> JsonDict:
    project = _hook_project(fake, path)
    return {key: project[key] for key in ("name", "description", "homepage", "git_http_url", "git_ssh_url",
                                          "visibility_level")} | {"url": project["url"]}


def _hook_commits(fake: FakeGitLab, path: str, revs: list[str], limit: int = 20) -> tuple[list[JsonDict], int]:
    """The newest `limit` commits of `git log <revs>`, oldest first, as hooks list them; and the total count."""
    git_dir, web = fake.repo_path(path), fake.web_url(path)
    total = int(_git("--git-dir", git_dir, "rev-list", "--count", *revs, "--").strip())
    out = _git("--git-dir", git_dir, "log", f"-n{limit}", "--format=%x1e%H%x00%an%x00%ae%x00%aI%x00%B", *revs, "--")
    commits: list[JsonDict] = []
    for record in out.split("\x1e")[1:]:
        sha, name, email, date, message = record.split("\x00", 4)
        changes: dict[str, list[str]] = {"added": [], "modified": [], "removed": []}
        for line in _git("--git-dir", git_dir, "diff-tree", "--no-commit-id", "--name-status", "-r", "--root",
                         sha).splitlines():
            kind, _, name_ = line.partition("\t")
            changes[{"A": "added", "D": "removed"}.get(kind[:1], "modified")].append(name_)
        message = message.strip("\n") + "\n"
        commits.append({"id": sha, "message": message, "title": message.split("\n", 1)[0], "timestamp": date,
                        "url": f"{web}/-/commit/{sha}", "author": {"name": name, "email": email}, **changes})
    return commits[::-1], total


def push_event(fake: FakeGitLab, path: str, *, before: str, after: str, ref: str = "refs/heads/main",
               user: str = "alice") -> JsonDict:
    """A "Push Hook" body.  A new branch has `before` = zeros (commits: those not on the default branch);
    a deleted one `after` = zeros (no commits, `checkout_sha` null)."""
    project = fake._known(path)
    actor = _hook_user(fake, user)
    default = f"refs/heads/{project.default_branch}"
    if after == ZERO_SHA:
        revs = []
    elif before == ZERO_SHA:
        revs = [after] if ref == default else [after, "--not", default]
    else:
        revs = [f"{before}..{after}"]
    commits, total = _hook_commits(fake, path, revs) if revs else ([], 0)
    return {"object_kind": "push", "event_name": "push", "before": before, "after": after, "ref": ref,
            "ref_protected": ref == default,
            "checkout_sha": None if after == ZERO_SHA else after, "message": None, "user_id": actor["id"],
            "user_name": actor["name"], "user_username": user, "user_email": actor["email"], "user_avatar": None,
            "project_id": project.id, "project": _hook_project(fake, path), "commits": commits,
            "total_commits_count": total, "push_options": {}, "repository": _hook_repository(fake, path)}


def _hook_last_commit(fake: FakeGitLab, path: str, sha: str) -> JsonDict:
    info = _commit_info(fake.repo_path(path), sha)
    if info is None:
        raise ValueError(f"{sha} is not a commit of {path}")
    return {"id": info["id"], "message": info["message"], "title": info["title"], "timestamp": info["authored_date"],
            "url": f"{fake.web_url(path)}/-/commit/{info['id']}",
            "author": {"name": info["author_name"], "email": info["author_email"]}}


def _hook_mr_attributes(fake: FakeGitLab, path: str, iid: int) -> JsonDict:
    mr = fake.merge_request(path, iid)
    return {"id": mr["id"], "iid": iid, "title": mr["title"], "description": mr["description"], "state": mr["state"],
            "created_at": mr["created_at"], "updated_at": mr["updated_at"], "author_id": mr["author"]["id"],
            "assignee_ids": [], "assignee_id": None, "reviewer_ids": [], "milestone_id": None,
            "source_branch": mr["source_branch"], "target_branch": mr["target_branch"],
            "source_project_id": mr["source_project_id"], "target_project_id": mr["target_project_id"],
            "source": _hook_project(fake, fake._test_mr(path, iid).source_project),
            "target": _hook_project(fake, path),
            "last_commit": _hook_last_commit(fake, path, mr["sha"]), "work_in_progress": mr["draft"],
            "draft": mr["draft"], "merge_status": mr["merge_status"], "detailed_merge_status": "mergeable",
            "head_pipeline_id": None, "blocking_discussions_resolved": True, "url": mr["web_url"]}


def merge_request_event(fake: FakeGitLab, path: str, iid: int, *, action: str = "open", oldrev: str | None = None,
                        user: str = "alice", changes: JsonDict | None = None, labels: list[JsonDict] | None = None
                        ) -> JsonDict:
    """A "Merge Request Hook" body for merge request `iid` as it is in the fake; `oldrev` only when given (GitLab
    sends it only when the code changed)."""
    attributes = _hook_mr_attributes(fake, path, iid)
    attributes["action"] = action
    attributes["state"] = {"close": "closed", "merge": "merged"}.get(action, "opened")
    if oldrev is not None:
        attributes["oldrev"] = oldrev
    return {"object_kind": "merge_request", "event_type": "merge_request", "user": _hook_user(fake, user),
            "project": _hook_project(fake, path), "repository": _hook_repository(fake, path),
            "object_attributes": attributes, "labels": labels or [], "changes": changes or {}, "assignees": [],
            "reviewers": []}


def note_event(fake: FakeGitLab, path: str, iid: int, note: str, *, user: str = "alice") -> JsonDict:
    """A "Note Hook" body for a new comment `note` by `user` on merge request `iid` (the note is created in the
    fake too, as GitLab fires the hook after saving it)."""
    saved = fake.add_note(path, iid, note, username=user)
    mr = _hook_mr_attributes(fake, path, iid)
    attributes = {"id": saved["id"], "note": note, "noteable_type": "MergeRequest", "author_id": saved["author"]["id"],
                  "created_at": saved["created_at"], "updated_at": saved["updated_at"],
                  "project_id": fake.project_id(path), "attachment": None, "line_code": None, "commit_id": "",
                  "noteable_id": mr["id"], "system": False, "st_diff": None, "type": None, "action": "create",
                  "internal": False, "confidential": False, "description": note, "discussion_id": uuid.uuid4().hex,
                  "url": f"{mr['url']}#note_{saved['id']}"}
    return {"object_kind": "note", "event_type": "note", "user": _hook_user(fake, user),
            "project_id": fake.project_id(path), "project": _hook_project(fake, path),
            "repository": _hook_repository(fake, path), "object_attributes": attributes, "merge_request": mr}


_EVENT_HEADERS = {"push": "Push Hook", "merge_request": "Merge Request Hook", "merge request": "Merge Request Hook",
                  "note": "Note Hook", "tag_push": "Tag Push Hook", "pipeline": "Pipeline Hook"}


def hook_headers(event: str, *, token: str | None, uuid: str | None = None,
                 instance: str = "https://gitlab.example.com") -> dict[str, str]:
    """Delivery headers: `event` is "Push Hook" / "Merge Request Hook" / "Note Hook" (or "push", "Merge Request",
    ...).  `uuid` is the event UUID and Idempotency-Key (pass the same one to model a resend); `token` the hook's
    secret token (None: no X-Gitlab-Token header)."""
    name = event if event.endswith(" Hook") else _EVENT_HEADERS.get(event.lower(), f"{event} Hook")
    delivery = uuid or str(_uuid4())
    headers = {"Content-Type": "application/json", "User-Agent": f"GitLab/{GITLAB_VERSION}", "X-Gitlab-Event": name,
               "X-Gitlab-Event-UUID": delivery, "Idempotency-Key": delivery, "X-Gitlab-Instance": instance,
               "X-Gitlab-Webhook-UUID": "5f0e8a4e-6c0b-4b8e-9c53-3f1f0c2d7a11"}
    if token is not None:
        headers["X-Gitlab-Token"] = token
    return headers


_uuid4 = uuid.uuid4  # `hook_headers` has a parameter named `uuid`


def encode_path(path: str) -> str:
    """A project path as an API `:id` (`group%2Fsub%2Fapp`)."""
    return quote(path, safe="")
