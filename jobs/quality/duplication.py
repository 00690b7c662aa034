"""Duplicated code introduced by a change, found on normalised tokens.

lizard's duplicate detector (`-Eduplicate`) renames identifiers by order of first appearance in a
file, so a Python block copied with renamed variables into a file that already uses other names (or
into the same file) no longer looks the same, and it is missed. This detector compares token
*kinds* instead: every identifier becomes `ID`, every string `STR`, every number `NUM`; keywords and
operators are kept; comments and layout are dropped. Two blocks are duplicates when their normalised
token sequences are equal for at least `min_tokens` tokens and `min_lines` lines on both sides.

The search is near-linear in the repository's token count (Rabin–Karp):

1. every file is tokenized once (Python with `tokenize`, other languages with a regular expression);
2. a rolling hash of every window of `min_tokens` tokens is computed; the windows overlapping the
   changed lines are the *queries*;
3. one more pass collects the positions of every window whose hash is a query hash (hash → locations);
4. each query window is paired with the other locations of its hash (at most `MAX_COPIES`), the pair
   is verified token by token (hash collisions) and extended maximally left and right; a maximal match
   is found once per (file pair, offset) "diagonal", so a long block is not re-extended from each of
   its windows.

Only pairs with at least one side overlapping the changed lines are reported. A match of a block with
itself shifted (repetitive code such as a run of similar assignments) is not a duplicate, nor is a
match of fewer than `MIN_DISTINCT_TOKENS` different token kinds (tables of numbers or strings).

"Duplication on new code" follows SonarQube: duplicated changed lines / changed lines, counting only
lines of code (lines holding at least one token; not blank or comment-only lines).
"""

from __future__ import annotations

import io
import keyword
import os
import re
import tokenize
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from jobs.junit import IGNORED_DIRS
from jobs.quality.complexity import read_source
from jobs.quality.config import QualityConfig

MAX_COPIES = 20  # other locations a query window is compared with (boilerplate can repeat 1000s of times)
MIN_DISTINCT_TOKENS = 10  # a match of fewer token kinds is a table of literals or repeated boilerplate

_HASH_BASE = 1_000_003
_HASH_MOD = (1 << 61) - 1

# ----------------------------------------------------------------------------------- tokenizing

IDENTIFIER, STRING, NUMBER = "ID", "STR", "NUM"

FAMILY_BY_EXTENSION: dict[str, str] = {
    "py": "python",
    **dict.fromkeys(
        "c cpp cc cxx h hh hpp java cs js cjs mjs jsx ts tsx vue m mm ttcn ttcnpp swift scala go rs kt kts "
        "sol zig".split(), "c"),
    "php": "php",
    **dict.fromkeys("rb pl pm r gd".split(), "hash"),
    **dict.fromkeys("lua sql pks pkb pls plb pck".split(), "dash"),
    **dict.fromkeys("erl hrl es escript".split(), "percent"),
    **dict.fromkeys("f70 f90 f95 f03 f08 f for ftn fpp".split(), "bang"),
}  # fmt: skip

_CASE_INSENSITIVE = frozenset({"dash", "bang"})  # SQL, Lua, Fortran keywords: any case

_COMMENTS: dict[str, str] = {
    "c": r"//[^\n]*|/\*[\s\S]*?\*/",
    "php": r"//[^\n]*|/\*[\s\S]*?\*/|\#[^\n]*",
    "hash": r"\#[^\n]*",
    "python": r"\#[^\n]*",  # when `tokenize` rejects the file (Python 2, syntax errors)
    "dash": r"--\[\[[\s\S]*?\]\]|--[^\n]*|/\*[\s\S]*?\*/",
    "percent": r"%[^\n]*",
    "bang": r"![^\n]*",
}

_STRINGS = (
    r'"""[\s\S]*?"""' r"|'''[\s\S]*?'''"
    r'|"(?:\\.|[^"\\\n])*"' r"|'(?:\\.|[^'\\\n])*'" r"|`(?:\\.|[^`\\])*`"
)
_OPERATORS = (
    r">>>=|<<=|>>=|===|!==|\*\*=|\.\.\.|->|=>|::|\+\+|--|&&|\|\||<<|>>|<=|>=|==|!=|\+=|-=|\*=|/=|%=|&=|\|="
    r"|\^=|\?\?|\?\.|:=|[^\s\w]"
)

C_LIKE_KEYWORDS = frozenset(
    """abstract and as async await begin bool boolean break byte case catch char chan class const continue
    def default defer delete do double elif else elsif end ensure enum except export extends extern false
    final finally float fn for foreach func function go goto if impl implements import in instanceof int
    interface is let local long loop match mod module mut namespace new nil not null object of or override
    package private protected pub public raise record rescue return select self short signed sizeof static
    string struct super switch then this throw throws trait true try type typeof undefined union unless
    unsigned until use using val var void volatile when where while with yield""".split()
)


@dataclass(slots=True)
class Vocabulary:
    """Normalised token text -> small int, shared by every file of one search."""

    ids: dict[str, int] = field(default_factory=dict)

    def id(self, text: str) -> int:
        found = self.ids.get(text)
        if found is None:
            found = self.ids[text] = len(self.ids)
        return found


@dataclass(frozen=True, slots=True)
class TokenStream:
    """One file as normalised tokens: `kinds[i]` is a vocabulary id, `lines[i]` its first line."""

    path: str
    kinds: list[int]
    lines: list[int]
    code_lines: frozenset[int]  # lines holding (part of) a token: the file's lines of code


def family_of(path: str) -> str | None:
    """The tokenizer family of a file, by extension; None for files not analysed."""
    _, dot, extension = path.rpartition(".")
    return FAMILY_BY_EXTENSION.get(extension.lower()) if dot else None


def tokenize_source(path: str, text: str, vocabulary: Vocabulary) -> TokenStream:
    """Normalised tokens of one file (`path` selects the tokenizer)."""
    family = family_of(path) or "c"
    tokens = python_tokens(text) if family == "python" else None
    if tokens is None:
        tokens = regex_tokens(text, family)
    vocabulary_id = vocabulary.id
    kinds = [vocabulary_id(kind) for kind in tokens.kinds]
    code_lines = set(tokens.starts)
    for start, end in tokens.spans:
        code_lines.update(range(start, end + 1))
    return TokenStream(path, kinds, tokens.starts, frozenset(code_lines))


@dataclass(slots=True)
class RawTokens:
    """A tokenizer's output as parallel lists (no object per token: millions of them stay cheap)."""

    kinds: list[str] = field(default_factory=list)  # normalised text: "ID", "STR", "NUM", "if", "+=", …
    starts: list[int] = field(default_factory=list)  # first line of each token
    spans: list[tuple[int, int]] = field(default_factory=list)  # (first, last) line of multi-line tokens

    def add(self, kind: str, start: int, end: int) -> None:
        self.kinds.append(kind)
        self.starts.append(start)
        if end != start:
            self.spans.append((start, end))


_PYTHON_SKIPPED = frozenset(
    {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING,
     tokenize.ENDMARKER, getattr(tokenize, "TYPE_COMMENT", -1), getattr(tokenize, "FSTRING_MIDDLE", -1),
     getattr(tokenize, "FSTRING_END", -1)}
)  # fmt: skip
_PYTHON_STRINGS = frozenset({tokenize.STRING, getattr(tokenize, "FSTRING_START", -1)})
_PYTHON_KEYWORDS = frozenset(keyword.kwlist)


def python_tokens(text: str) -> RawTokens | None:
    """Normalised tokens with `tokenize`; None when it rejects the text."""
    out = RawTokens()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type not in _PYTHON_SKIPPED:
                out.add(_python_kind(tok), tok.start[0], tok.end[0])
    except (tokenize.TokenError, SyntaxError):
        return None
    return out


def _python_kind(tok: tokenize.TokenInfo) -> str:
    if tok.type == tokenize.NAME:
        return tok.string if tok.string in _PYTHON_KEYWORDS else IDENTIFIER
    if tok.type in _PYTHON_STRINGS:
        return STRING
    if tok.type == tokenize.NUMBER:
        return NUMBER
    return tok.string  # operators and anything else, kept as written


_REGEXES: dict[str, re.Pattern[str]] = {
    family: re.compile(
        rf"(?P<skip>\s+|{comments})|(?P<str>{_STRINGS})|(?P<num>\d[\w.]*)"
        rf"|(?P<id>[^\W\d][\w$]*|\$[\w$]+)|(?P<op>{_OPERATORS})"
    )
    for family, comments in _COMMENTS.items()
}


def regex_tokens(text: str, family: str) -> RawTokens:
    """Normalised tokens with the family's regular expression (comments and strings of the family)."""
    pattern = _REGEXES.get(family, _REGEXES["c"])
    fold = family in _CASE_INSENSITIVE
    out = RawTokens()
    line, position = 1, 0
    for match in pattern.finditer(text):
        line += text.count("\n", position, match.start())
        position = match.start()
        group = match.lastgroup
        if group == "skip":
            continue
        value = match.group()
        out.add(_regex_kind(group, value, fold), line, line + value.count("\n"))
    return out


def _regex_kind(group: str | None, value: str, fold: bool) -> str:
    if group == "str":
        return STRING
    if group == "num":
        return NUMBER
    if group == "id":
        word = value.lower() if fold else value
        return word if word in C_LIKE_KEYWORDS else IDENTIFIER
    return value


# ------------------------------------------------------------------------------------ the search


@dataclass(frozen=True, slots=True, order=True)
class Block:
    path: str
    start_line: int
    end_line: int

    def lines(self) -> range:
        return range(self.start_line, self.end_line + 1)


@dataclass(frozen=True, slots=True, order=True)
class Duplicate:
    """Two blocks with the same normalised tokens; `first` sorts before `second`."""

    first: Block
    second: Block
    tokens: int


def window_hashes(kinds: Sequence[int], width: int) -> list[int]:
    """Rabin–Karp: the polynomial hash of every window of `width` tokens, in one pass."""
    if len(kinds) < width:
        return []
    top = pow(_HASH_BASE, width - 1, _HASH_MOD)
    value = 0
    for kind in kinds[:width]:
        value = (value * _HASH_BASE + kind + 1) % _HASH_MOD
    hashes = [value]
    for index in range(width, len(kinds)):
        value = ((value - (kinds[index - width] + 1) * top) * _HASH_BASE + kinds[index] + 1) % _HASH_MOD
        hashes.append(value)
    return hashes


def query_windows(stream: TokenStream, width: int, changed: set[int] | None) -> list[int]:
    """Start positions of the windows whose line span holds a changed line (all, when None)."""
    count = len(stream.kinds) - width + 1
    if count <= 0:
        return []
    if changed is None:
        return list(range(count))
    ordered = sorted(changed)
    lines = stream.lines
    return [i for i in range(count) if _any_between(ordered, lines[i], lines[i + width - 1])]


def _any_between(ordered: list[int], low: int, high: int) -> bool:
    index = bisect_left(ordered, low)
    return index < len(ordered) and ordered[index] <= high


@dataclass(slots=True)
class _Search:
    """The state of one `find_duplicates` run."""

    streams: Sequence[TokenStream]
    width: int
    min_lines: int
    covered: dict[tuple[int, int, int], list[tuple[int, int]]] = field(default_factory=dict)
    found: list[Duplicate] = field(default_factory=list)

    def compare(self, a: int, i: int, b: int, j: int) -> None:
        """Verify and extend the window pair (stream a at i, stream b at j); record the maximal match."""
        if (a, i) > (b, j):
            a, i, b, j = b, j, a, i
        diagonal = (a, b, i - j)
        spans = self.covered.setdefault(diagonal, [])
        if any(start <= i < end for start, end in spans):
            return
        x, y = self.streams[a].kinds, self.streams[b].kinds
        if x[i : i + self.width] != y[j : j + self.width]:
            return  # a hash collision
        start = 0
        while i - start > 0 and j - start > 0 and x[i - start - 1] == y[j - start - 1]:
            start += 1
        end = self.width
        while i + end < len(x) and j + end < len(y) and x[i + end] == y[j + end]:
            end += 1
        spans.append((i - start, i + end))
        self._keep(a, i - start, b, j - start, start + end)

    def _keep(self, a: int, i: int, b: int, j: int, length: int) -> None:
        if a == b and j < i + length:
            return  # the block overlaps its own copy: repetitive code, not a duplicate
        x = self.streams[a]
        if len(set(x.kinds[i : i + length])) < MIN_DISTINCT_TOKENS:
            return
        first, second = sorted((self._block(a, i, length), self._block(b, j, length)))
        if min(len(first.lines()), len(second.lines())) >= self.min_lines:
            self.found.append(Duplicate(first, second, length))

    def _block(self, stream: int, start: int, length: int) -> Block:
        lines = self.streams[stream].lines
        return Block(self.streams[stream].path, lines[start], lines[start + length - 1])


def find_duplicates(
    streams: Sequence[TokenStream],
    changed_lines: Mapping[str, set[int]] | None,
    min_tokens: int = 50,
    min_lines: int = 6,
) -> list[Duplicate]:
    """Maximal duplicated blocks of at least `min_tokens` tokens and `min_lines` lines (both copies)
    of which at least one copy overlaps `changed_lines` (every block, when it is None)."""
    hashes = [window_hashes(stream.kinds, min_tokens) for stream in streams]
    queries = [
        query_windows(stream, min_tokens, None if changed_lines is None else changed_lines.get(stream.path))
        if changed_lines is None or stream.path in changed_lines else []
        for stream in streams
    ]  # fmt: skip
    wanted: set[int] = set()
    for s, positions in enumerate(queries):
        stream_hashes = hashes[s]
        wanted.update(stream_hashes[i] for i in positions)
    copies = repeated_windows(hashes, wanted)
    search = _Search(streams, min_tokens, min_lines)
    for s, positions in enumerate(queries):
        stream_hashes = hashes[s]
        for i in positions:
            found = copies.get(stream_hashes[i])
            if found is not None:
                _compare_with_copies(search, s * _STRIDE + i, found)
    return sorted(search.found)


_STRIDE = 1 << 40  # a location is one int, stream * _STRIDE + position: ints are not tracked by the GC


def repeated_windows(hashes: Sequence[Sequence[int]], wanted: set[int]) -> dict[int, list[int]]:
    """hash -> locations, for the wanted hashes that occur at least twice (one pass over every window;
    only repeated hashes get a list, so the index costs little more than a dict of ints)."""
    first: dict[int, int] = {}
    repeated: dict[int, list[int]] = {}
    for s, stream_hashes in enumerate(hashes):
        base = s * _STRIDE
        for i, value in enumerate(stream_hashes):
            if value in wanted:
                location = first.setdefault(value, base + i)
                if location != base + i:
                    repeated.setdefault(value, [location]).append(base + i)
    return repeated


def _compare_with_copies(search: _Search, query: int, copies: list[int]) -> None:
    compared = 0
    s, i = divmod(query, _STRIDE)
    for location in copies:
        if location == query:
            continue
        other, j = divmod(location, _STRIDE)
        search.compare(s, i, other, j)
        compared += 1
        if compared >= MAX_COPIES:
            return


# --------------------------------------------------------------------------- duplication on new code


@dataclass(frozen=True, slots=True)
class NewCodeDuplication:
    duplicated_lines: int  # changed lines of code inside a duplicated block
    changed_lines: int  # changed lines of code (not blank, not comment-only) of the analysed files

    @property
    def percent(self) -> float:
        """Rounded to one decimal, as shown and as compared with the threshold."""
        return round(100.0 * self.duplicated_lines / self.changed_lines, 1) if self.changed_lines else 0.0


def changed_code_lines(streams: Sequence[TokenStream], changed_lines: Mapping[str, set[int]] | None) -> dict[str, set[int]]:
    """Per analysed file, its changed lines that hold code (every line of code, when None)."""
    if changed_lines is None:
        return {stream.path: set(stream.code_lines) for stream in streams}
    return {
        stream.path: changed_lines[stream.path] & stream.code_lines
        for stream in streams
        if stream.path in changed_lines
    }


def duplicated_changed_lines(duplicates: Sequence[Duplicate], changed_code: Mapping[str, set[int]]) -> dict[str, set[int]]:
    """Per file, the changed lines of code that lie inside a copy of a duplicated block."""
    out: dict[str, set[int]] = {}
    for duplicate in duplicates:
        for block in (duplicate.first, duplicate.second):
            changed = changed_code.get(block.path)
            if changed:
                hit = {line for line in changed if block.start_line <= line <= block.end_line}
                if hit:
                    out.setdefault(block.path, set()).update(hit)
    return out


def new_code_duplication(
    streams: Sequence[TokenStream], duplicates: Sequence[Duplicate], changed_lines: Mapping[str, set[int]] | None
) -> NewCodeDuplication:
    changed_code = changed_code_lines(streams, changed_lines)
    duplicated = duplicated_changed_lines(duplicates, changed_code)
    return NewCodeDuplication(
        duplicated_lines=sum(len(lines) for lines in duplicated.values()),
        changed_lines=sum(len(lines) for lines in changed_code.values()),
    )


# ------------------------------------------------------------------------------------------- I/O


@dataclass(frozen=True, slots=True)
class DuplicationReport:
    duplicates: list[Duplicate]
    new_code: NewCodeDuplication
    duplicated_lines: dict[str, set[int]]  # per file, the changed lines of code inside a duplicated block
    files: int  # files tokenized
    tokens: int


def is_source(path: str) -> bool:
    return family_of(path) is not None


def repository_sources(
    root: Path, config: QualityConfig, accept: Callable[[str], bool] = is_source
) -> Iterator[str]:
    """Repository-relative posix paths of the source files to read (`accept`ed, not excluded, not in
    `IGNORED_DIRS` such as `.git` or `node_modules`, not symbolic links), sorted per directory."""
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_DIRS)
        base = Path(directory).relative_to(root)
        for name in sorted(filenames):
            path = (base / name).as_posix()
            if accept(name) and not config.is_excluded(path) and not (root / path).is_symlink():
                yield path


def tokenize_repository(root: Path, paths: Sequence[str]) -> list[TokenStream]:
    vocabulary = Vocabulary()
    streams: list[TokenStream] = []
    for path in paths:
        text = read_source(root, path)
        if text is not None:
            streams.append(tokenize_source(path, text, vocabulary))
    return streams


def scan_repository(root: Path, changed_lines: Mapping[str, set[int]] | None, config: QualityConfig) -> DuplicationReport:
    """Tokenize the repository's source files and find the duplicates the change introduces.

    `changed_lines` should already be limited to the files to analyse; None treats every line as new.
    """
    streams = tokenize_repository(root, list(repository_sources(root, config)))
    duplicates = find_duplicates(streams, changed_lines, config.min_duplicate_tokens, config.min_duplicate_lines)
    changed_code = changed_code_lines(streams, changed_lines)
    duplicated = duplicated_changed_lines(duplicates, changed_code)
    return DuplicationReport(
        duplicates=duplicates,
        new_code=NewCodeDuplication(
            duplicated_lines=sum(len(lines) for lines in duplicated.values()),
            changed_lines=sum(len(lines) for lines in changed_code.values()),
        ),
        duplicated_lines=duplicated,
        files=len(streams),
        tokens=sum(len(stream.kinds) for stream in streams),
    )

