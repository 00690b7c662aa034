"""The files the security scanners read: the repository's tracked, regular, text files under a size cap.

Symbolic links are never followed (a link to `/proc/self/environ` or the worker's `.env` must not be
read and reported), nor is anything that resolves outside the work tree.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from jobs.checkout import CheckoutError, git, git_env
from jobs.junit import IGNORED_DIRS

MAX_FILE_BYTES = 1024 * 1024
BINARY_SNIFF_BYTES = 8192


async def tracked_paths(root: Path, home: Path) -> list[str]:
    """`git ls-files` at the work tree (sorted, posix); every file under it when it is not a git work tree."""
    home.mkdir(parents=True, exist_ok=True)
    try:
        listing = await git("ls-files", "-z", "--cached", cwd=root, env=git_env(home))
    except CheckoutError:
        return walked_paths(root)
    return sorted(path for path in listing.split("\0") if path)


def walked_paths(root: Path) -> list[str]:
    paths = []
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_DIRS)
        base = Path(directory).relative_to(root)
        paths += [(base / name).as_posix() for name in filenames]
    return sorted(paths)


@dataclass
class RepoFiles:
    """The tracked regular files of a work tree that do not look binary, with their sizes; texts are
    read on demand and kept."""

    root: Path
    sizes: dict[str, int]
    max_bytes: int = MAX_FILE_BYTES
    skipped: int = 0  # binary files, links, directories (submodules) and files gone
    _texts: dict[str, str | None] = field(default_factory=dict, repr=False)

    @classmethod
    def scan(cls, root: Path, tracked: list[str], max_bytes: int = MAX_FILE_BYTES) -> RepoFiles:
        """Sort `tracked` into text files (with their size) and the rest (blocking)."""
        sizes: dict[str, int] = {}
        skipped = 0
        real_root = root.resolve()
        for path in tracked:
            size = regular_file_size(root, real_root, path)
            if size is None or looks_binary(root / path):
                skipped += 1
            else:
                sizes[path] = size
        return cls(root=root, sizes=sizes, max_bytes=max_bytes, skipped=skipped)

    @property
    def paths(self) -> list[str]:
        """The files to scan: those within `max_bytes`."""
        return [path for path, size in self.sizes.items() if size <= self.max_bytes]

    @property
    def too_large(self) -> list[str]:
        return [path for path, size in self.sizes.items() if size > self.max_bytes]

    def text(self, path: str, max_bytes: int | None = None) -> str | None:
        """The UTF-8 text of a known file within `max_bytes` (default: the scan's cap); None for other paths
        and for files that are not UTF-8."""
        size = self.sizes.get(path)
        if size is None or size > (max_bytes or self.max_bytes):
            return None
        if path not in self._texts:
            self._texts[path] = read_text(self.root / path)
        return self._texts[path]

    def lines(self, path: str) -> list[str] | None:
        text = self.text(path)
        return None if text is None else text.splitlines()


def regular_file_size(root: Path, real_root: Path, path: str) -> int | None:
    """The size of a regular file inside the work tree; None for links, directories, devices or escapes."""
    candidate = root / path
    try:
        info = candidate.lstat()
        inside = candidate.resolve().is_relative_to(real_root)
    except (OSError, RuntimeError):
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) and inside else None


def looks_binary(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return b"\0" in handle.read(BINARY_SNIFF_BYTES)
    except OSError:
        return True


def read_text(path: Path) -> str | None:
    """The file as UTF-8 text (a BOM dropped), or None when it cannot be read or is not UTF-8."""
    try:
        return path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None
