"""Git plumbing shared by the fake forges: a clean git environment and smart HTTP through `git http-backend`.

`git_env()`, `run_git()` and `git()` run git with no user or system config.  `cgi_env()` builds the CGI
environment of one request and `http_backend()` runs `git http-backend` as a CGI subprocess for it: the request
body is fed to its stdin, its CGI headers become the response status and headers and its stdout is streamed
back; an aborted request kills the CGI's whole process group.  What differs between forges stays with the
caller: its auth check (done before), its `REMOTE_USER`, where git's stderr is recorded (`on_stderr`) and the
error it raises when the CGI answers nothing (`no_response`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse

_Process = asyncio.subprocess.Process
_OPTIONAL_HEADERS = {
    "CONTENT_LENGTH": "content-length",
    "GIT_PROTOCOL": "git-protocol",
    "HTTP_CONTENT_ENCODING": "content-encoding",
    "HTTP_USER_AGENT": "user-agent",
}


def git_env() -> dict[str, str]:
    """A clean environment for git subprocesses (no user/system config)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/"),
        "LANG": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
    }


def run_git(*args: str | Path) -> tuple[int, str]:
    """Run git; its exit code and its stdout (on success) or stderr (on failure), as text."""
    proc = subprocess.run(["git", *map(str, args)], capture_output=True, text=True, env=git_env(), check=False)
    return proc.returncode, proc.stdout if proc.returncode == 0 else proc.stderr


def git(*args: str | Path) -> str:
    """Run git and return its stdout; RuntimeError with its stderr if it fails."""
    code, out = run_git(*args)
    if code != 0:
        raise RuntimeError(f"git {' '.join(map(str, args))} failed:\n{out}")
    return out


def serve_bare_clone(source_repo: Path, dest: Path, default_branch: str) -> None:
    """Bare-clone `source_repo` into `dest` as a forge serves it over smart HTTP: partial clones and fetches of any
    sha allowed (as GitHub and GitLab do), no pushes, HEAD on `default_branch`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    git("clone", "--bare", "--quiet", source_repo, dest)
    for key, value in (("uploadpack.allowFilter", "true"), ("uploadpack.allowAnySHA1InWant", "true"),
                       ("http.receivepack", "false")):
        git("--git-dir", dest, "config", key, value)
    git("--git-dir", dest, "symbolic-ref", "HEAD", f"refs/heads/{default_branch}")


def cgi_env(request: Request, *, project_root: Path, path_info: str, remote_user: str) -> dict[str, str]:
    """The CGI environment of `git http-backend` for `request` (`path_info` is `/<repo>.git/<rest>`)."""
    headers = request.headers
    env = {
        **git_env(),
        "GIT_PROJECT_ROOT": str(project_root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REQUEST_METHOD": request.method,
        "PATH_INFO": path_info,
        "QUERY_STRING": request.url.query,
        "CONTENT_TYPE": headers.get("content-type", ""),
        "REMOTE_USER": remote_user,
        "REMOTE_ADDR": request.client.host if request.client else "127.0.0.1",
    }
    env.update({var: headers[name] for var, name in _OPTIONAL_HEADERS.items() if name in headers})
    return env


async def http_backend(
    request: Request,
    env: dict[str, str],
    *,
    on_stderr: Callable[[str], None],
    no_response: Callable[[], BaseException],
) -> Response:
    """Serve `request` with `git http-backend` run in `env` (see `cgi_env()`), streaming its output.

    `on_stderr` receives the CGI's stderr, when it wrote any, once it has exited; `no_response()` is raised when
    the CGI ends without a header.
    """
    proc = await asyncio.create_subprocess_exec(
        "git",
        "http-backend",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        start_new_session=True,  # so an aborted request can kill the whole group
    )
    feeder = asyncio.create_task(_feed_request(request, proc))
    stderr_task = asyncio.create_task(_collect_stderr(proc, on_stderr))
    try:
        status, headers = await _read_cgi_headers(proc, no_response)
        # The whole request body must be consumed before a StreamingResponse
        # starts listening for disconnects on the same receive channel.
        await feeder
    except BaseException:
        await _reap(proc, feeder, stderr_task)
        raise
    body = _stream_cgi_body(proc, feeder, stderr_task)
    return StreamingResponse(body, status_code=status, headers=headers)


async def _feed_request(request: Request, proc: _Process) -> None:
    assert proc.stdin is not None
    try:
        async for chunk in request.stream():
            if chunk:
                proc.stdin.write(chunk)
                await proc.stdin.drain()
    except (BrokenPipeError, ConnectionResetError, ClientDisconnect):
        pass
    finally:
        proc.stdin.close()


async def _collect_stderr(proc: _Process, on_stderr: Callable[[str], None]) -> None:
    assert proc.stderr is not None
    if text := (await proc.stderr.read()).decode(errors="replace").strip():
        on_stderr(text)


async def _read_cgi_headers(proc: _Process, no_response: Callable[[], BaseException]) -> tuple[int, dict[str, str]]:
    assert proc.stdout is not None
    status, headers, saw_any = 200, {}, False
    while line := await proc.stdout.readline():
        text = line.decode("latin-1").rstrip("\r\n")
        if not text:
            break
        saw_any = True
        key, _, value = text.partition(":")
        if key.strip().lower() == "status":
            status = int(value.split()[0])
        else:
            headers[key.strip()] = value.strip()
    if not saw_any:
        raise no_response()
    return status, headers


async def _stream_cgi_body(proc: _Process, *tasks: asyncio.Task[None]) -> AsyncIterator[bytes]:
    assert proc.stdout is not None
    finished = False
    try:
        while chunk := await proc.stdout.read(65536):
            yield chunk
        await proc.wait()
        finished = True
    finally:
        await _reap(proc, *tasks, abort=not finished)


async def _reap(proc: _Process, *tasks: asyncio.Task[None], abort: bool = True) -> None:
    """Wait for the CGI; on abort kill its whole process group (upload-pack too)."""
    if abort:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()
    for task in tasks:
        if not task.done():
            task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
