"""Logging set-up for AQE's processes: one line per event, and no system call per line on the hot path."""

from __future__ import annotations

import logging
import logging.handlers
import sys
import threading

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
FLUSH_INTERVAL_S = 0.2


def _flush_periodically(handler: logging.Handler, stop: threading.Event) -> None:
    while not stop.wait(FLUSH_INTERVAL_S):
        handler.flush()


def configure_logging(level: str, *, buffered: bool = False) -> None:
    """Log to stderr. `buffered` (the web process) writes lines in batches: at most every 0.2 s, at once
    for warnings and errors, and at exit."""
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None  # type: ignore[attr-defined]  # no caller lookup: the format has no file or line
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(logging.Formatter(FORMAT))
    handler: logging.Handler = stream
    if buffered:
        handler = logging.handlers.MemoryHandler(capacity=1024, flushLevel=logging.WARNING, target=stream)
        threading.Thread(target=_flush_periodically, args=(handler, threading.Event()), daemon=True,
                         name="aqe-log-flush").start()
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
