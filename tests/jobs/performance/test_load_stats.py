from __future__ import annotations

import random
import statistics

import pytest

from jobs.performance.stats import LoadStats, percentile, percentile_key, summarise, top_error_kinds

# k6's own expectations for its TrendSink (metrics/sink_test.go)
K6_SAMPLES = [0.0, 100.0, 30.0, 80.0, 70.0, 60.0, 50.0, 40.0, 90.0, 20.0]


def test_percentiles_match_k6s_trend_sink() -> None:
    ordered = sorted(K6_SAMPLES)
    assert [percentile(ordered, p) for p in (0.0, 0.5, 0.9, 0.95, 0.99, 1.0)] == pytest.approx(
        [0.0, 55.0, 91.0, 95.5, 99.1, 100.0], abs=1e-6)
    assert percentile([5.0, 10.0], 0.5) == 7.5
    assert percentile([5.0, 10.0], 0.95) == 5 + (10 - 5) * 0.95
    assert percentile([10.0], 0.99) == 10.0
    assert percentile([], 0.95) == 0.0


def test_summary_statistics_match_k6s_format() -> None:
    stats = summarise(list(K6_SAMPLES), engine="builtin", failed=0, elapsed_s=2.0, vus=1)
    assert (stats.min_ms, stats.max_ms, stats.avg_ms, stats.med_ms) == (0.0, 100.0, 54.0, 55.0)
    assert stats.percentiles_ms == pytest.approx({"p(50)": 55.0, "p(90)": 91.0, "p(95)": 95.5, "p(99)": 99.1})


def test_whole_percentiles_equal_the_standard_librarys_inclusive_quantiles() -> None:
    rng = random.Random(7)
    for size in (2, 3, 17, 1000):
        data = sorted(rng.lognormvariate(3, 1) for _ in range(size))
        cuts = statistics.quantiles(data, n=100, method="inclusive")
        assert [percentile(data, p / 100) for p in range(1, 100)] == pytest.approx(cuts, rel=1e-12)


def test_percentile_names_are_k6s() -> None:
    assert [percentile_key(p) for p in (95, 99.9, 50.0, 0, 99.95)] == ["p(95)", "p(99.9)", "p(50)", "p(0)", "p(99.95)"]


def test_summarise_adds_the_thresholds_percentiles_and_counts_errors() -> None:
    stats = summarise([3.0, 1.0, 2.0, 4.0], engine="builtin", failed=1, elapsed_s=2.0, vus=2, percentiles=[99.9],
                      sent=4, error_kinds={"503": 1})
    assert list(stats.percentiles_ms) == ["p(50)", "p(90)", "p(95)", "p(99)", "p(99.9)"]
    assert (stats.requests, stats.rps, stats.error_rate, stats.unreachable) == (4, 2.0, 0.25, False)
    assert stats.trend("p(99.9)") == pytest.approx(3.997)
    assert stats.trend("p(75)") is None


def test_unreachable_means_nothing_could_be_sent() -> None:
    refused = LoadStats(engine="builtin", requests=3, failed=3, elapsed_s=1.0, vus=1, sent=0)
    timed_out = LoadStats(engine="builtin", requests=3, failed=3, elapsed_s=1.0, vus=1, sent=3)
    unknown = LoadStats(engine="k6", requests=3, failed=3, elapsed_s=1.0, vus=1, sent=None)
    assert (refused.unreachable, timed_out.unreachable, unknown.unreachable) == (True, False, False)


def test_error_kinds_most_frequent_first() -> None:
    assert top_error_kinds({"500": 2, "ConnectError": 7, "404": 2, "Timeout": 1}, 3) == [
        ("ConnectError", 7), ("404", 2), ("500", 2)]
