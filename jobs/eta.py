"""How long a job still has to run: the `eta_s` and `eta` of `GET /api/v1/job/{id}/status`.

A running job is expected to take as long as its repository's recent jobs of the same kind took (the median of
the last RECENT_JOBS that completed: `expected_s`, set when a worker starts it, see `jobs.fleet`). Past that, or
without any history, its progress is extrapolated: what is left of 100 % at the pace it has gone so far, once it
has gone far enough for the pace to mean something. A queued job has no estimate (its wait depends on the queue
and the workers), nor does an ended one.
"""

from __future__ import annotations

from jobs.model import JobRecord

RECENT_JOBS = 20
MIN_PROGRESS_FOR_PACE = 20.0  # the checkout and config steps (up to 20 %) say little about the agents' pace


def expected_duration(durations: list[float]) -> float | None:
    """The median of recent durations (s), or None without any."""
    if not durations:
        return None
    ordered = sorted(durations)
    middle = len(ordered) // 2
    return round(ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2, 3)


def remaining_s(record: JobRecord, at: float) -> float | None:
    """Seconds until the running job `record` is expected to end, as of `at` (epoch s); None when unknown."""
    started = record.attempt_started_at or record.started_at  # this try's start: an earlier one was cut short
    if record.status != "running" or started is None:
        return None
    elapsed = max(0.0, at - started)
    if record.expected_s is not None and elapsed < record.expected_s:
        return round(record.expected_s - elapsed, 1)
    if MIN_PROGRESS_FOR_PACE <= record.progress < 100.0:
        return round(elapsed * (100.0 - record.progress) / record.progress, 1)
    return None
