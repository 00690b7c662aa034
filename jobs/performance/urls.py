"""Target URLs: validation, the URL of each request, credentials out of the URL, and a form safe to show.

A target may carry credentials: `https://user:secret@preview.example.com/?token=...`. They are sent
(userinfo as HTTP Basic authentication, as browsers, curl and k6 do; the query as it is) but never
shown: `display_url` drops the userinfo and masks every query value.
"""

from __future__ import annotations

import base64
from urllib.parse import SplitResult, parse_qsl, quote_plus, unquote, urlsplit, urlunsplit

SCHEMES = ("http", "https")
MASK = "***"


def target_error(url: str) -> str | None:
    """Why `url` cannot be a load-test target, or None when it can."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme.lower() not in SCHEMES:
        return "must be an http:// or https:// URL"
    if not parts.hostname:
        return "has no host name"
    if any(char.isspace() for char in url.strip()):
        return "must not contain spaces (percent-encode them)"
    return None


def display_url(url: str) -> str:
    """`url` without userinfo and with every query value replaced by `***`."""
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, masked_query(parts.query), ""))


def masked_query(query: str) -> str:
    """The query with its names kept and its values masked (`a=1&b` -> `a=***&b`)."""
    pairs = parse_qsl(query, keep_blank_values=True)
    return "&".join(f"{quote_plus(name)}={MASK}" if value else quote_plus(name) for name, value in pairs)


def display_path(path: str) -> str:
    """A request path as shown: its query values masked."""
    base, _, query = path.partition("?")
    return f"{base}?{masked_query(query)}" if query else base


def without_userinfo(url: str) -> str:
    parts = urlsplit(url.strip())
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def basic_auth_header(url: str) -> str | None:
    """The `Authorization` value for the userinfo of `url` (percent-decoded), or None without one."""
    parts = urlsplit(url.strip())
    if parts.username is None and parts.password is None:
        return None
    credentials = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    return "Basic " + base64.b64encode(credentials.encode()).decode("ascii")


def request_url(target: str, path: str) -> str:
    """The URL of a request: `path` under the target's path (not RFC 3986 resolution, which would drop
    a base path like `/app`), `/` being the target itself; the target's query (e.g. a token) first,
    then the path's own query."""
    base = urlsplit(without_userinfo(target))
    own_path, _, own_query = path.partition("?")
    joined = base.path.rstrip("/") + "/" + own_path.lstrip("/") if own_path.strip("/") else base.path or "/"
    query = "&".join(part for part in (base.query, own_query) if part)
    return urlunsplit(SplitResult(base.scheme, base.netloc, joined, query, ""))


def path_error(path: str) -> str | None:
    """Why `path` cannot be a request path relative to the target, or None."""
    parts = urlsplit(path)
    if parts.scheme or parts.netloc or path.startswith("//"):
        return "must be a path relative to the target (e.g. `/api/items`), not a URL"
    if "#" in path or any(char.isspace() for char in path):
        return "must not contain spaces or a fragment (`#`)"
    return None


def url_secrets(url: str) -> list[str]:
    """The parts of `url` that may be credentials: userinfo and query values."""
    parts = urlsplit(url.strip())
    found = [unquote(value) for value in (parts.username, parts.password) if value]
    found += [value for _, value in parse_qsl(parts.query, keep_blank_values=True) if value]
    return found


def redact(text: str, secrets: list[str], min_length: int = 3) -> str:
    """`text` with every occurrence of a secret (of at least `min_length` characters) replaced by `***`."""
    for secret in sorted({s for s in secrets if len(s) >= min_length}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
