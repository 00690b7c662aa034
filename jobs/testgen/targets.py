"""Which changed functions get generated tests: pure analysis of the work tree's source files.

A Python target is a public (no leading underscore) module-level function, or a public method of a public
module-level class, whose definition (decorators included) spans a changed line, in a file that is not
excluded, that can be imported (a module at the repository root or under `src/`, inside packages with an
`__init__.py`), and whose name no test file of the repository mentions. A JavaScript/TypeScript target is
an exported function found by lizard under the same rules. The most changed functions come first.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from jobs.junit import IGNORED_DIRS
from jobs.quality.complexity import file_functions
from jobs.quality.config import exclude_matcher
from jobs.testgen.config import TestGenerationConfig

Language = Literal["python", "javascript"]

MAX_SOURCE_BYTES = 512 * 1024
MAX_WALKED_FILES = 20_000
IMPORT_ROOTS = ("", "src")  # where importable modules live: the repository root and a src/ layout
SCRIPT_NAMES = frozenset({"setup.py", "conftest.py", "__main__.py", "noxfile.py", "manage.py", "fabfile.py"})
JS_SUFFIXES = (".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".mts", ".cts")
TEST_FILE_GLOBS = (
    "tests/", "test/", "testing/", "spec/", "__tests__/",
    "test_*.py", "*_test.py", "*.test.*", "*.spec.*",
)  # fmt: skip
UNTESTABLE_DECORATORS = frozenset({"property", "setter", "getter", "deleter", "overload", "abstractmethod",
                                   "cached_property"})
_WORD = re.compile(r"[A-Za-z_$][\w$]*")


@dataclass(frozen=True, slots=True)
class FunctionSpan:
    """A function definition in one source file."""

    qualname: str  # "mean", "Box.grow"
    def_line: int  # the `def` (or lizard's start) line, where findings point
    start_line: int  # the first decorator's line
    end_line: int
    is_method: bool = False
    is_async: bool = False
    decorators: tuple[str, ...] = ()
    raises: tuple[str, ...] = ()  # exceptions the function raises itself (`raise ValueError(...)`): its contract

    @property
    def name(self) -> str:
        return self.qualname.rsplit(".", 1)[-1]


@dataclass(frozen=True, slots=True)
class Target:
    path: str  # repository-relative, posix
    span: FunctionSpan
    language: Language
    changed: int  # changed lines inside the definition
    source: str  # the definition's text
    module: str = ""  # Python: the importable module ("pkg.calc")
    import_root: str = ""  # Python: the directory it is imported from ("" or "src")

    @property
    def id(self) -> str:
        return f"{self.path}::{self.span.qualname}"

    @property
    def name(self) -> str:
        return self.span.name

    @property
    def qualname(self) -> str:
        return self.span.qualname

    @property
    def dotted(self) -> str:
        """`pkg.calc.mean` for Python; the path and name for JavaScript."""
        return f"{self.module}.{self.qualname}" if self.language == "python" else f"{self.path}:{self.qualname}"


@dataclass(frozen=True, slots=True)
class Skipped:
    path: str
    qualname: str
    reason: str


@dataclass
class TargetSelection:
    targets: list[Target] = field(default_factory=list)
    considered: int = 0  # changed public functions in analysed files, tested or not
    already_tested: list[Skipped] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)  # not importable, async, properties, over the cap
    files: int = 0  # source files looked at


# ------------------------------------------------------------------------------------- Python


def python_functions(source: str) -> list[FunctionSpan]:
    """Public module-level functions and public methods of public module-level classes, in source order.
    SyntaxError when the source does not parse."""
    tree = ast.parse(source)
    spans: list[FunctionSpan] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _public(node.name):
            spans.append(_span(node, node.name, is_method=False))
        elif isinstance(node, ast.ClassDef) and _public(node.name):
            spans += [
                _span(item, f"{node.name}.{item.name}", is_method=True)
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and _public(item.name)
            ]
    return spans


def _public(name: str) -> bool:
    return not name.startswith("_")


def _span(node: ast.FunctionDef | ast.AsyncFunctionDef, qualname: str, *, is_method: bool) -> FunctionSpan:
    start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    return FunctionSpan(
        qualname=qualname, def_line=node.lineno, start_line=start, end_line=node.end_lineno or node.lineno,
        is_method=is_method, is_async=isinstance(node, ast.AsyncFunctionDef),
        decorators=tuple(_decorator_name(d) for d in node.decorator_list), raises=raised_names(node),
    )  # fmt: skip


def raised_names(node: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[str, ...]:
    """Names of the exceptions `raise` statements in the function create: `raise ValueError(...)` says the
    function rejects some input on purpose, so a generated test seeing it has not found a bug."""
    names = set()
    for raised in ast.walk(node):
        if isinstance(raised, ast.Raise) and raised.exc is not None:
            exc = raised.exc.func if isinstance(raised.exc, ast.Call) else raised.exc
            if isinstance(exc, ast.Name):
                names.add(exc.id)
    return tuple(sorted(names))


def _decorator_name(node: ast.expr) -> str:
    """`property` for `@property`, `setter` for `@x.setter`, `lru_cache` for `@functools.lru_cache(1)`."""
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Attribute):
        return target.attr
    return target.id if isinstance(target, ast.Name) else ""


def untestable_reason(span: FunctionSpan) -> str | None:
    """Why the ghostwriter (or a generated call) cannot exercise this definition, or None."""
    if span.is_async:
        return "an `async` function: the ghostwriter writes synchronous tests"
    special = UNTESTABLE_DECORATORS.intersection(span.decorators)
    if special:
        return f"decorated with `@{sorted(special)[0]}`"
    return None


def module_name(
    path: str, is_package_dir: Mapping[str, bool] | None = None, root: Path | None = None
) -> tuple[str, str] | str:
    """(import root, dotted module) of a repository-relative `.py` path, or the reason it is not importable.

    A directory is a package when it holds an `__init__.py` (`is_package_dir` answers for tests; else the
    file system under `root` does)."""
    parts = path.split("/")
    if parts[-1] in SCRIPT_NAMES:
        return f"`{parts[-1]}` is a script, not a library module"
    stem = parts[-1].removesuffix(".py")
    dirs = parts[:-1]
    module = [] if stem == "__init__" else [stem]
    while dirs and _is_package("/".join(dirs), is_package_dir, root):
        module.insert(0, dirs.pop())
    import_root = "/".join(dirs)
    if import_root not in IMPORT_ROOTS:
        return f"not importable: `{import_root}/` is not a package (no `__init__.py`) nor the root or `src/`"
    if not module or not all(part.isidentifier() for part in module):
        return "not importable: its path is not a valid module name"
    return import_root, ".".join(module)


def _is_package(directory: str, known: Mapping[str, bool] | None, root: Path | None) -> bool:
    if known is not None:
        return known.get(directory, False)
    return root is not None and (root / directory / "__init__.py").is_file()


# --------------------------------------------------------------------------------- JavaScript


def javascript_functions(path: str, source: str) -> list[FunctionSpan]:
    """The exported named functions lizard finds in a JavaScript/TypeScript file."""
    exported = exported_names(source)
    return [
        FunctionSpan(qualname=fn.name, def_line=fn.start_line, start_line=fn.start_line, end_line=fn.end_line)
        for fn in file_functions(path, source)
        if fn.name in exported and _public(fn.name)
    ]


_EXPORT_PATTERNS = (
    re.compile(r"\bexport\s+(?:default\s+)?(?:async\s+)?(?:function\s*\*?|const|let|var)\s*([A-Za-z_$][\w$]*)"),
    re.compile(r"\bexports\.([A-Za-z_$][\w$]*)\s*="),
    re.compile(r"\bmodule\.exports\s*=\s*([A-Za-z_$][\w$]*)\s*;?\s*$", re.MULTILINE),
)
_EXPORT_LISTS = re.compile(r"\b(?:export|module\.exports\s*=)\s*\{([^}]*)\}")


def exported_names(source: str) -> set[str]:
    """Names a JavaScript/TypeScript module exports (ES `export` or CommonJS `exports`), by pattern."""
    names = {match.group(1) for pattern in _EXPORT_PATTERNS for match in pattern.finditer(source)}
    for listing in _EXPORT_LISTS.finditer(source):
        for item in listing.group(1).split(","):
            name = item.strip().split(":")[0].split(" as ")[0].strip()
            if _WORD.fullmatch(name):
                names.add(name)
    return names


# ----------------------------------------------------------------------------------- the tests


def is_test_file(path: str) -> bool:
    matcher = exclude_matcher(TEST_FILE_GLOBS)
    return matcher is not None and matcher.match(path) is not None


def words(text: str) -> set[str]:
    return set(_WORD.findall(text))


def tested_names(root: Path, paths: Iterable[str]) -> set[str]:
    """Every identifier mentioned in the test files among `paths`."""
    found: set[str] = set()
    for path in paths:
        if is_test_file(path) and (text := read_source(root / path)) is not None:
            found |= words(text)
    return found


def read_source(path: Path) -> str | None:
    """The UTF-8 text of a regular file within MAX_SOURCE_BYTES, else None."""
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_SOURCE_BYTES:
            return None
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def repository_files(root: Path, limit: int = MAX_WALKED_FILES) -> list[str]:
    """Repository-relative posix paths of the work tree's files, skipping VCS, virtualenv and dependency dirs."""
    found: list[str] = []
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_DIRS)
        base = Path(directory).relative_to(root)
        for name in sorted(filenames):
            found.append((base / name).as_posix())
            if len(found) >= limit:
                return found
    return found


# ------------------------------------------------------------------------------------ selection


def language_of(path: str) -> Language | None:
    if path.endswith(".py"):
        return "python"
    return "javascript" if path.endswith(JS_SUFFIXES) and not path.endswith(".d.ts") else None


def changed_count(span: FunctionSpan, changed: set[int] | None) -> int:
    """Changed lines inside the definition; with no diff known every line is new."""
    if changed is None:
        return span.end_line - span.start_line + 1
    return sum(1 for line in changed if span.start_line <= line <= span.end_line)


def definition_source(source: str, span: FunctionSpan) -> str:
    lines = source.splitlines()
    return "\n".join(lines[span.start_line - 1 : span.end_line])


def most_changed_first(targets: list[Target]) -> list[Target]:
    return sorted(targets, key=lambda t: (-t.changed, t.path, t.span.def_line))


def select_targets(
    root: Path, changed_lines: Mapping[str, set[int]] | None, config: TestGenerationConfig, language: Language,
    *, named: bool = False,
) -> TargetSelection:
    """The functions to generate tests for, in `language` (blocking: reads the work tree). `named`: the lines
    are what a request named (`target_lines`), so functions are targeted even when a test mentions them."""
    all_files = repository_files(root)
    candidates = sorted(changed_lines) if changed_lines is not None else all_files
    sources = [p for p in candidates if language_of(p) == language and not config.is_excluded(p)
               and not is_test_file(p)]  # fmt: skip
    tested = set() if named else tested_names(root, all_files)
    selection = TargetSelection()
    found: list[Target] = []
    for path in sources:
        text = read_source(root / path)
        if text is None:
            continue
        selection.files += 1
        changed = None if changed_lines is None else changed_lines.get(path, set())
        found += _file_targets(root, path, text, changed, tested, selection)
    ranked = most_changed_first(found)
    selection.targets = ranked[: config.max_functions]
    selection.skipped += [Skipped(t.path, t.qualname, f"over `max_functions` ({config.max_functions})")
                          for t in ranked[config.max_functions :]]  # fmt: skip
    return selection


def _file_targets(
    root: Path, path: str, text: str, changed: set[int] | None, tested: set[str], selection: TargetSelection
) -> list[Target]:
    """The targets of one file; what is considered and skipped is counted into `selection`."""
    language = language_of(path)
    try:
        spans = python_functions(text) if language == "python" else javascript_functions(path, text)
    except (SyntaxError, ValueError):
        return []
    touched = [(span, count) for span in spans if (count := changed_count(span, changed)) > 0]
    selection.considered += len(touched)
    location = module_name(path, root=root) if language == "python" else ("", "")
    targets = []
    for span, count in touched:
        reason = location if isinstance(location, str) else untestable_reason(span)
        if span.name in tested:
            selection.already_tested.append(Skipped(path, span.qualname, "a test file mentions it"))
        elif reason is not None:
            selection.skipped.append(Skipped(path, span.qualname, reason))
        else:
            import_root, module = location if isinstance(location, tuple) else ("", "")
            targets.append(Target(path, span, language or "python", count, definition_source(text, span),
                                  module=module, import_root=import_root))  # fmt: skip
    return targets


def target_lines(root: Path, spec: str) -> dict[str, set[int]] | str:
    """`changed_lines` that make one file (`"pkg/calc.py"`), every source file under a directory (`"pkg"`,
    `"src/pkg/"`) or one function (`"pkg/calc.py::mean"`, `"src/math.js::sum"`, a method as `Box.grow`) the
    target, as an API request names it; the reason when it names nothing. Never reads outside `root`."""
    path, _, qualname = spec.strip().partition("::")
    path = path.rstrip("/") if path.strip("/") else path
    if not inside(root, path):
        return f"`{path}` is not a file or directory of the repository"
    if (root / path).is_dir() and not qualname:
        return directory_lines(root, path)
    text = read_source(root / path)
    if text is None:
        return f"`{path}` is not a readable source file of the repository"
    language = language_of(path)
    if language is None:
        return f"`{path}` is not a Python or JavaScript/TypeScript source file"
    if not qualname:
        return {path: set(range(1, text.count("\n") + 2))}
    try:
        spans = python_functions(text) if language == "python" else javascript_functions(path, text)
    except (SyntaxError, ValueError):
        return f"`{path}` does not parse"
    for span in spans:
        if span.qualname == qualname:
            return {path: set(range(span.start_line, span.end_line + 1))}
    return f"`{path}` has no public function `{qualname}`"


def directory_lines(root: Path, directory: str) -> dict[str, set[int]] | str:
    """Every line of every Python or JavaScript/TypeScript file under `directory` (not in test files)."""
    prefix = "" if directory in ("", ".") else f"{directory}/"
    found: dict[str, set[int]] = {}
    for rel in repository_files(root / directory):
        path = f"{prefix}{rel}"
        if language_of(path) is None or is_test_file(path) or not inside(root, path):
            continue
        text = read_source(root / path)
        if text is not None:
            found[path] = set(range(1, text.count("\n") + 2))
    if not found:
        return f"`{directory}` holds no Python or JavaScript/TypeScript source file (outside tests)"
    return found


def inside(root: Path, path: str) -> bool:
    """A relative path without `..` that stays in `root` once links are resolved."""
    if not safe_relative(path):
        return False
    try:
        return (root / path).resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):
        return False


def safe_relative(path: str) -> bool:
    parts = Path(path).parts
    return bool(path) and not Path(path).is_absolute() and ".." not in parts
