"""Property tests from the hypothesis ghostwriter: the driver run in the sandbox, and what is done with its output.

Importing a module executes repository code, so `hypothesis.extra.ghostwriter.magic` runs in one sandboxed
process for all targets (`DRIVER`, written to the scratch directory). It writes, per target, the
ghostwriter's module text or the reason it could not. Everything else here is pure: dropping output whose
strategies the ghostwriter could not resolve (`st.nothing()`, its "TODO" comments), cutting each output into
imports, helpers and test functions, and rendering one test module per source module (with
`@settings(max_examples=..., deadline=None)` on every test), formatted with black.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import black
from black.parsing import InvalidInput

from jobs.testgen.targets import Target

MAX_CODE_CHARS = 200_000
GHOSTWRITER_NOTICE = (
    "# The ghostwriter's code is provided under the Creative Commons Zero public domain dedication."
)

# Runs inside the sandbox with the repository's interpreter: argv[1] the request, argv[2] the answers.
DRIVER = r'''
import builtins
import importlib
import inspect
import json
import sys
import traceback

request = json.load(open(sys.argv[1], encoding="utf-8"))
answers = {}
modules = {}


def save():
    with open(sys.argv[2] + ".tmp", "w", encoding="utf-8") as out:
        json.dump(answers, out)
    import os
    os.replace(sys.argv[2] + ".tmp", sys.argv[2])


def describe(exc):
    lines = traceback.format_exception_only(type(exc), exc)
    return (lines[-1] if lines else type(exc).__name__).strip()[:500]


def buildable(cls):
    """Whether st.builds(cls) can infer every required argument from type hints."""
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return False
    for parameter in signature.parameters.values():
        required = parameter.default is inspect.Parameter.empty and parameter.kind not in (
            inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        if required and parameter.annotation is inspect.Parameter.empty:
            return False
    return True


try:
    from hypothesis.extra import ghostwriter
except BaseException as exc:
    answers["*"] = {"error": "hypothesis' ghostwriter cannot be imported: " + describe(exc)}
    save()
    raise SystemExit(0)

for target in request["targets"]:
    name = target["module"]
    if name not in modules:
        try:
            modules[name] = (importlib.import_module(name), None)
        except BaseException as exc:
            modules[name] = (None, "importing `" + name + "` failed: " + describe(exc))
    module, error = modules[name]
    if error:
        answers[target["id"]] = {"error": error}
        save()
        continue
    try:
        owner, obj = None, module
        for part in target["qualname"].split("."):
            owner, obj = obj, getattr(obj, part)
        expected = tuple(e for e in (getattr(builtins, n, None) or getattr(module, n, None) for n in target["raises"])
                         if inspect.isclass(e) and issubclass(e, Exception))
        answer = {"code": ghostwriter.magic(obj, except_=expected)}
        if inspect.isclass(owner):
            answer["self_buildable"] = buildable(owner)
        answers[target["id"]] = answer
    except BaseException as exc:
        answers[target["id"]] = {"error": "the ghostwriter failed: " + describe(exc)}
    save()
save()
'''


def driver_request(targets: Iterable[Target]) -> str:
    return json.dumps({"targets": [{"id": t.id, "module": t.module, "qualname": t.qualname,
                                    "raises": list(t.span.raises)} for t in targets]})


@dataclass(frozen=True, slots=True)
class Written:
    """What the driver answered for one target: the ghostwriter's code, or why there is none."""

    code: str = ""
    error: str = ""
    self_buildable: bool = False


def parse_driver_answers(text: str) -> dict[str, Written]:
    """The driver's answers by target id; malformed entries become errors (the file is written by a process
    that ran repository code, so it is only data)."""
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    answers: dict[str, Written] = {}
    for key, value in data.items():
        if not isinstance(value, dict):
            continue
        code, error = value.get("code"), value.get("error")
        if isinstance(code, str) and len(code) <= MAX_CODE_CHARS:
            answers[str(key)] = Written(code=code, self_buildable=value.get("self_buildable") is True)
        else:
            answers[str(key)] = Written(error=str(error)[:500] if error else "the driver answered no code")
    return answers


# ------------------------------------------------------------------------------- the output


_NOTHING = re.compile(r"\b(\w+)=st\.nothing\(\)")
_TODO_LINE = re.compile(r"^[ \t]*#[^\n]*\bTODO\b[^\n]*\n?", re.MULTILINE)


def with_built_self(code: str, target: Target, self_buildable: bool) -> str:
    """A method's `self=st.nothing()` replaced by `st.builds(<its class>)` when the class can be built from
    the type hints of its constructor; the ghostwriter's TODO comment goes when nothing is left to do."""
    if not target.span.is_method or not self_buildable:
        return code
    owner = target.qualname.rsplit(".", 1)[0]
    code = code.replace("self=st.nothing()", f"self=st.builds({target.module}.{owner})")
    return code if _NOTHING.search(code) else _TODO_LINE.sub("", code)


def unresolved_reason(code: str) -> str | None:
    """Why ghostwriter output cannot be used as it is, or None."""
    missing = _NOTHING.findall(code)
    if missing:
        names = ", ".join(f"`{name}`" for name in dict.fromkeys(missing))
        hint = "a method whose class cannot be built from type hints" if missing == ["self"] else "add type hints"
        return f"the ghostwriter found no strategy for {names} ({hint})"
    if "st.nothing()" in code or _TODO_LINE.search(code):
        return "the ghostwriter left a TODO in its output"
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        return f"the ghostwriter's output does not parse: {exc.msg} (line {exc.lineno})"
    if not any(isinstance(node, ast.FunctionDef) and node.name.startswith("test") for node in tree.body):
        return "the ghostwriter wrote no test function"
    return None


@dataclass(frozen=True, slots=True)
class Statement:
    source: str
    names: tuple[str, ...]  # the names it binds at module level


@dataclass(frozen=True, slots=True)
class TestFunction:
    __test__ = False

    name: str
    source: str  # decorators included


@dataclass
class TestPieces:
    """One ghostwriter output cut into parts that can be merged with others."""

    __test__ = False

    imports: list[Statement] = field(default_factory=list)
    helpers: list[Statement] = field(default_factory=list)
    tests: list[TestFunction] = field(default_factory=list)


def cut(code: str) -> TestPieces:
    """Imports, module-level helper statements and test functions of one ghostwriter output (it must parse)."""
    tree = ast.parse(code)
    lines = code.splitlines()
    pieces = TestPieces()
    for node in tree.body:
        start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        source = "\n".join(lines[start - 1 : node.end_lineno])
        if isinstance(node, ast.Import | ast.ImportFrom):
            pieces.imports.append(Statement(source, _imported_names(node)))
        elif isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
            pieces.tests.append(TestFunction(node.name, source))
        else:
            pieces.helpers.append(Statement(source, _bound_names(node)))
    return pieces


def _imported_names(node: ast.Import | ast.ImportFrom) -> tuple[str, ...]:
    return tuple((alias.asname or alias.name).split(".")[0] for alias in node.names)


def _bound_names(node: ast.stmt) -> tuple[str, ...]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return (node.name,)
    return tuple(n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store))


@dataclass
class TestModule:
    """The generated tests of one source module, and which target each test exercises."""

    __test__ = False

    source_path: str  # "pkg/calc.py"
    module: str  # "pkg.calc"
    pieces: dict[str, TestPieces] = field(default_factory=dict)  # target id -> its pieces
    owner: dict[str, str] = field(default_factory=dict)  # test name -> target id

    @property
    def file_stem(self) -> str:
        return f"test_{self.module.replace('.', '_')}_hypothesis"

    @property
    def repo_path(self) -> str:
        return f"tests/generated/{self.file_stem}.py"


def conflict_reason(module: TestModule, pieces: TestPieces) -> str | None:
    """Why `pieces` cannot join `module`: a test or helper name already bound to something else."""
    helpers = {name: s.source for p in module.pieces.values() for s in p.helpers for name in s.names}
    for test in pieces.tests:
        if test.name in module.owner:
            return f"its test `{test.name}` has the name of another generated test"
    for statement in pieces.helpers:
        for name in statement.names:
            if name in helpers and helpers[name] != statement.source:
                return f"its helper `{name}` has the name of another generated helper"
    return None


def add_pieces(module: TestModule, target_id: str, pieces: TestPieces) -> None:
    module.pieces[target_id] = pieces
    for test in pieces.tests:
        module.owner[test.name] = target_id


def render(module: TestModule, max_examples: int, keep: set[str] | None = None, header: str = "") -> str:
    """The module's test file (only the tests named in `keep`, when given), formatted with black.

    Imports and helpers no kept test uses are left out; each test gets `@settings(max_examples=...,
    deadline=None)` unless it has settings of its own (no deadline: a slow worker must not fail a test)."""
    tests = [t for p in module.pieces.values() for t in p.tests if keep is None or t.name in keep]
    used = _words("\n".join(t.source for t in tests))
    helpers = _unique(s for p in module.pieces.values() for s in p.helpers)
    kept_helpers = _used_statements(helpers, used)
    used |= _words("\n".join(s.source for s in kept_helpers))
    imports = [s for s in _unique(s for p in module.pieces.values() for s in p.imports) if used & set(s.names)]
    parts = [
        "\n".join([*(s.source for s in imports), "from hypothesis import settings"]),
        "\n".join(s.source for s in kept_helpers),
        "\n\n\n".join(_with_settings(t.source, max_examples) for t in tests),
    ]
    text = "\n\n\n".join(part for part in parts if part) + "\n"
    return format_code(f"{header.rstrip()}\n\n{text}" if header.strip() else text)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z_]\w*", text))


def _unique(statements: Iterable[Statement]) -> list[Statement]:
    seen: dict[str, Statement] = {}
    for statement in statements:
        seen.setdefault(statement.source, statement)
    return list(seen.values())


def _used_statements(helpers: list[Statement], used: set[str]) -> list[Statement]:
    """The helpers the tests use, directly or through other kept helpers (in their original order)."""
    wanted = set(used)
    kept: set[int] = set()
    changed = True
    while changed:
        changed = False
        for index, statement in enumerate(helpers):
            if index not in kept and wanted & set(statement.names):
                kept.add(index)
                wanted |= _words(statement.source)
                changed = True
    return [statement for index, statement in enumerate(helpers) if index in kept]


def _with_settings(source: str, max_examples: int) -> str:
    if re.search(r"^@(?:hypothesis\.)?settings\b", source, re.MULTILINE):
        return source
    return f"@settings(max_examples={max_examples}, deadline=None)\n{source}"


def format_code(text: str) -> str:
    """black's formatting (its defaults, as the ghostwriter uses); the text as it is when black cannot parse it."""
    try:
        return black.format_str(text, mode=black.Mode())
    except (InvalidInput, ValueError):
        return text


def header_for(module: TestModule, functions: list[str], head_sha: str) -> str:
    names = ", ".join(functions)
    return (
        f"# Property tests for {module.source_path} ({names}) at {head_sha[:12]}, written by the hypothesis\n"
        "# ghostwriter for AQE (aqe/test-generation). Every test here passed when AQE ran it with\n"
        f"# `pytest --hypothesis-seed=0`; review them before merging.\n{GHOSTWRITER_NOTICE}\n"
    )
