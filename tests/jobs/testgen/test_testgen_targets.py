"""Which changed functions are targets: pure analysis over sources built in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.testgen.config import TestGenerationConfig
from jobs.testgen.targets import (
    exported_names,
    javascript_functions,
    module_name,
    python_functions,
    select_targets,
    target_lines,
    untestable_reason,
)

SOURCE = '''\
import functools


def add(a: int, b: int) -> int:
    return a + b


def _private(x):
    return x


@functools.lru_cache(maxsize=None)
def cached(n: int) -> int:
    return n


async def fetch(url: str) -> str:
    return url


class Box:
    def __init__(self, size: int) -> None:
        self.size = size

    @property
    def double(self) -> int:
        return self.size * 2

    def grow(self, by: int) -> int:
        return self.size + by


class _Hidden:
    def visible(self) -> None:
        pass
'''


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_python_functions_are_public_module_level_functions_and_methods() -> None:
    spans = {span.qualname: span for span in python_functions(SOURCE)}
    assert list(spans) == ["add", "cached", "fetch", "Box.double", "Box.grow"]
    assert (spans["add"].def_line, spans["add"].start_line, spans["add"].end_line) == (4, 4, 5)
    assert (spans["cached"].start_line, spans["cached"].def_line) == (12, 13)  # the decorator counts
    assert spans["Box.grow"].is_method and not spans["add"].is_method
    assert untestable_reason(spans["fetch"]) is not None and "async" in str(untestable_reason(spans["fetch"]))
    assert "property" in str(untestable_reason(spans["Box.double"]))
    assert untestable_reason(spans["cached"]) is None and untestable_reason(spans["add"]) is None


@pytest.mark.parametrize(
    ("path", "packages", "expected"),
    [
        ("calc.py", {}, ("", "calc")),
        ("shop/cart.py", {"shop": True}, ("", "shop.cart")),
        ("shop/__init__.py", {"shop": True}, ("", "shop")),
        ("src/shop/sub/cart.py", {"src/shop": True, "src/shop/sub": True}, ("src", "shop.sub.cart")),
        ("src/calc.py", {}, ("src", "calc")),
    ],
)
def test_module_names(path: str, packages: dict[str, bool], expected: tuple[str, str]) -> None:
    assert module_name(path, packages) == expected


@pytest.mark.parametrize(
    ("path", "packages", "why"),
    [
        ("scripts/tool.py", {}, "not a package"),
        ("lib/shop/cart.py", {"lib/shop": True}, "not a package"),
        ("setup.py", {}, "script"),
        ("my-pkg.py", {}, "not a valid module name"),
    ],
)
def test_modules_that_cannot_be_imported(path: str, packages: dict[str, bool], why: str) -> None:
    reason = module_name(path, packages)
    assert isinstance(reason, str) and why in reason


def test_selection_of_a_repository(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "calc.py": SOURCE,
        "shop/__init__.py": "",
        "shop/cart.py": "def total(prices: list[int]) -> int:\n    s = 0\n    for p in prices:\n        s += p\n"
                        "    return s\n",
        "scripts/tool.py": "def run() -> None:\n    pass\n",
        "tests/test_calc.py": "from calc import Box\n\ndef test_grow():\n    assert Box(1).grow(1) == 2\n",
        "vendor/lib.py": "def vendored() -> None:\n    pass\n",
    })  # fmt: skip
    changed = {"calc.py": {4, 5, 13, 17, 29, 30}, "shop/cart.py": {1, 2, 3, 4, 5}, "scripts/tool.py": {1},
               "vendor/lib.py": {1}, "tests/test_calc.py": {1}, "gone.py": {1}}  # fmt: skip
    selection = select_targets(root, changed, TestGenerationConfig(), "python")
    assert [(t.path, t.qualname, t.changed) for t in selection.targets] == [
        ("shop/cart.py", "total", 5),  # the most changed first
        ("calc.py", "add", 2),
        ("calc.py", "cached", 1),
    ]
    cart = selection.targets[0]
    assert (cart.module, cart.import_root, cart.span.def_line) == ("shop.cart", "", 1)
    assert cart.source.startswith("def total(") and cart.source.endswith("return s")
    assert [s.qualname for s in selection.already_tested] == ["Box.grow"]  # a test mentions `grow`
    reasons = {s.qualname: s.reason for s in selection.skipped}
    assert set(reasons) == {"fetch", "run"}
    assert "not a package" in reasons["run"]
    assert selection.considered == 6  # add, cached, fetch, Box.grow, total, run; vendored and tests excluded


def test_no_diff_means_every_function_is_new_and_the_cap_applies(tmp_path: Path) -> None:
    root = write(tmp_path, {"calc.py": SOURCE})
    selection = select_targets(root, None, TestGenerationConfig(max_functions=2), "python")
    assert [t.qualname for t in selection.targets] == ["cached", "add"]  # 3 lines (with the decorator), then 2
    assert any("max_functions" in s.reason for s in selection.skipped)
    assert selection.considered == 5


def test_a_file_that_does_not_parse_is_skipped(tmp_path: Path) -> None:
    root = write(tmp_path, {"broken.py": "def f(:\n", "ok.py": "def g(x: int) -> int:\n    return x\n"})
    selection = select_targets(root, None, TestGenerationConfig(), "python")
    assert [t.qualname for t in selection.targets] == ["g"]


JS = """\
export function sum(a, b) {
  return a + b;
}

function helper(x) {
  return x * 2;
}

export const twice = (x) => helper(x);

function area(w, h) {
  return w * h;
}

module.exports = { area };
"""


def test_javascript_exported_functions() -> None:
    assert exported_names(JS) >= {"sum", "twice", "area"}
    assert "helper" not in exported_names(JS)
    names = [span.qualname for span in javascript_functions("src/math.js", JS)]
    assert "sum" in names and "area" in names and "helper" not in names


def test_javascript_selection_skips_tested_names(tmp_path: Path) -> None:
    root = write(tmp_path, {"src/math.js": JS, "src/math.test.js": "test('sum', () => expect(sum(1, 2)).toBe(3));\n"})
    selection = select_targets(root, None, TestGenerationConfig(framework="jest"), "javascript")
    assert [t.qualname for t in selection.targets] == ["area", "twice"]
    assert [s.qualname for s in selection.already_tested] == ["sum"]
    assert selection.targets[0].language == "javascript"


def test_target_lines_for_an_api_request(tmp_path: Path) -> None:
    root = write(tmp_path, {"calc.py": SOURCE, "src/math.js": JS})
    assert target_lines(root, "calc.py::Box.grow") == {"calc.py": {29, 30}}
    assert target_lines(root, "calc.py") == {"calc.py": set(range(1, SOURCE.count("\n") + 2))}
    assert target_lines(root, "src/math.js::sum") == {"src/math.js": {1, 2, 3}}
    assert target_lines(root, "calc.py::nope") == "`calc.py` has no public function `nope`"
    assert "not a file or directory of the repository" in str(target_lines(root, "../etc/passwd"))
    lines = target_lines(root, "calc.py::add")
    assert isinstance(lines, dict)
    selection = select_targets(root, lines, TestGenerationConfig(), "python")
    assert [t.qualname for t in selection.targets] == ["add"]


def test_target_lines_for_a_directory_and_what_it_refuses(tmp_path: Path) -> None:
    root = write(tmp_path, {"pkg/__init__.py": "", "pkg/calc.py": "def f():\n    return 1\n", "pkg/notes.md": "x\n",
                            "pkg/sub/math.ts": "export function g() {}\n", "pkg/tests/test_calc.py": "x = 1\n",
                            "README.md": "hello\n"})
    assert target_lines(root, "pkg") == target_lines(root, "pkg/") == {
        "pkg/__init__.py": {1}, "pkg/calc.py": {1, 2, 3}, "pkg/sub/math.ts": {1, 2}}
    assert set(target_lines(root, ".")) == {"pkg/__init__.py", "pkg/calc.py", "pkg/sub/math.ts"}  # type: ignore[arg-type]
    assert target_lines(root, "pkg/tests") == "`pkg/tests` holds no Python or JavaScript/TypeScript source file " \
                                             "(outside tests)"
    assert target_lines(root, "README.md") == "`README.md` is not a Python or JavaScript/TypeScript source file"
    assert target_lines(root, "pkg/missing.py") == "`pkg/missing.py` is not a readable source file of the repository"
    for outside in ("/etc/passwd", "../x.py", "pkg/../../x.py", "/"):
        assert target_lines(root, outside) == f"`{outside}` is not a file or directory of the repository"


def test_target_lines_never_follow_a_link_out_of_the_repository(tmp_path: Path) -> None:
    secret = write(tmp_path / "elsewhere", {"secret.py": "def leak():\n    return 'token'\n"})
    root = write(tmp_path / "repo", {"calc.py": "def f():\n    return 1\n"})
    (root / "linked").symlink_to(secret, target_is_directory=True)
    (root / "leak.py").symlink_to(secret / "secret.py")
    assert "not a file or directory of the repository" in str(target_lines(root, "linked"))
    assert "not a file or directory of the repository" in str(target_lines(root, "linked/secret.py::leak"))
    assert "not a file or directory of the repository" in str(target_lines(root, "leak.py"))
    assert target_lines(root, ".") == {"calc.py": {1, 2, 3}}  # links inside are not walked into either
