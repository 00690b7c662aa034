"""The check run of a load test: conclusion, title, Markdown summary and the metrics the gate reads."""

from __future__ import annotations

from dataclasses import dataclass

from jobs.reporting.markdown import code_cell, code_span
from jobs.model import Conclusion
from jobs.performance.plan import LoadPlan
from jobs.performance.stats import LoadStats, top_error_kinds
from jobs.performance.thresholds import Outcome, format_value

MAX_ERROR_KINDS = 5
MAX_LISTED_REQUESTS = 10
ENGINE_NAMES = {"builtin": "built-in (asyncio + httpcore)", "k6": "k6"}

NO_TARGET_SUMMARY = """\
No performance target configured: set `performance.target_url` in .aqe.yml or pass `target_url` to the API.

```yaml
performance:
  target_url: https://preview.example.com   # e.g. the preview environment of this pull request
  virtual_users: 10
  duration: 30s
  thresholds: ["p95 < 200ms", "errors < 1%"]
```
"""

METHOD_NOTE = (
    "Durations as k6's `http_req_duration`: from sending a request to the end of its response body, "
    "connection set-up excluded; percentiles interpolated linearly between the closest ranks, as k6 does. "
    "A request fails (k6's `http_req_failed`) on a status outside 200–399 or without a response."
)


@dataclass(frozen=True, slots=True)
class LoadTest:
    target: str  # as shown: no userinfo, query values masked
    plan: LoadPlan
    stats: LoadStats
    outcomes: list[Outcome]

    @property
    def failed_outcomes(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if not outcome.passed]


def _p(stats: LoadStats, key: str) -> float:
    return stats.percentiles_ms.get(key, 0.0)


def _ms(value: float) -> str:
    return f"{value:.2f} ms"


def _seconds(value: float) -> str:
    return f"{value:g} s"


def performance_metrics(test: LoadTest) -> dict[str, float | int | str]:
    stats = test.stats
    return {
        "requests": stats.requests,
        "errors": stats.failed,
        "rps": round(stats.rps, 2),
        "p50_ms": round(stats.med_ms, 3),
        "p95_ms": round(_p(stats, "p(95)"), 3),
        "p99_ms": round(_p(stats, "p(99)"), 3),
        "max_ms": round(stats.max_ms, 3),
        "avg_ms": round(stats.avg_ms, 3),
        "error_rate": round(stats.error_rate * 100, 4),  # percent
        "virtual_users": test.plan.virtual_users,
        "duration_s": round(stats.elapsed_s, 3),
        "engine": stats.engine,
        "thresholds": len(test.outcomes),
        "thresholds_failed": len(test.failed_outcomes),
    }


def performance_conclusion(test: LoadTest) -> Conclusion:
    if test.stats.requests == 0 or test.stats.unreachable or test.failed_outcomes:
        return "failure"
    return "success"


def error_kinds_text(stats: LoadStats) -> str:
    """"`503` × 12, `ConnectError` × 3" (the most frequent first), "" without errors."""
    if not stats.failed:
        return ""
    if stats.error_kinds is None:
        return f"{stats.failed:,} (k6's summary does not break errors down by kind)"
    kinds = top_error_kinds(stats.error_kinds, MAX_ERROR_KINDS)
    shown = ", ".join(f"`{kind}` × {count:,}" for kind, count in kinds)
    more = len(stats.error_kinds) - len(kinds)
    return shown + (f" and {more} more kind{'s' if more != 1 else ''}" if more > 0 else "")


def _headline(stats: LoadStats) -> str:
    return f"p95 {_p(stats, 'p(95)'):.1f} ms, {stats.error_rate * 100:.2f} % errors, {stats.rps:.1f} req/s"


def performance_title(test: LoadTest) -> str:
    stats, failed = test.stats, test.failed_outcomes
    if stats.requests == 0:
        return "No request was made"
    if stats.unreachable:
        kinds = ", ".join(f"{kind} × {count:,}" for kind, count in top_error_kinds(stats.error_kinds or {}, 2))
        unsent = f"Target unreachable: none of {stats.requests:,} requests could be sent"
        return unsent + (f" ({kinds})" if kinds else "")
    if failed:
        names = ", ".join(outcome.threshold.text for outcome in failed)
        return f"{len(failed)} of {len(test.outcomes)} thresholds failed ({names}): {_headline(stats)}"
    if test.outcomes:
        return f"All {len(test.outcomes)} thresholds passed: {_headline(stats)}"
    return f"{_headline(stats)} (no thresholds set)"




def thresholds_table(outcomes: list[Outcome]) -> str:
    if not outcomes:
        return ("No thresholds set: add `performance.thresholds` to .aqe.yml (e.g. `[\"p95 < 200ms\", "
                "\"errors < 1%\"]`) to fail this check on slow or failing responses.")
    rows = [
        f"| {code_cell(o.threshold.text)} | {format_value(o.threshold, o.actual) if o.actual is not None else '—'} "
        f"| {'✅ pass' if o.passed else '❌ fail'} |"
        for o in outcomes
    ]
    return "| Threshold | Actual | Result |\n|---|---:|---|\n" + "\n".join(rows)


def results_table(stats: LoadStats) -> str:
    errors = f"{stats.error_rate * 100:.2f} % ({stats.failed:,})"
    return (
        "| Requests | Requests/s | p50 | p95 | p99 | max | avg | Errors |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        f"| {stats.requests:,} | {stats.rps:.2f} | {_ms(stats.med_ms)} | {_ms(_p(stats, 'p(95)'))} "
        f"| {_ms(_p(stats, 'p(99)'))} | {_ms(stats.max_ms)} | {_ms(stats.avg_ms)} | {errors} |"
    )


def setup_line(test: LoadTest) -> str:
    plan, stats = test.plan, test.stats
    ramp = f" (ramp-up {_seconds(plan.ramp_up_s)})" if plan.ramp_up_s else ""
    return (f"**Target** {code_cell(test.target)} · {plan.virtual_users} virtual users · {_seconds(plan.duration_s)}"
            f"{ramp} · ran {stats.elapsed_s:.2f} s · engine: {ENGINE_NAMES.get(stats.engine, stats.engine)}")


def requests_line(plan: LoadPlan) -> str:
    shown = ", ".join(code_cell(request.label) for request in plan.requests[:MAX_LISTED_REQUESTS])
    more = len(plan.requests) - MAX_LISTED_REQUESTS
    return f"**Requests** (each virtual user sends them in turn, again and again): {shown}" + (
        f" and {more} more" if more > 0 else "")


def unreachable_note(test: LoadTest) -> str:
    return (f"**The target could not be reached**: none of the {test.stats.requests:,} requests could be sent "
            f"(no connection). Check that {code_cell(test.target)} is up and reachable from the AQE worker.")


def performance_summary(test: LoadTest) -> str:
    stats = test.stats
    parts = [setup_line(test)]
    if stats.unreachable:
        parts.append(unreachable_note(test))
    parts += ["### Thresholds\n\n" + thresholds_table(test.outcomes), "### Results\n\n" + results_table(stats)]
    if kinds := error_kinds_text(stats):
        parts.append(f"**Errors:** {kinds}")
    parts += [requests_line(test.plan), METHOD_NOTE]
    return "\n\n".join(parts)
