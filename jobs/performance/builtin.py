"""Run the built-in engine (`jobs.performance.engine`) in a subprocess of the worker's interpreter."""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec

import jobs
from jobs.agents.base import Progress
from jobs.performance.plan import LoadPlan
from jobs.performance.process import EngineError, run_process
from jobs.performance.stats import LoadStats
from jobs.sandbox import scrubbed_env

STARTUP_GRACE_S = 30.0  # interpreter start-up, and the statistics over millions of durations at the end
AQE_ROOT = Path(jobs.__file__).resolve().parent.parent  # the directory holding the `jobs` package


class ProgressLine(msgspec.Struct):
    elapsed_s: float
    requests: int
    failed: int
    vus: int


_progress_decoder = msgspec.json.Decoder(ProgressLine)
_stats_decoder = msgspec.json.Decoder(LoadStats)


def engine_env(home: Path) -> dict[str, str]:
    """Nothing of the worker's environment (tokens, Redis URL) reaches the engine."""
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    return scrubbed_env(home, [], {"PYTHONPATH": str(AQE_ROOT)})


def engine_argv() -> list[str]:
    return [sys.executable, "-m", "jobs.performance.engine"]


def progress_message(update: ProgressLine) -> str:
    return f"{update.requests} requests ({update.failed} failed), {update.vus} virtual users"


async def run_builtin(plan: LoadPlan, scratch: Path, progress: Progress) -> LoadStats:
    """Run `plan`; EngineError when the engine fails or outlives its deadline."""

    async def on_line(line: str) -> bool:
        try:
            update = _progress_decoder.decode(line)
        except msgspec.DecodeError:
            return False
        await progress(min(update.elapsed_s / plan.duration_s, 1.0), progress_message(update))
        return True

    result = await run_process(
        engine_argv(), env=engine_env(scratch / "home"), cwd=scratch, stdin=msgspec.json.encode(plan),
        timeout_s=plan.duration_s + plan.timeout_s + STARTUP_GRACE_S, on_line=on_line,
    )  # fmt: skip
    if result.timed_out:
        raise EngineError(f"the built-in engine did not finish within {plan.duration_s + plan.timeout_s:g} s "
                          f"(+{STARTUP_GRACE_S:g} s) and was stopped")
    if result.returncode != 0:
        raise EngineError(f"the built-in engine exited with status {result.returncode}: "
                          f"{result.stderr_tail or 'no output'}")
    try:
        return _stats_decoder.decode(result.stdout)
    except msgspec.DecodeError as exc:
        raise EngineError(f"the built-in engine's summary could not be read ({exc})") from None
