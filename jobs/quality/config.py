"""The `quality` section of `.aqe.yml` and the path filter it defines.

```yaml
quality:
  max_ccn: 15                     # a new or changed function above this cyclomatic complexity fails
  max_duplication_percent: 3.0    # duplicated lines on new code, in % of the changed code lines
  min_duplicate_tokens: 50        # a duplicated block has at least this many tokens...
  min_duplicate_lines: 6          # ...and spans at least this many lines on each side
  exclude: ["docs/**"]            # replaces the default list below
```

Exclusions apply to both analyses (complexity and duplication) and to both sides of a duplicate: an
excluded file is neither reported nor used as "the other copy". The default leaves out

- tests (`tests/`, `test/`, `spec/`, `__tests__/` directories and `test_*.py`, `*_test.py`, `*_test.go`,
  `*.test.*`, `*.spec.*` files): as in SonarQube, test code is not held to the complexity and
  duplication conditions, where repeated arrange/act/assert blocks are normal;
- vendored and generated code (`vendor/`, `third_party/`, `node_modules/`, `dist/`, `build/`, Django
  `migrations/`, `*.min.js`, `*_pb2.py`, `*.pb.go`, `*.generated.*`): code nobody edits by hand.

Setting `exclude` replaces this list entirely (`exclude: []` analyses everything).

Glob syntax, matched against the path relative to the repository root with `/` separators:
`*` matches within one path segment, `**` across segments (`**/` also matches zero segments),
`?` one character, `[abc]` a character class. As in `.gitignore`, a pattern without a `/` (other
than a trailing one) matches at any depth (`*.min.js` is `**/*.min.js`), one with a `/` is anchored at
the repository root (`docs/**` is only the top-level `docs`), and a trailing `/` matches everything
under such a directory (`vendor/` is `**/vendor/**`).
"""

from __future__ import annotations

import re
from functools import lru_cache

import msgspec

DEFAULT_EXCLUDE: tuple[str, ...] = (
    # tests
    "tests/", "test/", "spec/", "__tests__/", "testing/",
    "test_*.py", "*_test.py", "conftest.py", "*_test.go", "*.test.*", "*.spec.*",
    # vendored and generated
    "vendor/", "third_party/", "thirdparty/", "node_modules/", "bower_components/", "dist/", "build/",
    "migrations/", "*.min.js", "*_pb2.py", "*_pb2_grpc.py", "*.pb.go", "*.generated.*",
)  # fmt: skip


class QualityConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Thresholds of the `quality` agent (check run `aqe/quality`).

    - `max_ccn`: a new or changed function whose cyclomatic complexity (lizard's CCN) is above this
      fails the check (Sonar's and lizard's customary 15).
    - `max_duplication_percent`: the check fails when duplicated changed code lines exceed this share
      of the changed code lines ("duplication on new code"); the share is compared as shown, rounded
      to one decimal.
    - `min_duplicate_tokens` / `min_duplicate_lines`: the size from which a repeated token sequence
      (identifiers, strings and numbers normalised) counts as a duplicated block: both must hold, on
      both copies.
    - `exclude`: path globs left out of both analyses (see the module docstring; the default leaves
      out tests and vendored or generated code).
    """

    max_ccn: int = 15
    max_duplication_percent: float = 3.0
    min_duplicate_tokens: int = 50
    min_duplicate_lines: int = 6
    exclude: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_EXCLUDE))

    def __post_init__(self) -> None:
        if not 1 <= self.max_ccn <= 1000:
            raise ValueError("must be between 1 and 1000 (at `$.quality.max_ccn`)")
        if not 0.0 <= self.max_duplication_percent <= 100.0:
            raise ValueError("must be between 0 and 100 (at `$.quality.max_duplication_percent`)")
        if not 10 <= self.min_duplicate_tokens <= 10_000:
            raise ValueError("must be between 10 and 10000 (at `$.quality.min_duplicate_tokens`)")
        if not 1 <= self.min_duplicate_lines <= 10_000:
            raise ValueError("must be between 1 and 10000 (at `$.quality.min_duplicate_lines`)")

    def is_excluded(self, path: str) -> bool:
        """Whether the repository-relative posix `path` matches one of the `exclude` globs."""
        matcher = exclude_matcher(tuple(self.exclude))
        return matcher is not None and matcher.match(path) is not None


def as_quality_config(config: QualityConfig | dict | None) -> QualityConfig:
    """Accept the parsed `quality` section, or its raw mapping (as the Agent protocol passes)."""
    if isinstance(config, QualityConfig):
        return config
    return msgspec.convert(config or {}, QualityConfig)


@lru_cache(maxsize=64)
def exclude_matcher(globs: tuple[str, ...]) -> re.Pattern[str] | None:
    """One compiled alternation of every glob, or None when there are none."""
    if not globs:
        return None
    return re.compile("|".join(f"(?:{glob_regex(glob)})" for glob in globs))


def glob_regex(glob: str) -> str:
    """The anchored regular expression of one exclude glob (syntax in the module docstring)."""
    pattern = glob.strip().lstrip("/")
    if pattern.startswith("./"):
        pattern = pattern[2:]
    directory = pattern.endswith("/")
    pattern = pattern.rstrip("/")
    if "/" not in pattern:  # as in .gitignore: a name without a slash matches at any depth
        pattern = f"**/{pattern}"
    if directory:
        pattern = f"{pattern}/**"
    return f"^{_translate(pattern)}$"


def _translate(pattern: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(pattern):
        index = _translate_one(pattern, index, out)
    return "".join(out)


def _translate_one(pattern: str, index: int, out: list[str]) -> int:
    """Append the regex of the glob element at `index`; the index after it."""
    if pattern.startswith("**/", index):
        out.append("(?:.*/)?")
        return index + 3
    if pattern.startswith("**", index):
        out.append(".*")
        return index + 2
    char = pattern[index]
    if char == "*":
        out.append("[^/]*")
    elif char == "?":
        out.append("[^/]")
    elif char == "[" and (end := pattern.find("]", index + 2)) != -1:
        body = pattern[index + 1 : end]
        body = "^" + body[1:] if body.startswith("!") else body
        out.append(f"[{body.replace(chr(92), chr(92) * 2)}]")
        return end + 1
    else:
        out.append(re.escape(char))
    return index + 1
