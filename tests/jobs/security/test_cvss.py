"""CVSS v3 base scores against the FIRST calculator's values, and properties of the formula."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobs.security.cvss import CvssError, base_score, rating, roundup


@pytest.mark.parametrize(
    ("vector", "score"),
    [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5),  # GHSA-x84v-xcm2-53pg (requests)
        ("CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N", 6.1),  # GHSA-j8r2-6x86-q33q (requests)
        ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:H/A:H", 7.4),  # GHSA-p6mc-m468-83gw (lodash)
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H/E:P/RL:O/RC:C", 7.5),  # temporal metrics ignored
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),  # the classic reflected XSS
        ("CVSS:3.0/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N", 6.4),
        ("CVSS:3.1/AV:L/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H", 6.7),
        ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.6),
        ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:N/A:N", 0.0),
    ],
)
def test_base_scores_match_the_specification(vector: str, score: float) -> None:
    assert base_score(vector) == score


@pytest.mark.parametrize(
    "vector",
    ["CVSS:2.0/AV:N/AC:L/Au:N/C:P/I:P/A:P", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H", "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/"
     "S:U/C:H/I:H/A:H", "AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"],
)
def test_malformed_vectors_are_rejected(vector: str) -> None:
    with pytest.raises(CvssError):
        base_score(vector)


def test_ratings_follow_the_qualitative_scale() -> None:
    assert [rating(s) for s in (0.0, 3.9, 4.0, 6.9, 7.0, 8.9, 9.0, 10.0)] == [
        "low", "low", "medium", "medium", "high", "high", "critical", "critical"]  # fmt: skip


def test_roundup_avoids_floating_point_noise() -> None:
    assert roundup(4.000_000_1) == 4.0  # the spec's own example: not 4.1
    assert roundup(4.02) == 4.1


IMPACT = st.sampled_from(["N", "L", "H"])
VECTORS = st.fixed_dictionaries({
    "AV": st.sampled_from("NALP"), "AC": st.sampled_from("LH"), "PR": st.sampled_from("NLH"),
    "UI": st.sampled_from("NR"), "S": st.sampled_from("UC"), "C": IMPACT, "I": IMPACT, "A": IMPACT,
})  # fmt: skip


def _vector(metrics: dict[str, str]) -> str:
    return "CVSS:3.1/" + "/".join(f"{key}:{value}" for key, value in metrics.items())


@given(VECTORS)
def test_scores_are_within_range_with_one_decimal(metrics: dict[str, str]) -> None:
    score = base_score(_vector(metrics))
    assert 0.0 <= score <= 10.0
    assert round(score, 1) == score
    assert (score == 0.0) == (metrics["C"] == metrics["I"] == metrics["A"] == "N")


@given(VECTORS, st.sampled_from(["C", "I", "A"]))
def test_a_higher_impact_never_lowers_the_score(metrics: dict[str, str], which: str) -> None:
    order = ["N", "L", "H"]
    if metrics[which] == "H":
        return
    higher = {**metrics, which: order[order.index(metrics[which]) + 1]}
    assert base_score(_vector(higher)) >= base_score(_vector(metrics))
