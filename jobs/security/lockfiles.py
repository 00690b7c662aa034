"""The dependencies a repository pins, read from its lock and requirement files.

Pure parsers, one per format, from a file's text to (ecosystem, name, version, path, line):

- `requirements*.txt` (and files they include with `-r`): `name==version` lines, names normalised as
  in PEP 503; hashes, environment markers, extras, comments and line continuations are understood.
  Anything not pinned to one version (`>=`, no version, URLs, editable installs) is "not checked".
- `poetry.lock`: every `[[package]]` (those from git, a directory, a file or a URL are not checked).
- `Pipfile.lock`: `default` and `develop`, `"version": "==x"`.
- `package-lock.json` / `npm-shrinkwrap.json`: lockfileVersion 2 and 3 `packages` (`node_modules/...`
  keys), lockfileVersion 1 `dependencies` tree.
- `go.sum`: the modules whose code is used (a `/go.mod`-only line is a module version Go consulted for
  its requirements but never built, so it is not checked); the `v` of versions dropped, as OSV writes them.

The line of a package is where its version is written, so that a version bump in a diff marks it as
changed. A file that cannot be read as its format is a problem of that file, never an exception.
"""

from __future__ import annotations

import bisect
import json
import json.decoder
import json.scanner
import posixpath
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

Ecosystem = Literal["PyPI", "npm", "Go"]

MAX_INCLUDE_DEPTH = 10
_REQUIREMENTS_NAME = re.compile(r"(^|.*[-_.])requirements([-_.].*)?\.txt$", re.IGNORECASE)
_COMMENT = re.compile(r"(^|\s)#.*$")
_PER_REQUIREMENT_OPTION = re.compile(r"\s--?[A-Za-z]")
_INCLUDE = re.compile(r"^(?:-r|--requirement)(?:\s*=\s*|\s+|(?=\S))(\S+)$")
_EDITABLE = re.compile(r"^(?:-e|--editable)\b")
_NPM_VERSION = re.compile(r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]*)?$")
_POETRY_VERSION_LINE = re.compile(r"""^version\s*=\s*["']""")


@dataclass(frozen=True, slots=True)
class Package:
    ecosystem: Ecosystem
    name: str
    version: str
    path: str
    line: int  # where the version is written


@dataclass(frozen=True, slots=True)
class Unchecked:
    """A dependency that is not looked up: not pinned to one version, or not from a registry."""

    path: str
    line: int
    name: str
    why: str  # "unpinned", "direct reference", "editable", "not from the registry"


@dataclass
class Lockfile:
    packages: list[Package] = field(default_factory=list)
    unchecked: list[Unchecked] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "line 4: ...", without the path
    includes: list[str] = field(default_factory=list)  # requirement files this one includes (repository paths)


class LockfileError(ValueError):
    """The file is not valid in its format; the message says where."""


# ---------------------------------------------------------------------------------- file kinds


LOCKFILE_NAMES = ("poetry.lock", "Pipfile.lock", "package-lock.json", "npm-shrinkwrap.json", "go.sum")


def is_requirements_file(path: str) -> bool:
    name = posixpath.basename(path)
    return bool(_REQUIREMENTS_NAME.match(name)) or (
        name.endswith(".txt") and posixpath.basename(posixpath.dirname(path)) == "requirements"
    )


def is_dependency_file(path: str) -> bool:
    return posixpath.basename(path) in LOCKFILE_NAMES or is_requirements_file(path)


def parse_dependency_file(path: str, text: str) -> Lockfile:
    """The packages of one lock or requirement file; a file the format's parser rejects is one problem."""
    parser = _PARSERS.get(posixpath.basename(path), parse_requirements)
    try:
        return parser(path, text)
    except LockfileError as exc:
        return Lockfile(problems=[str(exc)])


@dataclass
class DependencyFiles:
    """Everything read from the repository's dependency files."""

    files: list[str] = field(default_factory=list)
    packages: list[Package] = field(default_factory=list)
    unchecked: list[Unchecked] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "path: line 4: ..."

    @property
    def unpinned(self) -> list[Unchecked]:
        return [item for item in self.unchecked if item.why == "unpinned"]


def read_dependency_files(paths: list[str], read: Callable[[str], str | None]) -> DependencyFiles:
    """Parse every dependency file among `paths`, and the requirement files they include (`read` gives a
    repository file's text, None when it is missing or not readable)."""
    result = DependencyFiles()
    queue = [(path, 0) for path in paths if is_dependency_file(path)]
    seen = {path for path, _ in queue}
    while queue:
        path, depth = queue.pop(0)
        text = read(path)
        if text is None:
            result.problems.append(f"{path}: could not be read (not a tracked UTF-8 text file, or too large)")
            continue
        parsed = parse_dependency_file(path, text)
        result.files.append(path)
        result.packages += parsed.packages
        result.unchecked += parsed.unchecked
        result.problems += [f"{path}: {problem}" for problem in parsed.problems]
        for include in parsed.includes:
            if include not in seen and depth < MAX_INCLUDE_DEPTH:
                seen.add(include)
                queue.append((include, depth + 1))
    return result


# -------------------------------------------------------------------------------- requirements


def parse_requirements(path: str, text: str) -> Lockfile:
    found = Lockfile()
    for line, content in logical_lines(text):
        if content.startswith("-"):
            _requirement_option(path, line, content, found)
        else:
            _requirement(path, line, content, found)
    return found


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first physical line, content) with `\\`-continuations joined and comments removed."""
    out: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = _COMMENT.sub("", raw).rstrip()
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        content = (pending + stripped).strip()
        pending = ""
        if content:
            out.append((start, content))
    if pending.strip():
        out.append((start, pending.strip()))
    return out


def _requirement_option(path: str, line: int, content: str, found: Lockfile) -> None:
    if match := _INCLUDE.match(content):
        target = posixpath.normpath(posixpath.join(posixpath.dirname(path), match.group(1)))
        if target.startswith("../") or target == ".." or posixpath.isabs(target):
            found.problems.append(f"line {line}: {match.group(1)} is outside the repository; not read")
        else:
            found.includes.append(target)
    elif _EDITABLE.match(content):
        found.unchecked.append(Unchecked(path, line, content.split(maxsplit=1)[-1], "editable"))
    # every other option (-c, -i, --index-url, --hash on its own line...) names no package


def _requirement(path: str, line: int, content: str, found: Lockfile) -> None:
    spec = _PER_REQUIREMENT_OPTION.split(content, maxsplit=1)[0].strip()
    try:
        requirement = Requirement(spec)
    except InvalidRequirement as exc:
        if "/" in spec or spec.startswith("."):  # a path or URL to an archive or a directory
            found.unchecked.append(Unchecked(path, line, spec, "direct reference"))
        else:
            found.problems.append(f"line {line}: not a valid requirement ({str(exc).splitlines()[0]})")
        return
    name = canonicalize_name(requirement.name)
    if requirement.url:
        found.unchecked.append(Unchecked(path, line, name, "direct reference"))
    elif (version := pinned_version(requirement)) is not None:
        found.packages.append(Package("PyPI", name, version, path, line))
    else:
        found.unchecked.append(Unchecked(path, line, name, "unpinned"))


def pinned_version(requirement: Requirement) -> str | None:
    """The version of `name==x` (or `===x`); None for ranges, wildcards and several specifiers."""
    specs = list(requirement.specifier)
    if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
        return specs[0].version
    return None


# -------------------------------------------------------------------------------------- poetry


def parse_poetry_lock(path: str, text: str) -> Lockfile:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LockfileError(f"not valid TOML ({exc})") from None
    packages = data.get("package", [])
    if not isinstance(packages, list):
        raise LockfileError("`package` is not an array of tables")
    lines = poetry_version_lines(text)
    found = Lockfile()
    for index, entry in enumerate(packages):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            found.problems.append(f"package {index + 1}: no name")
            continue
        name = canonicalize_name(entry["name"])
        line = lines[index] if index < len(lines) else 1
        source = entry.get("source")
        if isinstance(source, dict) and source.get("type") in ("git", "directory", "file", "url"):
            found.unchecked.append(Unchecked(path, line, name, "not from the registry"))
        elif isinstance(entry.get("version"), str):
            found.packages.append(Package("PyPI", name, entry["version"], path, line))
        else:
            found.problems.append(f"package {name}: no version")
    return found


def poetry_version_lines(text: str) -> list[int]:
    """Per `[[package]]` table, in order, the line of its `version = ` (of its header when there is none)."""
    lines: list[int] = []
    in_package = False
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped == "[[package]]":
            lines.append(number)
            in_package = True
        elif stripped.startswith("["):
            in_package = False
        elif in_package and _POETRY_VERSION_LINE.match(stripped):
            lines[-1] = number
            in_package = False
    return lines


# ------------------------------------------------------------------------------------- Pipfile


def parse_pipfile_lock(path: str, text: str) -> Lockfile:
    data = json_with_lines(text)
    if not isinstance(data, dict):
        raise LockfileError("not a JSON object")
    found = Lockfile()
    for section in ("default", "develop"):
        entries = data.get(section) or {}
        if not isinstance(entries, dict):
            found.problems.append(f"`{section}` is not an object")
            continue
        for raw_name, entry in entries.items():
            _pipfile_entry(path, canonicalize_name(raw_name), entry, found)
    return found


def _pipfile_entry(path: str, name: str, entry: Any, found: Lockfile) -> None:
    line = _line(entry)
    version = entry.get("version") if isinstance(entry, dict) else None
    if isinstance(version, str) and version.startswith("==") and "*" not in version:
        found.packages.append(Package("PyPI", name, version[2:].strip(), path, _line(version) or line))
    elif isinstance(entry, dict) and any(key in entry for key in ("git", "path", "file", "editable", "ref")):
        found.unchecked.append(Unchecked(path, line, name, "not from the registry"))
    else:
        found.unchecked.append(Unchecked(path, line, name, "unpinned"))


# ----------------------------------------------------------------------------------------- npm


def parse_package_lock(path: str, text: str) -> Lockfile:
    data = json_with_lines(text)
    if not isinstance(data, dict):
        raise LockfileError("not a JSON object")
    found = Lockfile()
    if isinstance(data.get("packages"), dict):
        for key, entry in data["packages"].items():
            _npm_package(path, key, entry, found)
    elif isinstance(data.get("dependencies"), dict):
        _npm_dependencies(path, data["dependencies"], found, depth=0)
    found.packages = _first_of_each(found.packages)
    return found


def _npm_package(path: str, key: str, entry: Any, found: Lockfile) -> None:
    """One `packages` entry of lockfileVersion 2/3: `node_modules/a/node_modules/@scope/b`."""
    if "node_modules/" not in key or not isinstance(entry, dict) or entry.get("link"):
        return  # the root project, a workspace member, or a link to one
    name = entry.get("name") if isinstance(entry.get("name"), str) else key.rsplit("node_modules/", 1)[1]
    _npm_version(path, str(name), entry.get("version"), _line(entry), found)


def _npm_dependencies(path: str, dependencies: dict[str, Any], found: Lockfile, depth: int) -> None:
    """lockfileVersion 1: a tree of `dependencies` objects."""
    for name, entry in dependencies.items():
        if not isinstance(entry, dict):
            continue
        _npm_version(path, name, entry.get("version"), _line(entry), found)
        if isinstance(entry.get("dependencies"), dict) and depth < 100:
            _npm_dependencies(path, entry["dependencies"], found, depth + 1)


def _npm_version(path: str, name: str, version: Any, line: int, found: Lockfile) -> None:
    if isinstance(version, str) and _NPM_VERSION.match(version):
        found.packages.append(Package("npm", name, version, path, _line(version) or line))
    else:  # "github:user/repo#sha", "file:../x", "npm:other@1.0.0" (an alias) or missing
        found.unchecked.append(Unchecked(path, line, name, "not from the registry"))


def _first_of_each(packages: list[Package]) -> list[Package]:
    """One entry per name and version (nested copies of a package are the same package)."""
    seen: set[tuple[str, str]] = set()
    out = []
    for package in sorted(packages, key=lambda p: p.line):
        if (package.name, package.version) not in seen:
            seen.add((package.name, package.version))
            out.append(package)
    return out


# ------------------------------------------------------------------------------------------ Go


def parse_go_sum(path: str, text: str) -> Lockfile:
    found = Lockfile()
    seen: set[tuple[str, str]] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        fields = raw.split()
        if not fields:
            continue
        if len(fields) != 3 or not fields[1].startswith("v"):
            found.problems.append(f"line {number}: not a `module version hash` line")
            continue
        module, version = fields[0], fields[1]
        if version.endswith("/go.mod"):
            continue
        key = (module, version.removeprefix("v"))
        if key not in seen:
            seen.add(key)
            found.packages.append(Package("Go", module, key[1], path, number))
    return found


_PARSERS: dict[str, Callable[[str, str], Lockfile]] = {
    "poetry.lock": parse_poetry_lock,
    "Pipfile.lock": parse_pipfile_lock,
    "package-lock.json": parse_package_lock,
    "npm-shrinkwrap.json": parse_package_lock,
    "go.sum": parse_go_sum,
}


# ------------------------------------------------------------------------ JSON with line numbers


class _LineStr(str):
    """A JSON string value that knows the line it starts on."""

    line: int


class _LineDict(dict[str, Any]):
    """A JSON object that knows the line of its `{`."""

    line: int


def _line(value: Any) -> int:
    return int(getattr(value, "line", 0))


def json_with_lines(text: str) -> Any:
    """`json.loads`, with the line of every object and string value (as `.line`); LockfileError
    when `text` is not JSON. Uses the json module's pure-Python scanner, whose parse hooks can be set."""
    starts = [0, *(match.end() for match in re.finditer("\n", text))]

    def line_of(offset: int) -> int:
        return bisect.bisect_right(starts, offset)

    def parse_object(s_and_end: tuple[str, int], *args: Any) -> tuple[_LineDict, int]:
        obj, end = json.decoder.JSONObject(s_and_end, *args)  # type: ignore[attr-defined]
        out = _LineDict(obj)
        out.line = line_of(s_and_end[1] - 1)
        return out, end

    def parse_string(s: str, end: int, strict: bool = True) -> tuple[_LineStr, int]:
        value, after = json.decoder.scanstring(s, end, strict)  # type: ignore[attr-defined]
        out = _LineStr(value)
        out.line = line_of(end)
        return out, after

    decoder = json.JSONDecoder()
    decoder.parse_object = parse_object  # type: ignore[attr-defined]
    decoder.parse_string = parse_string  # type: ignore[attr-defined]
    decoder.scan_once = json.scanner.py_make_scanner(decoder)  # type: ignore[attr-defined]
    try:
        return decoder.decode(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        message = f"not valid JSON ({exc})" if isinstance(exc, json.JSONDecodeError) else "JSON nested too deeply"
        raise LockfileError(message) from None
