"""CVSS v3.0 / v3.1 base scores from vector strings, as the FIRST specification computes them.

https://www.first.org/cvss/v3.1/specification-document section 7 (formulas) and Appendix A
(Roundup). No CVSS library is a dependency of AQE, and the base score is a dozen lines of arithmetic.
Temporal and environmental metrics in a vector (`E:P/RL:O/...`) do not change the base score.
"""

from __future__ import annotations

import math

from jobs.security.config import Severity

_WEIGHTS: dict[str, dict[str, float]] = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "UI": {"N": 0.85, "R": 0.62},
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
    "I": {"H": 0.56, "L": 0.22, "N": 0.0},
    "A": {"H": 0.56, "L": 0.22, "N": 0.0},
}
_PRIVILEGES = {"U": {"N": 0.85, "L": 0.62, "H": 0.27}, "C": {"N": 0.85, "L": 0.68, "H": 0.5}}
BASE_METRICS = ("AV", "AC", "PR", "UI", "S", "C", "I", "A")


class CvssError(ValueError):
    pass


def parse_vector(vector: str) -> tuple[str, dict[str, str]]:
    """("3.1", {"AV": "N", ...}) of `CVSS:3.1/AV:N/...`; CvssError when a base metric is missing or unknown."""
    prefix, _, rest = vector.strip().partition("/")
    if prefix not in ("CVSS:3.0", "CVSS:3.1"):
        raise CvssError(f"not a CVSS v3 vector: {vector[:80]!r}")
    metrics: dict[str, str] = {}
    for part in rest.split("/"):
        key, sep, value = part.partition(":")
        if not sep or key in metrics:
            raise CvssError(f"malformed metric {part!r} in {vector[:80]!r}")
        metrics[key] = value
    for key in BASE_METRICS:
        allowed = _PRIVILEGES["U"] if key == "PR" else {"U": 0, "C": 0} if key == "S" else _WEIGHTS[key]
        if metrics.get(key) not in allowed:
            raise CvssError(f"missing or unknown {key} in {vector[:80]!r}")
    return prefix.removeprefix("CVSS:"), metrics


def base_score(vector: str) -> float:
    """The base score, 0.0-10.0, of a CVSS v3.0 or v3.1 vector."""
    version, m = parse_vector(vector)
    changed = m["S"] == "C"
    iss = 1 - (1 - _WEIGHTS["C"][m["C"]]) * (1 - _WEIGHTS["I"][m["I"]]) * (1 - _WEIGHTS["A"][m["A"]])
    impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 if changed else 6.42 * iss
    privileges = _PRIVILEGES[m["S"]][m["PR"]]
    exploitability = 8.22 * _WEIGHTS["AV"][m["AV"]] * _WEIGHTS["AC"][m["AC"]] * privileges * _WEIGHTS["UI"][m["UI"]]
    if impact <= 0:
        return 0.0
    total = min(1.08 * (impact + exploitability), 10) if changed else min(impact + exploitability, 10)
    return roundup(total) if version == "3.1" else math.ceil(total * 10) / 10


def roundup(value: float) -> float:
    """CVSS v3.1 Roundup: the smallest number with one decimal >= value, free of float noise."""
    integer = round(value * 100_000)
    if integer % 10_000 == 0:
        return integer / 100_000.0
    return (math.floor(integer / 10_000) + 1) / 10.0


def rating(score: float) -> Severity:
    """The qualitative rating; "None" (0.0) is reported as low."""
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    return "low"
