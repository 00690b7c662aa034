"""The offered files and the patch, which `git apply` must take on the checkout."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from jobs.testgen.artifact import make_patch, safe_repo_path, write_files

FILES = {
    "tests/generated/test_calc_hypothesis.py": "import calc\n\n\ndef test_add():\n    assert calc.add(1, 2) == 3\n",
    "src/math.aqe.test.js": "const { sum } = require('./math');\ntest('sum', () => expect(sum(1, 2)).toBe(3));\n",
}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    (root / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    (root / "src" / "math.js").write_text("exports.sum = (a, b) => a + b;\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "init")
    return root


async def test_the_patch_applies_to_the_checkout(tmp_path: Path) -> None:
    out = tmp_path / "out"
    written = write_files(out, FILES)
    assert sorted(p.relative_to(out).as_posix() for p in written) == sorted(FILES)
    patch = await make_patch(out, sorted(FILES), tmp_path / "home")
    assert patch.count("new file mode 100644") == 2
    assert "+++ b/tests/generated/test_calc_hypothesis.py" in patch
    root = repo(tmp_path)
    (tmp_path / "generated-tests.patch").write_text(patch)
    git(root, "apply", "--check", str(tmp_path / "generated-tests.patch"))
    git(root, "apply", str(tmp_path / "generated-tests.patch"))
    for rel, text in FILES.items():
        assert (root / rel).read_text() == text
    assert "?? src/math.aqe.test.js" in git(root, "status", "--porcelain", "-uall")


def test_write_files_replaces_the_directory(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_files(out, {"old.py": "x = 1\n"})
    write_files(out, {"new.py": "y = 2\n"})
    assert sorted(p.name for p in out.iterdir()) == ["new.py"]


@pytest.mark.parametrize("path", ["../escape.py", "/abs.py", "a/../../b.py", "", "a\\b.py"])
def test_paths_outside_the_output_are_refused(tmp_path: Path, path: str) -> None:
    assert not safe_repo_path(path)
    with pytest.raises(ValueError, match="refusing"):
        write_files(tmp_path / "out", {path: "x"})
    assert not (tmp_path / "escape.py").exists()
