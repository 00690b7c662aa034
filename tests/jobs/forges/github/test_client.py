"""Which GitHub answers are retried, and after how long."""

from __future__ import annotations

import jwt
import pytest

from jobs.forges.github.auth import InstallationTokens, git_auth_header
from jobs.forges.github.client import MAX_ATTEMPTS, MAX_DELAY_S, retry_delay


@pytest.mark.parametrize("status, headers, hint, retried", [
    (502, {}, "", True),
    (503, {}, "", True),
    (429, {}, "", True),
    (403, {"retry-after": "30"}, "", True),
    (403, {}, "You have exceeded a secondary rate limit", True),
    (403, {}, "Resource not accessible by integration", False),
    (404, {}, "", False),
    (422, {}, "Validation Failed", False),
])
def test_what_is_retried(status: int, headers: dict, hint: str, retried: bool) -> None:
    assert (retry_delay(status, headers, hint, attempt=1) is not None) is retried


def test_retry_after_wins_and_is_capped() -> None:
    assert retry_delay(429, {"retry-after": "7"}, "", 1) == 7.0
    assert retry_delay(429, {"retry-after": "3600"}, "", 1) == MAX_DELAY_S


def test_backoff_grows_with_jitter_and_stops() -> None:
    delays = [retry_delay(502, {}, "", attempt) for attempt in range(1, MAX_ATTEMPTS)]
    assert all(d is not None and 0 <= d <= 0.5 * 2 ** (i) for i, d in enumerate(delays))
    assert retry_delay(502, {}, "", MAX_ATTEMPTS) is None


def test_app_jwt_is_backdated_and_short(rsa_key_pair: tuple[bytes, bytes]) -> None:
    tokens = InstallationTokens(42, rsa_key_pair[0].decode())
    claims = jwt.decode(tokens.app_jwt(), rsa_key_pair[1], algorithms=["RS256"])
    assert claims["iss"] == "42"
    assert claims["exp"] - claims["iat"] == 600  # iat is now - 60 s, so exp is now + 9 min


def test_git_auth_header_is_basic_with_x_access_token() -> None:
    assert git_auth_header("ghs_abc") == "Authorization: Basic eC1hY2Nlc3MtdG9rZW46Z2hzX2FiYw=="
