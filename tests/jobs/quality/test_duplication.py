"""Duplicated blocks on normalised tokens, against lizard's own duplicate detector."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import jobs.quality.complexity  # noqa: F401  (imports lizard without its sys.path side effect)
from jobs.quality.config import QualityConfig
from jobs.quality.duplication import (
    Block,
    Duplicate,
    NewCodeDuplication,
    TokenStream,
    Vocabulary,
    find_duplicates,
    new_code_duplication,
    python_tokens,
    regex_tokens,
    repository_sources,
    scan_repository,
    tokenize_source,
    window_hashes,
)

ORIGINAL = '''\
def summarise_orders(orders, tax_rate):
    total = 0
    count = 0
    largest = None
    for order in orders:
        if order.status == "cancelled":
            continue
        amount = order.quantity * order.unit_price
        amount = amount + amount * tax_rate
        total += amount
        count += 1
        if largest is None or amount > largest:
            largest = amount
    average = total / count if count else 0
    return {"total": round(total, 2), "count": count, "largest": largest, "average": average}
'''

# The same function with every local name renamed (and other literals), 96 tokens on 15 lines.
RENAMED = '''\
def compute_invoice_stats(invoices, vat):
    acc = 0
    n = 0
    biggest = None
    for inv in invoices:
        if inv.state == "void":
            continue
        value = inv.qty * inv.price
        value = value + value * vat
        acc += value
        n += 1
        if biggest is None or value > biggest:
            biggest = value
    mean = acc / n if n else 0.0
    return {"sum": round(acc, 3), "n": n, "max": biggest, "mean": mean}
'''

PREAMBLE = '''\
import os


def helper(path):
    return os.path.basename(path)


'''  # 7 lines: a copy pasted after it starts on line 8

# Same length as ORIGINAL, different code: must not be reported.
SIMILAR_LENGTH = '''\
def parse_config(text, defaults):
    settings = dict(defaults)
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        key = key.strip().lower()
        try:
            settings[key] = int(value)
        except ValueError:
            settings[key] = value.strip()
    if "name" not in settings:
        raise KeyError("name")
    return settings
'''

JS_ORIGINAL = """\
export function totals(rows, rate) {
  let sum = 0;
  let count = 0;
  for (const row of rows) {
    if (row.status === "cancelled") { continue; }   // skip
    const amount = row.quantity * row.price * (1 + rate);
    sum += amount;
    count++;
  }
  /* the average, or zero */
  const average = count ? sum / count : 0;
  return { sum: Math.round(sum), count, average };
}
"""

JS_RENAMED = """\
export function invoiceStats(items, vat) {
  let acc = 0;
  let n = 0;
  for (const it of items) {
    if (it.status === 'void') { continue; }
    const value = it.qty * it.unitPrice * (1 + vat);
    acc += value;
    n++;
  }
  const mean = n ? acc / n : 0;
  return { total: Math.round(acc), n, mean };
}
"""


def write(root: Path, files: dict[str, str]) -> None:
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)


def streams_of(files: dict[str, str]) -> list[TokenStream]:
    vocabulary = Vocabulary()
    return [tokenize_source(path, text, vocabulary) for path, text in files.items()]


def lines(first: int, last: int) -> set[int]:
    return set(range(first, last + 1))


def lizard_duplicates(root: Path, paths: list[str], min_tokens: int) -> list[list[str]]:
    """lizard's `-Eduplicate` on the given files, each duplicate as its "path:start ~ end" snippets."""
    import lizard
    from lizard_ext.lizardduplicate import LizardExtension

    detector = LizardExtension()
    cwd = Path.cwd()
    os.chdir(root)
    try:
        list(lizard.analyze_files(paths, exts=lizard.get_extensions([detector])))
        return [[str(snippet) for snippet in dup] for dup in detector.get_duplicates(min_tokens)]
    finally:
        os.chdir(cwd)


# ----------------------------------------------------------------------------- lizard vs ours


def test_lizard_misses_a_renamed_python_copy_that_ours_finds(tmp_path: Path) -> None:
    files = {"orders.py": ORIGINAL, "invoices.py": PREAMBLE + RENAMED, "both.py": ORIGINAL + "\n\n" + RENAMED}
    write(tmp_path, files)
    # lizard renames identifiers by order of first appearance *in the file*: a copy pasted after other
    # code, or into the same file, gets other placeholders and is not found at 50 tokens...
    assert lizard_duplicates(tmp_path, ["orders.py", "invoices.py"], 50) == []
    assert lizard_duplicates(tmp_path, ["both.py"], 50) == []
    # ...nor at its own default of 70; it only sees renamed copies alone at the top of their own file.
    assert lizard_duplicates(tmp_path, ["orders.py", "invoices.py"], 70) == []

    found = find_duplicates(streams_of(files), None, min_tokens=50, min_lines=6)
    assert found == [
        Duplicate(Block("both.py", 1, 15), Block("both.py", 18, 32), 96),
        Duplicate(Block("both.py", 1, 15), Block("invoices.py", 8, 22), 96),
        Duplicate(Block("both.py", 1, 15), Block("orders.py", 1, 15), 96),
        Duplicate(Block("both.py", 18, 32), Block("invoices.py", 8, 22), 96),
        Duplicate(Block("both.py", 18, 32), Block("orders.py", 1, 15), 96),
        Duplicate(Block("invoices.py", 8, 22), Block("orders.py", 1, 15), 96),
    ]


def test_a_copy_in_a_changed_file_is_reported_with_the_original(tmp_path: Path) -> None:
    files = {"orders.py": ORIGINAL, "invoices.py": PREAMBLE + RENAMED, "config.py": SIMILAR_LENGTH}
    found = find_duplicates(streams_of(files), {"invoices.py": lines(1, 22)})
    assert found == [Duplicate(Block("invoices.py", 8, 22), Block("orders.py", 1, 15), 96)]  # sorted by path


def test_a_similar_length_function_that_is_not_a_copy_is_not_reported() -> None:
    files = {"orders.py": ORIGINAL, "config.py": SIMILAR_LENGTH}
    assert find_duplicates(streams_of(files), None) == []
    assert find_duplicates(streams_of(files), {"config.py": lines(1, 15)}) == []


def test_a_duplicate_outside_the_changed_lines_is_not_reported() -> None:
    files = {"orders.py": ORIGINAL, "invoices.py": PREAMBLE + RENAMED}
    assert find_duplicates(streams_of(files), {"invoices.py": lines(1, 7)}) == []  # only the preamble
    assert find_duplicates(streams_of(files), {"other.py": lines(1, 100)}) == []
    assert find_duplicates(streams_of(files), {}) == []
    # one changed line inside the copy is enough
    assert len(find_duplicates(streams_of(files), {"invoices.py": {20}})) == 1


def test_the_match_is_extended_to_its_maximal_length() -> None:
    tail = "    log(total)\n    notify(count, largest)\n"
    original = ORIGINAL.replace("    return {", tail + "    return {")
    renamed = RENAMED.replace("    return {", tail.replace("total", "acc").replace("count", "n") + "    return {")
    files = {"a.py": original, "b.py": "x = 1\n" + renamed}
    assert find_duplicates(streams_of(files), {"b.py": {2}}) == [
        Duplicate(Block("a.py", 1, 17), Block("b.py", 2, 18), 96 + 10)
    ]


def test_renamed_copies_are_found_in_other_languages() -> None:
    files = {"web/totals.js": JS_ORIGINAL, "web/invoices.js": "// invoices\n\n" + JS_RENAMED}
    found = find_duplicates(streams_of(files), {"web/invoices.js": lines(3, 14)})
    assert found == [Duplicate(Block("web/invoices.js", 3, 14), Block("web/totals.js", 1, 13), 92)]


def test_blocks_shorter_than_the_thresholds_are_not_reported() -> None:
    files = {"orders.py": ORIGINAL, "invoices.py": RENAMED}
    assert find_duplicates(streams_of(files), None, min_tokens=97) == []
    assert find_duplicates(streams_of(files), None, min_tokens=50, min_lines=16) == []
    one_line = {"a.py": " ".join(f"a{i} = b{i} + {i};" for i in range(20)) + "\n" + "x = 1\n" * 7}
    one_line["b.py"] = one_line["a.py"]
    assert find_duplicates(streams_of(one_line), None) == []  # 100 tokens, but on one line


def test_repetitive_code_is_not_a_duplicate_of_itself() -> None:
    init = "class Point:\n    def __init__(self, a, b, c):\n" + "".join(
        f"        self.f{i} = value{i}\n" for i in range(40)
    )
    table = "TABLE = [\n" + "".join(f"    ({i}, {i * 2}, 'x{i}'),\n" for i in range(40)) + "]\n"
    files = {"point.py": init, "table.py": table, "table2.py": table.replace("TABLE", "OTHER")}
    assert find_duplicates(streams_of(files), None) == []


# ----------------------------------------------------------------------------------- tokenizing


def test_python_tokens_are_normalised() -> None:
    tokens = python_tokens('x = foo("a", 1.5)  # note\nif x is None:\n    y = f"{x}"\n')
    assert tokens is not None
    assert tokens.kinds == ["ID", "=", "ID", "(", "STR", ",", "NUM", ")", "if", "ID", "is", "None", ":",
                            "ID", "=", "STR"]  # fmt: skip
    assert tokens.starts == [1] * 8 + [2] * 5 + [3] * 3


def test_python_that_tokenize_rejects_falls_back_to_the_regex_tokenizer() -> None:
    assert python_tokens("def f(:\n    '''open") is None
    stream = tokenize_source("py2.py", 'print "hi"\nx = 1  # c\n', Vocabulary())
    assert len(stream.kinds) == 5 and stream.lines == [1, 1, 2, 2, 2]


def test_regex_tokens_skip_comments_and_track_lines() -> None:
    tokens = regex_tokens('/* a\nb */ let s = `x\ny`; // c\nif (a >= 0x1F) return "q";\n', "c")
    assert tokens.kinds == ["let", "ID", "=", "STR", ";", "if", "(", "ID", ">=", "NUM", ")", "return", "STR", ";"]
    assert tokens.starts == [2, 2, 2, 2, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4]
    assert tokens.spans == [(2, 3)]


def test_code_lines_leave_out_blank_and_comment_lines() -> None:
    stream = tokenize_source("a.py", 'x = 1\n\n# comment\ns = """a\nb"""\n', Vocabulary())
    assert stream.code_lines == {1, 4, 5}


def test_the_rolling_hash_is_the_hash_of_each_window() -> None:
    kinds = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5]
    assert window_hashes(kinds, 4) == [window_hashes(kinds[i : i + 4], 4)[0] for i in range(len(kinds) - 3)]
    assert window_hashes(kinds, 4)[1] == window_hashes([9, 9, 9, 1, 4, 1, 5], 4)[3]
    assert window_hashes(kinds, 12) == []


# ------------------------------------------------------------------------- duplication on new code


def test_duplication_on_new_code_counts_changed_code_lines_in_duplicated_blocks() -> None:
    files = {"orders.py": ORIGINAL, "invoices.py": PREAMBLE + RENAMED + "\n\n# end\n"}
    changed = {"invoices.py": lines(1, 25), "orders.py": {3}}
    streams = streams_of(files)
    found = find_duplicates(streams, changed)
    # changed code lines: invoices.py 1, 4, 5, 8-22 (blank and comment lines left out) + orders.py 3
    # duplicated: invoices.py 8-22 (the copy) and orders.py 3 (inside the original)
    assert new_code_duplication(streams, found, changed) == NewCodeDuplication(duplicated_lines=16, changed_lines=19)
    assert new_code_duplication(streams, found, changed).percent == 84.2
    assert NewCodeDuplication(duplicated_lines=0, changed_lines=0).percent == 0.0


def test_scan_repository_walks_the_tree_without_excluded_and_ignored_files(tmp_path: Path) -> None:
    write(tmp_path, {
        "src/orders.py": ORIGINAL,
        "src/invoices.py": PREAMBLE + RENAMED,
        "tests/test_orders.py": ORIGINAL,  # excluded by default
        "node_modules/lib/x.py": ORIGINAL,  # never read
        "README.md": ORIGINAL,  # not source
    })  # fmt: skip
    assert list(repository_sources(tmp_path, QualityConfig())) == ["src/invoices.py", "src/orders.py"]
    report = scan_repository(tmp_path, {"src/invoices.py": lines(1, 22)}, QualityConfig())
    assert report.duplicates == [Duplicate(Block("src/invoices.py", 8, 22), Block("src/orders.py", 1, 15), 96)]
    assert report.new_code == NewCodeDuplication(duplicated_lines=15, changed_lines=18)
    assert report.duplicated_lines == {"src/invoices.py": lines(8, 22)}
    assert report.files == 2


@pytest.mark.parametrize("copies", [30, 200])
def test_a_block_repeated_many_times_is_compared_with_a_bounded_number_of_copies(copies: int) -> None:
    files = {f"m{i:03}.py": RENAMED for i in range(copies)}
    found = find_duplicates(streams_of(files), {"m000.py": lines(1, 15)})
    assert len(found) == 20  # MAX_COPIES
    assert all(d.first == Block("m000.py", 1, 15) for d in found)
