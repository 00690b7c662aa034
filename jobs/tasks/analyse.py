"""The arq function for one run request: rehydrate, run the pipeline, return a small dict."""

from __future__ import annotations

from typing import Any

from jobs.pipeline import MAX_TRIES, run_job


async def analyse(ctx: dict[str, Any], job_id: str) -> dict[str, Any]:
    return await run_job(ctx["services"], job_id, last_try=ctx.get("job_try", 1) >= MAX_TRIES)
