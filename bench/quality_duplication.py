"""The duplicate detector of the `quality` agent on generated Python trees: is it near-linear?

    .venv/bin/python bench/quality_duplication.py [--lines 20000] [--scales 1,2,4] [--repeat 3]

For each scale, writes a tree of `lines × scale` lines of varied, valid Python (seeded, so every run
reads the same code; 1% of the functions are renamed copies of others), then times, best of
`--repeat`:

- tokenize: reading and tokenizing every file (`tokenize_repository`);
- search (PR): `find_duplicates` with a change of 10 files (as a pull request would have);
- search (all): `find_duplicates` with every line counted as new (the worst case: every window is a query);
- scan (PR): the whole `scan_repository` the agent runs (walk + tokenize + search + new-code share).

Near-linear means the per-token times stay flat as the tree grows. Holds the machine-wide bench lock.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from typing import TypeVar
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from common import exclusive  # noqa: E402

from jobs.quality.config import QualityConfig  # noqa: E402
from jobs.quality.duplication import (  # noqa: E402
    find_duplicates,
    repository_sources,
    scan_repository,
    tokenize_repository,
)

WORDS = ("order item total price count user name value index result record entry cache queue node "
         "size limit offset batch token path file line text data state event level score").split()
STATEMENTS = (
    "{a} = {e}",
    "{a} += {e}",
    "if {e}:\n    {a} = {e2}",
    "if {e}:\n    {a} = {e2}\nelse:\n    {b} = {e3}",
    "for {a} in {e}:\n    {b} = {e2}",
    "{a}.append({e})",
    "while {e}:\n    {a} = {e2}",
    "try:\n    {a} = {e}\nexcept ValueError:\n    {b} = {e2}",
    "{a} = [{b} for {b} in {e} if {e2}]",
    "with open({e}) as {a}:\n    {b} = {a}.read()",
    "assert {e}, {s!r}",
    "{a}, {b} = {e}, {e2}",
    "return {e}",
)
OPERATORS = ("+", "-", "*", "//", "%", "==", "<", ">=", "and", "or", "in", "is not", "&", "|")


def name(rng: random.Random) -> str:
    return "_".join(rng.sample(WORDS, rng.randint(1, 2)))


def expression(rng: random.Random, depth: int = 0) -> str:
    """A random expression: its normalised tokens vary in length and shape, as real code does."""
    choice = rng.randrange(9 if depth < 2 else 3)
    if choice == 0:
        return name(rng)
    if choice == 1:
        return str(rng.randint(0, 999))
    if choice == 2:
        return repr(name(rng))
    if choice in (3, 4):
        args = ", ".join(expression(rng, depth + 1) for _ in range(rng.randint(0, 3)))
        return f"{name(rng)}({args})"
    if choice == 5:
        return f"{name(rng)}.{name(rng)}"
    if choice == 6:
        return f"{name(rng)}[{expression(rng, depth + 1)}]"
    return f"({expression(rng, depth + 1)} {rng.choice(OPERATORS)} {expression(rng, depth + 1)})"


def statement(rng: random.Random) -> str:
    return rng.choice(STATEMENTS).format(
        a=name(rng), b=name(rng), e=expression(rng), e2=expression(rng), e3=expression(rng), s=name(rng)
    )


def function(rng: random.Random) -> list[str]:
    params = ", ".join(dict.fromkeys(name(rng) for _ in range(rng.randint(1, 4))))
    body = [line for _ in range(rng.randint(4, 14)) for line in statement(rng).splitlines()]
    return [f"def {name(rng)}_{rng.randint(0, 10**6)}({params}):", *(f"    {line}" for line in body),
            f"    return {name(rng)}", "", ""]  # fmt: skip


def renamed(lines: list[str], rng: random.Random) -> list[str]:
    """The function with every word renamed: what lizard's detector misses."""
    mapping = dict(zip(WORDS, rng.sample(WORDS, len(WORDS)), strict=True))
    return [re.sub(r"[a-z]+", lambda m: mapping.get(m.group(), m.group()), line) for line in lines]


def write_tree(root: Path, total_lines: int, seed: int = 7) -> list[str]:
    """Modules of ~400 lines in packages of 10 modules; returns the paths written."""
    rng = random.Random(seed)
    written: list[str] = []
    functions: list[list[str]] = []
    lines_done = 0
    while lines_done < total_lines:
        index = len(written)
        module: list[str] = ['"""Generated module."""', "", ""]
        while len(module) < 400:
            fn = renamed(rng.choice(functions), rng) if functions and rng.random() < 0.01 else function(rng)
            functions.append(fn)
            module += fn
        path = f"pkg{index // 10}/mod{index}.py"
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("\n".join(module) + "\n", encoding="utf-8")
        written.append(path)
        lines_done += len(module)
    return written


T = TypeVar("T")


def best_of(repeat: int, run: Callable[[], T]) -> tuple[float, T]:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best, result


def measure(total_lines: int, repeat: int) -> dict[str, float]:
    root = Path(tempfile.mkdtemp(prefix="aqe-bench-dup-"))
    try:
        paths = write_tree(root, total_lines)
        config = QualityConfig()
        tokenize_s, streams = best_of(repeat, lambda: tokenize_repository(root, list(repository_sources(root, config))))
        tokens = sum(len(s.kinds) for s in streams)
        lines = sum(len((root / p).read_text().splitlines()) for p in paths)
        changed = {p: set(range(1, 401)) for p in paths[:: max(1, len(paths) // 10)][:10]}
        pr_s, pr_found = best_of(repeat, lambda: find_duplicates(streams, changed))
        all_s, all_found = best_of(repeat, lambda: find_duplicates(streams, None))
        scan_s, _ = best_of(repeat, lambda: scan_repository(root, changed, config))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {"lines": lines, "files": len(paths), "tokens": tokens, "tokenize_s": tokenize_s,
            "search_pr_s": pr_s, "search_all_s": all_s, "scan_pr_s": scan_s,
            "found_pr": len(pr_found), "found_all": len(all_found)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--scales", default="1,2,4")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'lines':>7} {'files':>5} {'tokens':>8} {'tokenize':>9} {'search PR':>10} {'search all':>11} "
          f"{'scan PR':>8} {'µs/token (all)':>15} {'dups PR/all':>12}")  # fmt: skip
    with exclusive("quality_duplication"):
        for scale in (int(s) for s in args.scales.split(",")):
            r = measure(args.lines * scale, args.repeat)
            per_token = 1e6 * (r["tokenize_s"] + r["search_all_s"]) / r["tokens"]
            print(f"{r['lines']:>7} {r['files']:>5} {r['tokens']:>8} {r['tokenize_s']:>8.3f}s {r['search_pr_s']:>9.3f}s "
                  f"{r['search_all_s']:>10.3f}s {r['scan_pr_s']:>7.3f}s {per_token:>15.2f} "
                  f"{r['found_pr']:>5}/{r['found_all']:<6}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
