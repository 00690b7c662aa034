"""The embedded Valkey: persistent, pidfile, a leftover of a killed run is reaped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import redis

from jobs.redis_server import EmbeddedRedis, running_url


def test_starts_persists_and_stops(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)
    url = server.start()
    try:
        client = redis.Redis.from_url(url)
        client.set("k", "v")
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert int(server.pidfile.read_text()) > 0
    finally:
        server.stop()
    assert not server.pidfile.exists()
    again = EmbeddedRedis(tmp_path)
    with again as url:
        assert redis.Redis.from_url(url).get("k") == b"v"  # the AOF brought the data back


def test_leftover_of_a_killed_run_is_reaped(tmp_path: Path) -> None:
    """A parent killed with SIGKILL leaves its server running; the next start stops it first."""
    code = ("import sys,time; from pathlib import Path; from jobs.redis_server import EmbeddedRedis; "
            f"EmbeddedRedis(Path({str(tmp_path)!r})).start(); print('up', flush=True); time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None and parent.stdout.readline().strip() == "up"
    leftover = int((tmp_path / "redis" / "valkey.pid").read_text())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    assert running_url(tmp_path) is None  # its owner is gone
    with EmbeddedRedis(tmp_path):
        try:
            os.kill(leftover, 0)
            alive = Path(f"/proc/{leftover}").exists() and "Z" not in Path(f"/proc/{leftover}/stat").read_text().split()[2]
        except ProcessLookupError:
            alive = False
        assert not alive
