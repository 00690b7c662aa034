"""Forge-neutral checks of generated test files before a forge commits them on a branch of their own."""

from __future__ import annotations

from collections.abc import Callable, Mapping


def path_problem(path: str) -> str | None:
    """What is wrong with `path` as a file to add to any repository, or None."""
    parts = path.split("/")
    if not path or any(part in ("", ".", "..") for part in parts) or "\\" in path:
        return "is not a relative path of the repository (no leading '/', '.', '..' or empty parts)"
    if any(part.lower() == ".git" for part in parts):
        return "is inside .git"
    return None


def checked_files(files: Mapping[str, bytes],
                  problem: Callable[[str], str | None] = path_problem) -> dict[str, bytes]:
    """`files` in path order, or ValueError naming every bad path."""
    if not files:
        raise ValueError("no generated test files to propose")
    problems = [f"`{path}` {why}" for path in sorted(files) if (why := problem(path))]
    if problems:
        raise ValueError("cannot propose generated tests: " + "; ".join(problems))
    return {path: files[path] for path in sorted(files)}
