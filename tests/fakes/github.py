"""A fake GitHub for end-to-end tests.

`FakeGitHub` is a real HTTP server on 127.0.0.1 (uvicorn in a daemon thread).
It speaks the parts of GitHub's REST API that AQE uses, checks authentication
the way GitHub does (app JWTs, installation tokens, repository access), and
serves bare git repositories over smart HTTP through `git http-backend`.
Every request is recorded in `calls`; the state it builds up (check runs,
comments, issued tokens) lives in plain dicts and lists that tests read.

The server runs on its own event loop in its own thread, so all shared state
is guarded by `self.lock` (re-entrant).  `wait_for()` evaluates predicates
while holding it.

Path regexes given to `calls_to()` and `fail_next()` are matched with
`re.search` against the request path (no query string), so anchor them
(`r"/check-runs$"`) when a prefix would also match.

The Git Data API (blobs, trees, commits, refs) writes real objects into the
bare repositories with git plumbing, and pull requests opened through the API
(`created_pulls`) follow their branches when refs move.  Installation tokens
carry the App's `permissions` (read by tests, e.g. to take `contents: write`
away); the Git Data and pull-request endpoints check them and answer 403
"Resource not accessible by integration" like GitHub.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import itertools
import json
import math
import re
import secrets
import string
import tempfile
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.git_http import cgi_env, http_backend, serve_bare_clone
from tests.fakes.git_http import git as _git
from tests.fakes.git_http import git_env as _git_env
from tests.fakes.server import FakeServer, Fault, Waitable, take_fault

DOCS_URL = "https://docs.github.com/rest"
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
RATE_LIMIT = 5000
MAX_JWT_LIFETIME = 600  # seconds between iat and exp
IAT_LEEWAY = 30  # seconds an iat may lie in the future (clock drift)
TOKEN_TTL = 3600
COMMENT_BODY_LIMIT = 65536
OUTPUT_TEXT_LIMIT = 65535
ANNOTATION_TEXT_LIMIT = 65535
ANNOTATION_TITLE_LIMIT = 255
MAX_ANNOTATIONS = 50
DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100
CHECK_STATUSES = ("queued", "in_progress", "completed")
CHECK_CONCLUSIONS = (
    "action_required",
    "cancelled",
    "failure",
    "neutral",
    "success",
    "skipped",
    "timed_out",
)
ANNOTATION_LEVELS = ("notice", "warning", "failure")
TOKEN_PERMISSIONS = {
    "checks": "write",
    "contents": "write",
    "issues": "write",
    "metadata": "read",
    "pull_requests": "write",
}
GIT_USERNAME = "x-access-token"
BOT_USER_ID_BASE = 41_000_000
# Tree entry mode -> the object type it must point at.
TREE_ENTRY_TYPES = {"100644": "blob", "100755": "blob", "120000": "blob", "040000": "tree", "160000": "commit"}
PULL_STATES = ("open", "closed", "all")
ALL_METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"]

_SHA_RE = re.compile(r"[0-9a-f]{40}")
_REPO_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_TOKEN_ALPHABET = string.ascii_letters + string.digits

JsonDict = dict[str, Any]
# A tree flattened the way `git ls-tree -r` lists it: path -> (mode, sha).
FlatTree = dict[str, tuple[str, str]]


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Call:
    """One request the fake received, with the status it answered."""

    method: str
    path: str
    query: dict[str, str]
    auth_kind: str | None  # "jwt" | "token" | "basic" | None
    installation_id: int | None
    json: Any | None
    status: int
    headers: dict[str, str] = field(default_factory=dict, repr=False)

    def __str__(self) -> str:
        query = f"?{urlencode(self.query)}" if self.query else ""
        inst = f" inst={self.installation_id}" if self.installation_id is not None else ""
        return f"{self.method} {self.path}{query} -> {self.status} [{self.auth_kind}{inst}]"


@dataclass
class _Token:
    token: str
    installation_id: int
    expires_at: float
    repositories: frozenset[str] | None  # None: whatever the installation can access
    permissions: dict[str, str] = field(default_factory=dict)


@dataclass
class _Ctx:
    """What the fake knows about one API request."""

    request: Request
    auth_kind: str | None
    credential: str | None
    username: str | None
    installation_id: int | None
    json: Any = None


class _HTTPError(Exception):
    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.headers = headers or {}


_Result = tuple[int, Any] | tuple[int, Any, dict[str, str]]
_Handler = Callable[..., Awaitable[_Result]]


# --------------------------------------------------------------------------- small helpers


def _now_iso(ts: float | None = None) -> str:
    moment = datetime.fromtimestamp(time.time() if ts is None else ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _message(message: str, **extra: Any) -> JsonDict:
    return {"message": message, **extra, "documentation_url": DOCS_URL}


def _not_found() -> _HTTPError:
    return _HTTPError(404, _message("Not Found"))


def _invalid(errors: list[str]) -> _HTTPError:
    return _HTTPError(422, _message("Invalid request.", errors=errors))


def _validation_failed(resource: str, field_name: str, code: str, message: str) -> _HTTPError:
    error = {"resource": resource, "code": code, "field": field_name, "message": message}
    return _HTTPError(422, _message("Validation Failed", errors=[error]))


def _jwt_error(message: str = "A JSON web token could not be decoded") -> _HTTPError:
    return _HTTPError(401, _message(message))


def _missing(key: str) -> str:
    return f'"{key}" wasn\'t supplied.'


def _parse_json(raw: bytes) -> tuple[Any, bool]:
    """Return (value, malformed)."""
    if not raw.strip():
        return None, False
    try:
        return json.loads(raw), False
    except ValueError:
        return None, True


def _require_object(value: Any) -> JsonDict:
    if not isinstance(value, dict):
        raise _invalid(["Request body must be a JSON object."])
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_iso8601(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _int_param(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default


def _parse_authorization(header: str | None) -> tuple[str | None, str | None, str | None]:
    """Return (scheme, credential, username); scheme is bearer|token|basic|None."""
    if not header:
        return None, None, None
    scheme, _, value = header.strip().partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme in ("bearer", "token") and value:
        return scheme, value, None
    if scheme == "basic":
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return "basic", None, None
        return "basic", password, user
    return None, None, None


# --------------------------------------------------------------------------- validation


def _check_run_errors(body: JsonDict, *, creating: bool) -> list[str]:
    errors: list[str] = []
    if creating:
        errors += [_missing(key) for key in ("name", "head_sha") if key not in body]
    if "name" in body and (not isinstance(body["name"], str) or not body["name"].strip()):
        errors.append('"name" must be a non-empty string.')
    if "head_sha" in body and not isinstance(body["head_sha"], str):
        errors.append('"head_sha" must be a string.')
    for key in ("details_url", "external_id"):
        if body.get(key) is not None and not isinstance(body[key], str):
            errors.append(f'"{key}" must be a string.')
    for key in ("started_at", "completed_at"):
        if body.get(key) is not None and not _is_iso8601(body[key]):
            errors.append(f'"{key}" must be an ISO 8601 timestamp.')
    errors += _status_errors(body)
    if "output" in body:
        errors += _output_errors(body["output"])
    if "actions" in body:
        errors += _actions_errors(body["actions"])
    return errors


def _status_errors(body: JsonDict) -> list[str]:
    errors: list[str] = []
    status, conclusion = body.get("status"), body.get("conclusion")
    if "status" in body and status not in CHECK_STATUSES:
        errors.append(f'"status" must be one of {", ".join(CHECK_STATUSES)}; got {status!r}.')
    if conclusion is not None and conclusion not in CHECK_CONCLUSIONS:
        errors.append(
            f'"conclusion" must be one of {", ".join(CHECK_CONCLUSIONS)}; got {conclusion!r}.'
        )
    if status == "completed" and conclusion is None:
        errors.append(_missing("conclusion"))
    return errors


def _output_errors(output: Any) -> list[str]:
    if not isinstance(output, dict):
        return ['"output" must be an object.']
    errors: list[str] = []
    for key in ("title", "summary"):
        if output.get(key) is None:
            errors.append(_missing(f"output.{key}"))
        elif not isinstance(output[key], str):
            errors.append(f'"output.{key}" must be a string.')
    for key in ("summary", "text"):
        value = output.get(key)
        if value is not None and not isinstance(value, str):
            errors.append(f'"output.{key}" must be a string.')
        elif isinstance(value, str) and len(value) > OUTPUT_TEXT_LIMIT:
            errors.append(
                f'"output.{key}" is too long ({len(value)} characters; '
                f"maximum is {OUTPUT_TEXT_LIMIT})."
            )
    errors += _annotations_errors(output.get("annotations"))
    errors += _images_errors(output.get("images"))
    return errors


def _annotations_errors(annotations: Any) -> list[str]:
    if annotations is None:
        return []
    if not isinstance(annotations, list):
        return ['"output.annotations" must be an array.']
    if len(annotations) > MAX_ANNOTATIONS:
        return [
            f'"output.annotations" has {len(annotations)} items; '
            f"only {MAX_ANNOTATIONS} annotations may be sent per request."
        ]
    errors: list[str] = []
    for index, annotation in enumerate(annotations):
        errors += _annotation_errors(f"output.annotations[{index}]", annotation)
    return errors


def _annotation_errors(where: str, annotation: Any) -> list[str]:
    if not isinstance(annotation, dict):
        return [f'"{where}" must be an object.']
    errors: list[str] = []
    for key in ("path", "start_line", "end_line", "annotation_level", "message"):
        if annotation.get(key) is None:
            errors.append(_missing(f"{where}.{key}"))
    for key in ("path", "message", "title", "raw_details"):
        if annotation.get(key) is not None and not isinstance(annotation[key], str):
            errors.append(f'"{where}.{key}" must be a string.')
    for key in ("start_line", "end_line", "start_column", "end_column"):
        if annotation.get(key) is not None and not _is_int(annotation[key]):
            errors.append(f'"{where}.{key}" must be an integer.')
    level = annotation.get("annotation_level")
    if level is not None and level not in ANNOTATION_LEVELS:
        errors.append(f'"{where}.annotation_level" must be one of {", ".join(ANNOTATION_LEVELS)}.')
    has_columns = annotation.get("start_column") is not None or annotation.get("end_column") is not None
    if has_columns and annotation.get("start_line") != annotation.get("end_line"):
        errors.append(
            f'"{where}": start_column and end_column may only be given when start_line == end_line.'
        )
    errors += _annotation_length_errors(where, annotation)
    return errors


def _annotation_length_errors(where: str, annotation: JsonDict) -> list[str]:
    limits = {
        "message": ANNOTATION_TEXT_LIMIT,
        "raw_details": ANNOTATION_TEXT_LIMIT,
        "title": ANNOTATION_TITLE_LIMIT,
    }
    return [
        f'"{where}.{key}" is too long (maximum is {limit} characters).'
        for key, limit in limits.items()
        if isinstance(annotation.get(key), str) and len(annotation[key]) > limit
    ]


def _images_errors(images: Any) -> list[str]:
    if images is None:
        return []
    if not isinstance(images, list):
        return ['"output.images" must be an array.']
    return [
        f'"output.images[{index}]" requires "alt" and "image_url".'
        for index, image in enumerate(images)
        if not isinstance(image, dict) or not image.get("alt") or not image.get("image_url")
    ]


def _actions_errors(actions: Any) -> list[str]:
    if not isinstance(actions, list):
        return ['"actions" must be an array.']
    if len(actions) > 3:
        return ['"actions" may contain at most 3 items.']
    limits = {"label": 20, "description": 40, "identifier": 20}
    errors: list[str] = []
    for index, action in enumerate(actions):
        if not isinstance(action, dict):
            errors.append(f'"actions[{index}]" must be an object.')
            continue
        for key, limit in limits.items():
            value = action.get(key)
            if not isinstance(value, str):
                errors.append(_missing(f"actions[{index}].{key}"))
            elif len(value) > limit:
                errors.append(f'"actions[{index}].{key}" is too long (maximum is {limit} characters).')
    return errors


def _comment_body(payload: Any) -> str:
    body = _require_object(payload).get("body")
    if body is None:
        raise _invalid([_missing("body")])
    if not isinstance(body, str):
        raise _invalid(['"body" must be a string.'])
    if not body.strip():
        raise _validation_failed("IssueComment", "body", "missing_field", "Body cannot be blank")
    if len(body) > COMMENT_BODY_LIMIT:
        raise _validation_failed(
            "IssueComment",
            "data",
            "unprocessable",
            f"Body is too long (maximum is {COMMENT_BODY_LIMIT} characters)",
        )
    return body


# --------------------------------------------------------------------------- git data helpers


def _pull_invalid(field_name: str, code: str = "invalid") -> _HTTPError:
    error = {"resource": "PullRequest", "field": field_name, "code": code}
    return _HTTPError(422, _message("Validation Failed", errors=[error]))


def _pull_custom(message: str) -> _HTTPError:
    error = {"resource": "PullRequest", "code": "custom", "message": message}
    return _HTTPError(422, _message("Validation Failed", errors=[error]))


def _malformed_path(path: str) -> bool:
    return any(part in ("", ".", "..") or part.lower() == ".git" for part in path.split("/"))


def _tree_entry_errors(where: str, entry: Any) -> list[str]:
    if not isinstance(entry, dict):
        return [f'"{where}" must be an object.']
    errors = [_missing(f"{where}.{key}") for key in ("path", "mode", "type") if key not in entry]
    if "path" in entry and not isinstance(entry["path"], str):
        errors.append(f'"{where}.path" must be a string.')
    mode, kind = entry.get("mode"), entry.get("type")
    if "mode" in entry and mode not in TREE_ENTRY_TYPES:
        errors.append(f'"{where}.mode" must be one of {", ".join(TREE_ENTRY_TYPES)}; got {mode!r}.')
    elif "type" in entry and kind != TREE_ENTRY_TYPES.get(mode, kind):
        errors.append(
            f'"{where}.type" must be {TREE_ENTRY_TYPES[mode]!r} for mode {mode}; got {kind!r}.'
        )
    if "sha" in entry and "content" in entry:
        errors.append(f'"{where}": give either "sha" or "content", not both.')
    elif "sha" not in entry and "content" not in entry:
        errors.append(f'"{where}": "sha" or "content" must be supplied.')
    sha = entry.get("sha")
    if sha is not None and not (isinstance(sha, str) and _SHA_RE.fullmatch(sha)):
        errors.append(f'"{where}.sha" must be a 40-character hexadecimal SHA or null.')
    if "content" in entry and not isinstance(entry["content"], str):
        errors.append(f'"{where}.content" must be a string.')
    elif "content" in entry and kind != "blob":
        errors.append(f'"{where}.content" can only be given for blobs.')
    return errors


def _without(tree: FlatTree, path: str) -> FlatTree:
    """The tree without `path` and anything below it."""
    return {p: v for p, v in tree.items() if p != path and not p.startswith(path + "/")}


def _with(tree: FlatTree, path: str, entries: FlatTree) -> FlatTree:
    """`entries` placed at `path`, replacing whatever was there (and a file where a directory must go)."""
    parents = {"/".join(path.split("/")[:depth]) for depth in range(1, path.count("/") + 1)}
    kept = {p: v for p, v in _without(tree, path).items() if p not in parents}
    return {**kept, **entries}


def _signature_errors(key: str, value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, dict):
        return [f'"{key}" must be an object.']
    errors = [
        _missing(f"{key}.{part}") if part not in value else f'"{key}.{part}" must be a string.'
        for part in ("name", "email")
        if not isinstance(value.get(part), str)
    ]
    if value.get("date") is not None and not _is_iso8601(value["date"]):
        errors.append(f'"{key}.date" must be an ISO 8601 timestamp.')
    return errors


def _parse_commit(raw: bytes) -> tuple[dict[str, list[str]], str]:
    """A raw commit object's headers (key -> values, continuation lines dropped) and message."""
    header, _, message = raw.decode("utf-8", "replace").partition("\n\n")
    fields: dict[str, list[str]] = {}
    for line in header.split("\n"):
        if line and not line.startswith(" "):
            key, _, value = line.partition(" ")
            fields.setdefault(key, []).append(value)
    return fields, message


def _git_signature(value: str) -> JsonDict:
    match = re.fullmatch(r"(.*) <(.*)> (\d+) [+-]\d{4}", value)
    if match is None:
        return {"name": value, "email": "", "date": None}
    return {"name": match[1], "email": match[2], "date": _now_iso(int(match[3]))}


# --------------------------------------------------------------------------- the fake


class FakeGitHub(FakeServer, Waitable):
    """A fake GitHub App host; see the module docstring."""

    def __init__(
        self,
        app_id: int,
        public_key_pem: bytes,
        *,
        git_root: Path,
        app_slug: str = "aqe",
    ) -> None:
        self.app_id = app_id
        self.app_slug = app_slug
        self.public_key_pem = public_key_pem
        self.git_root = Path(git_root)
        self.git_root.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        # Public state read by tests (guard with `self.lock` when racing the server).
        self.calls: list[Call] = []
        self.check_runs: dict[int, JsonDict] = {}
        self.reopened_runs: list[int] = []
        self.comments: dict[int, JsonDict] = {}
        self.foreign_comment_edits: list[int] = []
        self.pulls: dict[tuple[str, int], JsonDict] = {}
        self.created_pulls: list[JsonDict] = []  # opened through the API (the same dicts as in `pulls`)
        self.permissions: dict[str, str] = dict(TOKEN_PERMISSIONS)  # what the installation granted the App
        self.issued_tokens: list[str] = []
        self.installations: dict[int, set[str]] = {}
        self.server_errors: list[str] = []
        self.git_stderr: list[str] = []
        # Private state.
        self._repos: dict[str, JsonDict] = {}
        self._issues: set[tuple[str, int]] = set()
        self._tokens: dict[str, _Token] = {}
        self._check_run_repo: dict[int, str] = {}
        self._faults: list[Fault] = []
        self._run_ids = itertools.count(1001)
        self._comment_ids = itertools.count(2_000_001)
        self._repo_ids = itertools.count(500_001)
        self._rate_used = 0
        self._rate_reset = int(time.time()) + 3600
        self.public: set[str] = set()  # repositories anyone may clone without credentials
        self.app = Starlette(routes=self._routes())
        self.serve(self.app, "fake-github", timeout_graceful_shutdown=3)

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return self.base_url

    @property
    def bot_login(self) -> str:
        return f"{self.app_slug}[bot]"


    # ------------------------------------------------------------------ test-side setup

    def repo_path(self, full_name: str) -> Path:
        return self.git_root / f"{full_name}.git"

    def clone_url(self, full_name: str) -> str:
        return f"{self.url}/{full_name}.git"

    def add_repo(self, full_name: str, source_repo: Path, *, default_branch: str = "main", public: bool = False) -> str:
        """Bare-clone `source_repo` as `full_name`; return its clone URL. A public one is cloned without credentials."""
        if not _REPO_NAME_RE.fullmatch(full_name):
            raise ValueError(f"repository name must look like owner/name: {full_name!r}")
        dest = self.repo_path(full_name)
        if dest.exists():
            raise ValueError(f"{full_name} already exists; use update_repo()")
        serve_bare_clone(source_repo, dest, default_branch)
        with self.lock:
            self._repos[full_name] = self._repo_object(full_name, default_branch=default_branch)
            if public:
                self.public.add(full_name)
        return self.clone_url(full_name)

    def update_repo(self, full_name: str, source_repo: Path) -> None:
        """Force-fetch all branches and tags of `source_repo` into the bare repo."""
        self._require_known_repo(full_name)
        _git(
            "--git-dir",
            self.repo_path(full_name),
            "fetch",
            "--quiet",
            "--force",
            source_repo,
            "+refs/heads/*:refs/heads/*",
            "+refs/tags/*:refs/tags/*",
        )

    def set_pull_ref(
        self, full_name: str, number: int, sha: str, *, source_repo: Path | None = None
    ) -> None:
        """Point refs/pull/<number>/head at `sha`.

        `source_repo` (e.g. a fork) is fetched first so that `sha` exists.
        """
        self._require_known_repo(full_name)
        dest = self.repo_path(full_name)
        if source_repo is not None:
            refspec = "+refs/heads/*:refs/fake-import/*"
            _git("--git-dir", dest, "fetch", "--quiet", "--force", source_repo, refspec)
        _git("--git-dir", dest, "update-ref", f"refs/pull/{number}/head", sha)
        if source_repo is not None:
            refs = _git("--git-dir", dest, "for-each-ref", "--format=%(refname)", "refs/fake-import/")
            for ref in refs.split():
                _git("--git-dir", dest, "update-ref", "-d", ref)

    def add_pull(
        self,
        full_name: str,
        number: int,
        *,
        head_sha: str,
        base_sha: str,
        head_ref: str,
        base_ref: str = "main",
        fork: bool = False,
        draft: bool = False,
        head_repo: str | None = None,
        title: str | None = None,
        source_repo: Path | None = None,
    ) -> JsonDict:
        """Store an open pull request and set refs/pull/<number>/head."""
        self.set_pull_ref(full_name, number, head_sha, source_repo=source_repo)
        with self.lock:
            pull = self._pull_object(
                full_name,
                number,
                head=(head_sha, head_ref, head_repo),
                base=(base_sha, base_ref),
                fork=fork,
                draft=draft,
                title=title,
            )
            self.pulls[(full_name, number)] = pull
            self._issues.add((full_name, number))
            return copy.deepcopy(pull)

    def add_issue(self, full_name: str, number: int) -> None:
        """Make issue `number` exist (comments on unknown issues get 404)."""
        self._require_known_repo(full_name)
        with self.lock:
            self._issues.add((full_name, number))

    def add_comment(self, full_name: str, number: int, body: str, user: str = "someone") -> int:
        """Pre-populate a comment (by default from another user); return its id."""
        self.add_issue(full_name, number)
        with self.lock:
            return self._new_comment(full_name, number, body, user=user)["id"]

    def install(self, installation_id: int, repos: list[str]) -> None:
        """Set which repositories installation `installation_id` can access."""
        with self.lock:
            self.installations[installation_id] = set(repos)

    def issue_token(self, installation_id: int, *, ttl: float = TOKEN_TTL) -> str:
        """Mint an installation token directly (no HTTP), e.g. for git tests."""
        with self.lock:
            if installation_id not in self.installations:
                raise KeyError(f"unknown installation {installation_id}")
            return self._mint_token(installation_id, None, ttl).token

    def expire_tokens(self) -> None:
        """Make every issued installation token expired."""
        with self.lock:
            for token in self._tokens.values():
                token.expires_at = time.time() - 1

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: Any = None,
    ) -> None:
        """Answer the next `times` requests matching (method, path_regex) with `status`.

        `method` "*" matches any method.  The default body is {"message": <reason>}.
        """
        if body is None and status not in (204, 304):
            body = {"message": HTTPStatus(status).phrase}
        fault = Fault(method.upper(), re.compile(path_regex), status, times, body, dict(headers or {}))
        with self.lock:
            self._faults.append(fault)

    # ------------------------------------------------------------------ test-side inspection

    def calls_to(self, method: str, path_regex: str) -> list[Call]:
        pattern = re.compile(path_regex)
        with self.lock:
            return [
                call
                for call in self.calls
                if method.upper() in ("*", call.method) and pattern.search(call.path)
            ]

    def reset_calls(self) -> None:
        with self.lock:
            self.calls.clear()

    def check_runs_for(self, full_name: str, head_sha: str | None = None) -> list[JsonDict]:
        with self.lock:
            return [
                run
                for run_id, run in sorted(self.check_runs.items())
                if self._check_run_repo[run_id] == full_name
                and (head_sha is None or run["head_sha"] == head_sha)
            ]

    def comments_on(self, full_name: str, number: int) -> list[JsonDict]:
        with self.lock:
            return [
                comment
                for _, comment in sorted(self.comments.items())
                if comment["repo"] == full_name and comment["issue_number"] == number
            ]

    def summary(self, last: int = 60) -> str:
        with self.lock:
            lines = [f"fake GitHub at {self._base_url}: {len(self.calls)} calls (last {last}):"]
            lines += [f"  {call}" for call in self.calls[-last:]]
            lines.append(f"check runs ({len(self.check_runs)}):")
            lines += [
                f"  #{run_id} {run['name']!r} {run['head_sha'][:12]} {run['status']}/{run['conclusion']}"
                for run_id, run in sorted(self.check_runs.items())
            ]
            lines.append(f"comments: {len(self.comments)}; reopened runs: {self.reopened_runs}")
            lines += [
                f"created pull #{pull['number']}: {pull['head']['label']} -> {pull['base']['ref']} "
                f"{pull['head']['sha'][:12]} {pull['state']}"
                for pull in self.created_pulls
            ]
            lines += [f"server error:\n{error}" for error in self.server_errors[-3:]]
            lines += [f"git stderr: {text}" for text in self.git_stderr[-3:]]
            return "\n".join(lines)

    # ------------------------------------------------------------------ routing

    def _routes(self) -> list[Route]:
        api, repo = self._api, "/repos/{owner}/{repo}"
        table: list[tuple[str, str, _Handler]] = [
            ("GET", "/app", self._get_app),
            ("GET", "/app/installations", self._list_installations),
            ("GET", "/app/installations/{installation_id:int}", self._get_installation),
            ("POST", "/app/installations/{installation_id:int}/access_tokens", self._create_token),
            ("GET", repo, self._get_repo),
            ("GET", f"{repo}/installation", self._get_repo_installation),
            ("GET", f"{repo}/pulls", self._list_pulls),
            ("POST", f"{repo}/pulls", self._create_pull),
            ("GET", f"{repo}/pulls/{{number:int}}", self._get_pull),
            ("PATCH", f"{repo}/pulls/{{number:int}}", self._update_pull),
            ("POST", f"{repo}/git/blobs", self._create_blob),
            ("POST", f"{repo}/git/trees", self._create_tree),
            ("POST", f"{repo}/git/commits", self._create_commit),
            ("GET", f"{repo}/git/commits/{{sha}}", self._get_commit),
            ("POST", f"{repo}/git/refs", self._create_ref),
            ("GET", f"{repo}/git/ref/{{ref:path}}", self._get_ref),
            ("PATCH", f"{repo}/git/refs/{{ref:path}}", self._update_ref),
            ("POST", f"{repo}/check-runs", self._create_check_run),
            ("GET", f"{repo}/check-runs/{{run_id:int}}", self._get_check_run),
            ("PATCH", f"{repo}/check-runs/{{run_id:int}}", self._update_check_run),
            ("GET", f"{repo}/check-runs/{{run_id:int}}/annotations", self._list_annotations),
            ("GET", f"{repo}/commits/{{ref:path}}/check-runs", self._list_check_runs_for_ref),
            ("GET", f"{repo}/issues/{{number:int}}/comments", self._list_comments),
            ("POST", f"{repo}/issues/{{number:int}}/comments", self._create_comment),
            ("GET", f"{repo}/issues/comments/{{comment_id:int}}", self._get_comment),
            ("PATCH", f"{repo}/issues/comments/{{comment_id:int}}", self._update_comment),
            ("DELETE", f"{repo}/issues/comments/{{comment_id:int}}", self._delete_comment),
        ]
        routes = [Route(path, api(handler), methods=[method]) for method, path, handler in table]
        routes.append(Route("/{owner}/{name}.git/{rest:path}", self._git_endpoint, methods=["GET", "POST"]))
        routes.append(Route("/{path:path}", api(self._unknown_endpoint), methods=ALL_METHODS))
        return routes

    def _api(self, handler: _Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await self._serve_api(request, handler)

        return endpoint

    async def _serve_api(self, request: Request, handler: _Handler) -> Response:
        ctx = self._context(request)
        ctx.json, malformed = _parse_json(await request.body())
        try:
            self._check_user_agent(request)
            self._raise_fault(request)
            if malformed:
                raise _HTTPError(400, _message("Problems parsing JSON"))
            status, body, headers = self._unpack(await handler(ctx, **request.path_params))
        except _HTTPError as exc:
            status, body, headers = exc.status, exc.body, exc.headers
        except Exception:  # noqa: BLE001 - report, don't kill the server
            with self.lock:
                self.server_errors.append(traceback.format_exc())
            status, body, headers = 500, _message("fake GitHub internal error"), {}
        response = self._json_response(status, body, headers)
        self._record(ctx, status)
        return response

    @staticmethod
    def _unpack(result: _Result) -> tuple[int, Any, dict[str, str]]:
        if len(result) == 2:
            return result[0], result[1], {}
        return result  # type: ignore[return-value]

    def _json_response(self, status: int, body: Any, headers: dict[str, str]) -> Response:
        content = b"" if body is None or status in (204, 304) else json.dumps(body).encode()
        all_headers = {**self._rate_limit_headers(), **headers}
        response = Response(content=content, status_code=status, headers=all_headers)
        if content:
            response.headers["content-type"] = JSON_CONTENT_TYPE
        return response

    def _rate_limit_headers(self) -> dict[str, str]:
        with self.lock:
            self._rate_used += 1
            used = self._rate_used
        return {
            "X-RateLimit-Limit": str(RATE_LIMIT),
            "X-RateLimit-Remaining": str(max(0, RATE_LIMIT - used)),
            "X-RateLimit-Reset": str(self._rate_reset),
            "X-RateLimit-Used": str(used),
            "X-RateLimit-Resource": "core",
            "X-GitHub-Media-Type": "github.v3; format=json",
            "X-GitHub-Request-Id": secrets.token_hex(8).upper(),
        }

    def _context(self, request: Request) -> _Ctx:
        scheme, credential, username = _parse_authorization(request.headers.get("authorization"))
        with self.lock:
            token = self._tokens.get(credential or "")
        kind = scheme
        if scheme == "bearer":  # GitHub accepts installation tokens as bearer tokens too
            looks_like_jwt = (credential or "").count(".") == 2
            kind = "jwt" if token is None and looks_like_jwt else "token"
        installation_id = token.installation_id if token is not None and kind != "jwt" else None
        if kind == "jwt":
            match = re.match(r"/app/installations/(\d+)", request.url.path)
            installation_id = int(match[1]) if match else None
        return _Ctx(request, kind, credential, username, installation_id)

    def _record(self, ctx: _Ctx, status: int) -> None:
        request = ctx.request
        call = Call(
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            auth_kind=ctx.auth_kind,
            installation_id=ctx.installation_id,
            json=ctx.json,
            status=status,
            headers=dict(request.headers),
        )
        with self.lock:
            self.calls.append(call)

    @staticmethod
    def _check_user_agent(request: Request) -> None:
        if not request.headers.get("user-agent", "").strip():
            message = (
                "Request forbidden by administrative rules. "
                "Please make sure your request has a User-Agent header."
            )
            raise _HTTPError(403, _message(message))

    def _raise_fault(self, request: Request) -> None:
        with self.lock:
            if fault := take_fault(self._faults, request.method, request.url.path):
                raise _HTTPError(fault.status, copy.deepcopy(fault.body), dict(fault.headers))

    # ------------------------------------------------------------------ auth

    def _verify_jwt(self, token: str | None) -> JsonDict:
        if not token:
            raise _jwt_error()
        try:
            claims: JsonDict = jwt.decode(
                token,
                self.public_key_pem,
                algorithms=["RS256"],
                options={"require": ["exp", "iat", "iss"], "verify_iat": False, "verify_iss": False},
            )
        except jwt.ExpiredSignatureError:
            raise _jwt_error(
                "'Expiration time' claim ('exp') must be a numeric value representing "
                "the future time at which the assertion expires"
            ) from None
        except jwt.PyJWTError:
            raise _jwt_error() from None
        iat, exp = claims["iat"], claims["exp"]
        if not isinstance(iat, int | float) or iat > time.time() + IAT_LEEWAY:
            raise _jwt_error("'Issued at' claim ('iat') must be an Integer representing a time in the past")
        if exp - iat > MAX_JWT_LIFETIME:
            raise _jwt_error("'Expiration time' claim ('exp') is too far in the future")
        if str(claims["iss"]) != str(self.app_id):
            raise _jwt_error()
        return claims

    def _require_app(self, ctx: _Ctx) -> None:
        if ctx.auth_kind != "jwt":
            raise _jwt_error()
        self._verify_jwt(ctx.credential)

    def _valid_token(self, credential: str | None) -> _Token | None:
        with self.lock:
            token = self._tokens.get(credential or "")
        if token is None or token.expires_at <= time.time():
            return None
        return token

    def _token_can_access(self, token: _Token, full_name: str) -> bool:
        with self.lock:
            allowed = self.installations.get(token.installation_id, set())
            in_scope = token.repositories is None or full_name in token.repositories
            return full_name in allowed and in_scope and full_name in self._repos

    def _require_repo(self, ctx: _Ctx, owner: str, repo: str) -> str:
        full_name = f"{owner}/{repo}"
        if ctx.auth_kind is None:
            raise _HTTPError(401, _message("Requires authentication"))
        if ctx.auth_kind == "jwt":
            self._verify_jwt(ctx.credential)
            raise _HTTPError(403, _message("Resource not accessible by integration"))
        token = self._valid_token(ctx.credential)
        if token is None:
            raise _HTTPError(401, _message("Bad credentials"))
        if not self._token_can_access(token, full_name):
            raise _not_found()
        return full_name

    def _require_permission(self, ctx: _Ctx, name: str, level: str) -> None:
        """After `_require_repo`: the token must carry `name` at `level` ("read" or "write")."""
        token = self._valid_token(ctx.credential)
        granted = token.permissions.get(name) if token is not None else None
        if granted != "write" and (level == "write" or granted != "read"):
            raise _HTTPError(403, _message("Resource not accessible by integration"))

    def _mint_token(
        self,
        installation_id: int,
        repositories: frozenset[str] | None,
        ttl: float,
        permissions: dict[str, str] | None = None,
    ) -> _Token:
        value = "ghs_" + "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(36))
        with self.lock:
            granted = dict(self.permissions if permissions is None else permissions)
        token = _Token(value, installation_id, time.time() + ttl, repositories, granted)
        with self.lock:
            self._tokens[value] = token
            self.issued_tokens.append(value)
        return token

    # ------------------------------------------------------------------ app endpoints

    async def _get_app(self, ctx: _Ctx) -> _Result:
        self._require_app(ctx)
        return 200, {"id": self.app_id, "slug": self.app_slug, "name": self.app_slug}

    async def _list_installations(self, ctx: _Ctx) -> _Result:
        self._require_app(ctx)
        with self.lock:
            return 200, [self._installation_object(i) for i in sorted(self.installations)]

    async def _get_installation(self, ctx: _Ctx, installation_id: int) -> _Result:
        self._require_app(ctx)
        with self.lock:
            if installation_id not in self.installations:
                raise _not_found()
            return 200, self._installation_object(installation_id)

    async def _create_token(self, ctx: _Ctx, installation_id: int) -> _Result:
        self._require_app(ctx)
        body = ctx.json if ctx.json is not None else {}
        _require_object(body)
        with self.lock:
            if installation_id not in self.installations:
                raise _not_found()
            scope = self._token_scope(installation_id, body.get("repositories"))
            permissions = self._token_permissions(body.get("permissions"))
        token = self._mint_token(installation_id, scope, TOKEN_TTL, permissions)
        return 201, {
            "token": token.token,
            "expires_at": _now_iso(token.expires_at),
            "permissions": token.permissions,
            "repository_selection": "selected",
        }

    def _token_permissions(self, requested: Any) -> dict[str, str] | None:
        """A narrower set than the installation's, as asked for; None: all the installation has."""
        if not requested:
            return None
        if not isinstance(requested, dict):
            raise _invalid(['"permissions" must be an object.'])
        order = {"read": 1, "write": 2}
        for name, level in requested.items():
            if order.get(level, 3) > order.get(self.permissions.get(name, ""), 0):
                raise _HTTPError(422, _message("The permissions requested are not granted to this installation."))
        return dict(requested)

    def _token_scope(self, installation_id: int, names: Any) -> frozenset[str] | None:
        if names is None:
            return None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise _invalid(['"repositories" must be an array of strings.'])
        by_name = {full.split("/", 1)[1]: full for full in self.installations[installation_id]}
        if any(name not in by_name for name in names):
            raise _HTTPError(
                422,
                _message(
                    "There is at least one repository that does not exist or is not "
                    "accessible to the parent installation."
                ),
            )
        return frozenset(by_name[name] for name in names)

    def _installation_object(self, installation_id: int) -> JsonDict:
        repos = sorted(self.installations[installation_id])
        owner = repos[0].split("/")[0] if repos else "unknown"
        return {
            "id": installation_id,
            "app_id": self.app_id,
            "app_slug": self.app_slug,
            "account": {"login": owner, "type": "Organization"},
            "repository_selection": "selected",
            "permissions": dict(self.permissions),
            "access_tokens_url": f"{self.url}/app/installations/{installation_id}/access_tokens",
        }

    async def _get_repo_installation(self, ctx: _Ctx, owner: str, repo: str) -> _Result:
        self._require_app(ctx)
        full_name = f"{owner}/{repo}"
        with self.lock:
            for installation_id in sorted(self.installations):
                if full_name in self.installations[installation_id] and full_name in self._repos:
                    return 200, self._installation_object(installation_id)
        raise _not_found()

    # ------------------------------------------------------------------ repo / pulls

    async def _get_repo(self, ctx: _Ctx, owner: str, repo: str) -> _Result:
        full_name = self._require_repo(ctx, owner, repo)
        with self.lock:
            return 200, copy.deepcopy(self._repos[full_name])

    async def _get_pull(self, ctx: _Ctx, owner: str, repo: str, number: int) -> _Result:
        full_name = self._require_repo(ctx, owner, repo)
        with self.lock:
            pull = self.pulls.get((full_name, number))
            if pull is None:
                raise _not_found()
            return 200, copy.deepcopy(pull)

    def _repo_object(self, full_name: str, *, default_branch: str = "main", fork: bool = False) -> JsonDict:
        owner, name = full_name.split("/", 1)
        return {
            "id": next(self._repo_ids),
            "name": name,
            "full_name": full_name,
            "owner": {"login": owner, "type": "Organization"},
            "private": True,
            "fork": fork,
            "html_url": f"{self.url}/{full_name}",
            "url": f"{self.url}/repos/{full_name}",
            "clone_url": f"{self.url}/{full_name}.git",
            "default_branch": default_branch,
        }

    def _pull_object(
        self,
        full_name: str,
        number: int,
        *,
        head: tuple[str, str, str | None],
        base: tuple[str, str],
        fork: bool,
        draft: bool,
        title: str | None,
    ) -> JsonDict:
        head_sha, head_ref, head_repo = head
        base_sha, base_ref = base
        base_repo = copy.deepcopy(self._repos[full_name])
        if fork:
            fork_name = head_repo or f"contributor/{full_name.split('/', 1)[1]}"
            head_repo_obj = self._repo_object(fork_name, fork=True)
        else:
            head_repo_obj = copy.deepcopy(base_repo)
        return {
            "id": 900_000 + number,
            "number": number,
            "state": "open",
            "draft": draft,
            "locked": False,
            "title": title or f"Pull request #{number}",
            "body": None,
            "user": {"login": "contributor", "type": "User"},
            "url": f"{self.url}/repos/{full_name}/pulls/{number}",
            "html_url": f"{self.url}/{full_name}/pull/{number}",
            "merged": False,
            "mergeable": None,
            "head": {
                "label": f"{head_repo_obj['owner']['login']}:{head_ref}",
                "ref": head_ref,
                "sha": head_sha,
                "repo": head_repo_obj,
            },
            "base": {
                "label": f"{base_repo['owner']['login']}:{base_ref}",
                "ref": base_ref,
                "sha": base_sha,
                "repo": base_repo,
            },
        }

    # ------------------------------------------------------------------ pulls opened through the API

    async def _list_pulls(self, ctx: _Ctx, owner: str, repo: str) -> _Result:
        """`state` (open by default), `head` ("owner:branch"; GitHub ignores a bare branch name) and `base`."""
        full_name = self._require_repo(ctx, owner, repo)
        self._require_permission(ctx, "pull_requests", "read")
        query = ctx.request.query_params
        state, head, base = query.get("state", "open"), query.get("head"), query.get("base")
        if state not in PULL_STATES:
            raise _invalid([f'"state" must be one of {", ".join(PULL_STATES)}; got {state!r}.'])
        with self.lock:
            pulls = [
                copy.deepcopy(pull)
                for (repo_name, _), pull in sorted(self.pulls.items(), reverse=True)
                if repo_name == full_name
                and state in ("all", pull["state"])
                and (head is None or ":" not in head or pull["head"]["label"] == head)
                and (base is None or pull["base"]["ref"] == base)
            ]
        page, headers = self._paginate(ctx.request, pulls)
        return 200, page, headers

    async def _create_pull(self, ctx: _Ctx, owner: str, repo: str) -> _Result:
        full_name = self._require_repo(ctx, owner, repo)
        self._require_permission(ctx, "pull_requests", "write")
        body = _require_object(ctx.json)
        for key in ("title", "head", "base"):
            if not isinstance(body.get(key), str) or not body[key].strip():
                raise _pull_invalid(key, "missing_field")
        if body.get("body") is not None and not isinstance(body["body"], str):
            raise _invalid(['"body" must be a string.'])
        head_owner, _, branch = body["head"].rpartition(":")
        base = body["base"]
        if head_owner not in ("", owner):  # pull requests from forks are not opened through this fake
            raise _pull_invalid("head")
        head_sha = await self._ref_sha(full_name, f"refs/heads/{branch}")
        if head_sha is None:
            raise _pull_invalid("head")
        base_sha = await self._ref_sha(full_name, f"refs/heads/{base}")
        if base_sha is None:
            raise _pull_invalid("base")
        if await self._is_ancestor(full_name, head_sha, base_sha):
            raise _pull_custom(f"No commits between {base} and {branch}")
        label = f"{owner}:{branch}"
        with self.lock:
            for (repo_name, _), pull in self.pulls.items():
                same = pull["head"]["label"] == label and pull["base"]["ref"] == base
                if repo_name == full_name and pull["state"] == "open" and same:
                    raise _pull_custom(f"A pull request already exists for {label}.")
            number = 1 + max((n for repo_name, n in self._issues if repo_name == full_name), default=0)
            pull = self._pull_object(
                full_name,
                number,
                head=(head_sha, branch, None),
                base=(base_sha, base),
                fork=False,
                draft=bool(body.get("draft")),
                title=body["title"],
            )
            pull["body"] = body.get("body")
            pull["user"] = {"login": self.bot_login, "type": "Bot", "id": BOT_USER_ID_BASE + self.app_id}
            self.pulls[(full_name, number)] = pull
            self._issues.add((full_name, number))
            self.created_pulls.append(pull)
            created = copy.deepcopy(pull)
        await self._git_checked(full_name, "update-ref", f"refs/pull/{number}/head", head_sha)
        return 201, created

    async def _update_pull(self, ctx: _Ctx, owner: str, repo: str, number: int) -> _Result:
        """`title`, `body` and `state` (open/closed) of a pull request."""
        full_name = self._require_repo(ctx, owner, repo)
        self._require_permission(ctx, "pull_requests", "write")
        body = _require_object(ctx.json)
        errors = [
            f'"{key}" must be a string.'
            for key in ("title", "body")
            if key in body and body[key] is not None and not isinstance(body[key], str)
        ]
        if body.get("state", "open") not in ("open", "closed"):
            errors.append('"state" must be one of open, closed.')
        if errors:
            raise _invalid(errors)
        with self.lock:
            pull = self.pulls.get((full_name, number))
            if pull is None:
                raise _not_found()
            pull.update({key: body[key] for key in ("title", "body", "state") if key in body})
            return 200, copy.deepcopy(pull)

    async def _follow_branch(self, full_name: str, ref: str, sha: str) -> None:
        """Open pull requests of this repository whose head or base is the branch `ref` move with it."""
        branch = ref.removeprefix("refs/heads/")
        if branch == ref:
            return
        moved: list[int] = []
        with self.lock:
            for (repo_name, number), pull in self.pulls.items():
                if repo_name != full_name or pull["state"] != "open":
                    continue
                if pull["base"]["ref"] == branch:
                    pull["base"]["sha"] = sha
                if pull["head"]["ref"] == branch and not pull["head"]["repo"]["fork"]:
                    pull["head"]["sha"] = sha
                    moved.append(number)
        for number in moved:
            await self._git_checked(full_name, "update-ref", f"refs/pull/{number}/head", sha)

    # ------------------------------------------------------------------ check runs

    async def _create_check_run(self, ctx: _Ctx, owner: str, repo: str) -> _Result:
        full_name = self._require_repo(ctx, owner, repo)
        body = _require_object(ctx.json)
        errors = _check_run_errors(body, creating=True)
        if errors:
            raise _invalid(errors)
        sha = body["head_sha"]
        if not await self._commit_exists(full_name, sha):
            raise _HTTPError(422, _message(f"No commit found for SHA: {sha}"))
        with self.lock:
            run = self._new_check_run(full_name, body)
            return 201, self._public_run(run)

    async def _update_check_run(self, ctx: _Ctx, owner: str, repo: str, run_id: int) -> _Result:
        full_name = self._require_repo(ctx, owner, repo)
        body = _require_object(ctx.json)
        errors = _check_run_errors(body, creating=False)
        if errors:
            raise _invalid(errors)
        with self.lock:
            run = self._run_in_repo(full_name, run_id)
            self._apply_check_run_body(run, body, creating=False)
            return 200, self._public_run(run)

    async def _get_check_run(self, ctx: _Ctx, owner: str, repo: str, run_id: int) -> _Result:
        full_name = self._require_repo(ctx, owner, repo)
        with self.lock:
            return 200, self._public_run(self._run_in_repo(full_name, run_id))

    async def _list_annotations(self, ctx: _Ctx, owner: str, repo: str, run_id: int) -> _Result:
        full_name = self._require_repo(ctx, owner, repo)
        with self.lock:
            annotations = copy.deepcopy(self._run_in_repo(full_name, run_id)["annotations"])
        page, headers = self._paginate(ctx.request, annotations)
        return 200, page, headers

    async def _list_check_runs_for_ref(self, ctx: _Ctx, owner: str, repo: str, ref: str) -> _Result:
        full_name = self._require_repo(ctx, owner, repo)
        sha = ref if _SHA_RE.fullmatch(ref) else await self._rev_parse(full_name, ref)
        if sha is None:
            raise _HTTPError(422, _message(f"No commit found for SHA: {ref}"))
        query = ctx.request.query_params
        with self.lock:
            runs = [self._public_run(run) for run in reversed(self.check_runs_for(full_name, sha))]
        if query.get("check_name"):
            runs = [run for run in runs if run["name"] == query["check_name"]]
        if query.get("status"):
            runs = [run for run in runs if run["status"] == query["status"]]
        if query.get("filter", "latest") == "latest":
            seen: set[str] = set()
            runs = [run for run in runs if not (run["name"] in seen or seen.add(run["name"]))]
        page, headers = self._paginate(ctx.request, runs)
        return 200, {"total_count": len(runs), "check_runs": page}, headers

    def _run_in_repo(self, full_name: str, run_id: int) -> JsonDict:
        if self._check_run_repo.get(run_id) != full_name:
            raise _not_found()
        return self.check_runs[run_id]

    @staticmethod
    def _public_run(run: JsonDict) -> JsonDict:
        return copy.deepcopy({k: v for k, v in run.items() if k not in ("annotations", "history")})

    def _new_check_run(self, full_name: str, body: JsonDict) -> JsonDict:
        run_id = next(self._run_ids)
        api_url = f"{self.url}/repos/{full_name}/check-runs/{run_id}"
        run: JsonDict = {
            "id": run_id,
            "node_id": f"CR_fake{run_id}",
            "head_sha": body["head_sha"],
            "external_id": "",
            "url": api_url,
            "html_url": f"{self.url}/{full_name}/runs/{run_id}",
            "details_url": None,
            "status": "queued",
            "conclusion": None,
            "started_at": _now_iso(),
            "completed_at": None,
            "output": {
                "title": None,
                "summary": None,
                "text": None,
                "annotations_count": 0,
                "annotations_url": f"{api_url}/annotations",
            },
            "name": body["name"],
            "check_suite": {"id": 1},
            "app": {"id": self.app_id, "slug": self.app_slug, "name": self.app_slug},
            "pull_requests": self._pulls_for_sha(full_name, body["head_sha"]),
            "annotations": [],
            "history": [],
        }
        self.check_runs[run_id] = run
        self._check_run_repo[run_id] = full_name
        self._apply_check_run_body(run, body, creating=True)
        return run

    def _pulls_for_sha(self, full_name: str, sha: str) -> list[JsonDict]:
        return [
            {
                "id": pull["id"],
                "number": pull["number"],
                "url": pull["url"],
                "head": {"ref": pull["head"]["ref"], "sha": pull["head"]["sha"]},
                "base": {"ref": pull["base"]["ref"], "sha": pull["base"]["sha"]},
            }
            for (repo, _), pull in sorted(self.pulls.items())
            if repo == full_name and pull["head"]["sha"] == sha and not pull["head"]["repo"]["fork"]
        ]

    def _apply_check_run_body(self, run: JsonDict, body: JsonDict, *, creating: bool) -> None:
        for key in ("name", "details_url", "external_id", "started_at", "actions"):
            if key in body:
                run[key] = body[key]
        self._apply_status(run, body, creating=creating)
        if "output" in body:
            self._apply_output(run, body["output"])
        run["history"].append(copy.deepcopy(body))

    def _apply_status(self, run: JsonDict, body: JsonDict, *, creating: bool) -> None:
        status, conclusion = body.get("status"), body.get("conclusion")
        if conclusion is not None:
            run["status"], run["conclusion"] = "completed", conclusion
            run["completed_at"] = body.get("completed_at") or _now_iso()
        elif status is not None:
            if not creating and run["status"] == "completed" and status != "completed":
                self.reopened_runs.append(run["id"])
            run["status"], run["conclusion"], run["completed_at"] = status, None, None

    @staticmethod
    def _apply_output(run: JsonDict, output: JsonDict) -> None:
        current = run["output"]
        current["title"], current["summary"] = output["title"], output["summary"]
        current["text"] = output.get("text", current["text"])
        run["annotations"].extend(copy.deepcopy(output.get("annotations") or []))
        current["annotations_count"] = len(run["annotations"])

    # ------------------------------------------------------------------ comments

    async def _list_comments(self, ctx: _Ctx, owner: str, repo: str, number: int) -> _Result:
        full_name = self._require_repo(ctx, owner, repo)
        self._require_issue(full_name, number)
        comments = [self._public_comment(c) for c in self.comments_on(full_name, number)]
        page, headers = self._paginate(ctx.request, comments)
        return 200, page, headers

    async def _create_comment(self, ctx: _Ctx, owner: str, repo: str, number: int) -> _Result:
        full_name = self._require_repo(ctx, owner, repo)
        self._require_issue(full_name, number)
        body = _comment_body(ctx.json)
        with self.lock:
            comment = self._new_comment(full_name, number, body, user=None)
            return 201, self._public_comment(comment)

    async def _get_comment(self, ctx: _Ctx, owner: str, repo: str, comment_id: int) -> _Result:
        full_name = self._require_repo(ctx, owner, repo)
        with self.lock:
            return 200, self._public_comment(self._comment_in_repo(full_name, comment_id))

    async def _update_comment(self, ctx: _Ctx, owner: str, repo: str, comment_id: int) -> _Result:
        full_name = self._require_repo(ctx, owner, repo)
        body = _comment_body(ctx.json)
        with self.lock:
            comment = self._comment_in_repo(full_name, comment_id)
            if comment["user"]["login"] != self.bot_login:
                self.foreign_comment_edits.append(comment_id)
            comment["body"], comment["updated_at"] = body, _now_iso()
            return 200, self._public_comment(comment)

    async def _delete_comment(self, ctx: _Ctx, owner: str, repo: str, comment_id: int) -> _Result:
        full_name = self._require_repo(ctx, owner, repo)
        with self.lock:
            self._comment_in_repo(full_name, comment_id)
            del self.comments[comment_id]
        return 204, None

    def _require_issue(self, full_name: str, number: int) -> None:
        with self.lock:
            if (full_name, number) not in self._issues:
                raise _not_found()

    def _comment_in_repo(self, full_name: str, comment_id: int) -> JsonDict:
        comment = self.comments.get(comment_id)
        if comment is None or comment["repo"] != full_name:
            raise _not_found()
        return comment

    def _new_comment(self, full_name: str, number: int, body: str, *, user: str | None) -> JsonDict:
        comment_id = next(self._comment_ids)
        now = _now_iso()
        author = (
            {"login": self.bot_login, "type": "Bot", "id": 41_000_000 + self.app_id}
            if user is None
            else {"login": user, "type": "User", "id": 1000 + len(user)}
        )
        base = self._base_url or "http://fake-github.invalid"
        comment: JsonDict = {
            "id": comment_id,
            "node_id": f"IC_fake{comment_id}",
            "url": f"{base}/repos/{full_name}/issues/comments/{comment_id}",
            "html_url": f"{base}/{full_name}/pull/{number}#issuecomment-{comment_id}",
            "issue_url": f"{base}/repos/{full_name}/issues/{number}",
            "body": body,
            "user": author,
            "author_association": "NONE",
            "created_at": now,
            "updated_at": now,
            "issue_number": number,
            "repo": full_name,
        }
        self.comments[comment_id] = comment
        return comment

    @staticmethod
    def _public_comment(comment: JsonDict) -> JsonDict:
        return copy.deepcopy({k: v for k, v in comment.items() if k not in ("issue_number", "repo")})

    # ------------------------------------------------------------------ pagination

    def _paginate(self, request: Request, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
        query = dict(request.query_params)
        per_page = min(max(_int_param(query.get("per_page"), DEFAULT_PER_PAGE), 1), MAX_PER_PAGE)
        page = max(_int_param(query.get("page"), 1), 1)
        last = max(1, math.ceil(len(items) / per_page))

        def link(number: int, rel: str) -> str:
            params = {**query, "per_page": str(per_page), "page": str(number)}
            return f'<{self.url}{request.url.path}?{urlencode(params)}>; rel="{rel}"'

        links: list[str] = []
        if page > 1:
            links.append(link(min(page - 1, last), "prev"))
        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links.append(link(1, "first"))
        headers = {"Link": ", ".join(links)} if links else {}
        return items[(page - 1) * per_page : page * per_page], headers

    # ------------------------------------------------------------------ unknown routes

    async def _unknown_endpoint(self, ctx: _Ctx, path: str) -> _Result:
        raise _not_found()

    # ------------------------------------------------------------------ git data (blobs, trees, commits, refs)

    async def _create_blob(self, ctx: _Ctx, owner: str, repo: str) -> _Result:
        full_name = self._require_repo(ctx, owner, repo)
        self._require_permission(ctx, "contents", "write")
        body = _require_object(ctx.json)
        content, encoding = body.get("content"), body.get("encoding", "utf-8")
        if not isinstance(content, str):
            raise _invalid([_missing("content") if content is None else '"content" must be a string.'])
        if encoding not in ("utf-8", "base64"):
            raise _invalid([f'"encoding" must be one of utf-8, base64; got {encoding!r}.'])
        try:
            data = base64.b64decode(content, validate=True) if encoding == "base64" else content.encode()
        except ValueError:
            raise _invalid(['"content" is not valid Base64.']) from None
        sha = await self._write_blob(full_name, data)
        return 201, {"url": f"{self.url}/repos/{full_name}/git/blobs/{sha}", "sha": sha}

    async def _create_tree(self, ctx: _Ctx, owner: str, repo: str) -> _Result:
        full_name = self._require_repo(ctx, owner, repo)
        self._require_permission(ctx, "contents", "write")
        body = _require_object(ctx.json)
        entries = body.get("tree")
        if not isinstance(entries, list):
            raise _invalid([_missing("tree") if entries is None else '"tree" must be an array.'])
        errors = [
            error for i, entry in enumerate(entries) for error in _tree_entry_errors(f"tree[{i}]", entry)
        ]
        if errors:
            raise _invalid(errors)
        base_tree = body.get("base_tree")
        tree: FlatTree = {}
        if base_tree is not None:
            if not isinstance(base_tree, str) or await self._object_type(full_name, base_tree) != "tree":
                raise _HTTPError(422, _message("base_tree is not a valid tree oid"))
            tree = await self._flat_tree(full_name, base_tree)
        for entry in entries:
            tree = await self._apply_tree_entry(full_name, tree, entry)
        sha = await self._write_tree(full_name, tree)
        return 201, await self._tree_object(full_name, sha)

    async def _apply_tree_entry(self, full_name: str, tree: FlatTree, entry: JsonDict) -> FlatTree:
        path, mode, kind = entry["path"], entry["mode"], entry["type"]
        if _malformed_path(path):
            raise _HTTPError(422, _message("tree.path contains a malformed path component"))
        if "content" in entry:
            return _with(
                tree, path, {path: (mode, await self._write_blob(full_name, entry["content"].encode()))}
            )
        sha = entry["sha"]
        if sha is None:
            return _without(tree, path)
        if (
            kind != "commit" and await self._object_type(full_name, sha) != kind
        ):  # a submodule's commit may live elsewhere
            raise _HTTPError(422, _message(f"tree.sha {sha} is not a valid {kind}"))
        if kind == "tree":
            below = await self._flat_tree(full_name, sha)
            return _with(tree, path, {f"{path}/{sub}": value for sub, value in below.items()})
        return _with(tree, path, {path: (mode, sha)})

    async def _create_commit(self, ctx: _Ctx, owner: str, repo: str) -> _Result:
        full_name = self._require_repo(ctx, owner, repo)
        self._require_permission(ctx, "contents", "write")
        body = _require_object(ctx.json)
        errors = [_missing(key) for key in ("message", "tree") if key not in body]
        errors += [
            f'"{key}" must be a string.'
            for key in ("message", "tree")
            if key in body and not isinstance(body[key], str)
        ]
        parents = body.get("parents", [])
        if not isinstance(parents, list) or not all(isinstance(parent, str) for parent in parents):
            errors.append('"parents" must be an array of strings.')
        errors += _signature_errors("author", body.get("author")) + _signature_errors(
            "committer", body.get("committer")
        )
        if errors:
            raise _invalid(errors)
        if not all(_SHA_RE.fullmatch(parent) for parent in parents):
            raise _HTTPError(
                422,
                _message(
                    "Each SHA in the 'parents' parameter must be exactly 40 characters and contain only [0-9a-f]."
                ),
            )
        if await self._object_type(full_name, body["tree"]) != "tree":
            raise _HTTPError(422, _message("Tree SHA does not exist"))
        for parent in parents:
            if await self._object_type(full_name, parent) != "commit":
                raise _HTTPError(422, _message("Parent SHA does not exist or is not a commit object"))
        author = body.get("author") or {"name": self.bot_login, "email": self._bot_email()}
        committer = body.get("committer") or author
        env: dict[str, str] = {}
        for role, who in (("AUTHOR", author), ("COMMITTER", committer)):
            env[f"GIT_{role}_NAME"], env[f"GIT_{role}_EMAIL"] = who["name"], who["email"]
            if who.get("date"):
                env[f"GIT_{role}_DATE"] = who["date"]
        args = ["commit-tree", body["tree"], *(arg for parent in parents for arg in ("-p", parent))]
        sha = (
            (await self._git_checked(full_name, *args, stdin=body["message"].encode(), env=env))
            .decode()
            .strip()
        )
        return 201, await self._commit_object(full_name, sha)

    async def _get_commit(self, ctx: _Ctx, owner: str, repo: str, sha: str) -> _Result:
        full_name = self._require_repo(ctx, owner, repo)
        self._require_permission(ctx, "contents", "read")
        if await self._object_type(full_name, sha) != "commit":
            raise _not_found()
        return 200, await self._commit_object(full_name, sha)

    async def _create_ref(self, ctx: _Ctx, owner: str, repo: str) -> _Result:
        full_name = self._require_repo(ctx, owner, repo)
        self._require_permission(ctx, "contents", "write")
        body = _require_object(ctx.json)
        errors = [
            _missing(key) if key not in body else f'"{key}" must be a string.'
            for key in ("ref", "sha")
            if not isinstance(body.get(key), str)
        ]
        if errors:
            raise _invalid(errors)
        ref, sha = body["ref"], body["sha"]
        if not ref.startswith("refs/") or ref.count("/") < 2:
            raise _HTTPError(
                422, _message("Reference name must contain at least three slash-separated components.")
            )
        code, _, _ = await self._git_bytes(full_name, "check-ref-format", ref)
        if code != 0:
            raise _HTTPError(422, _message(f"{ref} is not a valid ref name."))
        if await self._object_type(full_name, sha) is None:
            raise _HTTPError(422, _message("Object does not exist"))
        if await self._ref_sha(full_name, ref) is not None:
            raise _HTTPError(422, _message("Reference already exists"))
        code, _, _ = await self._git_bytes(
            full_name, "update-ref", ref, sha, ""
        )  # "": only if it does not exist
        if code != 0:
            exists = await self._ref_sha(full_name, ref) is not None
            raise _HTTPError(
                422, _message("Reference already exists" if exists else "Reference update failed")
            )
        await self._follow_branch(full_name, ref, sha)
        return 201, await self._ref_object(full_name, ref, sha)

    async def _get_ref(self, ctx: _Ctx, owner: str, repo: str, ref: str) -> _Result:
        full_name = self._require_repo(ctx, owner, repo)
        self._require_permission(ctx, "contents", "read")
        sha = await self._ref_sha(full_name, f"refs/{ref}")
        if sha is None:
            raise _not_found()
        return 200, await self._ref_object(full_name, f"refs/{ref}", sha)

    async def _update_ref(self, ctx: _Ctx, owner: str, repo: str, ref: str) -> _Result:
        full_name = self._require_repo(ctx, owner, repo)
        self._require_permission(ctx, "contents", "write")
        body = _require_object(ctx.json)
        sha, force = body.get("sha"), body.get("force", False)
        if not isinstance(sha, str):
            raise _invalid([_missing("sha") if sha is None else '"sha" must be a string.'])
        if not isinstance(force, bool):
            raise _invalid(['"force" must be a boolean.'])
        full_ref = f"refs/{ref}"
        current = await self._ref_sha(full_name, full_ref)
        if current is None:
            raise _HTTPError(422, _message("Reference does not exist"))
        if await self._object_type(full_name, sha) is None:
            raise _HTTPError(422, _message("Object does not exist"))
        if not force and not await self._is_ancestor(full_name, current, sha):
            raise _HTTPError(422, _message("Update is not a fast forward"))
        code, _, _ = await self._git_bytes(
            full_name, "update-ref", full_ref, sha, current
        )  # compare-and-swap
        if code != 0:
            raise _HTTPError(422, _message("Reference update failed"))
        await self._follow_branch(full_name, full_ref, sha)
        return 200, await self._ref_object(full_name, full_ref, sha)

    # git plumbing behind the Git Data API

    def _bot_email(self) -> str:
        return f"{BOT_USER_ID_BASE + self.app_id}+{self.bot_login}@users.noreply.github.com"

    async def _git_bytes(
        self, full_name: str, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
    ) -> tuple[int, bytes, str]:
        proc = await asyncio.create_subprocess_exec(
            "git",
            "--git-dir",
            str(self.repo_path(full_name)),
            *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**_git_env(), **(env or {})},
        )
        stdout, stderr = await proc.communicate(stdin)
        return proc.returncode or 0, stdout, stderr.decode(errors="replace").strip()

    async def _git_checked(
        self, full_name: str, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
    ) -> bytes:
        code, stdout, stderr = await self._git_bytes(full_name, *args, stdin=stdin, env=env)
        if code != 0:
            raise RuntimeError(f"git {' '.join(args)} failed in {full_name}: {stderr}")
        return stdout

    async def _object_type(self, full_name: str, sha: str) -> str | None:
        if not _SHA_RE.fullmatch(sha):
            return None
        code, out, _ = await self._git_bytes(full_name, "cat-file", "-t", sha)
        return out.decode().strip() if code == 0 else None

    async def _ref_sha(self, full_name: str, ref: str) -> str | None:
        code, out, _ = await self._git_bytes(full_name, "show-ref", "--verify", "--hash", ref)
        return out.decode().strip() if code == 0 else None

    async def _is_ancestor(self, full_name: str, ancestor: str, descendant: str) -> bool:
        code, _, _ = await self._git_bytes(
            full_name, "merge-base", "--is-ancestor", ancestor, descendant
        )
        return code == 0

    async def _write_blob(self, full_name: str, data: bytes) -> str:
        return (
            (await self._git_checked(full_name, "hash-object", "-w", "--stdin", stdin=data))
            .decode()
            .strip()
        )

    async def _flat_tree(self, full_name: str, tree: str) -> FlatTree:
        out = await self._git_checked(full_name, "ls-tree", "-r", "-z", tree)
        flat: FlatTree = {}
        for record in filter(None, out.split(b"\0")):
            meta, _, path = record.partition(b"\t")
            mode, _, sha = meta.decode().split()
            flat[path.decode("utf-8", "surrogateescape")] = (mode, sha)
        return flat

    async def _write_tree(self, full_name: str, tree: FlatTree) -> str:
        """Write `tree` with a temporary index (`GIT_INDEX_FILE`): `update-index --index-info`, `write-tree`."""
        lines = b"".join(
            f"{mode} {sha}\t{path}".encode("utf-8", "surrogateescape") + b"\0"
            for path, (mode, sha) in sorted(tree.items())
        )
        with tempfile.TemporaryDirectory(prefix="fake-github-index-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            await self._git_checked(full_name, "read-tree", "--empty", env=env)
            await self._git_checked(
                full_name, "update-index", "-z", "--index-info", stdin=lines, env=env
            )
            return (await self._git_checked(full_name, "write-tree", env=env)).decode().strip()

    async def _tree_object(self, full_name: str, sha: str) -> JsonDict:
        out = await self._git_checked(full_name, "ls-tree", "-l", "-z", sha)
        entries: list[JsonDict] = []
        for record in filter(None, out.split(b"\0")):
            meta, _, path = record.partition(b"\t")
            mode, kind, entry_sha, size = meta.decode().split()
            entry: JsonDict = {
                "path": path.decode("utf-8", "replace"),
                "mode": mode,
                "type": kind,
                "sha": entry_sha,
            }
            if kind == "blob":
                entry["size"] = int(size)
            if kind in ("blob", "tree"):
                entry["url"] = f"{self.url}/repos/{full_name}/git/{kind}s/{entry_sha}"
            entries.append(entry)
        return {
            "sha": sha,
            "url": f"{self.url}/repos/{full_name}/git/trees/{sha}",
            "tree": entries,
            "truncated": False,
        }

    async def _commit_object(self, full_name: str, sha: str) -> JsonDict:
        fields, message = _parse_commit(await self._git_checked(full_name, "cat-file", "commit", sha))
        api = f"{self.url}/repos/{full_name}"
        tree = fields["tree"][0]
        return {
            "sha": sha,
            "node_id": f"C_fake{sha[:16]}",
            "url": f"{api}/git/commits/{sha}",
            "html_url": f"{self.url}/{full_name}/commit/{sha}",
            "author": _git_signature(fields["author"][0]),
            "committer": _git_signature(fields["committer"][0]),
            "message": message,
            "tree": {"sha": tree, "url": f"{api}/git/trees/{tree}"},
            "parents": [
                {
                    "sha": parent,
                    "url": f"{api}/git/commits/{parent}",
                    "html_url": f"{self.url}/{full_name}/commit/{parent}",
                }
                for parent in fields.get("parent", [])
            ],
            "verification": {
                "verified": False,
                "reason": "unsigned",
                "signature": None,
                "payload": None,
                "verified_at": None,
            },
        }

    async def _ref_object(self, full_name: str, ref: str, sha: str) -> JsonDict:
        api = f"{self.url}/repos/{full_name}"
        kind = await self._object_type(full_name, sha) or "commit"
        return {
            "ref": ref,
            "node_id": f"REF_fake{abs(hash((full_name, ref))) % 10**12}",
            "url": f"{api}/git/{ref}",
            "object": {"type": kind, "sha": sha, "url": f"{api}/git/{kind}s/{sha}"},
        }

    # ------------------------------------------------------------------ git

    def _require_known_repo(self, full_name: str) -> None:
        with self.lock:
            if full_name not in self._repos:
                raise KeyError(f"unknown repository {full_name}; call add_repo() first")

    async def _run_git(self, full_name: str, *args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            "git",
            "--git-dir",
            str(self.repo_path(full_name)),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=_git_env(),
        )
        stdout, _ = await proc.communicate()
        return proc.returncode or 0, stdout.decode().strip()

    async def _commit_exists(self, full_name: str, sha: str) -> bool:
        if not _SHA_RE.fullmatch(sha):
            return False
        code, _ = await self._run_git(full_name, "cat-file", "-e", f"{sha}^{{commit}}")
        return code == 0

    async def _rev_parse(self, full_name: str, ref: str) -> str | None:
        code, out = await self._run_git(full_name, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        return out if code == 0 and _SHA_RE.fullmatch(out) else None

    async def _git_endpoint(self, request: Request) -> Response:
        ctx = self._context(request)
        owner, name, rest = (request.path_params[k] for k in ("owner", "name", "rest"))
        full_name = f"{owner}/{name}"
        try:
            self._check_user_agent(request)
            self._raise_fault(request)
            self._authorize_git(ctx, full_name, rest)
            response = await self._http_backend(request, ctx, full_name, rest)
        except _HTTPError as exc:
            message = exc.body.get("message", "") if isinstance(exc.body, dict) else ""
            response = Response(message + "\n", exc.status, exc.headers, media_type="text/plain")
        except Exception:  # noqa: BLE001
            with self.lock:
                self.server_errors.append(traceback.format_exc())
            response = Response("fake GitHub internal error\n", 500, media_type="text/plain")
        self._record(ctx, response.status_code)
        return response

    def _authorize_git(self, ctx: _Ctx, full_name: str, rest: str) -> None:
        service = ctx.request.query_params.get("service")
        if rest == "git-receive-pack" or service == "git-receive-pack":
            raise _HTTPError(403, _message("Pushing to this fake GitHub is not allowed."))
        challenge = {"WWW-Authenticate": 'Basic realm="GitHub"'}
        if ctx.auth_kind is None and full_name in self.public and self.repo_path(full_name).is_dir():
            return  # an anonymous clone of a public repository, as on GitHub
        if ctx.auth_kind != "basic" or ctx.username != GIT_USERNAME:
            raise _HTTPError(401, _message("Authentication required."), challenge)
        token = self._valid_token(ctx.credential)
        if token is None:
            raise _HTTPError(401, _message("Invalid username or token."), challenge)
        if not self._token_can_access(token, full_name) or not self.repo_path(full_name).is_dir():
            raise _HTTPError(404, _message("Repository not found."))

    async def _http_backend(self, request: Request, ctx: _Ctx, full_name: str, rest: str) -> Response:
        env = cgi_env(
            request, project_root=self.git_root, path_info=f"/{full_name}.git/{rest}", remote_user=ctx.username or ""
        )
        return await http_backend(
            request,
            env,
            on_stderr=self._record_git_stderr,
            no_response=lambda: _HTTPError(500, _message("git http-backend produced no response")),
        )

    def _record_git_stderr(self, text: str) -> None:
        with self.lock:
            self.git_stderr.append(text)


def iter_link_header(header: str) -> Iterable[tuple[str, str]]:
    """Parse an RFC 5988 Link header into (url, rel) pairs (handy in tests)."""
    for part in header.split(","):
        match = re.match(r'\s*<([^>]*)>\s*;\s*rel="([^"]*)"', part)
        if match:
            yield match[1], match[2]
