"""Cyclomatic complexity with lizard: per function, per language, and only the changed functions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from jobs.quality.complexity import (
    FunctionComplexity,
    changed_functions,
    file_functions,
    is_analysable,
    measure_changed_files,
    over_threshold,
)

ROOT = Path(__file__).resolve().parents[3]

PYTHON = '''\
import os


def classify(n, flags):
    if n < 0:
        return "negative"
    elif n == 0:
        return "zero"
    for f in flags:
        if f and n > 10 or n < 100:
            continue
    while n > 1000:
        n //= 2
    try:
        return str(n)
    except ValueError:
        return "?"


class Box:
    def size(self, scale=1):
        return os.path.getsize(self.path) * scale
'''

JAVASCRIPT = """\
function pick(a, b) {
  if (a > b && b > 0) { return a; }
  for (let i = 0; i < a; i++) { if (i % 2) { b++; } }
  return a ? b : a;
}
"""

GO = """\
package main

func Sum(xs []int, lim int) int {
	t := 0
	for _, x := range xs {
		if x > lim || x < 0 {
			continue
		}
		t += x
	}
	return t
}
"""


def deep_function(branches: int) -> str:
    """A Python function of CCN `branches + 1`."""
    body = "".join(f"    if x == {i}:\n        return {i}\n" for i in range(branches))
    return f"def deep(x):\n{body}    return -1\n"


def fn(name: str, start: int, end: int, ccn: int = 1) -> FunctionComplexity:
    return FunctionComplexity(path="a.py", name=name, start_line=start, end_line=end, ccn=ccn, nloc=1, params=0)


def test_python_functions_are_measured_with_their_lines_ccn_nloc_and_parameters() -> None:
    # classify: 1 + if + elif + for + if + and + or + while + except = 9
    assert file_functions("pkg/a.py", PYTHON) == [
        FunctionComplexity(path="pkg/a.py", name="classify", start_line=4, end_line=17, ccn=9, nloc=14, params=2),
        FunctionComplexity(path="pkg/a.py", name="size", start_line=21, end_line=22, ccn=1, nloc=2, params=2),
    ]


def test_other_languages_are_measured_too() -> None:
    assert file_functions("web/pick.js", JAVASCRIPT) == [
        FunctionComplexity(path="web/pick.js", name="pick", start_line=1, end_line=5, ccn=6, nloc=5, params=2)
    ]
    assert file_functions("sum.go", GO) == [
        FunctionComplexity(path="sum.go", name="Sum", start_line=3, end_line=12, ccn=4, nloc=10, params=2)
    ]


def test_ccn_counts_each_branch() -> None:
    [deep] = file_functions("deep.py", deep_function(16))
    assert (deep.ccn, deep.start_line, deep.end_line) == (17, 1, 34)


def test_language_detection_is_by_extension() -> None:
    assert all(is_analysable(p) for p in ("a.py", "b.ts", "c.tsx", "d.java", "e.go", "f.rs", "g.c", "h.rb", "i.kt"))
    assert not any(is_analysable(p) for p in ("README.md", "setup.cfg", "data.json", "Makefile", "x.yml", "a.pyi"))


def test_a_function_is_changed_when_a_changed_line_falls_inside_it() -> None:
    functions = [fn("first", 1, 5), fn("second", 8, 12), fn("third", 14, 20)]
    assert changed_functions(functions, {5}) == [functions[0]]
    assert changed_functions(functions, {6, 7, 13}) == []  # between functions
    assert changed_functions(functions, {8, 20}) == [functions[1], functions[2]]
    assert changed_functions(functions, set()) == []


def test_nested_functions_are_changed_with_their_outer_function() -> None:
    outer, inner = fn("outer", 1, 10), fn("outer.inner", 3, 5)
    assert changed_functions([outer, inner], {4}) == [outer, inner]
    assert changed_functions([outer, inner], {8}) == [outer]


def test_over_threshold_is_strictly_above_and_the_worst_first() -> None:
    functions = [fn("a", 1, 2, ccn=15), fn("b", 3, 4, ccn=16), fn("c", 5, 6, ccn=30)]
    assert [f.name for f in over_threshold(functions, 15)] == ["c", "b"]


def test_measure_changed_files_reads_the_work_tree_and_keeps_changed_functions(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text(PYTHON)
    (tmp_path / "blob.py").write_bytes(b"\x00\x01binary")
    report = measure_changed_files(tmp_path, {"pkg/a.py": {22}, "blob.py": {1}, "gone.py": {1}, "sum.go": None})
    assert [(f.path, f.name) for f in report.functions] == [("pkg/a.py", "size")]
    assert report.files == ["pkg/a.py"]
    assert set(report.skipped) == {"blob.py", "gone.py", "sum.go"}


def test_none_as_changed_lines_keeps_every_function_of_the_file(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(PYTHON)
    report = measure_changed_files(tmp_path, {"a.py": None})
    assert [f.name for f in report.functions] == ["classify", "size"]


def test_importing_lizard_leaves_sys_path_alone(tmp_path: Path) -> None:
    """lizard puts the directory of sys.argv[0] (for `python -c`: the working directory) first on
    sys.path when imported; in a worker that could be a directory of untrusted Python files."""
    probe = "import sys; before = list(sys.path); import {module}; print(sorted(set(sys.path) ^ set(before)))"
    env = {"PYTHONPATH": str(ROOT)}

    def added_by(module: str) -> str:
        argv = [sys.executable, "-c", probe.format(module=module)]
        result = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert added_by("lizard") == repr([str(tmp_path)])  # the problem
    assert added_by("jobs.quality.complexity") == "[]"  # and ours
