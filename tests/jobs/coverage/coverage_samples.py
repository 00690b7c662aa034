"""Real data for the coverage tests: a small Python project measured by coverage.py, in a git repo."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

PYTHON = sys.executable

# The base version of the sample project: branches taken one way, an excluded block, a function never
# called, a module never imported, an empty package file, a loop that always runs.
BASE_FILES: dict[str, str] = {
    "pkg/__init__.py": "",
    "pkg/shapes.py": """\
        import math


        def area(kind, size):
            if kind == "square":
                return size * size
            elif kind == "circle":
                return math.pi * size * size
            raise ValueError(kind)


        def describe(kind):
            label = kind.upper()
            if len(label) > 100:  # never true
                label = label[:100]
            return label


        def unused(x):
            total = 0
            for i in range(x):
                total += i
            return total


        def debug_only():  # pragma: no cover
            print("debug")
            return 1
        """,
    "pkg/util/__init__.py": "",
    "pkg/util/text.py": """\
        def words(text):
            out = []
            for word in text.split():
                if word:
                    out.append(word)
            return out


        def shout(text):
            return text.upper() + "!"
        """,
    "pkg/never.py": """\
        def never_imported(a, b):
            if a:
                return b
            return a
        """,
    "main.py": """\
        from pkg.shapes import area, describe
        from pkg.util.text import words

        assert area("square", 2) == 4
        assert describe("circle") == "CIRCLE"
        assert words("a b  c") == ["a", "b", "c"]
        while True:
            break
        """,
    ".gitignore": ".coverage\ncoverage.*\n*.json\n*.xml\n*.info\n__pycache__/\n",
    "README.md": "sample\n",
}

# The head version: lines changed in place, lines added (covered and not), a new module partly
# covered, a renamed file with a change, a deleted file, a non-Python file.
HEAD_CHANGES: dict[str, str | None] = {
    "pkg/shapes.py": """\
        import math


        def area(kind, size):
            if kind == "square":
                return size * size
            elif kind == "circle":
                return math.pi * size * size
            elif kind == "triangle":
                return size * size / 2

            raise ValueError(kind)


        def describe(kind, upper=True):
            label = kind.upper() if upper else kind
            if len(label) > 100:  # never true
                label = label[:100]
                label = label.strip()
            return label


        def unused(x):
            total = 0
            for i in range(x):
                total += i
                # a comment between statements
                total -= 0
            return total


        def debug_only():  # pragma: no cover
            print("debug")
            return 1
        """,
    "pkg/geometry.py": """\
        def perimeter(kind, size):
            if kind == "square":
                return 4 * size

            if kind == "hexagon":
                sides = 6
                return sides * size
            return None


        def scale(values, factor):
            return [v * factor for v in values]
        """,
    "pkg/util/text.py": None,  # renamed below
    "pkg/util/words.py": """\
        def words(text):
            out = []
            for word in text.split():
                if word:
                    out.append(word.strip())
            return out


        def shout(text):
            if not text:
                return ""
            return text.upper() + "!"
        """,
    "pkg/never.py": None,
    "main.py": """\
        from pkg.geometry import perimeter
        from pkg.shapes import area, describe
        from pkg.util.words import words

        assert area("square", 2) == 4
        assert describe("circle") == "CIRCLE"
        assert words("a b  c") == ["a", "b", "c"]
        assert perimeter("square", 1) == 4
        while True:
            break
        """,
    "README.md": "sample\n\nnow with geometry\n",
}


def write_files(root: Path, files: dict[str, str | None]) -> None:
    for name, text in files.items():
        path = root / name
        if text is None:
            path.unlink(missing_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def run(argv: list[str], cwd: Path) -> str:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{argv} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def git(repo: Path, *args: str) -> str:
    return run(["git", "-c", "user.name=AQE", "-c", "user.email=aqe@example.invalid",
                "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main", *args], repo)  # fmt: skip


def coverage(project: Path, *args: str) -> str:
    return run([PYTHON, "-m", "coverage", *args], project)


def measure(project: Path, *, branch: bool) -> None:
    """`coverage run [--branch] --source=. main.py` in `project` (no config file of its own)."""
    coverage(project, "run", "--rcfile=/dev/null", *(["--branch"] if branch else []), "--source=.", "main.py")


def make_sample_project(project: Path) -> Path:
    """The base version of the sample project (not a git repository)."""
    write_files(project, BASE_FILES)
    return project.resolve()


def make_sample_repo(repo: Path) -> Path:
    """A git repository: `main` at the base version, branch `feature` checked out at the head version."""
    repo.mkdir(parents=True)
    repo = repo.resolve()
    write_files(repo, BASE_FILES)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "checkout", "-q", "-b", "feature")
    write_files(repo, HEAD_CHANGES)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "head")
    return repo
