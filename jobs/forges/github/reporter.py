"""Job results -> GitHub: a check run per agent (annotations in batches of 50) and one sticky PR comment."""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from gidgethub import BadRequest
from redis.asyncio import Redis

from jobs.forges.github.client import GitHubClient
from jobs.model import AgentResult, Conclusion, Finding, JobRecord, RunRequest
from jobs.reporting import proposal, render
from jobs.reporting.lock import redis_lock

log = logging.getLogger("aqe.github.reporter")

ANNOTATIONS_PER_REQUEST = 50
ANNOTATION_CAP = 200
COMMENT_ID_TTL_S = 90 * 24 * 3600
LISTED_FILES = 100  # files named in the pull request's description
WORKFLOWS_DIR = ".github/workflows/"  # writing there needs the `workflows` permission, which AQE does not ask for


def iso_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def annotation(f: Finding) -> dict[str, Any]:
    """A Finding as a GitHub check-run annotation (message/raw_details ≤ 64 KB, title ≤ 255)."""
    out: dict[str, Any] = {"path": f.path, "start_line": f.start_line, "end_line": max(f.end_line, f.start_line),
                           "annotation_level": f.level, "message": f.message[:60_000] or f.rule}
    if f.title:
        out["title"] = f.title[:255]
    if f.raw_details:
        out["raw_details"] = f.raw_details[:60_000]
    return out


def annotation_batches(findings: list[Finding], cap: int = ANNOTATION_CAP) -> tuple[list[list[dict[str, Any]]], int]:
    """Batches of ≤ 50 annotations, most important first, and how many were left out by the cap."""
    ordered = render.ordered_findings(findings)
    kept = [annotation(f) for f in ordered[:cap]]
    return list(render.batches(kept, ANNOTATIONS_PER_REQUEST)), max(0, len(ordered) - cap)


def generated_tests_branch(pr_number: int) -> str:
    return f"aqe/generated-tests/pr-{pr_number}"


def why_tests_cannot_be_proposed(request: RunRequest) -> str | None:
    """Why no pull request with generated tests can be opened for `request`; None when it can."""
    if request.pr_number is None or not request.head_ref:
        return "the run is not of a pull request"
    if request.fork:
        return (f"pull request #{request.pr_number} comes from a fork, and AQE cannot push to a fork's branch "
                f"(`{request.head_ref}`)")
    if not request.head_sha:
        return f"the head commit of pull request #{request.pr_number} is not known"
    return None


def path_problem(path: str) -> str | None:
    """What is wrong with `path` as a file to add to the repository, or None."""
    if path.startswith(WORKFLOWS_DIR):
        return f"is a GitHub Actions workflow ({WORKFLOWS_DIR}); AQE has no `workflows` permission"
    return proposal.path_problem(path)


def checked_files(files: Mapping[str, bytes]) -> dict[str, bytes]:
    """`files` in path order, or ValueError naming every bad path."""
    return proposal.checked_files(files, path_problem)


def utf8_text(content: bytes) -> str | None:
    """The content as text when it is UTF-8 (sent inline in the tree), else None (sent as a base64 blob)."""
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return None


def proposal_commit_message(request: RunRequest, count: int) -> str:
    files = "1 generated test file" if count == 1 else f"{count} generated test files"
    return (f"Add {files} for #{request.pr_number}\n\nWritten by AQE's test-generation agent for "
            f"{request.head_sha}, as asked with `/aqe generate-tests`.\n")


def proposal_title(request: RunRequest) -> str:
    return f"Generated tests for #{request.pr_number}"


def proposal_body(request: RunRequest, branch: str, paths: list[str], summary: str, job_url: str) -> str:
    """The agent's summary, then how the tests were made and what merging does, within GitHub's body limit."""
    listing = "\n".join(f"- `{path}`" for path in paths[:LISTED_FILES])
    if len(paths) > LISTED_FILES:
        listing += f"\n- … and {len(paths) - LISTED_FILES} more"
    how = (f"\n\n---\n\n**How this was made.** Asked for with `/aqe generate-tests` on #{request.pr_number}: AQE's "
           f"test-generation agent wrote these tests for its head commit {request.head_sha}, and AQE committed them "
           f"on top of that commit, on `{branch}` ([job]({job_url})).\n\n{listing}\n\nMerging this pull request adds "
           f"them to `{request.head_ref}`; review them like any other code. Commenting `/aqe generate-tests` again "
           "replaces this branch with a new generation.")
    return render.truncate(summary, render.GITHUB_COMMENT_LIMIT - len(how), job_url) + how


def is_existing_ref(exc: BadRequest) -> bool:
    return exc.status_code == 422 and "Reference already exists" in str(exc)


def is_existing_pull(exc: BadRequest) -> bool:
    return exc.status_code == 422 and "A pull request already exists" in str(exc)


class GitHubReporter:
    def __init__(self, gh: GitHubClient, token: str, redis: Redis, *, repo: str, head_sha: str, job_id: str,
                 job_url: str, app_slug: str, refs: dict[str, int] | None = None,
                 server_url: str = "https://github.com") -> None:
        self.gh, self.token, self.redis = gh, token, redis
        self.repo, self.head_sha, self.job_id, self.job_url, self.app_slug = repo, head_sha, job_id, job_url, app_slug
        self.server_url = server_url
        self.refs: dict[str, int] = dict(refs or {})
        self.finished: set[str] = set()

    def run_links(self, server_url: str = "https://github.com") -> dict[str, str]:
        """Each agent's check run page (the comment links its row there)."""
        return {agent: f"{server_url}/{self.repo}/runs/{run_id}" for agent, run_id in self.refs.items()}

    async def _patch_run(self, agent: str, body: dict[str, Any]) -> None:
        await self.gh.patch(f"/repos/{self.repo}/check-runs/{self.refs[agent]}", data=body, oauth_token=self.token)

    async def resolve(self, request: RunRequest) -> RunRequest:
        """Ask GitHub for the pull request when the event did not say enough about it: a comment carries no
        head sha, and check suite/run events say nothing of drafts or forks (policy must not depend on
        which of the events for one push arrived first)."""
        if request.pr_number is None or request.trigger.startswith("pull_request."):
            return request
        pr = await self.gh.getitem(f"/repos/{self.repo}/pulls/{request.pr_number}", oauth_token=self.token)
        head_repo = (pr["head"].get("repo") or {}).get("full_name")
        request.fork, request.draft = head_repo != self.repo, bool(pr.get("draft"))
        if not request.head_sha:  # "/aqe run": analyse the pull request's head as it is now
            request.head_sha, request.head_ref = pr["head"]["sha"], pr["head"]["ref"]
        request.base_sha, request.base_ref = request.base_sha or pr["base"]["sha"], pr["base"]["ref"]
        self.head_sha = request.head_sha
        return request

    async def begin(self, agents: list[str]) -> None:
        for agent in agents:
            if agent in self.refs:  # a retried job reuses the runs its first try created
                continue
            run = await self.gh.post(f"/repos/{self.repo}/check-runs", oauth_token=self.token, data={
                "name": f"aqe/{agent}", "head_sha": self.head_sha, "status": "queued",
                "external_id": self.job_id, "details_url": self.job_url})
            self.refs[agent] = int(run["id"])

    async def agent_started(self, agent: str) -> None:
        await self._patch_run(agent, {"status": "in_progress", "started_at": iso_now()})

    async def agent_finished(self, result: AgentResult, max_annotations: int = ANNOTATION_CAP) -> None:
        batches, left_out = annotation_batches(list(result.findings), max_annotations)
        summary = render.check_summary(result, self.job_url)
        if left_out:
            summary = render.truncate(summary, render.GITHUB_TEXT_LIMIT - 300) + (
                f"\n\n{left_out} more {'finding is' if left_out == 1 else 'findings are'} not annotated here "
                f"(at most {max_annotations} per check, set by `reporting.max_annotations`); the "
                f"[job page]({self.job_url}) lists them all.")
        output: dict[str, Any] = {"title": render.check_title(result), "summary": summary}
        for batch in batches[:-1]:
            await self._patch_run(result.agent, {"output": {**output, "annotations": batch}})
        final: dict[str, Any] = {**output, "text": render.check_text(result, self.job_url)} if result.text else dict(output)
        if batches:
            final["annotations"] = batches[-1]
        await self._patch_run(result.agent, {"status": "completed", "conclusion": result.conclusion,
                                             "completed_at": iso_now(), "output": final})
        self.finished.add(result.agent)

    async def abort(self, conclusion: Conclusion, reason: str) -> None:
        titles = {"cancelled": "Cancelled", "timed_out": "Timed out", "skipped": "Skipped"}
        output = {"title": titles.get(conclusion, "AQE could not finish"), "summary": render.failure_summary(reason, self.job_url)}
        for agent in self.refs:
            if agent in self.finished:
                continue
            try:
                await self._patch_run(agent, {"conclusion": conclusion, "completed_at": iso_now(), "output": output})
                self.finished.add(agent)
            except Exception:  # keep ending the others
                log.exception("could not end check run aqe/%s of job %s", agent, self.job_id)

    async def requeue(self, reason: str) -> None:
        output = {"title": "Waiting for a worker", "summary": reason}
        for agent in self.refs:
            if agent not in self.finished:
                await self._patch_run(agent, {"status": "queued", "output": output})

    async def propose_tests(self, request: RunRequest, files: dict[str, bytes], summary: str) -> str | None:
        """Commit `files` on top of the pull request's head (Git Data API) on `aqe/generated-tests/pr-N`, and open
        (or update) a pull request from there into the head branch. Its URL, or None for a fork's pull request."""
        reason = why_tests_cannot_be_proposed(request)
        if reason is not None:
            log.info("job %s: generated tests not proposed as a pull request: %s", self.job_id, reason)
            return None
        kept = checked_files(files)
        assert request.pr_number is not None and request.head_ref is not None  # why_tests_cannot_be_proposed
        branch = generated_tests_branch(request.pr_number)
        head = await self.gh.getitem(f"/repos/{self.repo}/git/commits/{request.head_sha}", oauth_token=self.token)
        entries = [await self._tree_entry(path, content) for path, content in kept.items()]
        tree = await self.gh.post(f"/repos/{self.repo}/git/trees", oauth_token=self.token,
                                  data={"base_tree": head["tree"]["sha"], "tree": entries})
        commit = await self.gh.post(f"/repos/{self.repo}/git/commits", oauth_token=self.token, data={
            "message": proposal_commit_message(request, len(kept)), "tree": tree["sha"], "parents": [request.head_sha]})
        await self._set_branch(branch, commit["sha"])
        body = proposal_body(request, branch, list(kept), summary, self.job_url)
        url = await self._open_pull(branch, request.head_ref, proposal_title(request), body)
        log.info("job %s: %d generated test files proposed in %s", self.job_id, len(kept), url)
        return url

    async def _tree_entry(self, path: str, content: bytes) -> dict[str, str]:
        entry = {"path": path, "mode": "100644", "type": "blob"}
        text = utf8_text(content)
        if text is not None:
            return {**entry, "content": text}
        blob = await self.gh.post(f"/repos/{self.repo}/git/blobs", oauth_token=self.token,
                                  data={"content": base64.b64encode(content).decode("ascii"), "encoding": "base64"})
        return {**entry, "sha": blob["sha"]}

    async def _set_branch(self, branch: str, sha: str) -> None:
        """Create the branch, or move it (forced: it holds only AQE's previous generation) when it exists."""
        try:
            await self.gh.post(f"/repos/{self.repo}/git/refs", oauth_token=self.token,
                               data={"ref": f"refs/heads/{branch}", "sha": sha})
        except BadRequest as exc:
            if not is_existing_ref(exc):
                raise
            await self.gh.patch(f"/repos/{self.repo}/git/refs/heads/{branch}", oauth_token=self.token,
                                data={"sha": sha, "force": True})

    async def _open_pull(self, branch: str, base: str, title: str, body: str) -> str:
        """The URL of the new pull request, or of the open one from `branch` into `base` (its body updated)."""
        try:
            pull = await self.gh.post(f"/repos/{self.repo}/pulls", oauth_token=self.token,
                                      data={"title": title, "head": branch, "base": base, "body": body})
            return str(pull["html_url"])
        except BadRequest as exc:
            if not is_existing_pull(exc):
                raise
        owner = self.repo.split("/", 1)[0]
        query = urlencode({"head": f"{owner}:{branch}", "base": base, "state": "open"})
        found = await self.gh.getitem(f"/repos/{self.repo}/pulls?{query}", oauth_token=self.token)
        if not found:
            raise RuntimeError(f"GitHub says a pull request from {branch} into {base} exists, but lists none open")
        await self.gh.patch(f"/repos/{self.repo}/pulls/{found[0]['number']}", oauth_token=self.token,
                            data={"body": body})
        return str(found[0]["html_url"])

    async def summarise(self, record: JobRecord, extra_prs: set[int]) -> None:
        numbers = sorted(({record.request.pr_number} if record.request.pr_number else set()) | extra_prs)
        body = render.comment_body(record, self.job_url, self.head_sha, self.run_links(self.server_url))
        for number in numbers:
            if await self._is_current_head(number):
                await self._upsert_comment(number, body)

    async def _is_current_head(self, number: int) -> bool:
        """Results of an older push must not overwrite the comment of a newer one."""
        pr = await self.gh.getitem(f"/repos/{self.repo}/pulls/{number}", oauth_token=self.token)
        if pr["head"]["sha"] != self.head_sha:
            log.info("job %s: PR #%d moved on to %s; comment left alone", self.job_id, number, pr["head"]["sha"][:7])
            return False
        return True

    async def _find_comment(self, number: int) -> int | None:
        async for comment in self.gh.getiter(f"/repos/{self.repo}/issues/{number}/comments?per_page=100",
                                             oauth_token=self.token):
            user = comment.get("user") or {}
            if render.COMMENT_MARKER in (comment.get("body") or "") and user.get("type") == "Bot":
                return int(comment["id"])
        return None

    async def _upsert_comment(self, number: int, body: str) -> None:
        cache_key = f"aqe:comment:github:{self.repo}:{number}"
        async with redis_lock(self.redis, f"aqe:lock:comment:github:{self.repo}:{number}"):
            cached = await self.redis.get(cache_key)
            comment_id = int(cached) if cached else await self._find_comment(number)
            if comment_id is not None:
                try:
                    await self.gh.patch(f"/repos/{self.repo}/issues/comments/{comment_id}", data={"body": body},
                                        oauth_token=self.token)
                    await self.redis.set(cache_key, comment_id, ex=COMMENT_ID_TTL_S)
                    return
                except BadRequest as exc:
                    if exc.status_code != 404:  # deleted by someone: write a new one
                        raise
            created = await self.gh.post(f"/repos/{self.repo}/issues/{number}/comments", data={"body": body},
                                         oauth_token=self.token)
            await self.redis.set(cache_key, int(created["id"]), ex=COMMENT_ID_TTL_S)
