"""The lock and requirement file parsers, on real-shaped files (tests/jobs/security/fixtures/lockfiles)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.security.lockfiles import (
    Package,
    Unchecked,
    is_dependency_file,
    json_with_lines,
    logical_lines,
    parse_dependency_file,
    read_dependency_files,
)

FIXTURES = Path(__file__).parent / "fixtures" / "lockfiles"


def parse_fixture(name: str, as_path: str):
    return parse_dependency_file(as_path, (FIXTURES / name).read_text(encoding="utf-8"))


def line_of(name: str, needle: str, occurrence: int = 1) -> int:
    """The 1-based line of the `occurrence`-th line containing `needle` in a fixture."""
    found = [n for n, line in enumerate((FIXTURES / name).read_text().splitlines(), start=1) if needle in line]
    return found[occurrence - 1]


def test_requirements_pinned_hashed_marked_and_continued_lines() -> None:
    parsed = parse_fixture("requirements.txt", "requirements.txt")
    assert parsed.packages == [
        Package("PyPI", "django", "3.2.4", "requirements.txt", line_of("requirements.txt", "Django==3.2.4")),
        Package("PyPI", "requests", "2.19.0", "requirements.txt", line_of("requirements.txt", "requests[socks]")),
        Package("PyPI", "pillow", "8.1.0", "requirements.txt", line_of("requirements.txt", "Pillow")),
    ]
    assert [(u.name, u.why) for u in parsed.unchecked] == [
        ("urllib3", "unpinned"), ("flask", "unpinned"),
        ("git+https://github.com/example/tooling.git#egg=tooling", "editable"),
        ("https://example.com/packages/internal-1.0.tar.gz", "direct reference"),
    ]  # fmt: skip
    assert parsed.includes == ["requirements/base.txt"]  # `-c constraints.txt` installs nothing
    line = line_of("requirements.txt", "this is not")
    assert parsed.problems == [f"line {line}: not a valid requirement (Expected semicolon (after name with no "
                               "version specifier) or end)"]


def test_requirement_includes_are_followed_inside_the_repository_only() -> None:
    def read(path: str) -> str | None:
        file = FIXTURES / path
        return file.read_text(encoding="utf-8") if file.is_file() else None

    found = read_dependency_files(["go.mod", "requirements.txt", "README.md"], read)
    assert found.files == ["requirements.txt", "requirements/base.txt"]
    assert [(p.name, p.version, p.path, p.line) for p in found.packages][-2:] == [
        ("pyyaml", "5.3.1", "requirements/base.txt", 1),
        ("jinja2", "2.10", "requirements/base.txt", 2),  # `===` pins too
    ]
    assert "requirements/base.txt: line 3: ../../outside.txt is outside the repository; not read" in found.problems
    assert [u.name for u in found.unpinned] == ["urllib3", "flask"]


def test_a_missing_included_file_is_a_problem_not_a_crash() -> None:
    texts = {"requirements.txt": "-r requirements-dev.txt\nclick==8.1.0\n"}
    found = read_dependency_files(["requirements.txt"], texts.get)
    assert [p.name for p in found.packages] == ["click"]
    assert found.problems == ["requirements-dev.txt: could not be read (not a tracked UTF-8 text file, or too large)"]


def test_poetry_lock_packages_at_their_version_lines() -> None:
    parsed = parse_fixture("poetry.lock", "app/poetry.lock")
    assert parsed.packages == [
        Package("PyPI", "certifi", "2024.2.2", "app/poetry.lock", line_of("poetry.lock", 'version = "2024.2.2"')),
        Package("PyPI", "jinja2", "2.10", "app/poetry.lock", line_of("poetry.lock", 'version = "2.10"')),
        Package("PyPI", "requests", "2.19.0", "app/poetry.lock", line_of("poetry.lock", 'version = "2.19.0"')),
    ]
    assert parsed.unchecked == [Unchecked("app/poetry.lock", line_of("poetry.lock", 'version = "0.1.0"'), "mylib",
                                          "not from the registry")]


def test_pipfile_lock_default_and_develop() -> None:
    parsed = parse_fixture("Pipfile.lock", "Pipfile.lock")
    assert [(p.name, p.version, p.line) for p in parsed.packages] == [
        ("requests", "2.19.0", line_of("Pipfile.lock", '"version": "==2.19.0"')),
        ("urllib3", "1.23", line_of("Pipfile.lock", '"version": "==1.23"')),
        ("pytest", "8.1.1", line_of("Pipfile.lock", '"version": "==8.1.1"')),
    ]
    assert [(u.name, u.why) for u in parsed.unchecked] == [("mylib", "not from the registry")]


def test_package_lock_v3_packages_scoped_nested_links_and_git() -> None:
    parsed = parse_fixture("package-lock.v3.json", "web/package-lock.json")
    assert [(p.name, p.version, p.line) for p in parsed.packages] == [
        ("@babel/helper-plugin-utils", "7.10.4", line_of("package-lock.v3.json", '"version": "7.10.4"')),
        ("express", "4.17.1", line_of("package-lock.v3.json", '"version": "4.17.1"')),
        ("qs", "6.7.0", line_of("package-lock.v3.json", '"version": "6.7.0"')),  # nested copy listed once
        ("lodash", "4.17.15", line_of("package-lock.v3.json", '"version": "4.17.15"')),
    ]
    assert all(p.ecosystem == "npm" and p.path == "web/package-lock.json" for p in parsed.packages)
    assert [(u.name, u.why) for u in parsed.unchecked] == [("left-pad", "not from the registry")]


def test_package_lock_v1_dependency_tree() -> None:
    parsed = parse_fixture("package-lock.v1.json", "package-lock.json")
    assert [(p.name, p.version, p.line) for p in parsed.packages] == [
        ("debug", "2.6.9", line_of("package-lock.v1.json", '"version": "2.6.9"')),
        ("ms", "2.0.0", line_of("package-lock.v1.json", '"version": "2.0.0"')),
        ("lodash", "4.17.15", line_of("package-lock.v1.json", '"version": "4.17.15"')),
        ("ms", "2.1.2", line_of("package-lock.v1.json", '"version": "2.1.2"')),
    ]


def test_go_sum_modules_without_v_and_go_mod_only_lines_left_out() -> None:
    parsed = parse_fixture("go.sum", "go.sum")
    assert parsed.packages == [
        Package("Go", "github.com/davecgh/go-spew", "1.1.1", "go.sum", 2),
        Package("Go", "github.com/stretchr/testify", "1.7.0", "go.sum", 4),
        Package("Go", "golang.org/x/text", "0.3.2", "go.sum", 7),
    ]
    assert parsed.problems == []


@pytest.mark.parametrize(
    ("path", "text", "problem"),
    [
        ("poetry.lock", '[[package]]\nname = "x"\nversion = \n',
         "not valid TOML (Invalid value (at line 3, column 11))"),
        ("Pipfile.lock", '{"default": {"requests": {"version": "==2.19.0"}', "not valid JSON (Expecting ',' delimiter: "
                                                                              "line 1 column 49 (char 48))"),
        ("package-lock.json", "[1, 2]", "not a JSON object"),
        ("package-lock.json", "[" * 100_000 + "]" * 100_000, "JSON nested too deeply"),
        ("go.sum", "golang.org/x/text v0.3.2\n", "line 1: not a `module version hash` line"),
    ],
)
def test_malformed_files_are_problems(path: str, text: str, problem: str) -> None:
    parsed = parse_dependency_file(path, text)
    assert parsed.packages == []
    assert parsed.problems == [problem]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("requirements.txt", True), ("requirements-dev.txt", True), ("dev-requirements.txt", True),
        ("requirements/prod.txt", True), ("services/api/requirements_test.txt", True), ("poetry.lock", True),
        ("sub/Pipfile.lock", True), ("web/package-lock.json", True), ("npm-shrinkwrap.json", True), ("go.sum", True),
        ("requirements.in", False), ("Pipfile", False), ("package.json", False), ("go.mod", False),
        ("docs/requirement.txt", False), ("notes.txt", False),
    ],
)  # fmt: skip
def test_dependency_file_names(path: str, expected: bool) -> None:
    assert is_dependency_file(path) is expected


def test_logical_lines_join_continuations_and_drop_comments() -> None:
    text = "# header\nfoo==1.0 \\\n    --hash=sha256:abc  # why\n\nbar#not-a-comment==2\n  baz==3 # note\n"
    assert logical_lines(text) == [(2, "foo==1.0      --hash=sha256:abc"), (5, "bar#not-a-comment==2"), (6, "baz==3")]


def test_json_with_lines_knows_where_objects_and_strings_are() -> None:
    data = json_with_lines('{\n  "a": {\n    "version": "1.0"\n  },\n  "b": [1, "x"]\n}')
    assert data == {"a": {"version": "1.0"}, "b": [1, "x"]}
    assert (data.line, data["a"].line, data["a"]["version"].line, data["b"][1].line) == (1, 2, 3, 5)
