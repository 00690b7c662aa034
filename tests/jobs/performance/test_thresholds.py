from __future__ import annotations

import pytest

from jobs.performance.stats import LoadStats
from jobs.performance.thresholds import (
    Threshold,
    ThresholdError,
    evaluate,
    format_value,
    k6_thresholds,
    parse_threshold,
    percentiles_needed,
)


def _model(threshold: Threshold) -> tuple[str, str, str, float]:
    return threshold.metric, threshold.stat, threshold.op, threshold.value


@pytest.mark.parametrize(("short", "k6", "model"), [
    ("p95 < 200ms", "http_req_duration: p(95)<200", ("http_req_duration", "p(95)", "<", 200.0)),
    ("p(95) < 200", "http_req_duration:p(95) < 200", ("http_req_duration", "p(95)", "<", 200.0)),
    ("p99 <= 1s", "http_req_duration: p(99)<=1000", ("http_req_duration", "p(99)", "<=", 1000.0)),
    ("p99.9 < 1.5s", "http_req_duration: p(99.9)<1500", ("http_req_duration", "p(99.9)", "<", 1500.0)),
    ("avg < 100ms", "http_req_duration: avg<100", ("http_req_duration", "avg", "<", 100.0)),
    ("median < 20", "http_req_duration: med<20", ("http_req_duration", "med", "<", 20.0)),
    ("max<=2s", "http_req_duration: max<=2000", ("http_req_duration", "max", "<=", 2000.0)),
    ("errors < 1%", "http_req_failed: rate<0.01", ("http_req_failed", "rate", "<", 0.01)),
    ("error_rate <= 0.5%", "http_req_failed: rate<=0.005", ("http_req_failed", "rate", "<=", 0.005)),
    ("rps > 50", "http_reqs: rate>50", ("http_reqs", "rate", ">", 50.0)),
    ("rps >= 12.5/s", "http_reqs: rate>=12.5", ("http_reqs", "rate", ">=", 12.5)),
    ("requests >= 1000", "http_reqs: count>=1000", ("http_reqs", "count", ">=", 1000.0)),
    ("errors == 0%", "http_req_failed: rate===0", ("http_req_failed", "rate", "==", 0.0)),
])  # fmt: skip
def test_short_and_k6_forms_parse_into_one_model(short: str, k6: str, model: tuple[str, str, str, float]) -> None:
    assert _model(parse_threshold(short)) == model
    assert _model(parse_threshold(k6)) == model
    assert parse_threshold(short).text == short


def test_the_k6_expression_reads_back_as_the_same_threshold() -> None:
    for text in ("p99.9 < 1.5s", "errors < 1.1%", "rps > 50", "requests >= 1000", "avg != 3ms", "p(0) > 0"):
        threshold = parse_threshold(text)
        again = parse_threshold(f"{threshold.metric}: {threshold.k6_expression}")
        assert _model(again) == _model(threshold)
    assert parse_threshold("p95 < 200ms").k6_expression == "p(95)<200"
    assert parse_threshold("errors < 1%").k6_expression == "rate<0.01"
    assert parse_threshold("p99 <= 1.25s").k6_expression == "p(99)<=1250"


def test_percentages_are_exact() -> None:
    assert parse_threshold("errors < 1.1%").value == 0.011  # not 1.1 / 100 == 0.011000000000000001
    assert parse_threshold("errors < 0.57%").value == 0.0057  # not 0.57 / 100 == 0.005699999999999999
    assert parse_threshold("p95 < 1.001s").value == 1001.0  # not 1.001 * 1000 == 1000.9999999999999


@pytest.mark.parametrize(("text", "why"), [
    ("p95 < fast", "not of the form"),
    ("errors < 0.01", "write the error rate as a percentage"),
    ("p101 < 1s", "a percentile is between 0 and 100"),
    ("latency < 1s", "unknown statistic `latency`"),
    ("p95 < 20%", "a duration is in `ms` or `s`"),
    ("rps > 50ms", "the request rate takes no unit other than `/s`"),
    ("requests > 5s", "the number of requests takes no unit"),
    ("http_req_blocked: p(95)<1", "unknown metric `http_req_blocked`"),
    ("http_req_failed: p(95)<1", "`http_req_failed` has `rate`, not `p(95)`"),
    ("http_reqs: avg<1", "`http_reqs` has `rate` and `count`, not `avg`"),
    ("p95 200ms", "not of the form"),
    ("", "a threshold must be a non-empty expression"),
])  # fmt: skip
def test_invalid_expressions_are_named_with_the_reason(text: str, why: str) -> None:
    with pytest.raises(ThresholdError) as raised:
        parse_threshold(text)
    assert why in str(raised.value)
    if text:
        assert repr(text) in str(raised.value)
    assert '"p95 < 200ms"' in str(raised.value)  # and how to write one


def _stats() -> LoadStats:
    return LoadStats(engine="builtin", requests=100, failed=1, elapsed_s=4.0, vus=2, avg_ms=20.0, min_ms=1.0,
                     med_ms=18.0, max_ms=250.0, percentiles_ms={"p(50)": 18.0, "p(95)": 120.0, "p(99)": 240.0})


def test_evaluation_compares_the_measured_value_in_the_threshold_unit() -> None:
    texts = ["p95 < 200ms", "p95 < 100ms", "errors < 1%", "errors <= 1%", "rps > 20", "rps > 30",
             "requests >= 100", "avg < 20ms", "max <= 250ms", "p99.9 < 1s"]
    outcomes = evaluate([parse_threshold(t) for t in texts], _stats())
    assert [(o.threshold.text, o.actual, o.passed) for o in outcomes] == [
        ("p95 < 200ms", 120.0, True), ("p95 < 100ms", 120.0, False),
        ("errors < 1%", 0.01, False), ("errors <= 1%", 0.01, True),  # 1 of 100 is exactly 1 %
        ("rps > 20", 25.0, True), ("rps > 30", 25.0, False),
        ("requests >= 100", 100.0, True), ("avg < 20ms", 20.0, False), ("max <= 250ms", 250.0, True),
        ("p99.9 < 1s", None, False),  # a percentile that was not computed is not a pass
    ]  # fmt: skip


def test_without_requests_nothing_passes() -> None:
    empty = LoadStats(engine="builtin", requests=0, failed=0, elapsed_s=1.0, vus=1)
    outcomes = evaluate([parse_threshold("errors < 1%"), parse_threshold("p95 < 1s")], empty)
    assert [(o.actual, o.passed) for o in outcomes] == [(None, False), (None, False)]


def test_values_are_shown_in_the_threshold_terms() -> None:
    assert format_value(parse_threshold("p95 < 1s"), 183.4219) == "183.42 ms"
    assert format_value(parse_threshold("errors < 1%"), 0.0052) == "0.52 %"
    assert format_value(parse_threshold("rps > 1"), 412.345) == "412.3/s"
    assert format_value(parse_threshold("requests > 1"), 12345.0) == "12345"


def test_k6_options_group_conditions_by_metric() -> None:
    thresholds = [parse_threshold(t) for t in ("p95 < 200ms", "errors < 1%", "http_req_duration: p(99.9)<1000",
                                               "rps > 5")]
    assert k6_thresholds(thresholds) == {"http_req_duration": ["p(95)<200", "p(99.9)<1000"],
                                         "http_req_failed": ["rate<0.01"], "http_reqs": ["rate>5"]}
    assert percentiles_needed(thresholds) == [95.0, 99.9]
