"""The fields AQE reads from GitLab's Push, Merge Request and Note hooks (msgspec ignores the rest)."""

from __future__ import annotations

import msgspec


class Project(msgspec.Struct, kw_only=True):
    path_with_namespace: str
    default_branch: str | None = None


class User(msgspec.Struct, kw_only=True):
    username: str = ""


class Commit(msgspec.Struct, kw_only=True):
    id: str


class PushEvent(msgspec.Struct, kw_only=True):
    before: str
    after: str
    ref: str
    project: Project
    user_username: str = ""


class MergeRequestAttributes(msgspec.Struct, kw_only=True):
    iid: int
    source_branch: str
    target_branch: str
    source_project_id: int
    target_project_id: int
    last_commit: Commit
    state: str = "opened"
    action: str | None = None
    oldrev: str | None = None  # present only when the update pushed code
    draft: bool = False
    work_in_progress: bool = False  # before GitLab 13.x named it draft


class MergeRequestEvent(msgspec.Struct, kw_only=True):
    project: Project  # the target project
    object_attributes: MergeRequestAttributes
    user: User = msgspec.field(default_factory=User)


class NoteAttributes(msgspec.Struct, kw_only=True):
    note: str
    noteable_type: str
    action: str | None = None  # create | update (GitLab 16.11+); absent before


class NoteMergeRequest(msgspec.Struct, kw_only=True):
    iid: int
    source_project_id: int
    target_project_id: int
    source_branch: str
    target_branch: str
    state: str = "opened"
    draft: bool = False


class NoteEvent(msgspec.Struct, kw_only=True):
    project: Project
    object_attributes: NoteAttributes
    user: User = msgspec.field(default_factory=User)
    merge_request: NoteMergeRequest | None = None


DECODERS: dict[str, msgspec.json.Decoder] = {
    "Push Hook": msgspec.json.Decoder(PushEvent),
    "Merge Request Hook": msgspec.json.Decoder(MergeRequestEvent),
    "Note Hook": msgspec.json.Decoder(NoteEvent),
}
