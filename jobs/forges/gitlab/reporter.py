"""Job results -> GitLab: a commit status per agent (`aqe/<agent>`) and one merge request note kept up to date.

GitLab has no check runs: a status carries a state, a one-line description (255 characters) and a link, so the
findings themselves are on the job page the status links to, and summed up in the note.
"""

from __future__ import annotations

import logging
from typing import Any

from redis.asyncio import Redis

from jobs.forges.gitlab.client import GitLabClient, GitLabError, project_id
from jobs.model import AgentResult, Conclusion, JobRecord, RunRequest
from jobs.reporting import render
from jobs.reporting.lock import redis_lock

log = logging.getLogger("aqe.gitlab.reporter")

FIELD_LIMIT = 255  # status description, target_url, name and ref
NOTE_ID_TTL_S = 90 * 24 * 3600
STATES: dict[Conclusion, str] = {"success": "success", "neutral": "success", "failure": "failed",
                                 "cancelled": "canceled", "skipped": "skipped", "timed_out": "failed",
                                 "action_required": "failed"}


def status_state(conclusion: Conclusion) -> str:
    """GitLab's state for a conclusion; GitLab has no neutral, so a neutral check shows as passed, saying so."""
    return STATES[conclusion]


def status_description(result: AgentResult) -> str:
    title = render.check_title(result)
    if result.conclusion == "neutral":
        title = f"neutral: {title}"
    return title if len(title) <= FIELD_LIMIT else title[: FIELD_LIMIT - 1] + "…"


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
        request.fork = mr["source_project_id"] != mr["target_project_id"]
        request.draft = bool(mr.get("draft") or mr.get("work_in_progress"))
        if not request.head_sha:  # "/aqe run": analyse the merge request's head as it is now
            request.head_sha, request.head_ref = mr["sha"], mr["source_branch"]
        request.base_ref = mr["target_branch"]
        if not request.base_sha:
            request.base_sha = (mr.get("diff_refs") or {}).get("base_sha") or await self._branch_tip(mr["target_branch"])
        self.head_sha, self.head_ref, self.fork = request.head_sha, request.head_ref, request.fork
        return request

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
                                "description": description[:FIELD_LIMIT]}
        if ref := status_ref(self.head_ref, self.fork, self.mr_iid):
            body["ref"] = ref
        if coverage is not None:
            body["coverage"] = coverage
        try:
            return await self.gl.post(f"/projects/{self.project}/statuses/{self.head_sha}", body)
        except GitLabError as exc:
            if is_benign_transition(exc):
                return None
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
        await self._post_status(result.agent, status_state(result.conclusion), status_description(result),
                                coverage=float(coverage) if isinstance(coverage, int | float) else None)
        self.finished.add(result.agent)

    async def abort(self, conclusion: Conclusion, reason: str) -> None:
        description = {"cancelled": "Cancelled", "timed_out": "Timed out", "skipped": "Skipped"}.get(
            conclusion, "AQE could not finish") + f": {' '.join(reason.split())}"
        for agent in self.refs:
            if agent in self.finished:
                continue
            try:
                await self._post_status(agent, status_state(conclusion), description)
                self.finished.add(agent)
            except Exception:  # keep ending the others
                log.exception("could not end status aqe/%s of job %s", agent, self.job_id)

    async def requeue(self, reason: str) -> None:
        for agent in self.refs:
            if agent not in self.finished:
                await self._post_status(agent, "pending", "Waiting for a worker")

    async def propose_tests(self, request: RunRequest, files: dict[str, bytes], summary: str) -> str | None:
        log.info("job %s: generated tests are not proposed as a merge request on GitLab; they are the job's "
                 "generated-tests.patch artifact", self.job_id)
        return None

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
