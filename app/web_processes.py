"""`aqe web --processes N`: N web processes serving one port, so one machine's cores all answer.

The parent binds the socket once and starts N `aqe web --fd <fd>` children that accept on it (each new
connection goes to whichever child accepts it first, so a busy child takes fewer). Everything the children share lives in Redis (jobs, streams, rate
limits, deliveries), so any child answers any request and resumes any stream. The parent only supervises:
SIGTERM or SIGINT stops every child gracefully; a child that dies is replaced, unless it dies within
`EARLY_EXIT_S` of its start (a broken configuration: restarting would only loop), which stops them all.
The children's Prometheus counters are written to one directory (`PROMETHEUS_MULTIPROC_DIR`), and `/metrics` on
any child sums them over all of them.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from app.supervision import StopSignal, stop_children
from jobs.sandbox import die_with_parent

log = logging.getLogger("aqe.web")

EARLY_EXIT_S = 5.0
STOP_TIMEOUT_S = 15.0  # past uvicorn's own graceful shutdown (10 s), within `aqe run`'s wait (20 s)
LISTEN_BACKLOG = 2048  # uvicorn's default


def listening_socket(host: str, port: int) -> socket.socket:
    """The socket every child accepts on (IPv6 when `host` is an IPv6 address), inheritable by them."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(LISTEN_BACKLOG)
    sock.set_inheritable(True)
    return sock


def _spawn(sock: socket.socket, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], float]:
    argv = [sys.executable, "-m", "app.cli", "web", "--fd", str(sock.fileno())]
    child = subprocess.Popen(argv, env=env, pass_fds=(sock.fileno(),), stdin=subprocess.DEVNULL,
                             preexec_fn=die_with_parent)  # noqa: PLW1509 (this process runs no thread)
    return child, time.monotonic()


def serve(host: str, port: int, count: int) -> int:
    """Run `count` web processes on host:port until SIGTERM/SIGINT; the exit status (0: stopped when told to)."""
    try:
        sock = listening_socket(host, port)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", host, port, exc)
        return 3
    metrics_dir = tempfile.mkdtemp(prefix="aqe-web-metrics-")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics_dir, "AQE_SUPERVISED": "1"}
    stop = StopSignal()
    children = [_spawn(sock, env) for _ in range(count)]
    failed = False
    log.info("%d web processes on %s:%d", count, host, port)
    try:
        while not stop.received and not failed:
            time.sleep(0.2)
            for i, (child, started) in enumerate(children):
                if child.poll() is None or stop.received:
                    continue
                if time.monotonic() - started < EARLY_EXIT_S:
                    log.error("web process %d exited with %s within %.0f s of its start; stopping",
                              child.pid, child.returncode, EARLY_EXIT_S)
                    failed = True
                    break
                log.warning("web process %d exited with %s; starting another", child.pid, child.returncode)
                children[i] = _spawn(sock, env)
    finally:
        stop_children([child for child, _ in children], STOP_TIMEOUT_S)
        sock.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 1 if failed else 0
