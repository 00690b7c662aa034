"""Small pieces of GitHub-flavoured Markdown every agent's summary is made of."""

from __future__ import annotations

import re


def code_span(text: str) -> str:
    """Inline code that survives backticks in `text`."""
    text = " ".join(text.split())
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def code_cell(text: str) -> str:
    """Inline code that is safe inside a Markdown table cell."""
    return code_span(text).replace("|", "\\|")


def text_cell(text: str) -> str:
    """Plain text on one line that is safe inside a Markdown table cell."""
    return " ".join(text.replace("|", "\\|").split())


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """"1 test", "3 tests", "2 likely bugs"."""
    return f"{count} {singular if count == 1 else plural_form or singular + 's'}"
