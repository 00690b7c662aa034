"""The typed subset of GitHub webhook payloads AQE reads (msgspec decodes only these fields)."""

from __future__ import annotations

import msgspec


class Repo(msgspec.Struct):
    full_name: str
    id: int = 0
    clone_url: str = ""
    default_branch: str = "main"
    fork: bool = False


class User(msgspec.Struct):
    login: str = ""
    type: str = "User"


class Installation(msgspec.Struct):
    id: int


class Ref(msgspec.Struct):
    sha: str
    ref: str = ""
    repo: Repo | None = None


class PullRequest(msgspec.Struct):
    number: int
    head: Ref
    base: Ref
    draft: bool = False
    state: str = "open"


class Changes(msgspec.Struct):
    base: dict | None = None


class PullRequestEvent(msgspec.Struct):
    action: str
    pull_request: PullRequest
    repository: Repo
    installation: Installation | None = None
    sender: User = msgspec.field(default_factory=User)
    changes: Changes | None = None


class PushEvent(msgspec.Struct):
    ref: str
    after: str
    repository: Repo
    before: str = ""
    deleted: bool = False
    forced: bool = False
    installation: Installation | None = None
    sender: User = msgspec.field(default_factory=User)


class RepoId(msgspec.Struct):
    id: int


class ShaRef(msgspec.Struct):
    sha: str
    ref: str = ""
    repo: RepoId | None = None


class PullRequestRef(msgspec.Struct):
    number: int
    head: ShaRef
    base: ShaRef


class App(msgspec.Struct):
    id: int = 0
    slug: str = ""


class CheckSuite(msgspec.Struct):
    head_sha: str
    head_branch: str | None = None
    before: str | None = None
    pull_requests: list[PullRequestRef] = []
    app: App | None = None


class CheckSuiteEvent(msgspec.Struct):
    action: str
    check_suite: CheckSuite
    repository: Repo
    installation: Installation | None = None
    sender: User = msgspec.field(default_factory=User)


class CheckRunSuite(msgspec.Struct):
    head_branch: str | None = None


class CheckRun(msgspec.Struct):
    head_sha: str
    name: str = ""
    pull_requests: list[PullRequestRef] = []
    check_suite: CheckRunSuite | None = None
    app: App | None = None


class CheckRunEvent(msgspec.Struct):
    action: str
    check_run: CheckRun
    repository: Repo
    installation: Installation | None = None
    sender: User = msgspec.field(default_factory=User)


class Comment(msgspec.Struct):
    body: str = ""
    author_association: str = "NONE"
    user: User = msgspec.field(default_factory=User)


class Issue(msgspec.Struct):
    number: int
    pull_request: dict | None = None


class IssueCommentEvent(msgspec.Struct):
    action: str
    issue: Issue
    comment: Comment
    repository: Repo
    installation: Installation | None = None
    sender: User = msgspec.field(default_factory=User)


class Account(msgspec.Struct):
    login: str = ""


class InstallationFull(msgspec.Struct):
    id: int
    account: Account = msgspec.field(default_factory=Account)


class RepoName(msgspec.Struct):
    full_name: str


class InstallationEvent(msgspec.Struct):
    action: str
    installation: InstallationFull
    repositories: list[RepoName] | None = None
    repositories_added: list[RepoName] | None = None
    repositories_removed: list[RepoName] | None = None
    sender: User = msgspec.field(default_factory=User)


DECODERS: dict[str, msgspec.json.Decoder] = {
    "pull_request": msgspec.json.Decoder(PullRequestEvent),
    "push": msgspec.json.Decoder(PushEvent),
    "check_suite": msgspec.json.Decoder(CheckSuiteEvent),
    "check_run": msgspec.json.Decoder(CheckRunEvent),
    "issue_comment": msgspec.json.Decoder(IssueCommentEvent),
    "installation": msgspec.json.Decoder(InstallationEvent),
    "installation_repositories": msgspec.json.Decoder(InstallationEvent),
}
