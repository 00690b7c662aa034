"""A fake OSV server on 127.0.0.1 serving copies of real advisory records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.osv import FakeOSV, load_records

OSV_RECORDS = Path(__file__).parent / "fixtures" / "osv"


@pytest.fixture
def osv() -> Iterator[FakeOSV]:
    with FakeOSV(load_records(OSV_RECORDS)) as server:
        yield server
