"""The `test_generation` section of `.aqe.yml`."""

from __future__ import annotations

import msgspec
import pytest

from jobs.testgen.config import TestGenerationConfig, as_testgen_config


def test_defaults_work_without_a_file() -> None:
    config = as_testgen_config(None)
    assert (config.enabled, config.max_functions, config.timeout, config.max_examples) == (True, 10, 180, 50)
    assert (config.llm, config.framework, config.fail_on_bugs) == (False, "pytest", False)
    assert config.is_excluded("tests/test_calc.py") and config.is_excluded("vendor/lib.py")
    assert not config.is_excluded("calc.py")
    assert not config.wants_llm()


def test_raw_mapping_and_single_exclude_string() -> None:
    config = as_testgen_config({"exclude": "scripts/**", "framework": "vitest", "max_examples": 5})
    assert config.exclude == ["scripts/**"]
    assert config.is_excluded("scripts/tool.py") and not config.is_excluded("tests/test_x.py")
    assert config.uses_js and config.wants_llm()
    assert as_testgen_config(config) is config


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        ({"max_functions": 0}, "$.test_generation.max_functions"),
        ({"timeout": 5}, "$.test_generation.timeout"),
        ({"max_examples": 0}, "$.test_generation.max_examples"),
        ({"exclude": [" "]}, "$.test_generation.exclude"),
    ],
)
def test_out_of_range_values_name_the_key(raw: dict[str, object], where: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=r"at `\$\.test_generation"):
        as_testgen_config(raw)
    with pytest.raises(ValueError, match=where.replace("$", r"\$")):
        TestGenerationConfig(**raw)  # type: ignore[arg-type]


def test_unknown_keys_and_frameworks_are_rejected() -> None:
    with pytest.raises(msgspec.ValidationError, match="unknown field `max_tests`"):
        as_testgen_config({"max_tests": 3})
    with pytest.raises(msgspec.ValidationError, match="framework"):
        as_testgen_config({"framework": "unittest"})
