"""Known vulnerabilities of pinned packages, from the OSV API (https://google.github.io/osv.dev/api/).

- `POST {osv_url}/v1/querybatch` with up to 1000 `{"package": {"name", "ecosystem"}, "version"}`
  queries; each result lists `{"id", "modified"}` of the matching vulnerabilities and may carry a
  `next_page_token`, asked for again with `page_token`.
- `GET {osv_url}/v1/vulns/{id}` for each distinct id: summary, aliases, severity, affected ranges.

The records that describe the same vulnerability (a GHSA and the PYSEC or GO record aliasing it) are
reported once. A record's severity is its `database_specific.severity` (GitHub's LOW / MODERATE / HIGH /
CRITICAL), else the rating of its CVSS v3 base score, else an ecosystem's own `severity`; the most
severe of a group wins. When none is given the vulnerability counts as medium and says so.

When OSV cannot be reached, or answers with something that is not an OSV answer, `OsvUnavailable`
says why: the caller must report the dependency scan as unavailable, never as clean.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from jobs.security.config import SEVERITIES, Severity
from jobs.security.cvss import CvssError, base_score, rating
from jobs.security.issues import Issue
from jobs.security.lockfiles import Ecosystem, Package

MAX_QUERIES_PER_BATCH = 1000
MAX_PAGES = 50
DEFAULT_RETRIES = 2
DEFAULT_BACKOFF_S = 0.5
DEFAULT_CONCURRENCY = 8
UNKNOWN_SEVERITY: Severity = "medium"
GITHUB_SEVERITIES: dict[str, Severity] = {"LOW": "low", "MODERATE": "medium", "MEDIUM": "medium", "HIGH": "high",
                                          "CRITICAL": "critical"}
_PREFERRED_PREFIXES = ("GHSA-", "PYSEC-", "GO-", "RUSTSEC-")
_SEMVER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")

PackageKey = tuple[str, str, str]  # (ecosystem, name, version) as queried


class OsvUnavailable(Exception):
    """The advisory source could not be used; the message is the reason shown to users."""


# ------------------------------------------------------------------------------------- queries


def package_key(package: Package) -> PackageKey:
    return (package.ecosystem, package.name, package.version)


def query_of(key: PackageKey, page_token: str | None = None) -> dict[str, Any]:
    ecosystem, name, version = key
    query: dict[str, Any] = {"package": {"name": name, "ecosystem": ecosystem}, "version": version}
    if page_token:
        query["page_token"] = page_token
    return query


def parse_querybatch(data: Any, expected: int) -> list[tuple[list[str], str | None]]:
    """Per query, in order: the ids of its vulnerabilities and its `next_page_token`."""
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list) or len(results) != expected:
        got = len(results) if isinstance(results, list) else "no"
        raise OsvUnavailable(f"OSV answered a querybatch of {expected} queries with {got} results")
    out = []
    for result in results:
        if not isinstance(result, dict):
            raise OsvUnavailable("OSV answered a querybatch result that is not an object")
        vulns = result.get("vulns") or []
        if not isinstance(vulns, list) or not all(isinstance(v, dict) and isinstance(v.get("id"), str) for v in vulns):
            raise OsvUnavailable("OSV answered a querybatch result whose `vulns` are not objects with an `id`")
        token = result.get("next_page_token")
        out.append(([v["id"] for v in vulns], token if isinstance(token, str) and token else None))
    return out


# ------------------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class Advisory:
    id: str
    aliases: tuple[str, ...]
    summary: str
    severity: Severity | None  # None: the record gives none
    severity_source: str  # "GitHub: HIGH", "CVSS 7.5", ""
    record: Mapping[str, Any]

    @property
    def withdrawn(self) -> bool:
        return bool(self.record.get("withdrawn"))


def advisory_of(vuln_id: str, record: Any) -> Advisory:
    """The parts of an OSV record the report needs; a record without content is an id without details."""
    if not isinstance(record, dict):
        return Advisory(vuln_id, (), "", None, "", {})
    aliases = tuple(a for a in record.get("aliases") or [] if isinstance(a, str))
    severity, source = record_severity(record)
    return Advisory(str(record.get("id") or vuln_id), aliases, record_summary(record), severity, source, record)


def record_summary(record: Mapping[str, Any]) -> str:
    summary = record.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        details = record.get("details")
        summary = details.strip().split("\n\n")[0] if isinstance(details, str) else ""
    summary = " ".join(summary.split())
    return summary if len(summary) <= 200 else summary[:197].rstrip() + "..."


def record_severity(record: Mapping[str, Any]) -> tuple[Severity | None, str]:
    """(severity, where it comes from): GitHub's rating, else CVSS v3, else an affected entry's own."""
    database = record.get("database_specific")
    if isinstance(database, dict) and (level := GITHUB_SEVERITIES.get(str(database.get("severity", "")).upper())):
        return level, f"GitHub: {str(database['severity']).upper()}"
    for entry in record.get("severity") or []:
        if isinstance(entry, dict) and entry.get("type") == "CVSS_V3" and isinstance(entry.get("score"), str):
            try:
                score = base_score(entry["score"])
            except CvssError:
                continue
            return rating(score), f"CVSS {score:.1f}"
    for affected in record.get("affected") or []:
        for key in ("ecosystem_specific", "database_specific"):
            own = affected.get(key) if isinstance(affected, dict) else None
            if isinstance(own, dict) and (level := GITHUB_SEVERITIES.get(str(own.get("severity", "")).upper())):
                return level, f"{own['severity']}"
    return None, ""


def same_package(ecosystem: str, name: str, affected_package: Any) -> bool:
    if not isinstance(affected_package, dict) or affected_package.get("ecosystem") != ecosystem:
        return False
    other = str(affected_package.get("name", ""))
    return canonicalize_name(other) == canonicalize_name(name) if ecosystem == "PyPI" else other == name


def fixed_versions(record: Mapping[str, Any], ecosystem: Ecosystem, name: str, version: str) -> list[str]:
    """The versions that fix `name` `version`: the first fix after it in each range that affects it, or
    every fix listed for the package when versions cannot be compared."""
    fixes: set[str] = set()
    for affected in record.get("affected") or []:
        if not isinstance(affected, dict) or not same_package(ecosystem, name, affected.get("package")):
            continue
        for span in affected.get("ranges") or []:
            if isinstance(span, dict) and span.get("type") in ("ECOSYSTEM", "SEMVER"):
                fixes.update(_fixes_in_range(ecosystem, version, span.get("events") or []))
    return sorted(fixes, key=lambda v: _sortable(ecosystem, v))


def _fixes_in_range(ecosystem: str, version: str, events: list[Any]) -> list[str]:
    points = [(kind, value) for event in events if isinstance(event, dict) for kind, value in event.items()
              if kind in ("introduced", "fixed", "last_affected") and isinstance(value, str)]
    listed = [value for kind, value in points if kind == "fixed"]
    mine = version_key(ecosystem, version)
    keyed = [(key, kind, value) for kind, value in points if (key := _event_key(ecosystem, value)) is not None]
    if mine is None or len(keyed) != len(points):
        return listed
    affected, fix = False, None
    for key, kind, value in sorted(keyed, key=lambda item: item[0]):
        if key <= mine:
            if kind == "introduced":
                affected = True
            elif kind == "fixed" or (kind == "last_affected" and key < mine):
                affected = False
        elif kind == "fixed" and affected and fix is None:
            fix = value
    return [fix] if affected and fix else []


def _event_key(ecosystem: str, value: str) -> tuple[Any, ...] | None:
    return (0,) if value == "0" else version_key(ecosystem, value)


def version_key(ecosystem: str, version: str) -> tuple[Any, ...] | None:
    """A sort key for a version of the ecosystem (PEP 440 for PyPI, SemVer 2 otherwise), None if unparsable."""
    if ecosystem == "PyPI":
        try:
            return (1, Version(version))
        except InvalidVersion:
            return None
    match = _SEMVER.match(version)
    if match is None:
        return None
    major, minor, patch, pre = match.groups()
    pre_key: tuple[Any, ...] = (1,) if pre is None else (0, *[_identifier(part) for part in pre.split(".")])
    return (1, int(major), int(minor), int(patch), pre_key)


def _identifier(part: str) -> tuple[int, int | str]:
    return (0, int(part)) if part.isdigit() else (1, part)


def _sortable(ecosystem: str, version: str) -> tuple[int, Any]:
    key = version_key(ecosystem, version)
    return (0, key) if key is not None else (1, version)


# ---------------------------------------------------------------------------------- the issues


def alias_groups(ids: Sequence[str], advisories: Mapping[str, Advisory]) -> list[list[Advisory]]:
    """The package's advisories, those naming each other or a common alias (CVE) put together."""
    parent = {vuln_id: vuln_id for vuln_id in ids}

    def root(item: str) -> str:
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    owner: dict[str, str] = {}
    for vuln_id in ids:
        advisory = advisories.get(vuln_id)
        for name in (vuln_id, *(advisory.aliases if advisory else ())):
            if name in owner:
                parent[root(vuln_id)] = root(owner[name])
            else:
                owner[name] = vuln_id
    groups: dict[str, list[Advisory]] = {}
    for vuln_id in ids:
        groups.setdefault(root(vuln_id), []).append(advisories.get(vuln_id) or advisory_of(vuln_id, None))
    return [sorted(group, key=_preference) for group in groups.values()]


def _preference(advisory: Advisory) -> tuple[int, str]:
    for rank, prefix in enumerate(_PREFERRED_PREFIXES):
        if advisory.id.startswith(prefix):
            return rank, advisory.id
    return len(_PREFERRED_PREFIXES), advisory.id


def group_severity(group: list[Advisory]) -> tuple[Severity | None, str]:
    """The most severe rating given by any record of the group, and where it comes from."""
    best: tuple[Severity | None, str] = (None, "")
    for advisory in group:
        if advisory.severity is not None and (best[0] is None or _rank(advisory.severity) < _rank(best[0])):
            best = (advisory.severity, advisory.severity_source)
    return best


def _rank(severity: Severity) -> int:
    return SEVERITIES.index(severity)


def vulnerability_issue(package: Package, group: list[Advisory]) -> Issue:
    main = group[0]
    names = sorted({a.id for a in group} | {alias for a in group for alias in a.aliases})
    others = [name for name in names if name != main.id]
    severity, source = group_severity(group)
    fixes = sorted({fix for a in group for fix in fixed_versions(a.record, package.ecosystem, package.name,
                                                                      package.version)},
                   key=lambda v: _sortable(package.ecosystem, v))
    summary = next((a.summary for a in group if a.summary), "no summary given")
    fixed = f"fixed in {', '.join(fixes)}" if fixes else "no fixed version yet"
    action = (f"Upgrade {package.name} to {fixes[0]} or later." if fixes
              else "No fixed version is published: replace the package or make sure the vulnerable code is not used.")
    rated = f"severity {severity} ({source})" if severity else f"no severity given, counted as {UNKNOWN_SEVERITY}"
    return Issue(
        scanner="dependencies",
        rule=main.id,
        severity=severity or UNKNOWN_SEVERITY,
        path=package.path,
        start_line=package.line,
        end_line=package.line,
        title=f"{main.id}: {package.name} {package.version} ({fixed})",
        message=(
            f"{package.name} {package.version} ({package.ecosystem}) has a known vulnerability: {summary} "
            f"[{main.id}{', ' + ', '.join(others) if others else ''}; {rated}]. {action}"
        ),
        aliases=tuple(others),
        details=f"https://osv.dev/vulnerability/{main.id}",
    )


def vulnerability_issues(packages: Iterable[Package], found: Mapping[PackageKey, list[str]],
                         advisories: Mapping[str, Advisory]) -> list[Issue]:
    """One issue per package location and vulnerability (alias groups merged; withdrawn advisories left out)."""
    issues = []
    for package in packages:
        ids = [i for i in found.get(package_key(package), []) if not (i in advisories and advisories[i].withdrawn)]
        issues += [vulnerability_issue(package, group) for group in alias_groups(ids, advisories)]
    return issues


# ------------------------------------------------------------------------------------- adapter


def display_origin(base_url: str) -> str:
    """scheme://host[:port] of the OSV URL: never its credentials, path or query."""
    parts = urlsplit(base_url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}"


class OsvClient:
    """Thin HTTP adapter: retries on connection errors, timeouts, 429 and 5xx, with exponential backoff."""

    def __init__(self, base_url: str, timeout_s: float, *, retries: int = DEFAULT_RETRIES,
                 backoff_s: float = DEFAULT_BACKOFF_S, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        url = httpx.URL(base_url)
        # credentials in AQE_OSV_URL go in a header: the URL is logged by httpx and may be shown
        self.auth = httpx.BasicAuth(url.username, url.password) if url.username or url.password else None
        self.base_url = str(url.copy_with(username=None, password=None)).rstrip("/")
        self.origin = display_origin(base_url)
        self.timeout_s, self.retries, self.backoff_s = timeout_s, retries, backoff_s
        self.concurrency = concurrency

    async def scan(self, keys: Sequence[PackageKey]) -> tuple[dict[PackageKey, list[str]], dict[str, Advisory]]:
        """The vulnerability ids of each package, and the advisory of each id."""
        headers = {"User-Agent": "aqe-security"}
        async with httpx.AsyncClient(timeout=self.timeout_s, headers=headers, auth=self.auth) as client:
            found = await self.query(client, keys)
            ids = sorted({vuln_id for vuln_ids in found.values() for vuln_id in vuln_ids})
            return found, await self.advisories(client, ids)

    async def query(self, client: httpx.AsyncClient, keys: Sequence[PackageKey]) -> dict[PackageKey, list[str]]:
        found: dict[PackageKey, list[str]] = {key: [] for key in keys}
        pending: list[tuple[PackageKey, str | None]] = [(key, None) for key in keys]
        for _ in range(MAX_PAGES):
            if not pending:
                return found
            next_round: list[tuple[PackageKey, str | None]] = []
            for start in range(0, len(pending), MAX_QUERIES_PER_BATCH):
                batch = pending[start : start + MAX_QUERIES_PER_BATCH]
                body = {"queries": [query_of(key, token) for key, token in batch]}
                answer = await self._json(client, "POST", "/v1/querybatch", body)
                for (key, _), (ids, token) in zip(batch, parse_querybatch(answer, len(batch)), strict=True):
                    found[key] += [vuln_id for vuln_id in ids if vuln_id not in found[key]]
                    if token:
                        next_round.append((key, token))
            pending = next_round
        raise OsvUnavailable(f"{self.origin} kept answering with more pages after {MAX_PAGES} requests")

    async def advisories(self, client: httpx.AsyncClient, ids: Sequence[str]) -> dict[str, Advisory]:
        limit = asyncio.Semaphore(self.concurrency)

        async def one(vuln_id: str) -> Advisory:
            async with limit:
                record = await self._json(client, "GET", f"/v1/vulns/{quote(vuln_id, safe='')}", None, missing_ok=True)
            return advisory_of(vuln_id, record)

        return dict(zip(ids, await asyncio.gather(*(one(vuln_id) for vuln_id in ids)), strict=True))

    async def _json(self, client: httpx.AsyncClient, method: str, path: str, body: Any,
                    *, missing_ok: bool = False) -> Any:
        """The decoded JSON answer; None for a 404 when `missing_ok`; OsvUnavailable after the retries."""
        failure = ""
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                response = await client.request(method, f"{self.base_url}{path}", json=body)
            except httpx.TransportError as exc:
                failure = f"{self.origin} could not be reached ({type(exc).__name__})"
                continue
            if response.status_code == 429 or response.status_code >= 500:
                failure = f"{self.origin} answered HTTP {response.status_code}"
                continue
            if response.status_code == 404 and missing_ok:
                return None
            if response.status_code != 200:
                raise OsvUnavailable(f"{self.origin} answered HTTP {response.status_code} to {method} {path}")
            try:
                return response.json()
            except ValueError:
                raise OsvUnavailable(f"{self.origin} answered {method} {path} with something that is not JSON"
                                     ) from None
        raise OsvUnavailable(f"{failure} after {self.retries + 1} attempts")
