"""Job results -> GitHub: a check run per agent (annotations in batches of 50) and one sticky PR comment."""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import UTC, datetime
from typing import Any

from gidgethub import BadRequest
from redis.asyncio import Redis

from jobs.forges.github.client import GitHubClient
from jobs.model import AgentResult, Conclusion, Finding, JobRecord, RunRequest
from jobs.reporting import render

log = logging.getLogger("aqe.github.reporter")

ANNOTATIONS_PER_REQUEST = 50
ANNOTATION_CAP = 200
LOCK_TTL_MS = 30_000
LOCK_WAIT_S = 30.0
COMMENT_ID_TTL_S = 90 * 24 * 3600


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


class redis_lock:
    """A Redis lock (SET NX PX + compare-and-delete) so jobs in any worker never write two comments."""

    def __init__(self, redis: Redis, key: str) -> None:
        self.redis, self.key, self.token = redis, key, secrets.token_hex(8)

    async def __aenter__(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LOCK_WAIT_S
        while not await self.redis.set(self.key, self.token, nx=True, px=LOCK_TTL_MS):
            if loop.time() > deadline:
                raise TimeoutError(f"lock {self.key} held for more than {LOCK_WAIT_S:.0f} s")
            await asyncio.sleep(0.05)

    async def __aexit__(self, *exc: object) -> None:
        await self.redis.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
                              "return 0", 1, self.key, self.token)
