"""A fake OSV API (https://google.github.io/osv.dev/api/) for the security agent's tests.

`FakeOSV` is a real HTTP server on 127.0.0.1 (uvicorn in a daemon thread) serving the two endpoints
AQE uses, with the answers' real shapes:

- `POST /v1/querybatch`: `{"queries": [{"package": {"name", "ecosystem"}, "version", "page_token"?}]}`
  -> `{"results": [{"vulns": [{"id", "modified"}], "next_page_token"?} | {}]}`, one result per query, in
  order; at most 1000 queries (else 400, as OSV). A query matches the records whose `affected` entry
  names the package (PyPI names compared as PEP 503 normalised) and whose ECOSYSTEM/SEMVER ranges or
  `versions` list include the version. With `page_size` set, results are cut into pages.
- `GET /v1/vulns/{id}`: the whole record, or 404 `{"code": 5, "message": "Bug not found."}`.

The records are given to it (`tests/jobs/security/fixtures/osv/*.json` are copies of real GHSA,
PYSEC and GO records). Every request is recorded in `calls`. `fail_next(n, status)` answers the next
`n` requests with `status`; `garbage = True` answers 200 with a body that is not JSON; `stop()` makes it
unreachable.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import FakeServer

MAX_BATCH = 1000


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    json: Any
    status: int
    authorization: str | None = None


def load_records(directory: Path) -> list[dict[str, Any]]:
    return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(directory.glob("*.json"))]


def _normalise(ecosystem: str, name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower() if ecosystem == "PyPI" else name


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _in_range(version: Version, events: list[dict[str, str]]) -> bool:
    """The OSV range evaluation of the spec, for versions PEP 440 can order (fine for these records)."""
    affected = False
    points = []
    for event in events:
        for kind, value in event.items():
            point = Version("0") if value == "0" else _version(value)
            if point is not None:
                points.append((point, kind))
    for point, kind in sorted(points):
        if kind == "introduced" and version >= point:
            affected = True
        elif kind == "fixed" and version >= point:
            affected = False
        elif kind == "last_affected" and version > point:
            affected = False
    return affected


def affects(record: dict[str, Any], ecosystem: str, name: str, version: str) -> bool:
    parsed = _version(version)
    for entry in record.get("affected", []):
        package = entry.get("package", {})
        if package.get("ecosystem") != ecosystem or _normalise(ecosystem, package.get("name", "")) != _normalise(
            ecosystem, name
        ):
            continue
        if version in entry.get("versions", []):
            return True
        for span in entry.get("ranges", []):
            if span.get("type") in ("ECOSYSTEM", "SEMVER") and parsed is not None and _in_range(parsed, span["events"]):
                return True
    return False


class FakeOSV(FakeServer):
    def __init__(self, records: list[dict[str, Any]], *, page_size: int | None = None) -> None:
        self.records = {record["id"]: record for record in records}
        self.page_size = page_size
        self.calls: list[Call] = []
        self.garbage = False
        self.lock = threading.Lock()
        self._failures: list[int] = []
        self.app = Starlette(routes=[
            Route("/v1/querybatch", self._querybatch, methods=["POST"]),
            Route("/v1/vulns/{vuln_id:path}", self._vuln, methods=["GET"]),
        ])  # fmt: skip
        self.serve(self.app, "fake-osv")

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return self.base_url


    # ------------------------------------------------------------------ test-side controls

    def fail_next(self, count: int, status: int = 500) -> None:
        with self.lock:
            self._failures += [status] * count

    def calls_to(self, path_prefix: str) -> list[Call]:
        with self.lock:
            return [call for call in self.calls if call.path.startswith(path_prefix)]

    # ------------------------------------------------------------------ handlers

    def _answer(self, request: Request, body: Any, status: int, payload: Any) -> Response:
        with self.lock:
            if self._failures:
                status, payload = self._failures.pop(0), {"code": 13, "message": "Internal error"}
            authorization = request.headers.get("authorization")
            self.calls.append(Call(request.method, request.url.path, body, status, authorization))
            garbage = self.garbage
        if garbage and status == 200:
            return Response("<html><body>502 Bad Gateway</body></html>", status_code=200, media_type="text/html")
        return JSONResponse(payload, status_code=status)

    async def _querybatch(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return self._answer(request, None, 400, {"code": 3, "message": "Invalid JSON payload"})
        queries = body.get("queries") if isinstance(body, dict) else None
        if not isinstance(queries, list) or len(queries) > MAX_BATCH:
            return self._answer(request, body, 400, {"code": 3, "message": "Too many queries."})
        results = []
        for query in queries:
            result = self._result(query)
            if result is None:
                return self._answer(request, body, 400, {"code": 3, "message": "Invalid query."})
            results.append(result)
        return self._answer(request, body, 200, {"results": results})

    def _result(self, query: Any) -> dict[str, Any] | None:
        package = query.get("package") if isinstance(query, dict) else None
        if not isinstance(package, dict) or not package.get("name") or not package.get("ecosystem"):
            return None
        version = query.get("version")
        if not isinstance(version, str):
            return None
        matches = [
            {"id": vuln_id, "modified": record.get("modified", "2024-01-01T00:00:00Z")}
            for vuln_id, record in sorted(self.records.items())
            if affects(record, package["ecosystem"], package["name"], version)
        ]
        offset = int(query.get("page_token") or 0)
        if self.page_size is None:
            return {"vulns": matches} if matches else {}
        page = matches[offset : offset + self.page_size]
        result: dict[str, Any] = {"vulns": page} if page else {}
        if offset + self.page_size < len(matches):
            result["next_page_token"] = str(offset + self.page_size)
        return result

    async def _vuln(self, request: Request) -> Response:
        record = self.records.get(request.path_params["vuln_id"])
        if record is None:
            return self._answer(request, None, 404, {"code": 5, "message": "Bug not found."})
        return self._answer(request, None, 200, record)
