"""OSV: reading records (severity, fixed versions, aliases) and the client against a fake OSV on loopback."""

from __future__ import annotations

import base64
import json
import logging
import socket
from pathlib import Path

import httpx
import pytest

from jobs.security.lockfiles import Package
from jobs.security.osv import (
    Advisory,
    OsvClient,
    OsvUnavailable,
    advisory_of,
    alias_groups,
    display_origin,
    fixed_versions,
    parse_querybatch,
    record_severity,
    version_key,
    vulnerability_issues,
)
from tests.fakes.osv import FakeOSV, load_records

RECORDS = {record["id"]: record for record in load_records(Path(__file__).parent / "fixtures" / "osv")}
REQUESTS = Package("PyPI", "requests", "2.19.0", "requirements.txt", 3)


def client_for(url: str, retries: int = 2) -> OsvClient:
    return OsvClient(url, timeout_s=5.0, retries=retries, backoff_s=0.01)


# ------------------------------------------------------------------------------------- records


def test_github_severity_wins_over_the_cvss_score() -> None:
    assert record_severity(RECORDS["GHSA-5rcv-m4m3-hfh7"]) == ("medium", "GitHub: MODERATE")  # CVSS says 7.5
    assert record_severity(RECORDS["GHSA-x84v-xcm2-53pg"]) == ("high", "GitHub: HIGH")


def test_cvss_v3_gives_the_severity_when_github_gives_none() -> None:
    record = {**RECORDS["GHSA-j8r2-6x86-q33q"], "database_specific": {"cwe_ids": ["CWE-200"]}}
    assert record_severity(record) == ("medium", "CVSS 6.1")
    assert record_severity({"severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]}
                           ) == ("critical", "CVSS 9.8")


def test_records_without_a_severity_have_none() -> None:
    assert record_severity(RECORDS["PYSEC-2018-28"]) == (None, "")
    assert record_severity(RECORDS["GO-2020-0015"]) == (None, "")
    assert record_severity({"severity": [{"type": "CVSS_V3", "score": "garbage"}]}) == (None, "")


def test_fixed_versions_of_the_range_the_version_is_in() -> None:
    assert fixed_versions(RECORDS["GHSA-j8r2-6x86-q33q"], "PyPI", "requests", "2.19.0") == ["2.31.0"]
    assert fixed_versions(RECORDS["GHSA-j8r2-6x86-q33q"], "PyPI", "Requests", "2.2.0") == []  # not affected
    assert fixed_versions(RECORDS["PYSEC-2018-28"], "PyPI", "requests", "2.19.0") == ["2.20.0"]  # GIT range skipped
    assert fixed_versions(RECORDS["GHSA-5rcv-m4m3-hfh7"], "Go", "golang.org/x/text", "0.3.2") == ["0.3.3"]
    assert fixed_versions(RECORDS["GHSA-p6mc-m468-83gw"], "npm", "lodash", "4.17.15") == ["4.17.20"]


def test_fixed_versions_with_several_ranges_and_last_affected() -> None:
    record = {"affected": [{"package": {"ecosystem": "PyPI", "name": "jinja2"}, "ranges": [{"type": "ECOSYSTEM",
              "events": [{"introduced": "0"}, {"fixed": "2.11.3"}, {"introduced": "3.0.0"}, {"fixed": "3.1.3"}]}]},
              {"package": {"ecosystem": "PyPI", "name": "jinja2"}, "ranges": [{"type": "ECOSYSTEM",
               "events": [{"introduced": "3.1.4"}, {"last_affected": "3.1.5"}]}]}]}  # fmt: skip
    assert fixed_versions(record, "PyPI", "Jinja2", "2.10") == ["2.11.3"]
    assert fixed_versions(record, "PyPI", "jinja2", "3.0.1") == ["3.1.3"]
    assert fixed_versions(record, "PyPI", "jinja2", "3.1.5") == []  # affected, no fix
    unordered = {"affected": [{"package": {"ecosystem": "npm", "name": "x"}, "ranges": [{"type": "SEMVER", "events": [
        {"fixed": "1.2.0"}, {"introduced": "0"}, {"fixed": "2.0.0-rc.2"}, {"introduced": "2.0.0-alpha.1"}]}]}]}
    assert fixed_versions(unordered, "npm", "x", "2.0.0-beta.3") == ["2.0.0-rc.2"]


def test_versions_that_cannot_be_compared_list_every_fix() -> None:
    record = {"affected": [{"package": {"ecosystem": "npm", "name": "x"}, "ranges": [{"type": "ECOSYSTEM", "events": [
        {"introduced": "0"}, {"fixed": "1.0.1"}, {"introduced": "2.0.0"}, {"fixed": "2.0.5"}]}]}]}
    assert fixed_versions(record, "npm", "x", "latest-and-greatest") == ["1.0.1", "2.0.5"]


def test_semver_and_pep440_ordering() -> None:
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1",
               "1.0.0", "1.0.1", "1.10.0"]
    keys = [version_key("npm", v) for v in ordered]
    assert keys == sorted(keys)  # type: ignore[type-var]
    assert version_key("PyPI", "2.0.0rc1") < version_key("PyPI", "2.0.0")  # type: ignore[operator]
    assert version_key("Go", "v0.3.2") == version_key("Go", "0.3.2")
    assert version_key("npm", "not.a.version") is None


def test_aliases_put_the_records_of_one_vulnerability_together() -> None:
    ids = ["GHSA-j8r2-6x86-q33q", "GHSA-x84v-xcm2-53pg", "PYSEC-2018-28"]
    groups = alias_groups(ids, {i: advisory_of(i, RECORDS[i]) for i in ids})
    assert sorted([a.id for a in group] for group in groups) == [
        ["GHSA-j8r2-6x86-q33q"], ["GHSA-x84v-xcm2-53pg", "PYSEC-2018-28"]]  # fmt: skip


def test_one_issue_per_vulnerability_with_its_fix_and_ids() -> None:
    ids = ["GHSA-x84v-xcm2-53pg", "PYSEC-2018-28", "GHSA-j8r2-6x86-q33q"]
    advisories = {i: advisory_of(i, RECORDS[i]) for i in ids}
    issues = vulnerability_issues([REQUESTS], {("PyPI", "requests", "2.19.0"): ids}, advisories)
    assert [(i.rule, i.severity, i.title, i.path, i.start_line) for i in issues] == [
        ("GHSA-x84v-xcm2-53pg", "high", "GHSA-x84v-xcm2-53pg: requests 2.19.0 (fixed in 2.20.0)",
         "requirements.txt", 3),
        ("GHSA-j8r2-6x86-q33q", "medium", "GHSA-j8r2-6x86-q33q: requests 2.19.0 (fixed in 2.31.0)",
         "requirements.txt", 3),
    ]
    assert issues[0].aliases == ("CVE-2018-18074", "PYSEC-2018-28")
    assert issues[0].message == (
        "requests 2.19.0 (PyPI) has a known vulnerability: Moderate severity vulnerability that affects requests "
        "[GHSA-x84v-xcm2-53pg, CVE-2018-18074, PYSEC-2018-28; severity high (GitHub: HIGH)]. "
        "Upgrade requests to 2.20.0 or later."
    )


def test_withdrawn_advisories_are_left_out() -> None:
    withdrawn = {**RECORDS["GHSA-j8r2-6x86-q33q"], "withdrawn": "2024-01-01T00:00:00Z"}
    issues = vulnerability_issues([REQUESTS], {("PyPI", "requests", "2.19.0"): ["GHSA-j8r2-6x86-q33q"]},
                                  {"GHSA-j8r2-6x86-q33q": advisory_of("GHSA-j8r2-6x86-q33q", withdrawn)})
    assert issues == []


def test_a_go_record_takes_the_severity_of_its_ghsa_alias() -> None:
    package = Package("Go", "golang.org/x/text", "0.3.2", "go.sum", 7)
    ids = ["GHSA-5rcv-m4m3-hfh7", "GO-2020-0015"]
    [issue] = vulnerability_issues([package], {("Go", "golang.org/x/text", "0.3.2"): ids},
                                   {i: advisory_of(i, RECORDS[i]) for i in ids})
    assert (issue.rule, issue.severity, issue.aliases) == ("GHSA-5rcv-m4m3-hfh7", "medium",
                                                           ("CVE-2020-14040", "GO-2020-0015"))


def test_a_vulnerability_without_severity_or_details_counts_as_medium_and_says_so() -> None:
    [issue] = vulnerability_issues([REQUESTS], {("PyPI", "requests", "2.19.0"): ["OSV-2099-1"]},
                                   {"OSV-2099-1": advisory_of("OSV-2099-1", None)})
    assert issue.severity == "medium"
    assert "no severity given, counted as medium" in issue.message
    assert issue.title == "OSV-2099-1: requests 2.19.0 (no fixed version yet)"


@pytest.mark.parametrize(
    "answer",
    [None, [], {"results": "x"}, {"results": [{}]}, {"results": [{}, "x"]}, {"results": [{}, {"vulns": [{}]}]},
     {"results": [{}, {"vulns": "GHSA-x"}]}],
)
def test_querybatch_answers_that_do_not_fit_the_queries_are_refused(answer: object) -> None:
    with pytest.raises(OsvUnavailable):
        parse_querybatch(answer, 2)


def test_the_origin_shown_never_carries_credentials() -> None:
    assert display_origin("https://user:s3cret@osv.internal:8443/api?key=k") == "https://osv.internal:8443"


# -------------------------------------------------------------------------------------- client


async def test_the_client_queries_in_one_batch_and_fetches_each_id_once(osv: FakeOSV) -> None:
    keys = [("PyPI", "requests", "2.19.0"), ("npm", "lodash", "4.17.15"), ("Go", "golang.org/x/text", "0.3.2"),
            ("PyPI", "click", "8.1.7")]
    found, advisories = await client_for(osv.url).scan(keys)
    assert found == {
        ("PyPI", "requests", "2.19.0"): ["GHSA-j8r2-6x86-q33q", "GHSA-x84v-xcm2-53pg", "PYSEC-2018-28"],
        ("npm", "lodash", "4.17.15"): ["GHSA-p6mc-m468-83gw"],
        ("Go", "golang.org/x/text", "0.3.2"): ["GHSA-5rcv-m4m3-hfh7", "GO-2020-0015"],
        ("PyPI", "click", "8.1.7"): [],
    }
    assert set(advisories) == set(RECORDS)
    assert advisories["GHSA-p6mc-m468-83gw"].summary == "Prototype Pollution in lodash"
    [batch] = osv.calls_to("/v1/querybatch")
    assert batch.json == {"queries": [
        {"package": {"name": "requests", "ecosystem": "PyPI"}, "version": "2.19.0"},
        {"package": {"name": "lodash", "ecosystem": "npm"}, "version": "4.17.15"},
        {"package": {"name": "golang.org/x/text", "ecosystem": "Go"}, "version": "0.3.2"},
        {"package": {"name": "click", "ecosystem": "PyPI"}, "version": "8.1.7"},
    ]}
    assert sorted(call.path for call in osv.calls_to("/v1/vulns/")) == sorted(f"/v1/vulns/{i}" for i in RECORDS)


async def test_credentials_in_the_url_go_in_a_header_not_in_logs(osv: FakeOSV,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = osv.url.replace("http://", "http://aqe:s3cret-pass@")
    await client_for(url).scan([("npm", "lodash", "4.17.15")])
    assert {call.authorization for call in osv.calls} == {"Basic " + base64.b64encode(b"aqe:s3cret-pass").decode()}
    assert "s3cret" not in caplog.text
    assert "HTTP Request: POST http://127.0.0.1" in caplog.text  # httpx does log the URL


async def test_next_page_tokens_are_followed() -> None:
    with FakeOSV(list(RECORDS.values()), page_size=1) as osv:
        found, _ = await client_for(osv.url).scan([("PyPI", "requests", "2.19.0")])
        pages = osv.calls_to("/v1/querybatch")
    assert found[("PyPI", "requests", "2.19.0")] == ["GHSA-j8r2-6x86-q33q", "GHSA-x84v-xcm2-53pg", "PYSEC-2018-28"]
    assert [call.json["queries"][0].get("page_token") for call in pages] == [None, "1", "2"]


async def test_more_than_1000_packages_take_several_batches(osv: FakeOSV) -> None:
    keys = [("PyPI", f"package-{n}", "1.0.0") for n in range(1001)] + [("npm", "lodash", "4.17.15")]
    found, _ = await client_for(osv.url).scan(keys)
    assert [len(call.json["queries"]) for call in osv.calls_to("/v1/querybatch")] == [1000, 2]
    assert found[("npm", "lodash", "4.17.15")] == ["GHSA-p6mc-m468-83gw"]


async def test_server_errors_are_retried(osv: FakeOSV) -> None:
    osv.fail_next(2, status=503)
    found, _ = await client_for(osv.url, retries=2).scan([("npm", "lodash", "4.17.15")])
    assert found[("npm", "lodash", "4.17.15")] == ["GHSA-p6mc-m468-83gw"]
    assert [call.status for call in osv.calls_to("/v1/querybatch")] == [503, 503, 200]


async def test_server_errors_beyond_the_retries_make_it_unavailable(osv: FakeOSV) -> None:
    osv.fail_next(3, status=500)
    with pytest.raises(OsvUnavailable, match=r"^http://127\.0\.0\.1:\d+ answered HTTP 500 after 3 attempts$"):
        await client_for(osv.url, retries=2).scan([("npm", "lodash", "4.17.15")])


async def test_an_unreachable_server_is_unavailable() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(OsvUnavailable, match=r"could not be reached \(ConnectError\) after 2 attempts"):
        await client_for(f"http://127.0.0.1:{port}", retries=1).scan([("npm", "lodash", "4.17.15")])


async def test_an_answer_that_is_not_json_is_unavailable(osv: FakeOSV) -> None:
    osv.garbage = True
    with pytest.raises(OsvUnavailable, match="POST /v1/querybatch with something that is not JSON"):
        await client_for(osv.url).scan([("npm", "lodash", "4.17.15")])


async def test_a_client_error_is_not_retried(osv: FakeOSV) -> None:
    osv.fail_next(1, status=400)
    with pytest.raises(OsvUnavailable, match="answered HTTP 400 to POST /v1/querybatch"):
        await client_for(osv.url).scan([("npm", "lodash", "4.17.15")])
    assert len(osv.calls) == 1


async def test_an_id_osv_does_not_know_is_kept_without_details(osv: FakeOSV) -> None:
    async with httpx.AsyncClient() as http:
        advisories = await client_for(osv.url).advisories(http, ["GHSA-p6mc-m468-83gw", "GHSA-0000-0000-0000"])
    assert advisories["GHSA-0000-0000-0000"] == Advisory("GHSA-0000-0000-0000", (), "", None, "", {})
    assert advisories["GHSA-p6mc-m468-83gw"].severity == "high"


def test_the_fixture_records_are_json_copies_of_real_records() -> None:
    for path in (Path(__file__).parent / "fixtures" / "osv").glob("*.json"):
        record = json.loads(path.read_text())
        assert record["id"] == path.stem
        assert {"id", "modified", "affected"} <= set(record)
