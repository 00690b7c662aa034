"""The `security` section of `.aqe.yml`, inline ignore comments, and sorting issues into new/existing/ignored."""

from __future__ import annotations

import re

import msgspec
import pytest

from jobs.quality.config import DEFAULT_EXCLUDE
from jobs.security.config import SecurityConfig, as_security_config
from jobs.security.ignores import ALL_RULES, ignored_rules, inline_ignores_issue
from jobs.security.issues import Issue, classify


def issue(rule: str = "B602", severity: str = "high", path: str = "app.py", line: int = 5,
          aliases: tuple[str, ...] = ()) -> Issue:
    return Issue("sast", rule, severity, path, line, line, f"{rule}: x", "m", aliases)  # type: ignore[arg-type]


def test_defaults_work_without_a_file() -> None:
    config = as_security_config(None)
    assert config == SecurityConfig()
    assert config.scanners == ["secrets", "sast", "dependencies"]
    assert (config.fail_on, config.new_code_only, config.ignore_paths, config.ignore_rules, config.severity) == (
        "high", True, [], [], {})
    assert config.sast_exclude == list(DEFAULT_EXCLUDE)
    assert [config.fails_at(level) for level in ("critical", "high", "medium", "low")] == [True, True, False, False]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"fail_on": "severe"}, "Invalid enum value 'severe' - at `$.fail_on`"),
        ({"scanners": ["secrets", "virus"]}, "Invalid enum value 'virus' - at `$.scanners[1]`"),
        ({"ignore_rule": ["B101"]}, "Object contains unknown field `ignore_rule`"),
        ({"ignore_rules": ["B101", " "]}, "must not contain an empty string (at `$.security.ignore_rules`)"),
        ({"severity": {"B101": "urgent"}}, "Invalid enum value 'urgent'"),
        ({"severity": {"": "low"}}, "must not have an empty rule id (at `$.security.severity`)"),
    ],
)
def test_invalid_values_are_refused_with_their_place(raw: dict[str, object], message: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=re.escape(message)):
        as_security_config(raw)


def test_fail_on_none_never_fails_and_critical_only_critical() -> None:
    assert not any(as_security_config({"fail_on": "none"}).fails_at(level) for level in ("critical", "high", "low"))
    critical_only = as_security_config({"fail_on": "critical"})
    assert [critical_only.fails_at(level) for level in ("critical", "high")] == [True, False]


def test_rule_matching_ignores_case_and_severity_overrides_apply() -> None:
    config = as_security_config({"ignore_rules": ["cve-2018-18074"],
                                 "severity": {"b311": "high", "CWE-78": "critical"}})
    assert config.ignores_any(("GHSA-x84v-xcm2-53pg", "CVE-2018-18074"))
    assert not config.ignores_any(("B602",))
    assert config.severity_of(("B311",), "low") == "high"
    assert config.severity_of(("B602", "CWE-78"), "high") == "critical"
    assert config.severity_of(("B101",), "low") == "low"


@pytest.mark.parametrize(
    ("line", "rules"),
    [
        ("subprocess.run(cmd, shell=True)  # aqe: ignore[B602]", frozenset({"b602"})),
        ("exec(cmd); // aqe: ignore[aqe.js.eval-dynamic, B307]", frozenset({"aqe.js.eval-dynamic", "b307"})),
        ("KEY = 'x'  # AQE: Ignore", ALL_RULES),
        ("requests==2.19.0  # aqe: ignore[GHSA-x84v-xcm2-53pg]", frozenset({"ghsa-x84v-xcm2-53pg"})),
        ("/* aqe: ignore[aqe.js.html-injection] */", frozenset({"aqe.js.html-injection"})),
        ("-- aqe: ignore", ALL_RULES),
        ("x = 1  # aqe: ignored_things", None),
        ("print('aqe: ignore')", None),
        ("x = 1  # noqa", None),
    ],
)
def test_inline_ignore_comments(line: str, rules: frozenset[str] | None) -> None:
    assert ignored_rules(line) == rules


def test_an_inline_ignore_applies_to_its_line_and_the_line_below() -> None:
    lines = ["import subprocess", "# aqe: ignore[B602]", "subprocess.run(c, shell=True)",
             "subprocess.run(d, shell=True)"]
    assert inline_ignores_issue(lines, 3, 3, ["B602"])
    assert not inline_ignores_issue(lines, 4, 4, ["B602"])
    assert not inline_ignores_issue(lines, 3, 3, ["B603"])
    assert not inline_ignores_issue(None, 3, 3, ["B602"])


def test_classify_sorts_into_ignored_new_and_existing() -> None:
    config = as_security_config({"ignore_paths": ["fixtures/**"], "ignore_rules": ["B101"]})
    files = {"app.py": ["x"] * 9 + ["run(c)  # aqe: ignore"]}
    issues = [issue(line=5), issue(line=7), issue(rule="B101", line=5), issue(path="fixtures/a.py", line=5),
              issue(line=10), issue(severity="low", line=5)]
    classified = classify(issues, config, {"app.py": {5, 6}}, files.get)
    assert [(c.issue.rule, c.issue.path, c.issue.start_line, c.issue.severity, c.status, c.fails)
            for c in classified] == [
        ("B602", "app.py", 5, "high", "new", True),
        ("B602", "app.py", 5, "low", "new", False),
        ("B602", "app.py", 7, "high", "existing", False),
        ("B101", "app.py", 5, "high", "ignored", False),
        ("B602", "app.py", 10, "high", "ignored", False),
        ("B602", "fixtures/a.py", 5, "high", "ignored", False),
    ]


def test_without_a_diff_everything_is_new_and_without_new_code_only_existing_issues_fail() -> None:
    assert [c.status for c in classify([issue(line=7)], SecurityConfig(), None, lambda _: None)] == ["new"]
    everywhere = as_security_config({"new_code_only": False})
    [existing] = classify([issue(line=7)], everywhere, {"app.py": {5}}, lambda _: None)
    assert (existing.status, existing.fails) == ("existing", True)


def test_a_configured_severity_decides_failing() -> None:
    config = as_security_config({"severity": {"B602": "medium"}})
    [item] = classify([issue()], config, None, lambda _: None)
    assert (item.issue.severity, item.fails) == ("medium", False)
