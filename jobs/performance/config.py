"""The `performance` section of `.aqe.yml`, also the body of `POST /api/v1/performance/test`.

```yaml
performance:
  target_url: https://preview.example.com/app   # no target: the check is neutral, nothing runs
  requests:                       # default: one GET of the target itself
    - path: /api/items            # relative to the target's path
    - method: POST
      path: /api/search
      headers: {Content-Type: application/json}
      body: {query: shoes}        # a mapping or list is sent as JSON, a string as it is
  virtual_users: 20               # concurrent users, each looping over `requests`
  duration: 30s                   # "500ms", "30s", "2m", "1m30s" or a number of seconds; at most 10 minutes
  ramp_up: 5s                     # users start one by one over this time (0: all at once)
  timeout: 10s                    # per request
  thresholds: ["p95 < 200ms", "errors < 1%"]
  engine: auto                    # auto (k6 when installed, else built-in) | builtin | k6
  run_on: both                    # pull_request | push | both
```

`run_on` is not called `on`: YAML 1.1 (PyYAML) reads an unquoted `on` key as the boolean true.
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal

import msgspec

from jobs.performance.thresholds import Threshold, ThresholdError, parse_threshold
from jobs.performance.urls import display_path, display_url, path_error, target_error

MAX_VIRTUAL_USERS = 1000
MAX_DURATION_S = 600.0
MAX_TIMEOUT_S = 120.0
MAX_REQUESTS = 100
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_SECONDS = re.compile(r"\d+(?:\.\d+)?")
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h))+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600)}
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

Engine = Literal["auto", "builtin", "k6"]
RunOn = Literal["pull_request", "push", "both"]


class DurationError(ValueError):
    pass


class RequestConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One request of the scenario every virtual user loops over."""

    method: str = "GET"
    path: str = "/"
    headers: dict[str, str] = {}
    body: str | dict[str, Any] | list[Any] | None = None

    def __repr__(self) -> str:  # header values and bodies may hold credentials
        return (f"RequestConfig(method={self.method!r}, path={display_path(self.path)!r}, "
                f"headers={sorted(self.headers)!r}, body={'...' if self.body is not None else None})")


def _default_requests() -> list[RequestConfig]:
    return [RequestConfig()]


class PerformanceConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The load test of the `performance` agent (check run `aqe/performance`).

    - `target_url`: the http(s) URL under test; the API's `target_url` wins over it. None: neutral check.
    - `requests`: what each virtual user sends, in order, again and again until the time is up.
    - `virtual_users`, `duration`, `ramp_up`, `timeout`: a closed model as k6's ramping VUs.
    - `thresholds`: pass/fail criteria (`jobs.performance.thresholds`); none: the check reports only.
    - `engine`: "k6" when it is installed with "auto", else the built-in asyncio engine.
    - `run_on`: the events the load test runs on.
    """

    target_url: str | None = None
    requests: list[RequestConfig] = msgspec.field(default_factory=_default_requests)
    virtual_users: int = 10
    duration: str | float = "30s"
    ramp_up: str | float = "5s"
    timeout: str | float = "10s"
    thresholds: list[str] = []
    engine: Engine = "auto"
    run_on: RunOn = "both"

    def __post_init__(self) -> None:
        if self.target_url is not None:
            self.target_url = self.target_url.strip() or None
        if self.target_url is not None and (why := target_error(self.target_url)):
            raise ValueError(f"{why} (at `$.performance.target_url`)")
        if not 1 <= self.virtual_users <= MAX_VIRTUAL_USERS:
            raise ValueError(f"must be between 1 and {MAX_VIRTUAL_USERS} (at `$.performance.virtual_users`)")
        duration = _seconds(self.duration, "duration")
        if not 0 < duration <= MAX_DURATION_S:
            raise ValueError("must be more than 0 and at most 10 minutes (at `$.performance.duration`)")
        ramp_up = _seconds(self.ramp_up, "ramp_up")
        if ramp_up and ramp_up >= duration:
            raise ValueError(f"must be shorter than `duration` ({duration:g} s) or 0; the default is 5s "
                             "(at `$.performance.ramp_up`)")
        if not 0 < _seconds(self.timeout, "timeout") <= MAX_TIMEOUT_S:
            raise ValueError(f"must be more than 0 and at most {MAX_TIMEOUT_S:g} s (at `$.performance.timeout`)")
        self._check_requests()
        for index, text in enumerate(self.thresholds):
            try:
                parse_threshold(text)
            except ThresholdError as exc:
                raise ValueError(f"{exc} (at `$.performance.thresholds[{index}]`)") from None

    def _check_requests(self) -> None:
        if not 1 <= len(self.requests) <= MAX_REQUESTS:
            raise ValueError(f"must list between 1 and {MAX_REQUESTS} requests (at `$.performance.requests`)")
        for index, request in enumerate(self.requests):
            where = f"$.performance.requests[{index}]"
            request.method = request.method.strip().upper()
            if request.method not in METHODS:
                raise ValueError(f"must be one of {', '.join(METHODS)} (at `{where}.method`)")
            if why := path_error(request.path):
                raise ValueError(f"{why} (at `{where}.path`)")
            for name, value in request.headers.items():
                if not _HEADER_NAME.match(name):
                    raise ValueError(f"{name!r} is not a valid header name (at `{where}.headers`)")
                if "\r" in value or "\n" in value:
                    raise ValueError(f"the value of {name!r} must be on one line (at `{where}.headers`)")

    def __repr__(self) -> str:  # the target may carry credentials
        target = display_url(self.target_url) if self.target_url else None
        return (f"PerformanceConfig(target_url={target!r}, requests={self.requests!r}, "
                f"virtual_users={self.virtual_users}, duration={self.duration!r}, ramp_up={self.ramp_up!r}, "
                f"timeout={self.timeout!r}, thresholds={self.thresholds!r}, engine={self.engine!r}, "
                f"run_on={self.run_on!r})")

    @property
    def duration_s(self) -> float:
        return parse_duration(self.duration)

    @property
    def ramp_up_s(self) -> float:
        return parse_duration(self.ramp_up)

    @property
    def timeout_s(self) -> float:
        return parse_duration(self.timeout)

    @property
    def parsed_thresholds(self) -> list[Threshold]:
        return [parse_threshold(text) for text in self.thresholds]


def as_performance_config(config: PerformanceConfig | dict[str, Any] | None) -> PerformanceConfig:
    """Accept the parsed `performance` section, or its raw mapping (as the Agent protocol passes)."""
    if isinstance(config, PerformanceConfig):
        return config
    return msgspec.convert(config or {}, PerformanceConfig)


def effective_target(config: PerformanceConfig, override: str | None) -> str | None:
    """The URL to test: the API request's (`AgentOptions.performance_target`) wins over `.aqe.yml`'s."""
    if override and override.strip():
        return override.strip()
    return config.target_url


def runs_on(config: PerformanceConfig, pull_request: bool) -> bool:
    """Whether the load test runs for this event (`run_on`)."""
    return config.run_on == "both" or config.run_on == ("pull_request" if pull_request else "push")


@lru_cache(maxsize=64)
def parse_duration(value: str | float) -> float:
    """Seconds of "500ms", "30s", "2m", "1m30s", "1.5h" or a number of seconds (int, float or digits)."""
    if isinstance(value, bool):
        raise DurationError(_duration_message(value))
    if isinstance(value, int | float):
        if value < 0:
            raise DurationError(_duration_message(value))
        return float(value)
    text = value.strip()
    if _SECONDS.fullmatch(text):
        return float(text)
    if not _DURATION.fullmatch(text):
        raise DurationError(_duration_message(value))
    return float(sum(Decimal(amount) * _UNIT_SECONDS[unit] for amount, unit in _DURATION_PART.findall(text)))


def _seconds(value: str | float, key: str) -> float:
    try:
        return parse_duration(value)
    except DurationError as exc:
        raise ValueError(f"{exc} (at `$.performance.{key}`)") from None


def _duration_message(value: object) -> str:
    return f'{value!r} is not a duration: write e.g. "500ms", "30s", "2m", "1m30s" or a number of seconds'
