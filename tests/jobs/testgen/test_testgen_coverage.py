"""Coverage of the targeted functions from coverage.py's JSON report, on a real run of coverage.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from jobs.testgen.coverage import coverage_argv, json_argv, percent, targets_coverage
from jobs.testgen.targets import FunctionSpan, Target

SOURCE = "def sign(x):\n    if x < 0:\n        return -1\n    return 1\n\n\ndef untouched(y):\n    return y * 2\n"


def _target(path: str, qualname: str, start: int, end: int, source: str) -> Target:
    return Target(path, FunctionSpan(qualname, start, start, end), "python", 1, source, module="calc")


def test_only_the_lines_of_the_targeted_functions_count(tmp_path: Path) -> None:
    (tmp_path / "calc.py").write_text(SOURCE)
    (tmp_path / "test_sign.py").write_text("from calc import sign\n\n\ndef test_positive():\n    assert sign(3) == 1\n")
    data, out = tmp_path / ".cov", tmp_path / "cov.json"
    run = coverage_argv(Path(sys.executable), data, [tmp_path / "calc.py"], ["test_sign.py"])
    env = {"PYTHONPATH": str(tmp_path), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}  # as in the sandbox
    subprocess.run(run, cwd=tmp_path, check=True, capture_output=True, env=env)
    subprocess.run(json_argv(Path(sys.executable), data, out), cwd=tmp_path, check=True, capture_output=True)
    report = json.loads(out.read_text())
    sign = _target("calc.py", "sign", 1, 4, "\n".join(SOURCE.splitlines()[0:4]))
    assert targets_coverage(report, tmp_path, [sign]) == (3, 4)  # def, if, return 1 ran; return -1 did not
    assert percent(*targets_coverage(report, tmp_path, [sign])) == 75.0
    untouched = _target("calc.py", "untouched", 7, 8, "def untouched(y):\n    return y * 2")
    assert targets_coverage(report, tmp_path, [sign, untouched]) == (4, 6)  # its def line ran at import
    never = _target("other.py", "f", 1, 3, "@cache\ndef f():\n    # note\n    return 1")
    assert targets_coverage(report, tmp_path, [never]) == (0, 2)  # never imported: all its statements miss
    assert percent(0, 0) is None
