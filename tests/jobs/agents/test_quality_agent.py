"""The quality agent on a real sample repository in tmp_path: a new module with a function of CCN 17
and a renamed copy of an existing function."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from jobs.agents.base import Workspace
from jobs.agents.quality import QualityAgent
from jobs.model import AgentResult, Finding
from jobs.quality.config import DEFAULT_EXCLUDE, QualityConfig, as_quality_config

LEGACY_BRANCHES = "".join(f'    if code == {i}:\n        return "{chr(96 + i)}"\n' for i in range(1, 17))

PRICING = f'''\
"""Prices and orders."""


def summarise_orders(orders, tax_rate):
    total = 0
    count = 0
    largest = None
    for order in orders:
        if order.status == "cancelled":
            continue
        amount = order.quantity * order.unit_price
        amount = amount + amount * tax_rate
        total += amount
        count += 1
        if largest is None or amount > largest:
            largest = amount
    average = total / count if count else 0
    return {{"total": round(total, 2), "count": count, "largest": largest, "average": average}}


def discount(price, percent):
    if percent <= 0:
        return price
    return round(price * (100 - percent) / 100, 2)


def legacy_category(code):
{LEGACY_BRANCHES}    return "?"
'''  # legacy_category (lines 27-60) has CCN 17 but is not changed

INVOICES = '''\
"""Invoices: added by the pull request."""

from shop.pricing import discount


def shipping_rate(country, weight, express, member):
    if country == "FR":
        rate = 5
    elif country == "DE":
        rate = 6
    elif country == "IT":
        rate = 7
    elif country == "ES":
        rate = 7
    elif country in ("US", "CA"):
        rate = 15
    else:
        rate = 20
    if weight > 30:
        rate *= 3
    elif weight > 10:
        rate *= 2
    elif weight > 5:
        rate += 4
    if express and member:
        rate += 5
    elif express or weight > 50:
        rate += 10
    if member and rate > 20:
        rate -= 5
    for _ in range(int(weight) // 100):
        rate += 1
    return discount(rate, 10 if member else 0)


def invoice_stats(invoices, vat):
    acc = 0
    n = 0
    biggest = None
    for inv in invoices:
        if inv.status == "cancelled":
            continue
        value = inv.quantity * inv.unit_price
        value = value + value * vat
        acc += value
        n += 1
        if biggest is None or value > biggest:
            biggest = value
    mean = acc / n if n else 0
    return {"total": round(acc, 2), "count": n, "largest": biggest, "average": mean}
'''  # shipping_rate (6-33): CCN 17; invoice_stats (36-50): summarise_orders renamed

CHANGED = {
    "shop/invoices.py": set(range(1, 51)),  # the new file
    "shop/pricing.py": {24},  # one line of discount()
    "tests/test_invoices.py": set(range(1, 51)),  # excluded by default
    "README.md": {1, 2},  # not source code
}


def all_lines(text: str) -> set[int]:
    return set(range(1, text.count("\n") + 1))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for path, text in {
        "shop/__init__.py": "",
        "shop/pricing.py": PRICING,
        "shop/invoices.py": INVOICES,
        "tests/test_invoices.py": INVOICES,  # a copy with a complex function, in tests: excluded
        "README.md": "# Shop\n\nSee shop/.\n",
    }.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return root


def workspace(root: Path, changed: dict[str, set[int]] | None) -> Workspace:
    scratch = root.parent / "scratch"
    scratch.mkdir(exist_ok=True)
    return Workspace(root=root, scratch=scratch, head_sha="f" * 40, base_sha="e" * 40, changed_lines=changed)


class Progress:
    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []

    async def __call__(self, fraction: float, message: str) -> None:
        self.calls.append((fraction, message))


async def run_agent(
    root: Path, changed: dict[str, set[int]] | None, config: QualityConfig | dict[str, Any] | None = None
) -> AgentResult:
    progress = Progress()
    result = await QualityAgent().run(workspace(root, changed), config, progress)
    assert [fraction for fraction, _ in progress.calls] == sorted(fraction for fraction, _ in progress.calls)
    return result


SHIPPING_FINDING = Finding(
    path="shop/invoices.py", start_line=6, end_line=33, level="warning", rule="complexity",
    title="Cyclomatic complexity 17 > 15",
    message="shipping_rate has a cyclomatic complexity of 17, above the threshold of 15 (28 lines of code, "
    "4 parameters). Split it into smaller functions.",
)  # fmt: skip

COPY_FINDING = Finding(
    path="shop/invoices.py", start_line=36, end_line=50, level="warning", rule="duplication",
    title="Duplicated block (96 tokens)",
    message="Lines 36-50 duplicate shop/pricing.py:4-18 (the same code up to the names of identifiers and the "
    "values of literals).",
)  # fmt: skip


async def test_complex_function_and_renamed_copy_fail_the_check(repo: Path) -> None:
    result = await run_agent(repo, CHANGED)

    assert result.agent == "quality"
    assert result.conclusion == "failure"
    assert result.title == "1 function over CCN 15; 32.6 % duplication on new code"
    assert result.findings == [SHIPPING_FINDING, COPY_FINDING]
    # changed code lines: invoices.py 1, 3, 6-33, 36-50 (45; blank lines left out) + pricing.py 24
    assert result.metrics == {
        "max_ccn_changed": 17,
        "functions_changed": 3,  # discount, shipping_rate, invoice_stats (not legacy_category)
        "functions_over_threshold": 1,
        "duplicated_blocks": 1,
        "duplicated_lines_new": 15,
        "duplication_new_percent": 32.6,
        "changed_lines": 46,
        "files_analysed": 2,
    }


async def test_the_summary_tables_the_conditions_functions_and_blocks(repo: Path) -> None:
    summary = (await run_agent(repo, CHANGED)).summary
    assert "| Changed functions over CCN 15 | 1 (max CCN 17) | 0 | ❌ fail |" in summary
    assert "| Duplication on new code | 32.6 % (15 of 46 changed lines) | ≤ 3.0 % | ❌ fail |" in summary
    functions = summary.split("### Most complex changed functions")[1].split("###")[0]
    assert functions.strip().splitlines()[2:] == [
        "| `shipping_rate` | `shop/invoices.py` | 6-33 | **17** | 28 | 4 |",
        "| `invoice_stats` | `shop/invoices.py` | 36-50 | 6 | 15 | 2 |",
        "| `discount` | `shop/pricing.py` | 21-24 | 2 | 4 | 2 |",
    ]
    assert "| `shop/invoices.py:36-50` | `shop/pricing.py:4-18` | 96 |" in summary
    assert "searched in 3 files (490 tokens)" in summary


async def test_thresholds_come_from_the_config_section(repo: Path) -> None:
    lenient = {"max_ccn": 17, "max_duplication_percent": 40.0}
    result = await run_agent(repo, CHANGED, lenient)
    assert result.conclusion == "success"
    assert result.title == "No function over CCN 17; 32.6 % duplication on new code"
    assert result.findings == [COPY_FINDING]  # duplicated blocks are annotated even under the threshold

    only_duplication = await run_agent(repo, CHANGED, QualityConfig(max_ccn=17))
    assert only_duplication.conclusion == "failure"
    assert only_duplication.metrics["functions_over_threshold"] == 0


async def test_a_change_without_complexity_or_duplication_succeeds(repo: Path) -> None:
    result = await run_agent(repo, {"shop/pricing.py": {22, 23, 24}})
    assert result.conclusion == "success"
    assert result.findings == []
    assert result.metrics["max_ccn_changed"] == 2
    assert result.metrics["duplication_new_percent"] == 0.0
    assert result.metrics["changed_lines"] == 3


async def test_a_changed_original_reports_the_copy_it_has(repo: Path) -> None:
    """Editing one line of the original marks that line as duplicated new code, annotated on it."""
    result = await run_agent(repo, {"shop/pricing.py": {10}})
    assert [(f.rule, f.path, f.start_line, f.end_line) for f in result.findings] == [
        ("duplication", "shop/pricing.py", 4, 18)
    ]
    assert "duplicate shop/invoices.py:36-50" in result.findings[0].message
    assert result.metrics["duplication_new_percent"] == 100.0
    assert result.conclusion == "failure"


@pytest.mark.parametrize(
    "changed", [{"README.md": {1}}, {"tests/test_invoices.py": set(range(1, 51))}, {"shop/gone.py": {1}}, {}]
)
async def test_no_changed_analysable_file_is_neutral(repo: Path, changed: dict[str, set[int]]) -> None:
    result = await run_agent(repo, changed)
    assert result.conclusion == "neutral"
    assert result.title == "No changed source files to analyse"
    assert result.findings == []


async def test_excluded_paths_follow_the_config(repo: Path) -> None:
    result = await run_agent(repo, {"tests/test_invoices.py": set(range(1, 51))}, {"exclude": []})
    assert [(f.rule, f.path, f.start_line) for f in result.findings] == [
        ("complexity", "tests/test_invoices.py", 6),
        ("duplication", "tests/test_invoices.py", 1),  # a copy of the whole of shop/invoices.py
        ("duplication", "tests/test_invoices.py", 36),  # and of shop/pricing.py's summarise_orders
    ]
    assert "Lines 1-50 duplicate shop/invoices.py:1-50 " in result.findings[1].message
    assert "Lines 36-50 duplicate shop/pricing.py:4-18 " in result.findings[2].message

    hidden = await run_agent(repo, CHANGED, {"exclude": ["shop/pricing.py", "tests/"]})
    assert [f.rule for f in hidden.findings] == ["complexity"]  # the original is not read: no copy of it


async def test_without_a_diff_everything_counts_as_new(repo: Path) -> None:
    result = await run_agent(repo, None)
    assert [(f.rule, f.path, f.start_line) for f in result.findings] == [
        ("complexity", "shop/pricing.py", 27),  # CCN 17 as well, but longer: the worst first
        ("complexity", "shop/invoices.py", 6),
        ("duplication", "shop/invoices.py", 36),
        ("duplication", "shop/pricing.py", 4),
    ]
    assert result.metrics["functions_changed"] == 5
    assert result.metrics["duplicated_lines_new"] == 30


def test_the_agent_follows_the_protocol(repo: Path) -> None:
    agent = QualityAgent()
    assert agent.name == "quality"
    assert agent.applies_to(workspace(repo, {}), None)


def test_the_config_has_documented_defaults_and_rejects_unknown_keys() -> None:
    config = as_quality_config(None)
    assert (config.max_ccn, config.max_duplication_percent, config.min_duplicate_tokens) == (15, 3.0, 50)
    assert config.exclude == list(DEFAULT_EXCLUDE)
    with pytest.raises(msgspec.ValidationError, match="unknown field `max_cnn`"):
        as_quality_config({"max_cnn": 10})
    with pytest.raises(msgspec.ValidationError, match=r"\$\.quality\.max_ccn"):
        as_quality_config({"max_ccn": 0})


@pytest.mark.parametrize(
    ("path", "excluded"),
    [
        ("tests/test_a.py", True), ("src/tests/helpers.py", True), ("pkg/a_test.py", True),
        ("conftest.py", True), ("web/app.spec.ts", True), ("vendor/x/y.go", True), ("a/b/c.min.js", True),
        ("pkg/migrations/0001_initial.py", True), ("api_pb2.py", True),
        ("pkg/mod.py", False), ("testsuite/a.py", False), ("builder.py", False), ("src/contest.py", False),
    ],
)  # fmt: skip
def test_default_excludes(path: str, excluded: bool) -> None:
    assert QualityConfig().is_excluded(path) is excluded


def test_exclude_globs_are_anchored_like_gitignore() -> None:
    config = QualityConfig(exclude=["docs/**", "gen/", "*.[ch]", "src/**/fixtures/*.py"])
    assert config.is_excluded("docs/a.py") and not config.is_excluded("x/docs/a.py")
    assert config.is_excluded("a/gen/b.py") and config.is_excluded("gen/b.py")
    assert config.is_excluded("lib/x.c") and not config.is_excluded("lib/x.cc")
    assert config.is_excluded("src/fixtures/a.py") and config.is_excluded("src/a/b/fixtures/a.py")
    assert not config.is_excluded("src/fixtures/deep/a.py")
