"""Pass/fail criteria in the k6 style, in two spellings parsed into one model.

Short form (units required where they matter):

| written | means | k6 form |
| --- | --- | --- |
| `p95 < 200ms`, `p(99.9) <= 1s` | that percentile of the request durations | `http_req_duration: p(95)<200` |
| `avg < 100ms`, `med`, `min`, `max` | the mean, median, fastest, slowest duration | `http_req_duration: avg<100` |
| `errors < 1%` | the share of failed requests | `http_req_failed: rate<0.01` |
| `rps > 50` | requests per second over the whole test | `http_reqs: rate>50` |
| `requests >= 1000` | the number of requests | `http_reqs: count>=1000` |

A duration without a unit is in milliseconds (as in k6). k6's own form is accepted for the three
metrics above, with k6's aggregation names and units (ms, a fraction for `rate`). Operators:
`<`, `<=`, `>`, `>=`, `==` (`===`), `!=`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Literal

from jobs.performance.stats import LoadStats, percentile_key

Metric = Literal["http_req_duration", "http_req_failed", "http_reqs"]
Operator = Literal["<", "<=", ">", ">=", "==", "!="]

EXAMPLES = '"p95 < 200ms", "avg < 100ms", "errors < 1%", "rps > 50", or k6\'s "http_req_duration: p(95)<200"'
_OPERATOR = r"(?P<op><=|>=|===|==|!=|<|>)"
_NUMBER = r"(?P<num>\d+(?:\.\d+)?|\.\d+)"
_SHORT = re.compile(rf"^\s*(?P<lhs>[A-Za-z_]+\d*(?:\.\d+)?(?:\(\s*[\d.]+\s*\))?)\s*{_OPERATOR}\s*{_NUMBER}\s*"
                    r"(?P<unit>ms|s|%|/s)?\s*$")
_K6 = re.compile(rf"^\s*(?P<metric>[A-Za-z_]+)\s*:\s*(?P<stat>[a-z]+(?:\(\s*[\d.]+\s*\))?)\s*{_OPERATOR}\s*"
                 rf"{_NUMBER}\s*$")
_PERCENTILE = re.compile(r"^p(?:\(\s*(?P<paren>[\d.]+)\s*\)|(?P<bare>\d+(?:\.\d+)?))$")
_TREND_STATS = ("avg", "min", "med", "max")
_STATS_OF: dict[str, tuple[str, ...]] = {"http_req_failed": ("rate",), "http_reqs": ("rate", "count")}


class ThresholdError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Threshold:
    text: str  # as written in the config
    metric: Metric
    stat: str  # k6's aggregation: "avg", "min", "med", "max", "p(95)", "rate" or "count"
    op: Operator
    value: float  # in k6's unit: ms (durations), a fraction (failed rate), per second or a count (http_reqs)

    @property
    def k6_expression(self) -> str:
        """The condition in k6's syntax, e.g. "p(95)<200"."""
        return f"{self.stat}{self.op}{_number(self.value)}"

    @property
    def percentile(self) -> float | None:
        """The percent of a `p(N)` statistic (95.0), else None."""
        found = _PERCENTILE.match(self.stat)
        return float(found.group("paren") or found.group("bare")) if found else None


@dataclass(frozen=True, slots=True)
class Outcome:
    threshold: Threshold
    actual: float | None  # None: nothing was measured (no request was made)
    passed: bool


# ---------------------------------------------------------------------------------------- parsing


@lru_cache(maxsize=256)
def parse_threshold(text: str) -> Threshold:
    """One threshold in the short or the k6 form; ThresholdError naming it when it is neither."""
    if not isinstance(text, str) or not text.strip():
        raise ThresholdError(f"a threshold must be a non-empty expression, e.g. {EXAMPLES}")
    if found := _K6.match(text):
        return _k6_threshold(text, found.group("metric"), found.group("stat"), found.group("op"), found.group("num"))
    if found := _SHORT.match(text):
        return _short_threshold(text, found.group("lhs"), found.group("op"), found.group("num"), found.group("unit"))
    raise _invalid(text, "not of the form `<statistic> <operator> <value>`")


def _short_threshold(text: str, lhs: str, op: str, number: str, unit: str | None) -> Threshold:
    name = lhs.lower()
    if name in ("errors", "error_rate"):
        if unit != "%":
            raise _invalid(text, "write the error rate as a percentage, e.g. `errors < 1%`")
        return Threshold(text, "http_req_failed", "rate", _op(op), _scaled(text, number, Decimal("0.01")))
    if name in ("rps", "requests_per_second"):
        if unit not in (None, "/s"):
            raise _invalid(text, "the request rate takes no unit other than `/s`, e.g. `rps > 50`")
        return Threshold(text, "http_reqs", "rate", _op(op), _scaled(text, number, Decimal(1)))
    if name == "requests":
        if unit is not None:
            raise _invalid(text, "the number of requests takes no unit, e.g. `requests >= 1000`")
        return Threshold(text, "http_reqs", "count", _op(op), _scaled(text, number, Decimal(1)))
    stat = _trend_stat(text, "med" if name == "median" else name)
    if unit not in (None, "ms", "s"):
        raise _invalid(text, "a duration is in `ms` or `s`, e.g. `p95 < 200ms`")
    scale = Decimal(1000) if unit == "s" else Decimal(1)
    return Threshold(text, "http_req_duration", stat, _op(op), _scaled(text, number, scale))


def _k6_threshold(text: str, metric: str, stat: str, op: str, number: str) -> Threshold:
    if metric == "http_req_duration":
        return Threshold(text, "http_req_duration", _trend_stat(text, stat), _op(op), _scaled(text, number, Decimal(1)))
    if metric not in _STATS_OF:
        raise _invalid(text, f"unknown metric `{metric}`; the metrics are http_req_duration, http_req_failed, "
                             "http_reqs")
    if stat not in _STATS_OF[metric]:
        raise _invalid(text, f"`{metric}` has {' and '.join(f'`{s}`' for s in _STATS_OF[metric])}, not `{stat}`")
    kind: Metric = "http_req_failed" if metric == "http_req_failed" else "http_reqs"
    return Threshold(text, kind, stat, _op(op), _scaled(text, number, Decimal(1)))


def _trend_stat(text: str, name: str) -> str:
    """k6's name of a duration statistic (`p95` and `p(95)` -> "p(95)"), or ThresholdError."""
    if name in _TREND_STATS:
        return name
    found = _PERCENTILE.match(name)
    if not found:
        raise _invalid(text, f"unknown statistic `{name}`; use avg, min, med, max, a percentile like p95 or p(99.9), "
                             "errors, rps or requests")
    try:
        percent = Decimal(found.group("paren") or found.group("bare"))
    except InvalidOperation:
        raise _invalid(text, f"`{name}` is not a percentile") from None
    if not 0 <= percent <= 100:
        raise _invalid(text, "a percentile is between 0 and 100")
    return percentile_key(float(percent))


def _op(op: str) -> Operator:
    return "==" if op == "===" else op  # type: ignore[return-value]


def _scaled(text: str, number: str, scale: Decimal) -> float:
    """The number times `scale`, rounded once (so `1.1%` is exactly the double nearest 0.011)."""
    try:
        return float(Decimal(number) * scale)
    except InvalidOperation:
        raise _invalid(text, f"`{number}` is not a number") from None


def _invalid(text: str, why: str) -> ThresholdError:
    return ThresholdError(f"invalid threshold {text!r}: {why}. Write e.g. {EXAMPLES}")


def _number(value: float) -> str:
    """Shortest decimal form, without exponent or trailing `.0`: 200.0 -> "200", 0.01 -> "0.01"."""
    return format(Decimal(repr(value)).normalize(), "f")


# ------------------------------------------------------------------------------------- evaluation


def measured(threshold: Threshold, stats: LoadStats) -> float | None:
    """The actual value a threshold compares, in its unit; None when no request was made."""
    if stats.requests == 0:
        return None
    if threshold.metric == "http_req_failed":
        return stats.error_rate
    if threshold.metric == "http_reqs":
        return stats.rps if threshold.stat == "rate" else float(stats.requests)
    return stats.trend(threshold.stat)


def holds(op: Operator, actual: float, value: float) -> bool:
    if op == "<":
        return actual < value
    if op == "<=":
        return actual <= value
    if op == ">":
        return actual > value
    if op == ">=":
        return actual >= value
    if op == "==":
        return actual == value
    return actual != value


def evaluate(thresholds: list[Threshold], stats: LoadStats) -> list[Outcome]:
    outcomes = []
    for threshold in thresholds:
        actual = measured(threshold, stats)
        outcomes.append(Outcome(threshold, actual, actual is not None and holds(threshold.op, actual, threshold.value)))
    return outcomes


def format_value(threshold: Threshold, value: float) -> str:
    """A measured value in the threshold's terms: "183.42 ms", "0.52 %", "412.3/s", "12345"."""
    if threshold.metric == "http_req_failed":
        return f"{value * 100:.2f} %"
    if threshold.metric == "http_reqs":
        return f"{value:.1f}/s" if threshold.stat == "rate" else f"{int(value)}"
    return f"{value:.2f} ms"


def k6_thresholds(thresholds: list[Threshold]) -> dict[str, list[str]]:
    """The `thresholds` option of a k6 script: metric -> its conditions in k6's syntax."""
    mapped: dict[str, list[str]] = {}
    for threshold in thresholds:
        mapped.setdefault(threshold.metric, []).append(threshold.k6_expression)
    return mapped


def percentiles_needed(thresholds: list[Threshold]) -> list[float]:
    """The percents of the `p(N)` statistics the thresholds use."""
    return sorted({p for t in thresholds if (p := t.percentile) is not None})
