"""Signed, expiring links to a job's page, so check runs can link to it without exposing other jobs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

LINK_TTL_S = 30 * 24 * 3600


def _mac(secret: str, job_id: str, expires: int) -> str:
    digest = hmac.new(secret.encode(), f"job:{job_id}:{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def job_link_token(secret: str, job_id: str, ttl_s: int = LINK_TTL_S, now: float | None = None) -> str:
    expires = int((now or time.time()) + ttl_s)
    return f"{expires}.{_mac(secret, job_id, expires)}"


def job_link_valid(secret: str, job_id: str, token: str, now: float | None = None) -> bool:
    expires_text, _, mac = token.partition(".")
    if not expires_text.isdigit() or int(expires_text) < (now or time.time()):
        return False
    return hmac.compare_digest(mac, _mac(secret, job_id, int(expires_text)))


def job_page_url(public_url: str, secret: str, job_id: str) -> str:
    return f"{public_url}/jobs/{job_id}?t={job_link_token(secret, job_id)}"
