from __future__ import annotations

import base64

import msgspec

from jobs.performance.config import as_performance_config
from jobs.performance.plan import USER_AGENT, LoadPlan, plan_load, plan_secrets, vu_start_offsets


def test_the_plan_has_absolute_urls_final_headers_and_bodies() -> None:
    config = as_performance_config({
        "virtual_users": 3, "duration": "2s", "ramp_up": "500ms", "timeout": "1s",
        "thresholds": ["p(99.9) < 1s", "errors < 1%"],
        "requests": [{"path": "/items?page=2"},
                     {"method": "POST", "path": "/search", "body": {"q": "shoes"}},
                     {"method": "PUT", "path": "/raw", "body": "x=1", "headers": {"Authorization": "Bearer tk-9"}}],
    })  # fmt: skip
    plan = plan_load(config, "https://deploy:pw@preview.example.com/app?token=t1")
    basic = "Basic " + base64.b64encode(b"deploy:pw").decode()
    assert [(r.method, r.url, r.body, r.label) for r in plan.requests] == [
        ("GET", "https://preview.example.com/app/items?token=t1&page=2", None, "GET /items?page=***"),
        ("POST", "https://preview.example.com/app/search?token=t1", '{"q":"shoes"}', "POST /search"),
        ("PUT", "https://preview.example.com/app/raw?token=t1", "x=1", "PUT /raw"),
    ]
    assert plan.requests[0].headers == [("Authorization", basic), ("User-Agent", USER_AGENT)]
    assert dict(plan.requests[1].headers)["Content-Type"] == "application/json"
    assert dict(plan.requests[2].headers)["Authorization"] == "Bearer tk-9"  # an explicit header wins
    assert "Content-Type" not in dict(plan.requests[2].headers)
    assert (plan.virtual_users, plan.duration_s, plan.ramp_up_s, plan.timeout_s) == (3, 2.0, 0.5, 1.0)
    assert plan.percentiles == [50.0, 90.0, 95.0, 99.0, 99.9]


def test_the_plan_crosses_the_process_boundary_as_json() -> None:
    plan = plan_load(as_performance_config({"duration": "1s", "ramp_up": 0}), "http://127.0.0.1:9/")
    assert msgspec.json.decode(msgspec.json.encode(plan), type=LoadPlan) == plan


def test_the_plan_never_shows_its_headers() -> None:
    plan = plan_load(as_performance_config({"requests": [{"headers": {"X-Api-Key": "k-secret"}}]}),
                     "https://user:hunter2@example.com/?token=abc")
    assert "k-secret" not in repr(plan) and "hunter2" not in repr(plan)
    secrets = plan_secrets(plan, "https://user:hunter2@example.com/?token=abc")
    assert {"hunter2", "abc", "k-secret"} <= set(secrets)
    assert USER_AGENT not in secrets


def test_users_start_as_k6_ramps_from_zero() -> None:
    assert vu_start_offsets(4, 2.0) == [0.5, 1.0, 1.5, 2.0]
    assert vu_start_offsets(3, 0.0) == [0.0, 0.0, 0.0]
