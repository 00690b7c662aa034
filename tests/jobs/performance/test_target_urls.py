from __future__ import annotations

import base64

import pytest

from jobs.performance.urls import (
    basic_auth_header,
    display_path,
    display_url,
    path_error,
    redact,
    request_url,
    target_error,
    url_secrets,
)


def test_shown_urls_lose_userinfo_and_query_values() -> None:
    url = "https://deploy:s3cr%40t@preview.example.com:8443/app/?token=abc123&page=2&flag#frag"
    assert display_url(url) == "https://preview.example.com:8443/app/?token=***&page=***&flag"
    assert display_url("http://[::1]:8080/x") == "http://[::1]:8080/x"
    assert display_path("/search?q=shoes&key=k-123") == "/search?q=***&key=***"
    assert display_path("/plain") == "/plain"


def test_userinfo_becomes_basic_authentication() -> None:
    header = basic_auth_header("https://deploy:s3cr%40t@preview.example.com/")
    assert header == "Basic " + base64.b64encode(b"deploy:s3cr@t").decode()
    assert basic_auth_header("https://preview.example.com/") is None


def test_request_paths_go_under_the_target_path_with_both_queries() -> None:
    target = "https://user:pw@preview.example.com/app?token=t1"
    assert request_url(target, "/api/items?page=2") == "https://preview.example.com/app/api/items?token=t1&page=2"
    assert request_url(target, "health") == "https://preview.example.com/app/health?token=t1"
    assert request_url("http://127.0.0.1:8000", "/") == "http://127.0.0.1:8000/"
    assert request_url("http://127.0.0.1:8000/slow?ms=5", "/") == "http://127.0.0.1:8000/slow?ms=5"  # the target
    assert request_url("http://127.0.0.1:8000/app/", "") == "http://127.0.0.1:8000/app/"


@pytest.mark.parametrize(("url", "why"), [
    ("ftp://example.com", "must be an http:// or https:// URL"),
    ("example.com", "must be an http:// or https:// URL"),
    ("https://", "has no host name"),
    ("http://host:99999/", "not a valid URL"),
    ("http://host/a path", "must not contain spaces"),
])  # fmt: skip
def test_targets_that_cannot_be_tested(url: str, why: str) -> None:
    assert why in (target_error(url) or "")


def test_good_targets_and_paths() -> None:
    assert target_error("https://preview.example.com/app?x=1") is None
    assert target_error("http://127.0.0.1:8080") is None
    assert path_error("/api/items?page=2") is None
    assert "not a URL" in (path_error("//evil.example/x") or "")
    assert "fragment" in (path_error("/a#b") or "")


def test_secrets_of_a_url_and_their_redaction() -> None:
    secrets = url_secrets("https://deploy:s3cr%40t@host/?token=abc123&page=2")
    assert secrets == ["deploy", "s3cr@t", "abc123", "2"]
    assert redact("GET https://host/?token=abc123 as deploy with s3cr@t, page 2", secrets) == (
        "GET https://host/?token=*** as *** with ***, page 2")  # one-character values are left alone
