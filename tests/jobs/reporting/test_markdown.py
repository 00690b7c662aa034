"""The Markdown pieces summaries are made of: inline code and table cells that nothing in the text can break."""

from __future__ import annotations

from jobs.reporting.markdown import code_cell, code_span, plural, text_cell


def test_code_span_survives_backticks() -> None:
    assert code_span("x`y") == "``x`y``"
    assert code_span("`start") == "`` `start ``"
    assert code_span("a\n  b") == "`a b`"


def test_cells_keep_a_table_row_whole() -> None:
    assert code_cell("a|b") == "`a\\|b`"
    assert text_cell("one | two\nthree") == "one \\| two three"


def test_plural() -> None:
    assert [plural(n, "test") for n in (0, 1, 2)] == ["0 tests", "1 test", "2 tests"]
    assert plural(2, "likely bug", "likely bugs") == "2 likely bugs" and plural(1, "copy", "copies") == "1 copy"
