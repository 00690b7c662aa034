"""Find the examples in docs/: a fenced block right after `<!-- example: NAME [note] -->`."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

DOCS = Path(__file__).parents[2] / "docs"
_EXAMPLE = re.compile(r"<!-- example: (?P<name>[\w-]+)(?: (?P<note>[^\n]*?))? -->\n[ ]*```[\w-]*\n(?P<code>.*?)\n[ ]*```",
                      re.S)  # also inside a list item (indented; the code is dedented)


def examples(doc: str, name: str) -> list[tuple[str, str]]:
    """(code, note) of every example called `name` in docs/<doc>."""
    text = (DOCS / doc).read_text()
    found = [(textwrap.dedent(m["code"]), m["note"] or "") for m in _EXAMPLE.finditer(text) if m["name"] == name]
    assert found, f"no example '{name}' in docs/{doc}"
    return found
