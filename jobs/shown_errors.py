"""What an error may say where users read it (the job's `error`, each check's title, summary, text and findings,
which quote tools' output: a test run's tail, git's stderr, a traceback): no path of the machine it happened on.
AQE's data directory and source, the Python installation, the home and temporary directories are replaced by what
they stand for; a path inside the analysed repository is given relative to it."""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

from jobs.model import AgentResult

AQE_SOURCE = Path(__file__).resolve().parents[1]  # where `jobs/` and `app/` are (an editable install, a checkout)
_PATH_START = r"(?<![\w.~/:@%-])"  # a path starts here, not inside a URL or a longer path
_PATH_END = r"(?=[/\s'\"`:,;)\]]|$)"  # a whole path component ends here (not "/tmpfoo" for "/tmp")


def internal_places(data_dir: Path, source_root: Path | None = None) -> list[tuple[str, str]]:
    """(path, what to show instead), longest first, so that the most precise one wins."""
    places: dict[str, str] = {}
    for path, label in ((Path(tempfile.gettempdir()), "<tmp>"), (Path.home(), "~"),
                        (Path(sys.base_prefix), "<python>"), (Path(sys.prefix), "<python>"), (AQE_SOURCE, "<aqe>"),
                        (data_dir, "$AQE_DATA_DIR")):
        for form in {str(path), str(path.resolve())}:
            if form not in ("/", "."):
                places[form] = label
    if source_root is not None:
        for form in {str(source_root), str(source_root.resolve())}:
            places[form + "/"] = ""  # inside the repository: relative to its root
            places[form] = "."
    return sorted(places.items(), key=lambda place: len(place[0]), reverse=True)


def without_internal_paths(text: str, places: list[tuple[str, str]]) -> str:
    for path, label in places:
        end = "" if path.endswith("/") else _PATH_END
        text = re.sub(_PATH_START + re.escape(path) + end, lambda _: label, text)
    return text


def error_text(exc: BaseException, places: list[tuple[str, str]], limit: int = 2000) -> str:
    """`Type: message` of an exception, as a user may read it."""
    return without_internal_paths(f"{type(exc).__name__}: {exc}", places)[:limit]


def shown_result(result: AgentResult, places: list[tuple[str, str]]) -> AgentResult:
    """`result` with no machine path in what users read of it (its title, summary, text and findings)."""
    result.title = without_internal_paths(result.title, places)
    result.summary = without_internal_paths(result.summary, places)
    result.text = without_internal_paths(result.text, places)
    for finding in result.findings:
        finding.title = without_internal_paths(finding.title, places) if finding.title else finding.title
        finding.message = without_internal_paths(finding.message, places)
        if finding.raw_details:
            finding.raw_details = without_internal_paths(finding.raw_details, places)
    return result
