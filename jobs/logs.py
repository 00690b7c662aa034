"""Logging set-up for AQE's processes: one line per event, and no system call per line on the hot path."""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import TextIO

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
FLUSH_INTERVAL_S = 0.2
MAX_PENDING_LINES = 1024


class FastFormatter(logging.Formatter):
    """FORMAT, with the date part of `asctime` computed once per second instead of once per line."""

    def __init__(self) -> None:
        super().__init__(FORMAT)
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        second = int(record.created)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        return f"{self._stamp},{int(record.msecs):03d}"


class BatchingStreamHandler(logging.Handler):
    """Formats each record when it is logged (cheap, in the caller) and writes the lines in batches: one
    write per 0.2 s, at once for warnings and errors, and at exit. Unlike logging's MemoryHandler, the
    flush thread only joins strings and writes, so it never holds the interpreter for long."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream
        self.pending: list[str] = []
        self._stop = threading.Event()
        threading.Thread(target=self._flush_periodically, daemon=True, name="aqe-log-flush").start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.pending.append(line)  # list.append is atomic: no lock on the hot path
        if record.levelno >= logging.WARNING or len(self.pending) >= MAX_PENDING_LINES:
            self.flush()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            lines, self.pending = self.pending, []
            if lines:
                self.stream.write("\n".join(lines) + "\n")
                self.stream.flush()

    def _flush_periodically(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL_S):
            self.flush()

    def close(self) -> None:
        self.flush()
        self._stop.set()
        super().close()


def configure_logging(level: str, *, buffered: bool = False) -> None:
    """Log to stderr; `buffered` (the web process) batches the writes (see BatchingStreamHandler)."""
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None  # type: ignore[attr-defined]  # no caller lookup: the format has no file or line
    handler: logging.Handler = BatchingStreamHandler(sys.stderr) if buffered else logging.StreamHandler(sys.stderr)
    handler.setFormatter(FastFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
