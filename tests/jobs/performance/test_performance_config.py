from __future__ import annotations

import msgspec
import pytest
import yaml

from jobs.performance.config import (
    DurationError,
    PerformanceConfig,
    RequestConfig,
    as_performance_config,
    effective_target,
    parse_duration,
    runs_on,
)


def test_defaults_work_without_a_section() -> None:
    config = as_performance_config(None)
    assert config.target_url is None
    assert config.requests == [RequestConfig(method="GET", path="/", headers={}, body=None)]
    assert (config.virtual_users, config.duration_s, config.ramp_up_s, config.timeout_s) == (10, 30.0, 5.0, 10.0)
    assert (config.thresholds, config.engine, config.run_on) == ([], "auto", "both")


def test_the_api_body_decodes_into_the_same_struct() -> None:
    body = {"target_url": "https://preview.example.com", "virtual_users": 5, "duration": "10s", "ramp_up": 2,
            "thresholds": ["p95 < 200ms"]}
    config = msgspec.json.decode(msgspec.json.encode(body), type=PerformanceConfig)
    assert (config.target_url, config.virtual_users, config.duration_s, config.ramp_up_s) == (
        "https://preview.example.com", 5, 10.0, 2.0)
    assert config.parsed_thresholds[0].stat == "p(95)"


@pytest.mark.parametrize(("value", "seconds"), [
    ("500ms", 0.5), ("30s", 30.0), ("2m", 120.0), ("1m30s", 90.0), ("1.5s", 1.5), ("1h", 3600.0),
    (45, 45.0), (2.5, 2.5), ("45", 45.0), (" 10s ", 10.0), (0, 0.0),
])  # fmt: skip
def test_durations_in_k6_notation_or_seconds(value: str | float, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["abc", "-1s", "30 s", "", "5d", "s", True, -3, "1.s"])
def test_what_is_not_a_duration(value: str | float) -> None:
    with pytest.raises(DurationError, match="is not a duration"):
        parse_duration(value)


@pytest.mark.parametrize(("section", "message"), [
    ({"virtual_users": 0}, "must be between 1 and 1000 (at `$.performance.virtual_users`)"),
    ({"virtual_users": 1001}, "must be between 1 and 1000 (at `$.performance.virtual_users`)"),
    ({"duration": "11m"}, "at most 10 minutes (at `$.performance.duration`)"),
    ({"duration": 0}, "more than 0 and at most 10 minutes (at `$.performance.duration`)"),
    ({"duration": "soon"}, "'soon' is not a duration"),
    ({"duration": "3s"}, "must be shorter than `duration` (3 s) or 0; the default is 5s (at `$.performance.ramp_up`)"),
    ({"duration": "10s", "ramp_up": "10s"}, "(at `$.performance.ramp_up`)"),
    ({"timeout": "0s"}, "(at `$.performance.timeout`)"),
    ({"timeout": "3m"}, "at most 120 s (at `$.performance.timeout`)"),
    ({"target_url": "ftp://example.com"}, "must be an http:// or https:// URL (at `$.performance.target_url`)"),
    ({"target_url": "https://"}, "has no host name (at `$.performance.target_url`)"),
    ({"requests": []}, "between 1 and 100 requests (at `$.performance.requests`)"),
    ({"requests": [{"path": "/"}, {"method": "FETCH"}]}, "must be one of GET, HEAD, POST, PUT, PATCH, DELETE, "
                                                          "OPTIONS (at `$.performance.requests[1].method`)"),
    ({"requests": [{"path": "https://elsewhere.example/x"}]}, "relative to the target (e.g. `/api/items`), not a "
                                                                "URL (at `$.performance.requests[0].path`)"),
    ({"requests": [{"headers": {"X-A": "one\r\nX-Injected: two"}}]}, "must be on one line (at "
                                                                     "`$.performance.requests[0].headers`)"),
    ({"requests": [{"headers": {"Bad Name": "x"}}]}, "'Bad Name' is not a valid header name"),
    ({"thresholds": ["p95 < 200ms", "p95 < fast"]}, "invalid threshold 'p95 < fast'"),
    ({"engine": "jmeter"}, "Invalid enum value 'jmeter'"),
    ({"on": "push"}, "Object contains unknown field `on`"),
    ({"requests": [{"verb": "GET"}]}, "unknown field `verb`"),
])  # fmt: skip
def test_invalid_sections_say_what_and_where(section: dict[str, object], message: str) -> None:
    with pytest.raises(msgspec.ValidationError) as raised:
        as_performance_config(section)
    assert message in str(raised.value)


def test_a_bad_threshold_is_named_with_its_index() -> None:
    with pytest.raises(msgspec.ValidationError) as raised:
        as_performance_config({"thresholds": ["errors < 1%", "latency < 1s"]})
    assert "invalid threshold 'latency < 1s': unknown statistic `latency`" in str(raised.value)
    assert "(at `$.performance.thresholds[1]`)" in str(raised.value)


def test_methods_are_normalised_and_bodies_may_be_text_or_json() -> None:
    config = as_performance_config({"requests": [{"method": "post", "path": "/a", "body": {"q": 1}},
                                                 {"method": "PUT", "body": "raw"}]})
    assert [(r.method, r.body) for r in config.requests] == [("POST", {"q": 1}), ("PUT", "raw")]


def test_run_on_instead_of_on_because_yaml_reads_on_as_true() -> None:
    assert yaml.safe_load("on: push") == {True: "push"}  # why the key is not called `on`
    config = as_performance_config(yaml.safe_load("run_on: push"))
    assert (runs_on(config, pull_request=False), runs_on(config, pull_request=True)) == (True, False)
    both = as_performance_config({})
    assert runs_on(both, pull_request=False) and runs_on(both, pull_request=True)


def test_the_api_target_wins_over_the_config() -> None:
    config = as_performance_config({"target_url": "https://from-config.example"})
    assert effective_target(config, "https://from-api.example") == "https://from-api.example"
    assert effective_target(config, "  ") == "https://from-config.example"
    assert effective_target(config, None) == "https://from-config.example"
    assert effective_target(as_performance_config({"target_url": "  "}), None) is None


def test_the_config_never_shows_credentials() -> None:
    config = as_performance_config({"target_url": "https://deploy:hunter2@example.com/?token=abc123",
                                    "requests": [{"path": "/x?key=k-9", "headers": {"X-Api-Key": "k-secret"},
                                                  "body": {"password": "p-1"}}]})
    shown = repr(config)
    assert not [secret for secret in ("hunter2", "abc123", "k-9", "k-secret", "p-1") if secret in shown]
    assert "https://example.com/?token=***" in shown and "X-Api-Key" in shown
