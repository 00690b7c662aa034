"""The offered tests: files under `scratch/testgen/out/` at the paths they would have in the repository, and
`generated-tests.patch`, made by `git diff --no-index` (so `git apply` takes it on the checkout)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path, PurePosixPath

from jobs.checkout import git_env

GIT_TIMEOUT_S = 60.0


class PatchError(RuntimeError):
    pass


def safe_repo_path(path: str) -> bool:
    """A relative path without `..` segments: it stays inside the output directory and the repository."""
    pure = PurePosixPath(path)
    return bool(path) and not pure.is_absolute() and ".." not in pure.parts and "\\" not in path


def write_files(out_dir: Path, files: dict[str, str]) -> list[Path]:
    """Write `files` (repository path -> text) under a fresh `out_dir`; the written paths."""
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    written = []
    for rel, text in sorted(files.items()):
        if not safe_repo_path(rel):
            raise ValueError(f"refusing to write outside the output directory: {rel!r}")
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


async def file_patch(out_dir: Path, rel: str, home: Path) -> str:
    """`git diff --no-index /dev/null <rel>` run in `out_dir`: a patch that adds the file at `rel`."""
    home.mkdir(parents=True, exist_ok=True)
    argv = ["git", "-c", "core.quotepath=off", "diff", "--no-index", "--no-color", "--no-ext-diff", "--binary",
            "--src-prefix=a/", "--dst-prefix=b/", "--", "/dev/null", rel]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *argv, cwd=out_dir, env=git_env(home), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(process.communicate(), GIT_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise PatchError(f"git diff did not finish within {GIT_TIMEOUT_S:g} s") from None
    if process.returncode not in (0, 1):  # --no-index exits 1 when the files differ, as they do
        raise PatchError(f"git diff failed: {err.decode(errors='replace').strip()[-500:]}")
    return out.decode("utf-8", errors="replace")


async def make_patch(out_dir: Path, paths: list[str], home: Path) -> str:
    """One patch adding every file of `paths` (relative to `out_dir`), in order."""
    return "".join([await file_patch(out_dir, rel, home) for rel in sorted(paths)])
