"""Errors users read name no path of the machine (jobs/shown_errors.py)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from jobs.model import AgentResult, Finding
from jobs.shown_errors import AQE_SOURCE, error_text, internal_places, shown_result, without_internal_paths


def test_machine_paths_are_replaced_and_repository_paths_made_relative(tmp_path: Path) -> None:
    data = tmp_path / "aqe-data"
    source = data / "work" / "0123" / "src"
    places = internal_places(data, source)
    text = (f"FileNotFoundError: [Errno 2] No such file or directory: '{source}/shop/cart.py'; "
            f"lock {data}/redis/valkey.pid; in {sys.prefix}/lib/python3.11/site-packages/x.py; "
            f"scratch {tempfile.gettempdir()}/aqe-x; cwd {source}")
    shown = without_internal_paths(text, places)
    assert "'shop/cart.py'" in shown and "$AQE_DATA_DIR/redis/valkey.pid" in shown and "cwd ." in shown
    assert "<python>/lib/python3.11" in shown and "<tmp>/aqe-x" in shown
    for path in (str(tmp_path), sys.prefix):
        assert path not in shown, shown


def test_a_path_is_only_replaced_whole_and_urls_are_left_alone(tmp_path: Path) -> None:
    places = internal_places(Path("/srv/aqe"))
    assert without_internal_paths("/srv/aqe2/x and /srv/aqe", places) == "/srv/aqe2/x and $AQE_DATA_DIR"
    url = "git clone https://git.example.com/srv/aqe/widgets.git failed"
    assert without_internal_paths(url, places).startswith("git clone https://git.example.com/srv/aqe")


def test_an_exception_reads_as_its_type_and_message(tmp_path: Path) -> None:
    error = PermissionError(13, "Permission denied", str(tmp_path / "work" / "x"))
    assert error_text(error, internal_places(tmp_path)) == \
        "PermissionError: [Errno 13] Permission denied: '$AQE_DATA_DIR/work/x'"


def test_a_checks_result_quotes_tool_output_without_machine_paths(tmp_path: Path) -> None:
    data = tmp_path / "data"
    source = data / "work" / "j" / "src"
    trace = f'File "{AQE_SOURCE}/jobs/performance/engine.py", line 9\n{source}/tests/test_cart.py:12: AssertionError'
    finding = Finding(path="tests/test_cart.py", start_line=12, end_line=12, level="failure", rule="test",
                      message=f"failed at {source}/tests/test_cart.py:12", title=f"in {source}",
                      raw_details=trace)
    result = AgentResult(agent="tests", conclusion="failure", title=f"Tests of {source}", summary=trace,
                         text=f"cwd {data}/work/j/scratch", findings=[finding])
    shown = shown_result(result, internal_places(data, source))
    assert shown.summary == 'File "<aqe>/jobs/performance/engine.py", line 9\ntests/test_cart.py:12: AssertionError'
    assert (shown.title, shown.text) == ("Tests of .", "cwd $AQE_DATA_DIR/work/j/scratch")
    assert shown.findings[0].message == "failed at tests/test_cart.py:12" and shown.findings[0].title == "in ."
    assert str(tmp_path) not in repr(shown) and str(AQE_SOURCE) not in repr(shown)
