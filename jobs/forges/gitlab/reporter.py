"""Job results -> GitLab: a commit status per agent (`aqe/<agent>`) and one merge request note kept up to date.

GitLab has no check runs: a status carries a state, a one-line description (255 characters) and a link, so the
findings themselves are on the job page the status links to, and summed up in the note.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

from redis.asyncio import Redis

from jobs.forges.gitlab.client import GitLabClient, GitLabError, project_id
from jobs.model import AgentResult, Conclusion, JobRecord, RunRequest
from jobs.reporting import proposal, render
from jobs.reporting.lock import redis_lock

log = logging.getLogger("aqe.gitlab.reporter")

FIELD_LIMIT = 255  # status description, target_url, name and ref
DEVELOPER = 30  # GitLab's access level that may push branches: trusted with `/aqe run` and `/aqe generate-tests`
LISTED_FILES = 100
NOTE_ID_TTL_S = 90 * 24 * 3600
STATES: dict[Conclusion, str] = {"success": "success", "neutral": "success", "failure": "failed",
                                 "cancelled": "canceled", "skipped": "skipped", "timed_out": "failed",
                                 "action_required": "failed"}


def status_state(conclusion: Conclusion) -> str:
    """GitLab's state for a conclusion; GitLab has no neutral, so a neutral check shows as passed, saying so."""
    return STATES[conclusion]


def shown_state(conclusion: Conclusion) -> tuple[str, str]:
    """The state to post and a prefix for its description: GitLab has no neutral, so a neutral check shows as
    passed, saying so (a merge request waiting for a passing pipeline is not held up by it)."""
    if conclusion == "neutral":
        return "success", "neutral: "
    return status_state(conclusion), ""


def one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= FIELD_LIMIT else text[: FIELD_LIMIT - 1] + "…"


def is_benign_transition(exc: GitLabError) -> bool:
    """GitLab refuses to post the state a status already has (`Cannot transition status via :run from :running`)."""
    return exc.status_code == 400 and "Cannot transition status" in exc.message


def status_link(job_url: str, public_url: str, job_id: str) -> str:
    """The job page link when it fits GitLab's 255 characters; the page's address without the link token if not."""
    return job_url if len(job_url) <= FIELD_LIMIT else f"{public_url}/jobs/{job_id}"[:FIELD_LIMIT]


def status_ref(head_ref: str | None, fork: bool, mr_iid: int | None) -> str | None:
    """The ref a status is posted for. A fork's commit is on no branch of the target project, where GitLab then
    answers 404 (References for commit Not Found): its statuses go to the merge request's ref."""
    if fork and mr_iid is not None:
        return f"refs/merge-requests/{mr_iid}/head"
    return head_ref[:FIELD_LIMIT] if head_ref and not fork else None


def generated_tests_branch(iid: int) -> str:
    return f"aqe/generated-tests/mr-{iid}"


def why_tests_cannot_be_proposed(request: RunRequest) -> str | None:
    """Why no merge request with generated tests can be opened for `request`; None when it can."""
    if request.pr_number is None or not request.head_ref:
        return "the run is not of a merge request"
    if request.fork:
        return (f"merge request !{request.pr_number} comes from a fork, and AQE cannot push to a fork's branch "
                f"(`{request.head_ref}`)")
    if not request.trusted:
        return f"`/aqe generate-tests` was asked by {request.sender or 'someone'}, who is not a developer of the project"
    if not request.head_sha:
        return f"the head commit of merge request !{request.pr_number} is not known"
    return None


def file_action(path: str, content: bytes) -> dict[str, str]:
    return {"action": "create", "file_path": path, "encoding": "base64",
            "content": base64.b64encode(content).decode("ascii")}


def proposal_description(request: RunRequest, branch: str, paths: list[str], summary: str, job_url: str) -> str:
    listing = "\n".join(f"- `{path}`" for path in paths[:LISTED_FILES])
    if len(paths) > LISTED_FILES:
        listing += f"\n- … and {len(paths) - LISTED_FILES} more"
    return (f"{render.truncate(summary, 50_000, job_url)}\n\n---\n\n**How this was made.** Asked for with "
            f"`/aqe generate-tests` on !{request.pr_number}: AQE's test-generation agent wrote these tests for its "
            f"head commit {request.head_sha}, and AQE committed them on top of that commit, on `{branch}` "
            f"([job]({job_url})).\n\n{listing}\n\nMerging this merge request adds them to `{request.head_ref}`; "
            "review them like any other code. Commenting `/aqe generate-tests` again replaces this branch with a "
            "new generation.")


class GitLabReporter:
    def __init__(self, gl: GitLabClient, redis: Redis, *, repo: str, head_sha: str, head_ref: str | None,
                 fork: bool, job_id: str, job_url: str, public_url: str, refs: dict[str, int] | None = None,
                 mr_iid: int | None = None) -> None:
        self.gl, self.redis, self.repo, self.project = gl, redis, repo, project_id(repo)
        self.head_sha, self.head_ref, self.fork, self.mr_iid = head_sha, head_ref, fork, mr_iid
        self.job_id, self.job_url = job_id, job_url
        self.target_url = status_link(job_url, public_url, job_id)
        self.refs: dict[str, int] = dict(refs or {})
        self.finished: set[str] = set()

    async def resolve(self, request: RunRequest) -> RunRequest:
        """Read the merge request: a note command carries no head sha, and the merge base is not in any hook."""
        if request.pr_number is None:
            return request
        mr = await self.gl.get(f"/projects/{self.project}/merge_requests/{request.pr_number}")
        if request.trigger == "note.create" and request.sender:
            request.trusted = await self._is_developer(request.sender)
            log.info("job %s: a note of %s (%s) asked for this run", self.job_id, request.sender,
                     "a developer: trusted" if request.trusted else "not a developer of the project")
        request.fork = mr["source_project_id"] != mr["target_project_id"]
        request.draft = bool(mr.get("draft") or mr.get("work_in_progress"))
        if not request.head_sha:  # "/aqe run": analyse the merge request's head as it is now
            request.head_sha, request.head_ref = mr["sha"], mr["source_branch"]
        request.base_ref = mr["target_branch"]
        if not request.base_sha:
            request.base_sha = (mr.get("diff_refs") or {}).get("base_sha") or await self._branch_tip(mr["target_branch"])
        self.head_sha, self.head_ref, self.fork = request.head_sha, request.head_ref, request.fork
        return request

    async def _is_developer(self, username: str) -> bool:
        """Whether `username` may push to the project (Developer or more, inherited from groups too)."""
        async for member in self.gl.pages(f"/projects/{self.project}/members/all", query=username):
            if member.get("username") == username and member.get("state", "active") == "active":
                return int(member.get("access_level", 0)) >= DEVELOPER
        return False

    async def _branch_tip(self, branch: str) -> str | None:
        try:
            found = await self.gl.get(f"/projects/{self.project}/repository/branches/{project_id(branch)}")
        except GitLabError as exc:
            if exc.status_code == 404:
                return None
            raise
        return str(found["commit"]["id"])

    async def _post_status(self, agent: str, state: str, description: str = "",
                           coverage: float | None = None) -> dict[str, Any] | None:
        """Post the agent's status; None when GitLab says it already is in that state."""
        body: dict[str, Any] = {"state": state, "name": f"aqe/{agent}", "target_url": self.target_url,
                                "description": one_line(description)}
        if ref := status_ref(self.head_ref, self.fork, self.mr_iid):
            body["ref"] = ref
        if coverage is not None:
            body["coverage"] = coverage
        try:
            return await self.gl.post(f"/projects/{self.project}/statuses/{self.head_sha}", body)
        except GitLabError as exc:
            if not is_benign_transition(exc):
                raise
            if state in ("pending", "running"):
                return None  # it already is (e.g. a retried job)
            if state == "skipped":  # refused once running: shown as passed, saying it was skipped
                said = description if description.lower().startswith("skipped") else f"skipped: {description}"
                return await self._post_status(agent, "success", said, coverage)
            raise

    async def begin(self, agents: list[str]) -> None:
        for agent in agents:
            if agent in self.refs:  # a retried job keeps the statuses its first try posted
                continue
            status = await self._post_status(agent, "pending", "Queued")
            self.refs[agent] = int(status["id"]) if status else 0

    async def agent_started(self, agent: str) -> None:
        await self._post_status(agent, "running", "Running")

    async def agent_finished(self, result: AgentResult, max_annotations: int = 200) -> None:
        coverage = result.metrics.get("total_percent") if result.agent == "coverage" else None
        state, prefix = shown_state(result.conclusion)
        await self._post_status(result.agent, state, prefix + render.check_title(result),
                                coverage=float(coverage) if isinstance(coverage, int | float) else None)
        self.finished.add(result.agent)

    async def abort(self, conclusion: Conclusion, reason: str) -> None:
        description = {"cancelled": "Cancelled", "timed_out": "Timed out", "skipped": "Skipped"}.get(
            conclusion, "AQE could not finish") + f": {reason}"
        for agent in self.refs:
            if agent in self.finished:
                continue
            try:
                state, _ = shown_state(conclusion)
                await self._post_status(agent, state, description)
                self.finished.add(agent)
            except Exception:  # keep ending the others
                log.exception("could not end status aqe/%s of job %s", agent, self.job_id)

    async def requeue(self, reason: str) -> None:
        """Nothing to post: GitLab lets no status go back from running (or pending) to pending, so each one
        shows what it showed until the retried job moves it on."""
        log.info("job %s: waits for another worker; its GitLab statuses stay as they are", self.job_id)

    async def propose_tests(self, request: RunRequest, files: dict[str, bytes], summary: str) -> str | None:
        """Commit `files` on top of the merge request's head on `aqe/generated-tests/mr-N` (one Commits API call,
        replacing the branch), and open (or update) a merge request from there into the head branch."""
        reason = why_tests_cannot_be_proposed(request)
        if reason is not None:
            log.info("job %s: generated tests not proposed as a merge request: %s", self.job_id, reason)
            return None
        kept = proposal.checked_files(files)
        assert request.pr_number is not None and request.head_ref is not None  # why_tests_cannot_be_proposed
        branch = generated_tests_branch(request.pr_number)
        count = "1 generated test file" if len(kept) == 1 else f"{len(kept)} generated test files"
        await self.gl.post(f"/projects/{self.project}/repository/commits", {
            "branch": branch, "start_sha": request.head_sha, "force": True,
            "commit_message": f"Add {count} for !{request.pr_number}\n\nWritten by AQE's test-generation agent for "
                              f"{request.head_sha}, as asked with `/aqe generate-tests`.\n",
            "actions": [file_action(path, content) for path, content in kept.items()]})
        description = proposal_description(request, branch, list(kept), summary, self.job_url)
        url = await self._open_merge_request(branch, request.head_ref, f"Generated tests for !{request.pr_number}",
                                             description)
        log.info("job %s: %d generated test files proposed in %s", self.job_id, len(kept), url)
        return url

    async def _open_merge_request(self, branch: str, target: str, title: str, description: str) -> str:
        """The URL of the new merge request, or of the open one from `branch` into `target` (its text updated)."""
        mrs = f"/projects/{self.project}/merge_requests"
        try:
            created = await self.gl.post(mrs, {"source_branch": branch, "target_branch": target, "title": title,
                                               "description": description, "remove_source_branch": True})
            return str(created["web_url"])
        except GitLabError as exc:
            if exc.status_code != 409:  # "Another open merge request already exists for this source branch"
                raise
        found = await self.gl.get(mrs, source_branch=branch, target_branch=target, state="opened")
        if not found:
            raise RuntimeError(f"GitLab says a merge request from {branch} into {target} exists, but lists none open")
        updated = await self.gl.put(f"{mrs}/{found[0]['iid']}", {"title": title, "description": description})
        return str(updated["web_url"])

    async def summarise(self, record: JobRecord, extra_prs: set[int]) -> None:
        iids = sorted(({record.request.pr_number} if record.request.pr_number else set()) | extra_prs)
        body = render.comment_body(record, self.job_url, self.head_sha)
        for iid in iids:
            if await self._is_current_head(iid):
                await self._upsert_note(iid, body)

    async def _is_current_head(self, iid: int) -> bool:
        """Results of an older push must not overwrite the note of a newer one."""
        mr = await self.gl.get(f"/projects/{self.project}/merge_requests/{iid}")
        if mr["sha"] != self.head_sha:
            log.info("job %s: MR !%d moved on to %s; note left alone", self.job_id, iid, str(mr["sha"])[:7])
            return False
        return True

    async def _find_note(self, iid: int) -> int | None:
        me = await self.gl.get("/user")
        async for note in self.gl.pages(f"/projects/{self.project}/merge_requests/{iid}/notes", sort="asc",
                                        order_by="created_at"):
            author = (note.get("author") or {}).get("username")
            if not note.get("system") and author == me["username"] and render.COMMENT_MARKER in (note.get("body") or ""):
                return int(note["id"])
        return None

    async def _upsert_note(self, iid: int, body: str) -> None:
        cache_key = f"aqe:comment:gitlab:{self.repo}:{iid}"
        notes = f"/projects/{self.project}/merge_requests/{iid}/notes"
        async with redis_lock(self.redis, f"aqe:lock:comment:gitlab:{self.repo}:{iid}"):
            cached = await self.redis.get(cache_key)
            note_id = int(cached) if cached else await self._find_note(iid)
            if note_id is not None:
                try:
                    await self.gl.put(f"{notes}/{note_id}", {"body": body})
                    await self.redis.set(cache_key, note_id, ex=NOTE_ID_TTL_S)
                    return
                except GitLabError as exc:
                    if exc.status_code != 404:  # deleted by someone: write a new one
                        raise
            created = await self.gl.post(notes, {"body": body})
            await self.redis.set(cache_key, int(created["id"]), ex=NOTE_ID_TTL_S)
