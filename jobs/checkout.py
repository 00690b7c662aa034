"""Check a commit out: a cached bare mirror per repository, fetched incrementally, then a work tree.

The forge's credential reaches git only through the environment of our own git processes
(`GIT_CONFIG_*` -> `http.extraHeader`): never a URL, `.git/config`, a log line or the tests' environment.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import logging
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from jobs.coverage.diff import DIFF_ARGS
from jobs.coverage.diff import GIT_CONFIG as DIFF_GIT_CONFIG

log = logging.getLogger("aqe.checkout")

SHA_RE = re.compile(r"^[0-9a-f]{40}$")
REF_RE = re.compile(r"^[A-Za-z0-9._/-]{1,255}$")
GIT_TIMEOUT_S = 600


class CheckoutError(RuntimeError):
    pass


@dataclass(frozen=True)
class Source:
    """Where a commit comes from: the repository URL (no credentials) and the refs worth fetching."""

    repo: str
    clone_url: str
    sha: str
    refs: tuple[str, ...] = ()  # e.g. ("refs/pull/7/head", "refs/heads/main")


def git_env(home: Path, auth_header: str | None = None) -> dict[str, str]:
    env = {"PATH": os.defpath + ":/usr/local/bin", "HOME": str(home), "LANG": "C.UTF-8",
           "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1", "GIT_ASKPASS": "/bin/false",
           "GIT_ALLOW_PROTOCOL": "https:http"}  # never file://, ext:: or ssh, whatever a URL or submodule says
    if auth_header:
        env |= {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader", "GIT_CONFIG_VALUE_0": auth_header}
    return env


def _scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


async def git(*args: str, cwd: Path | None = None, env: Mapping[str, str], secret: str | None = None) -> str:
    """Run git; return stdout; raise CheckoutError with (scrubbed) stderr on failure."""
    proc = await asyncio.create_subprocess_exec("git", *args, cwd=cwd, env=dict(env), stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), GIT_TIMEOUT_S)
    except (TimeoutError, asyncio.CancelledError):
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        message = _scrub(err.decode(errors="replace").strip(), secret)
        raise CheckoutError(f"git {args[0]} failed: {message[-2000:]}")
    return out.decode(errors="replace")


def mirror_path(data_dir: Path, forge: str, repo: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", repo)
    digest = hashlib.sha256(repo.encode()).hexdigest()[:8]
    return data_dir / "mirrors" / forge / f"{safe}-{digest}.git"


class _FileLock:
    """An flock on a file, taken in a thread: serialises fetches into one mirror across worker processes."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def __aenter__(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        await asyncio.to_thread(fcntl.flock, self.fd, fcntl.LOCK_EX)

    async def __aexit__(self, *exc: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


async def _ensure_mirror(mirror: Path, url: str, env: Mapping[str, str]) -> None:
    if (mirror / "HEAD").exists():
        await git("remote", "set-url", "origin", url, cwd=mirror, env=env)
        return
    mirror.mkdir(parents=True, exist_ok=True)
    await git("init", "--bare", "--quiet", cwd=mirror, env=env)
    await git("remote", "add", "origin", url, cwd=mirror, env=env)
    for key, value in (("remote.origin.promisor", "true"), ("remote.origin.partialclonefilter", "blob:none"),
                       ("gc.auto", "0"), ("core.hooksPath", "/dev/null")):
        await git("config", key, value, cwd=mirror, env=env)


async def _has_commit(mirror: Path, sha: str, env: Mapping[str, str]) -> bool:
    try:
        await git("cat-file", "-e", f"{sha}^{{commit}}", cwd=mirror, env=env)
        return True
    except CheckoutError:
        return False


def _refspecs(refs: tuple[str, ...]) -> list[str]:
    return [f"+{ref}:refs/aqe/{ref.removeprefix('refs/')}" for ref in refs if REF_RE.match(ref)]


async def fetch(mirror: Path, source: Source, env: Mapping[str, str], secret: str | None) -> None:
    """Bring `source.sha` (and the named refs) into the mirror: only what is new, blobs on demand."""
    await _ensure_mirror(mirror, source.clone_url, env)
    specs = _refspecs(source.refs)
    if specs:
        try:
            await git("fetch", "--quiet", "--no-tags", "--filter=blob:none", "origin", *specs,
                      cwd=mirror, env=env, secret=secret)
        except CheckoutError as exc:
            log.warning("fetching refs of %s failed, trying the commit itself: %s", source.repo, exc)
    if not await _has_commit(mirror, source.sha, env):
        await git("fetch", "--quiet", "--no-tags", "--filter=blob:none", "origin", source.sha,
                  cwd=mirror, env=env, secret=secret)
    if not await _has_commit(mirror, source.sha, env):
        raise CheckoutError(f"commit {source.sha} is not in {source.repo}")


def _mirror_access(data_dir: Path, forge: str, repo: str,
                   auth_header: str | None) -> tuple[Path, dict[str, str], str | None]:
    """The repository's mirror, git's environment with the credential, and the secret to scrub from errors."""
    home = data_dir / "git-home"
    home.mkdir(parents=True, exist_ok=True)
    secret = auth_header.split(" ")[-1] if auth_header else None
    return mirror_path(data_dir, forge, repo), git_env(home, auth_header), secret


async def checkout(data_dir: Path, forge: str, source: Source, dest: Path, auth_header: str | None) -> Path:
    """A clean work tree of `source.sha` at `dest` (which must not exist yet)."""
    if not SHA_RE.match(source.sha):
        raise CheckoutError(f"not a commit sha: {source.sha!r}")
    mirror, env, secret = _mirror_access(data_dir, forge, source.repo, auth_header)
    async with _FileLock(mirror.with_suffix(".lock")):
        await fetch(mirror, source, env, secret)
        # Checking the tree out may fetch the missing blobs, so it runs with the credential too.
        await git("worktree", "add", "--detach", "--quiet", str(dest), source.sha, cwd=mirror, env=env, secret=secret)
    return dest


async def resolve_ref(data_dir: Path, forge: str, source: Source, auth_header: str | None) -> str:
    """The commit `source.refs[0]` (a branch) points at now, fetched into the mirror."""
    specs = _refspecs(source.refs[:1])
    if not specs:
        raise CheckoutError(f"not a branch to analyse: {source.refs[:1]!r}")
    mirror, env, secret = _mirror_access(data_dir, forge, source.repo, auth_header)
    async with _FileLock(mirror.with_suffix(".lock")):
        await _ensure_mirror(mirror, source.clone_url, env)
        try:
            await git("fetch", "--quiet", "--no-tags", "--filter=blob:none", "origin", *specs, cwd=mirror, env=env,
                      secret=secret)
        except CheckoutError:
            raise CheckoutError(f"{source.refs[0]} is not in {source.repo}") from None
    local = "refs/aqe/" + source.refs[0].removeprefix("refs/")
    return (await git("rev-parse", "--verify", f"{local}^{{commit}}", cwd=mirror, env=env)).strip()


async def remove_worktree(data_dir: Path, forge: str, repo: str, dest: Path) -> None:
    mirror = mirror_path(data_dir, forge, repo)
    env = git_env(data_dir / "git-home")
    try:
        await git("worktree", "remove", "--force", str(dest), cwd=mirror, env=env)
    except (CheckoutError, OSError):
        shutil.rmtree(dest, ignore_errors=True)
        if mirror.exists():
            await git("worktree", "prune", cwd=mirror, env=env)


async def read_file_at(data_dir: Path, forge: str, repo: str, sha: str, path: str,
                       auth_header: str | None = None) -> str | None:
    """A file's text at a commit, from the mirror (used for the base branch's `.aqe.yml`)."""
    mirror = mirror_path(data_dir, forge, repo)
    secret = auth_header.split(" ")[-1] if auth_header else None
    try:
        return await git("show", f"{sha}:{path}", cwd=mirror, env=git_env(data_dir / "git-home", auth_header),
                         secret=secret)
    except CheckoutError:
        return None


async def diff_from_base(data_dir: Path, forge: str, repo: str, base_sha: str, head_sha: str,
                         auth_header: str | None) -> str:
    """`git diff -U0` from the merge base of `base_sha` and `head_sha` to `head_sha`, from the mirror.

    Runs with the credential: a partial clone fetches the blobs the diff needs."""
    if not (SHA_RE.match(base_sha) and SHA_RE.match(head_sha)):
        raise CheckoutError(f"not commit shas: {base_sha!r}, {head_sha!r}")
    mirror = mirror_path(data_dir, forge, repo)
    env = git_env(data_dir / "git-home", auth_header)
    secret = auth_header.split(" ")[-1] if auth_header else None
    async with _FileLock(mirror.with_suffix(".lock")):
        if not await _has_commit(mirror, base_sha, env):
            await git("fetch", "--quiet", "--no-tags", "--filter=blob:none", "origin", base_sha,
                      cwd=mirror, env=env, secret=secret)
        base = (await git("merge-base", base_sha, head_sha, cwd=mirror, env=env)).strip()
        # the exact invocation jobs.coverage.diff.changed_lines is written (and tested) against
        return await git(*DIFF_GIT_CONFIG, *DIFF_ARGS, f"{base}..{head_sha}", "--", cwd=mirror, env=env, secret=secret)
