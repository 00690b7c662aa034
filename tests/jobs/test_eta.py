"""How long a job still has to run (jobs/eta.py): from its kind's recent durations, else from its pace."""

from __future__ import annotations

import pytest

from jobs.eta import expected_duration, remaining_s
from jobs.model import JobRecord, RunRequest


def _record(status: str = "running", *, started: float | None = 1000.0, progress: float = 0.0,
            expected: float | None = None) -> JobRecord:
    request = RunRequest(forge="github", repo="acme/a", clone_url="u", head_sha="a" * 40, trigger="api.test",
                         agents=["tests"])
    return JobRecord(id="j", status=status, request=request, created_at=990.0, started_at=started,  # type: ignore[arg-type]
                     progress=progress, expected_s=expected)


def test_the_expected_duration_is_the_median_of_recent_ones() -> None:
    assert expected_duration([]) is None
    assert expected_duration([7.0]) == 7.0
    assert expected_duration([30.0, 10.0, 20.0]) == 20.0
    assert expected_duration([40.0, 10.0, 20.0, 30.0]) == 25.0


def test_a_running_job_has_what_is_left_of_its_expected_duration() -> None:
    assert remaining_s(_record(expected=60.0, progress=5.0), at=1015.0) == 45.0


@pytest.mark.parametrize(("expected", "progress", "at", "left"), [
    (60.0, 75.0, 1090.0, 30.0),  # past its expected 60 s at 75 %: 90 s for 75 %, so 30 s more
    (None, 50.0, 1040.0, 40.0),  # no history: 40 s for half of it
    (None, 10.0, 1040.0, None),  # checkout and config say nothing of the agents' pace
    (None, 100.0, 1040.0, None),
])
def test_without_an_estimate_left_the_pace_so_far_is_extrapolated(expected: float | None, progress: float, at: float,
                                                                   left: float | None) -> None:
    assert remaining_s(_record(expected=expected, progress=progress), at=at) == left


@pytest.mark.parametrize("status", ["queued", "completed", "failed", "cancelled", "skipped"])
def test_a_job_that_is_not_running_has_no_estimate(status: str) -> None:
    assert remaining_s(_record(status, expected=60.0, progress=50.0), at=1010.0) is None
    assert remaining_s(_record("running", started=None, expected=60.0), at=1010.0) is None


def test_a_job_tried_again_counts_from_its_latest_try() -> None:
    record = _record(started=1000.0, expected=60.0, progress=5.0)
    record.attempt_started_at = 1500.0  # the first worker stopped; another took the job up at 1500
    assert remaining_s(record, at=1510.0) == 50.0
