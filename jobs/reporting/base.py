"""The port the pipeline reports through; each forge implements it in `forges/<forge>/reporter.py`."""

from __future__ import annotations

from typing import Protocol

from jobs.model import AgentResult, Conclusion, JobRecord, RunRequest


class Reporter(Protocol):
    refs: dict[str, int]  # forge object per agent (e.g. check run ids), kept in the job record across retries

    async def resolve(self, request: RunRequest) -> RunRequest:
        """Fill in what the trigger did not carry (e.g. a PR's head sha for a comment command)."""
        ...

    async def begin(self, agents: list[str]) -> None:
        """Show every agent as queued on the commit."""
        ...

    async def agent_started(self, agent: str) -> None: ...

    async def agent_finished(self, result: AgentResult, max_annotations: int = 200) -> None:
        """Complete the agent's check with its result; findings beyond `max_annotations` are counted, not sent."""
        ...

    async def abort(self, conclusion: Conclusion, reason: str) -> None:
        """End every agent not yet finished with `conclusion` and the reason: nothing stays in progress."""
        ...

    async def requeue(self, reason: str) -> None:
        """Show every unfinished agent as queued again (the job will be retried by another worker)."""
        ...

    async def propose_tests(self, request: RunRequest, files: dict[str, bytes], summary: str) -> str | None:
        """Put `files` (repository path -> content) on a new branch on top of the request's head and open a
        pull request into the head branch; the pull request's URL, or None when it cannot be done (say why
        in the log, e.g. a fork's branch)."""
        ...

    async def summarise(self, record: JobRecord, extra_prs: set[int]) -> None:
        """Create or edit the one summary comment on the pull request(s)."""
        ...
