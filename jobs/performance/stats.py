"""What a load test measured, and the statistics over it, computed as k6 computes them.

- Percentiles: k6's `TrendSink.P` (`metrics/sink.go`): over the sorted durations, rank
  `i = p * (n - 1)` and linear interpolation between the values at `floor(i)` and `ceil(i)` (0 for no
  value, the value itself for one). This is the "linear" method of NumPy and R's type 7, and equals
  `statistics.quantiles(data, n=100, method="inclusive")` at whole percentiles.
- `med` is `p(50)`, `avg` the arithmetic mean, `min`/`max` exact.
- The request rate is the number of requests over the test's wall-clock time (k6's `http_reqs` rate).
- The error rate is the share of failed requests (k6's `http_req_failed`: a status outside 200-399, or
  no response at all).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import msgspec

DEFAULT_PERCENTILES: tuple[float, ...] = (50.0, 90.0, 95.0, 99.0)


class LoadStats(msgspec.Struct, kw_only=True):
    """The outcome of one load test, whichever engine ran it (durations in milliseconds)."""

    engine: str  # "builtin" | "k6"
    requests: int
    failed: int
    elapsed_s: float  # wall-clock time from the start of the test to the end of its last request
    vus: int  # the most virtual users that ran at once
    avg_ms: float = 0.0
    min_ms: float = 0.0
    med_ms: float = 0.0
    max_ms: float = 0.0
    percentiles_ms: dict[str, float] = {}  # k6's names: "p(95)" -> ms
    sent: int | None = None  # requests sent over an open connection (answered or not); None: not known
    error_kinds: dict[str, int] | None = None  # "503" -> 12, "ConnectError" -> 3; None when not reported
    vu_starts_s: list[float] = []  # when each virtual user started, in seconds from the start

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def error_rate(self) -> float:
        """Failed requests as a fraction of all requests (0 without requests)."""
        return self.failed / self.requests if self.requests else 0.0

    @property
    def unreachable(self) -> bool:
        """No request could even be sent (no connection): the target could not be reached at all."""
        return self.requests > 0 and self.sent == 0

    def trend(self, stat: str) -> float | None:
        """A statistic of the request durations by k6's name (`avg`, `min`, `med`, `max`, `p(95)`)."""
        fixed = {"avg": self.avg_ms, "min": self.min_ms, "med": self.med_ms, "max": self.max_ms}
        if stat in fixed:
            return fixed[stat]
        return self.percentiles_ms.get(stat)


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """k6's percentile of ascending `sorted_values` at `fraction` (0.95 for p(95))."""
    count = len(sorted_values)
    if count == 0:
        return 0.0
    if count == 1:
        return sorted_values[0]
    rank = fraction * (count - 1)
    low, high = sorted_values[math.floor(rank)], sorted_values[math.ceil(rank)]
    return low + (high - low) * (rank - math.floor(rank))


def percentile_key(percent: float) -> str:
    """k6's name of a percentile: 95 -> "p(95)", 99.9 -> "p(99.9)" (Go's `%g`, shortest form)."""
    text = repr(float(percent))
    return f"p({text.removesuffix('.0')})"


def summarise(
    durations_ms: list[float],
    *,
    engine: str,
    failed: int,
    elapsed_s: float,
    vus: int,
    percentiles: Iterable[float] = DEFAULT_PERCENTILES,
    sent: int | None = None,
    error_kinds: Mapping[str, int] | None = None,
    vu_starts_s: Sequence[float] = (),
) -> LoadStats:
    """The statistics of one test; sorts `durations_ms` in place (one entry per request)."""
    durations_ms.sort()
    count = len(durations_ms)
    wanted = sorted({*DEFAULT_PERCENTILES, *percentiles})
    return LoadStats(
        engine=engine,
        requests=count,
        failed=failed,
        elapsed_s=elapsed_s,
        vus=vus,
        avg_ms=math.fsum(durations_ms) / count if count else 0.0,
        min_ms=durations_ms[0] if count else 0.0,
        med_ms=percentile(durations_ms, 0.5),
        max_ms=durations_ms[-1] if count else 0.0,
        percentiles_ms={percentile_key(p): percentile(durations_ms, p / 100) for p in wanted},
        sent=sent,
        error_kinds=dict(error_kinds) if error_kinds is not None else None,
        vu_starts_s=list(vu_starts_s),
    )


def top_error_kinds(kinds: Mapping[str, int], limit: int) -> list[tuple[str, int]]:
    """The most frequent kinds first (ties by name), at most `limit`."""
    return sorted(kinds.items(), key=lambda item: (-item[1], item[0]))[:limit]
