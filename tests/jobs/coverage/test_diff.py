"""Changed lines from unified diffs (unidiff) and from git's merge-base..head."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from jobs.coverage.diff import DiffError, changed_lines, changed_lines_between, git_diff, merge_base, unquote_git_path
from tests.jobs.coverage.coverage_samples import git

DIFF = textwrap.dedent("""\
    diff --git a/app/a.py b/app/a.py
    index 1111111..2222222 100644
    --- a/app/a.py
    +++ b/app/a.py
    @@ -2,0 +3,2 @@ def f():
    +    x = 1
    +    y = 2
    @@ -10 +12 @@ def g():
    -    return 1
    +    return 2
    @@ -20,3 +21,0 @@ def h():
    -    a
    -    b
    -    c
    diff --git a/old/name.py b/new/name.py
    similarity index 90%
    rename from old/name.py
    rename to new/name.py
    index 3333333..4444444 100644
    --- a/old/name.py
    +++ b/new/name.py
    @@ -5 +5 @@
    -old
    +new
    diff --git a/gone.py b/gone.py
    deleted file mode 100644
    index 5555555..0000000
    --- a/gone.py
    +++ /dev/null
    @@ -1,2 +0,0 @@
    -x = 1
    -y = 2
    diff --git a/logo.png b/logo.png
    new file mode 100644
    index 0000000..6666666
    Binary files /dev/null and b/logo.png differ
    diff --git a/only_deleted.py b/only_deleted.py
    index 7777777..8888888 100644
    --- a/only_deleted.py
    +++ b/only_deleted.py
    @@ -3 +2,0 @@
    -gone
    diff --git a/new.txt b/new.txt
    new file mode 100644
    index 0000000..9999999
    --- /dev/null
    +++ b/new.txt
    @@ -0,0 +1,3 @@
    +one
    +two
    +three
    \\ No newline at end of file
    """)


def test_added_lines_by_new_path() -> None:
    assert changed_lines(DIFF) == {
        "app/a.py": {3, 4, 12},
        "new/name.py": {5},
        "new.txt": {1, 2, 3},
    }


def test_context_lines_are_not_changed() -> None:
    diff = textwrap.dedent("""\
        --- a/m.py
        +++ b/m.py
        @@ -1,4 +1,5 @@
         a
        -b
        +B
        +C
         d
         e
        """)
    assert changed_lines(diff) == {"m.py": {2, 3}}


def test_empty_diff() -> None:
    assert changed_lines("") == {}


def test_malformed_diff() -> None:
    with pytest.raises(DiffError):
        changed_lines("--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n+only one line\n")


def test_unquote_git_path() -> None:
    assert unquote_git_path('"b/na\\303\\257ve \\"q\\".py"') == 'b/naïve "q".py'
    assert unquote_git_path('"b/tab\\there"') == "b/tab\there"
    assert unquote_git_path("b/plain name.py") == "b/plain name.py"


async def test_changed_lines_between_merge_base_and_head(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    (repo / "a.py").write_text("1\n2\n3\n")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "a.py").write_text("1\n2 changed\n3\n4\n")
    (repo / "tab\there é.py").write_text("x\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "feature")
    git(repo, "checkout", "-q", "main")  # main moves on: its own change is not the PR's
    (repo / "b.py").write_text("on main\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "main moves")

    base = await merge_base(repo, "main", "feature")
    assert base == git(repo, "rev-list", "--max-parents=0", "HEAD").strip()
    assert await changed_lines_between(repo, "main", "feature") == {"a.py": {2, 4}, "tab\there é.py": {1}}
    assert "@@" in await git_diff(repo, "main", "feature")


async def test_git_errors_are_reported(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    with pytest.raises(DiffError, match="merge-base"):
        await merge_base(tmp_path, "main", "nope")
