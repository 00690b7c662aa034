"""The reporter of jobs started through the API: results go to the job record (and its stream) only.

A CI system that asked through the API reads the verdict from `/api/v1/job/{id}/status` or its stream;
nothing is written to the forge (no check run, no comment) unless the request came from the forge.
"""

from __future__ import annotations

from jobs.model import AgentResult, Conclusion, JobRecord, RunRequest


class RecordReporter:
    def __init__(self) -> None:
        self.refs: dict[str, int] = {}

    async def resolve(self, request: RunRequest) -> RunRequest:
        return request

    async def begin(self, agents: list[str]) -> None:
        return None

    async def agent_started(self, agent: str) -> None:
        return None

    async def agent_finished(self, result: AgentResult, max_annotations: int = 200) -> None:
        return None

    async def abort(self, conclusion: Conclusion, reason: str) -> None:
        return None

    async def requeue(self, reason: str) -> None:
        return None

    async def propose_tests(self, request: RunRequest, files: dict[str, bytes], summary: str) -> str | None:
        return None

    async def summarise(self, record: JobRecord, extra_prs: set[int]) -> None:
        return None
