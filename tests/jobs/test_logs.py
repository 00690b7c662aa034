"""Log lines are written in batches, warnings at once, everything at close."""

from __future__ import annotations

import io
import logging
import time

from jobs.logs import BatchingStreamHandler, FastFormatter


def _logger(stream: io.StringIO) -> tuple[logging.Logger, BatchingStreamHandler]:
    handler = BatchingStreamHandler(stream)
    handler.setFormatter(FastFormatter())
    logger = logging.getLogger(f"aqe.test.{id(stream)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, handler


def test_info_lines_arrive_within_the_flush_interval() -> None:
    stream = io.StringIO()
    logger, handler = _logger(stream)
    logger.info("delivery=%s status=%d", "abc", 202)
    assert stream.getvalue() == ""
    deadline = time.monotonic() + 2
    while not stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.02)
    line = stream.getvalue()
    assert line.endswith(" INFO " + logger.name + " delivery=abc status=202\n")
    assert time.strftime("%Y-%m-%d %H:") in line
    handler.close()


def test_warnings_are_written_at_once_with_what_came_before() -> None:
    stream = io.StringIO()
    logger, handler = _logger(stream)
    logger.info("first")
    logger.warning("second")
    assert stream.getvalue().splitlines()[0].endswith("first")
    assert stream.getvalue().splitlines()[1].endswith("WARNING " + logger.name + " second")
    handler.close()


def test_close_writes_what_is_pending() -> None:
    stream = io.StringIO()
    logger, handler = _logger(stream)
    for i in range(10):
        logger.info("line %d", i)
    handler.close()
    assert len(stream.getvalue().splitlines()) == 10
