"""The whole agent set on a real ~20k-line Python project, against the same tools run by hand.

    .venv/bin/python bench/agent_set.py [--runs 3]

The project is attrs (18k lines of Python, with its hypothesis-heavy test suite): a git repository whose
base commit is the attrs 24.1.0 sdist and whose head is 24.2.0 — a real release's diff — plus, on the head,
a `requirements-docs.txt` with three pins so that the dependency scan has work and a small module of three
typed functions no test calls (one of them fails on `[]`) so that test generation has work. The sdists are
fetched once with pip into `bench/.cache/`.

Each round runs both sides on fresh copies of the same checkout, one after the other (the order
alternates between rounds), with the fake OSV server of the tests on loopback:

- AQE: the agents of a pull request — tests (with coverage), coverage, security, quality, test
  generation, quality gate — as the worker runs them (`jobs.pipeline.run_in_order`: tests first, the
  analyses that do not need them beside them). The load test is left out: it lasts what its
  configuration says, whoever runs it.
- By hand, one after the other: `coverage run -m pytest` + `coverage combine` + `coverage xml`, `diff-cover`, `lizard` (CCN of
  the changed files, then `-Eduplicate` over the same files AQE's duplication scan reads),
  `detect-secrets scan`, `bandit` over the files AQE's SAST reads, one OSV `querybatch` with `curl`, and
  `hypothesis write` + `pytest` for the functions AQE's test generation picks.

Prints the median wall time of each side and their ratio (the issue's target: AQE ≤ 1.2 × by hand),
and writes `bench/results/agent_set.json`. Holds the machine-wide bench lock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from common import exclusive, wait_quiet  # noqa: E402

from jobs.agents.base import AgentOptions, Workspace  # noqa: E402
from jobs.agents.registry import AGENTS  # noqa: E402
from jobs.coverage.diff import DIFF_ARGS, changed_lines  # noqa: E402
from jobs.model import AgentResult  # noqa: E402
from jobs.pipeline import run_in_order  # noqa: E402
from jobs.quality.complexity import is_analysable  # noqa: E402
from jobs.quality.config import QualityConfig  # noqa: E402
from jobs.quality.duplication import repository_sources  # noqa: E402
from jobs.repo_config import RepoConfig, parse_config  # noqa: E402
from jobs.testgen.config import TestGenerationConfig  # noqa: E402
from jobs.testgen.targets import select_targets  # noqa: E402
from tests.fakes.osv import FakeOSV, load_records  # noqa: E402

CACHE = ROOT / "bench" / ".cache"
RESULTS = ROOT / "bench" / "results"
BASE_VERSION, HEAD_VERSION = "24.1.0", "24.2.0"
AGENT_SET = ["tests", "coverage", "security", "quality", "test-generation", "quality-gate"]
BIN = Path(sys.executable).parent
MAKE_SRC_IMPORTABLE = ("python -c \"import pathlib, site; pathlib.Path(site.getsitepackages()[0], 'attrs-src.pth')"
                       ".write_text(str(pathlib.Path('src').resolve()))\"")
AQE_YML = f"tests:\n  setup: ['{MAKE_SRC_IMPORTABLE.replace(chr(39), chr(39) * 2)}']\n"
DOCS_REQUIREMENTS = "sphinx==7.2.6\nfuro==2024.1.29\nmyst-parser==2.0.0\n"
UNTESTED_MODULE = ("src/attr/_numbers.py", '''\
def clamp(value: int, low: int, high: int) -> int:
    if low > high:
        raise ValueError("low must not exceed high")
    return max(low, min(value, high))


def chunked(items: list[int], size: int) -> list[list[int]]:
    return [items[start:start + size] for start in range(0, len(items), size)]


def mean(values: list[float]) -> float:
    return sum(values) / len(values)
''')


# ------------------------------------------------------------------------------------- the project


def sdist(version: str) -> Path:
    """attrs-<version>'s source tree, downloaded once."""
    tree = CACHE / f"attrs-{version}"
    if not tree.is_dir():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                        "--dest", str(CACHE), f"attrs=={version}"], check=True)
        with tarfile.open(CACHE / f"attrs-{version}.tar.gz") as archive:
            archive.extractall(CACHE, filter="data")
    return tree


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@aqe.test",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@aqe.test"}
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True, env=env).stdout.strip()


def build_repository(dest: Path) -> tuple[str, str]:
    """base = attrs 24.1.0, head = 24.2.0 + a docs requirements file; (base sha, head sha)."""
    dest.mkdir(parents=True)
    git(dest, "init", "-q", "-b", "main")
    shutil.copytree(sdist(BASE_VERSION), dest, dirs_exist_ok=True)
    (dest / ".aqe.yml").write_text(AQE_YML)
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", f"attrs {BASE_VERSION}")
    base = git(dest, "rev-parse", "HEAD")
    for path in dest.iterdir():
        if path.name not in (".git", ".aqe.yml"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    shutil.copytree(sdist(HEAD_VERSION), dest, dirs_exist_ok=True)
    (dest / "requirements-docs.txt").write_text(DOCS_REQUIREMENTS)
    (dest / UNTESTED_MODULE[0]).write_text(UNTESTED_MODULE[1])
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", f"attrs {HEAD_VERSION}")
    return base, git(dest, "rev-parse", "HEAD")


def fresh_checkout(repo: Path, dest: Path) -> Path:
    shutil.rmtree(dest, ignore_errors=True)
    subprocess.run(["git", "clone", "-q", str(repo), str(dest)], check=True)
    return dest


# ----------------------------------------------------------------------------------------- AQE


async def run_aqe(checkout: Path, scratch: Path, base: str, head: str, osv_url: str) -> tuple[float, dict[str, AgentResult]]:
    config = parse_config((checkout / ".aqe.yml").read_text())
    diff = subprocess.run(["git", *DIFF_ARGS, f"{base}..{head}", "--"], cwd=checkout, check=True,
                          capture_output=True, text=True).stdout
    workspace = Workspace(root=checkout, scratch=scratch, head_sha=head, base_sha=base,
                          changed_lines=changed_lines(diff), options=AgentOptions(osv_url=osv_url))

    async def progress(fraction: float, message: str) -> None:
        return None

    async def one(name: str) -> None:
        workspace.results[name] = await AGENTS[name].run(workspace, config.section(name), progress)

    started = time.perf_counter()
    await run_in_order(AGENT_SET, one)
    return time.perf_counter() - started, dict(workspace.results)


# -------------------------------------------------------------------------------------- by hand


def hand_commands(checkout: Path, base: str, osv_url: str, work: Path) -> list[tuple[str, list[str] | str]]:
    """What a person runs to get the same answers, in order (commands as argv, or a shell line)."""
    changed = changed_lines(subprocess.run(["git", *DIFF_ARGS, f"{base}..HEAD", "--"], cwd=checkout, check=True,
                                           capture_output=True, text=True).stdout)
    config = RepoConfig()
    analysable = [p for p in sorted(changed) if is_analysable(p) and not config.quality.is_excluded(p)
                  and (checkout / p).is_file()]
    sources = [str(p) for p in repository_sources(checkout, QualityConfig(), accept=is_analysable)]
    python_sources = [p for p in sources if p.endswith(".py") and not config.security.is_sast_excluded(p)]
    query = {"queries": [{"package": {"name": n, "ecosystem": "PyPI"}, "version": v} for n, v in
                         (line.split("==") for line in DOCS_REQUIREMENTS.split())]}
    (work / "query.json").write_text(json.dumps(query))
    targets = select_targets(checkout, changed, TestGenerationConfig(), "python").targets
    generated = work / "generated"
    generated.mkdir()
    reports = work / "reports"
    reports.mkdir()
    py = sys.executable
    commands: list[tuple[str, list[str] | str]] = [
        ("tests", f"PYTHONPATH=src {py} -m coverage run --branch --data-file={reports}/.coverage -m pytest "
                  f"-o junit_family=xunit1 --junitxml={reports}/junit.xml -p no:cacheprovider -q"),
        ("coverage combine", [py, "-m", "coverage", "combine", "--append", "-q", f"--data-file={reports}/.coverage"]),
        ("coverage xml", [py, "-m", "coverage", "xml", f"--data-file={reports}/.coverage", "-o",
                          f"{reports}/coverage.xml", "-i"]),
        ("diff-cover", [str(BIN / "diff-cover"), f"{reports}/coverage.xml", f"--compare-branch={base}", "--quiet"]),
        ("lizard (CCN)", [py, "-m", "lizard", *analysable]),
        ("lizard -Eduplicate", [py, "-m", "lizard", "-Eduplicate", *sources]),
        ("detect-secrets", [str(BIN / "detect-secrets"), "scan"]),
        ("bandit", [py, "-m", "bandit", "-f", "json", "-q", *python_sources]),
        ("osv querybatch", ["curl", "-s", "-X", "POST", "--data", f"@{work}/query.json", f"{osv_url}/v1/querybatch"]),
    ]
    for target in targets:
        out = generated / f"test_{target.dotted.replace('.', '_')}.py"
        commands.append((f"hypothesis write {target.dotted}",
                         f"PYTHONPATH={target.import_root or '.'} {BIN / 'hypothesis'} write {target.dotted} > {out}"))
    if targets:
        commands.append(("pytest (generated)", f"PYTHONPATH=src:. {py} -m pytest -q -p no:cacheprovider "
                                               f"--hypothesis-seed=0 {generated}"))
    return commands


def run_by_hand(checkout: Path, base: str, osv_url: str, work: Path) -> tuple[float, dict[str, float]]:
    commands = hand_commands(checkout, base, osv_url, work)
    times: dict[str, float] = {}
    started = time.perf_counter()
    for name, command in commands:
        step = time.perf_counter()
        subprocess.run(command, cwd=checkout, shell=isinstance(command, str), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)
        times[name] = round(time.perf_counter() - step, 3)
    return time.perf_counter() - started, times


# ---------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    records = load_records(ROOT / "tests" / "jobs" / "security" / "fixtures" / "osv")
    with exclusive("agent_set"), tempfile.TemporaryDirectory(prefix="aqe-bench-") as tmp, FakeOSV(records) as osv:
        work = Path(tmp)
        base, head = build_repository(work / "repo")
        aqe_times: list[float] = []
        hand_times: list[float] = []
        rounds = []
        for index in range(args.runs):
            busiest = wait_quiet()
            order = ["aqe", "hand"] if index % 2 == 0 else ["hand", "aqe"]
            round_: dict[str, object] = {"busiest_cpu_before": busiest}
            for side in order:
                checkout = fresh_checkout(work / "repo", work / f"checkout-{side}")
                scratch = work / f"scratch-{side}-{index}"
                scratch.mkdir()
                if side == "aqe":
                    wall, results = asyncio.run(run_aqe(checkout, scratch, base, head, osv.url))
                    aqe_times.append(wall)
                    round_["aqe_s"] = round(wall, 2)
                    round_["agents"] = {name: {"conclusion": r.conclusion, "title": r.title,
                                               "duration_s": r.duration_s} for name, r in results.items()}
                else:
                    wall, steps = run_by_hand(checkout, base, osv.url, scratch)
                    hand_times.append(wall)
                    round_["hand_s"] = round(wall, 2)
                    round_["hand_steps"] = steps
            rounds.append(round_)
            print(f"round {index + 1}: AQE {round_['aqe_s']} s, by hand {round_['hand_s']} s "
                  f"(ratio {round_['aqe_s'] / round_['hand_s']:.2f})", flush=True)  # type: ignore[operator]
        aqe, hand = statistics.median(aqe_times), statistics.median(hand_times)
        ratios = [a / h for a, h in zip(aqe_times, hand_times, strict=True)]
        summary = {"project": f"attrs {BASE_VERSION} -> {HEAD_VERSION}", "runs": args.runs,
                   "aqe_median_s": round(aqe, 2), "hand_median_s": round(hand, 2),
                   "ratio_of_medians": round(aqe / hand, 3), "median_ratio": round(statistics.median(ratios), 3),
                   "rounds": rounds}
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "agent_set.json").write_text(json.dumps(summary, indent=2))
        print(json.dumps({k: v for k, v in summary.items() if k != "rounds"}, indent=2))
        print(json.dumps(rounds[-1], indent=2))


if __name__ == "__main__":
    main()
