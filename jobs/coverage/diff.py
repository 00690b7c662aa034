"""The lines a change adds: parsed from a unified diff (with `unidiff`), or asked of git.

Only lines present in the new version count ("added" lines of each hunk, numbered in the new
file); deletions, deleted files and binary files add nothing, and a renamed file is known by its new
path. The diff of a pull request is merge-base..head, as diff-cover's default `origin/main...HEAD`.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from unidiff.errors import UnidiffParseError
from unidiff.patch import PatchedFile, PatchSet

DEV_NULL = "/dev/null"
GIT_TIMEOUT_S = 120.0
GIT_CONFIG = (
    "-c", "core.quotePath=false", "-c", "diff.noprefix=false", "-c", "diff.mnemonicPrefix=false",
    "-c", "diff.relative=false", "-c", "color.ui=false",
)  # fmt: skip
DIFF_ARGS = ("diff", "--no-color", "--no-ext-diff", "--no-textconv", "--find-renames", "-U0")

_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}
_QUOTED_CHAR = re.compile(r'\\([0-7]{3}|[abtnvfr"\\])')


class DiffError(ValueError):
    """A diff that cannot be parsed, or a git command that failed."""


# ---------------------------------------------------------------------------------------- parsing


def changed_lines(diff_text: str) -> dict[str, set[int]]:
    """Path (new name, posix, repository-relative) -> line numbers added in the new file. Files that
    gain no line (deleted, binary, pure renames or deletions only) are left out."""
    try:
        patch = PatchSet(diff_text)
    except UnidiffParseError as exc:
        raise DiffError(f"not a unified diff: {exc}") from None
    changed: dict[str, set[int]] = {}
    for patched in patch:
        path = target_path(patched)
        added = added_lines(patched)
        if path is not None and added:
            changed.setdefault(path, set()).update(added)
    return changed


def added_lines(patched: PatchedFile) -> set[int]:
    return {
        line.target_line_no
        for hunk in patched
        for line in hunk
        if line.is_added and line.target_line_no is not None
    }


def target_path(patched: PatchedFile) -> str | None:
    """The file's path in the new version; None for a deleted file."""
    target = patched.target_file
    if patched.is_removed_file or getattr(patched, "is_binary_file", False) or not target or target == DEV_NULL:
        return None
    path = unquote_git_path(target)
    return path.removeprefix("b/")


def unquote_git_path(path: str) -> str:
    """git's C-style quoting (`"b/tab\\there.py"`, octal UTF-8 bytes) undone."""
    if not (len(path) >= 2 and path.startswith('"') and path.endswith('"')):
        return path
    body = path[1:-1].encode("utf-8")
    out = bytearray()
    index = 0
    while index < len(body):
        match = _QUOTED_CHAR.match(body.decode("latin-1"), index) if body[index] == 92 else None
        if match is None:
            out.append(body[index])
            index += 1
            continue
        code = match.group(1)
        out.append(int(code, 8) if code[0].isdigit() else _ESCAPES[code])
        index = match.end()
    return out.decode("utf-8", errors="replace")


# -------------------------------------------------------------------------------------------- git


async def git(repo: Path, *args: str, timeout_s: float = GIT_TIMEOUT_S) -> str:
    """Run `git <args>` in `repo`; its stdout, or DiffError with its stderr."""
    process = await asyncio.create_subprocess_exec(
        "git", *GIT_CONFIG, *args, cwd=repo,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise DiffError(f"git {args[0]} took longer than {timeout_s:g} s") from None
    if process.returncode != 0:
        message = stderr.decode("utf-8", errors="replace").strip()
        raise DiffError(f"git {args[0]} failed ({process.returncode}): {message}")
    return stdout.decode("utf-8", errors="replace")


async def merge_base(repo: Path, base: str, head: str) -> str:
    return (await git(repo, "merge-base", base, head)).strip()


async def git_diff(repo: Path, base: str, head: str) -> str:
    """The unified diff of the change: `git diff -U0 <merge-base>..<head>`."""
    start = await merge_base(repo, base, head)
    return await git(repo, *DIFF_ARGS, f"{start}..{head}", "--")


async def changed_lines_between(repo: Path, base: str, head: str) -> dict[str, set[int]]:
    """`changed_lines` of merge-base(base, head)..head in `repo`."""
    return changed_lines(await git_diff(repo, base, head))
