"""The "test-generation" agent (`aqe/test-generation`): tests for the changed functions that have none.

1. Targets (`jobs.testgen.targets`): changed public Python functions no test file mentions, most changed first;
   for an API request (`POST /api/v1/test/generate`), the file, directory or function it names
   (`AgentOptions.testgen_target`), tested or not.
2. The hypothesis ghostwriter writes property tests for them, in one sandboxed process
   (`jobs.testgen.ghostwriter`); output it could not complete (`st.nothing()`) is dropped with the reason.
3. With an LLM backend (`AQE_LLM_URL`) and `test_generation.llm: true`, the LLM writes pytest tests for the
   targets the ghostwriter could not test; with `framework: jest | vitest | mocha` it writes tests for the
   changed exported JavaScript/TypeScript functions (`jobs.testgen.llm`).
4. Every generated test is run in the sandbox (`jobs.testgen.validate`, `jobs.testgen.runner`): passing tests
   are kept, run once more as the files that will be offered, and offered; a failing property test with a
   falsifying example is a likely bug (a warning on the function's `def` line); anything else is dropped
   with the reason. JavaScript tests that cannot be run here are not offered — unless an API request named
   the target: then they are offered marked "not run".
5. With `coverage_target` (or a named target) the kept Python tests run once more under coverage.py: the line
   coverage of the targeted functions is reported, and the check fails below the target.
6. The kept tests are written under `scratch/testgen/out/` at their repository paths
   (`artifacts["generated-tests"]`) and as `generated-tests.patch` (`artifacts["generated-tests.patch"]`).

The check is neutral when there is nothing to do or when likely bugs were found, and fails only with
`fail_on_bugs: true`, below `coverage_target`, or for a named target that names nothing.
"""

from __future__ import annotations

import ast
import asyncio
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from jobs.agents.base import LlmOptions, Progress, Workspace
from jobs.agents.tests import JobDirs, output_tail
from jobs.junit import TestCase, head_text
from jobs.model import AgentResult
from jobs.reporting.markdown import code_span, plural
from jobs.security.secrets import scan_secrets
from jobs.testgen import report as reporting
from jobs.testgen.artifact import PatchError, make_patch, write_files
from jobs.testgen.config import Framework, TestGenerationConfig, as_testgen_config
from jobs.testgen.ghostwriter import (
    DRIVER,
    TestModule,
    Written,
    add_pieces,
    conflict_reason,
    cut,
    driver_request,
    header_for,
    parse_driver_answers,
    render,
    unresolved_reason,
    with_built_self,
)
from jobs.testgen.llm import LlmClient, LlmError, Request, messages_for
from jobs.testgen.report import Outcome, Report
from jobs.testgen.runner import (
    Deadline,
    PythonSandbox,
    copy_tree,
    js_env,
    js_runner_missing,
    prepare_run_dir,
    python_sandbox,
    run_js_test,
    run_pytest,
)
from jobs.testgen.coverage import coverage_argv, json_argv, percent, targets_coverage
from jobs.testgen.targets import Skipped, Target, TargetSelection, is_test_file, select_targets, target_lines
from jobs.testgen.validate import (
    base_name,
    collection_errors,
    file_stem,
    judge_example_test,
    judge_property_test,
)

LLM_CONCURRENCY = 3
MIN_PER_TEST_TIMEOUT_S, MAX_PER_TEST_TIMEOUT_S = 5.0, 60.0
JS_TEST_SUFFIX = ".aqe.test"
OUT_OF_TIME = "the agent's time (`test_generation.timeout`) ran out first"


@dataclass
class LlmFile:
    """A test file the LLM wrote for one target."""

    target: Target
    stem: str  # the file name without `.py` in the run directory (Python)
    repo_path: str
    code: str


@dataclass
class Generation:
    """One run of the agent: where it works, and what it found so far."""

    workspace: Workspace
    config: TestGenerationConfig
    deadline: Deadline
    report: Report
    base: Path
    modules: dict[str, TestModule] = field(default_factory=dict)  # source path -> its property tests
    llm_files: list[LlmFile] = field(default_factory=list)
    final_files: list[str] = field(default_factory=list)  # the kept Python test files, as named in `final/`

    @property
    def dirs(self) -> JobDirs:
        return JobDirs.under(self.base)

    @property
    def per_test_timeout_s(self) -> float:
        return max(MIN_PER_TEST_TIMEOUT_S, min(MAX_PER_TEST_TIMEOUT_S, self.config.timeout / 6))

    def drop(self, target: Target, origin: reporting.Origin, test: str, reason: str,
             status: reporting.Status = "dropped") -> None:  # fmt: skip
        self.report.outcomes.append(Outcome(target, origin, test, status, reason))


# ------------------------------------------------------------------------------------ ghostwriter


async def ghostwrite(gen: Generation, sandbox: PythonSandbox, targets: list[Target]) -> dict[str, Written]:
    """The driver's answers for `targets`; targets it did not reach are answered with the reason. It gets at
    most half the remaining time, so that a module whose import hangs leaves time for the rest."""
    driver, request, answers = gen.base / "ghostwriter_driver.py", gen.base / "request.json", gen.base / "answers.json"
    driver.write_text(DRIVER, encoding="utf-8")
    request.write_text(driver_request(targets), encoding="utf-8")
    answers.unlink(missing_ok=True)
    timeout = gen.deadline.remaining() / 2
    result = await sandbox.run([str(sandbox.python), str(driver), str(request), str(answers)], gen.base, timeout)
    found = parse_driver_answers(answers.read_text(encoding="utf-8")) if answers.is_file() else {}
    if "*" in found:
        return {t.id: found["*"] for t in targets}
    if result.timed_out:
        missing = Written(error=f"the ghostwriter did not finish within {timeout:.0f} s (does importing it hang?)")
    else:
        missing = Written(error=f"the ghostwriter stopped (exit code {result.returncode}): {last_line(result.output)}")
    return {t.id: found.get(t.id, missing) for t in targets}


def last_line(output: str) -> str:
    lines = output_tail(output).strip().splitlines()
    return head_text(lines[-1], 300) if lines else "no output"


def collect_property_tests(gen: Generation, targets: list[Target], answers: dict[str, Written]) -> list[Target]:
    """Sort the ghostwriter's output into test modules; the importable targets it gave nothing usable for."""
    untested = []
    for target in targets:
        written = answers[target.id]
        code = with_built_self(written.code, target, written.self_buildable) if written.code else ""
        reason = written.error or unresolved_reason(code)
        module = gen.modules.setdefault(target.path, TestModule(target.path, target.module))
        pieces = cut(code) if reason is None else None
        if pieces is not None:
            reason = conflict_reason(module, pieces)
        if reason is not None or pieces is None:
            gen.drop(target, "ghostwriter", f"test_fuzz_{target.qualname.replace('.', '_')}", reason or "no code")
            if not written.error.startswith("importing "):  # an LLM's test could not import it either
                untested.append(target)
            continue
        add_pieces(module, target.id, pieces)
    gen.modules = {path: module for path, module in gen.modules.items() if module.pieces}
    return untested


# ---------------------------------------------------------------------------------------- the LLM


LLM_MIN_TIME_S = 10.0


def secret_lines(root: Path, paths: set[str]) -> dict[str, frozenset[int]]:
    """The lines of each file that hold a secret (detect-secrets, as `aqe/security`): kept out of LLM prompts."""
    found: dict[str, set[int]] = {}
    for hit in scan_secrets(root, sorted(paths)):
        found.setdefault(hit.path, set()).add(hit.line)
    return {path: frozenset(lines) for path, lines in found.items()}


async def ask_llm(gen: Generation, llm: LlmOptions, requests: list[Request]) -> list[tuple[Request, str]]:
    """The code the LLM wrote for each request; failures become dropped outcomes, a fatal one stops the rest."""
    answers: list[tuple[Request, str]] = []
    fatal: list[str] = []
    limit = asyncio.Semaphore(LLM_CONCURRENCY)
    # a completion may take long, but never past the agent's own deadline; less than this left is not worth asking
    timeout = min(llm.timeout_s, max(LLM_MIN_TIME_S, gen.deadline.remaining() / 2))
    secrets = await asyncio.to_thread(secret_lines, gen.workspace.root, {r.target.path for r in requests})

    async def one(client: LlmClient, request: Request) -> None:
        async with limit:
            if fatal or gen.deadline.remaining() <= LLM_MIN_TIME_S:
                reason = f"not asked: {fatal[0]}" if fatal else "not asked: " + OUT_OF_TIME
                gen.drop(request.target, "llm", request.test_path, reason)
                return
            try:
                prompt = replace(request, secret_lines=secrets.get(request.target.path, frozenset()))
                answers.append((request, await client.ask(messages_for(prompt))))
            except LlmError as exc:
                if exc.fatal and not fatal:
                    fatal.append(str(exc))
                gen.drop(request.target, "llm", request.test_path, str(exc))

    async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as http:
        client = LlmClient(llm, http, timeout)
        await asyncio.gather(*(one(client, request) for request in requests))
    if fatal:
        gen.report.notes.append(f"The LLM backend failed: {fatal[0]}.")
    return sorted(answers, key=lambda pair: requests.index(pair[0]))


def python_llm_request(target: Target, test_type: str = "unit") -> Request:
    slug = f"{target.module}_{target.qualname}".replace(".", "_")
    kind = "" if test_type == "unit" else f"_{test_type}"
    return Request(target, "pytest", f"tests/generated/test_{slug}{kind}_llm.py", test_type)


def js_llm_request(target: Target, framework: Framework, test_type: str = "unit") -> Request:
    stem, _, suffix = target.path.rpartition(".")
    kind = "" if test_type == "unit" else f".{test_type}"
    return Request(target, framework, f"{stem}{kind}{JS_TEST_SUFFIX}.{suffix}", test_type)


def accept_python_code(gen: Generation, request: Request, code: str) -> None:
    try:
        ast.parse(code)
    except SyntaxError as exc:
        gen.drop(request.target, "llm", request.test_path, f"the LLM's test does not parse: {exc.msg} "
                                                          f"(line {exc.lineno})")  # fmt: skip
        return
    stem = request.test_path.rsplit("/", 1)[-1].removesuffix(".py")
    gen.llm_files.append(LlmFile(request.target, stem, request.test_path, code))


# ------------------------------------------------------------------------------------ validation


def run_files(gen: Generation, run_dir: Path, keep: dict[str, set[str]] | None = None) -> dict[str, str]:
    """Write the test files to run into `run_dir` (property tests limited to `keep` when given): name -> text."""
    prepare_run_dir(run_dir, gen.per_test_timeout_s)
    files: dict[str, str] = {}
    for module in gen.modules.values():
        names = None if keep is None else keep.get(module.file_stem, set())
        if names is not None and not names:
            continue
        owners = module.pieces if names is None else {module.owner[name] for name in names}
        functions = [target_id.split("::", 1)[1] for target_id in module.pieces if target_id in owners]
        header = header_for(module, functions, gen.workspace.head_sha)
        files[f"{module.file_stem}.py"] = render(module, gen.config.max_examples, names, header)
    for llm_file in gen.llm_files:
        if keep is None or llm_file.stem in keep:
            files[f"{llm_file.stem}.py"] = llm_file.code
    for name, text in files.items():
        (run_dir / name).write_text(text, encoding="utf-8")
    return files


@dataclass
class Judged:
    kept: dict[str, set[str]] = field(default_factory=dict)  # file stem -> kept test names (LLM files: {"*"})
    outcomes: list[Outcome] = field(default_factory=list)


def judge(gen: Generation, cases: list[TestCase], hung: list[str], problem: str) -> Judged:
    """The outcome of every generated test in one pytest run."""
    judged = Judged()
    broken = collection_errors(cases)
    by_test = {(file_stem(c), base_name(c)): c for c in cases if c.classname}
    stuck = {nodeid.split("::")[0].removesuffix(".py") + "::" + nodeid.split("::")[-1] for nodeid in hung}
    for module in gen.modules.values():
        for test, target_id in module.owner.items():
            target = next(t for t in gen.report.targets if t.id == target_id)
            source = next(t.source for t in module.pieces[target_id].tests if t.name == test)
            why = _not_run_reason(module.file_stem, test, broken, stuck, problem, gen)
            case = by_test.get((module.file_stem, test))
            if case is None or why:
                judged.outcomes.append(Outcome(target, "ghostwriter", test, "dropped", why or "it did not run"))
                continue
            verdict = judge_property_test(case)
            if verdict.verdict == "passed":
                judged.kept.setdefault(module.file_stem, set()).add(test)
                judged.outcomes.append(Outcome(target, "ghostwriter", test, "kept", file=module.repo_path))
            else:
                judged.outcomes.append(Outcome(target, "ghostwriter", test, verdict.verdict, verdict.reason,
                                               tuple(verdict.examples), source=source))  # fmt: skip
    for llm_file in gen.llm_files:
        judged.outcomes.append(_judge_llm_file(llm_file, cases, broken, stuck, problem, gen))
        if judged.outcomes[-1].status == "kept":
            judged.kept[llm_file.stem] = {"*"}
    return judged


def _not_run_reason(stem: str, test: str, broken: dict[str, str], stuck: set[str], problem: str,
                    gen: Generation) -> str:  # fmt: skip
    if stem in broken:
        return f"pytest could not collect its file: {head_text(broken[stem], 300)}"
    if f"{stem}::{test}" in stuck:
        return f"it did not finish within {gen.per_test_timeout_s:g} s (the function may hang on some input)"
    return problem


def _judge_llm_file(llm_file: LlmFile, cases: list[TestCase], broken: dict[str, str], stuck: set[str],
                    problem: str, gen: Generation) -> Outcome:  # fmt: skip
    """An LLM-written file is kept when every one of its tests passed."""
    mine = [c for c in cases if c.classname and file_stem(c) == llm_file.stem]
    hung = sorted(s.split("::")[-1] for s in stuck if s.startswith(f"{llm_file.stem}::"))
    why = ""
    if llm_file.stem in broken:
        why = f"pytest could not collect it: {head_text(broken[llm_file.stem], 300)}"
    elif hung:
        why = f"`{hung[0]}` did not finish within {gen.per_test_timeout_s:g} s"
    elif not mine:
        why = problem or "no test ran"
    if why:
        return Outcome(llm_file.target, "llm", llm_file.repo_path, "dropped", why)
    for case in mine:
        verdict = judge_example_test(case)
        if verdict.verdict != "passed":
            return Outcome(llm_file.target, "llm", llm_file.repo_path, "dropped", verdict.reason, count=len(mine))
    return Outcome(llm_file.target, "llm", llm_file.repo_path, "kept", count=len(mine), file=llm_file.repo_path)


async def validate_python(gen: Generation, sandbox: PythonSandbox, progress: Progress) -> dict[str, str]:
    """Run every generated Python test, then the kept ones again as offered; the offered files by repo path."""
    await progress(0.5, "Running the generated tests")
    run_dir = gen.base / "run"
    first = run_files(gen, run_dir)
    run = await run_pytest(sandbox, run_dir, sorted(first), gen.deadline)
    judged = judge(gen, run.cases, run.hung, run.problem)
    if run.problem:
        gen.report.notes.append(f"The generated tests could not all be run: {run.problem}.")
    final = run_files(gen, gen.base / "final", judged.kept)
    rerun = [name for name, text in final.items() if first.get(name) != text]
    if rerun:
        await progress(0.75, "Running the kept tests again")
        again = await run_pytest(sandbox, gen.base / "final", sorted(rerun), gen.deadline)
        judged = confirm(gen, judged, again.cases, {n.removesuffix(".py") for n in rerun}, again.problem)
        final = run_files(gen, gen.base / "final", judged.kept)
    gen.report.outcomes += judged.outcomes
    gen.final_files = sorted(name for name in final if name != "conftest.py")
    return {_repo_path(gen, name): text for name, text in final.items()}


def confirm(gen: Generation, judged: Judged, cases: list[TestCase], stems: set[str], problem: str) -> Judged:
    """Kept tests of the re-run files (`stems`) that did not pass again are dropped (flaky, or the run failed)."""
    passed = {(file_stem(c), base_name(c)) for c in cases if c.classname and c.status == "passed"}
    failing_files = {file_stem(c) for c in cases if c.classname and c.status != "passed"}
    ran_files = {file_stem(c) for c in cases if c.classname}
    confirmed = Judged()
    for outcome in judged.outcomes:
        stem = _stem_of(gen, outcome)
        if outcome.status == "kept" and stem in stems:
            llm_ok = stem in ran_files and stem not in failing_files
            if not (llm_ok if outcome.origin == "llm" else (stem, outcome.test) in passed):
                reason = f"it passed once, then not when run again{': ' + problem if problem else ''} (flaky?)"
                confirmed.outcomes.append(Outcome(outcome.target, outcome.origin, outcome.test, "dropped", reason,
                                                  count=outcome.count))  # fmt: skip
                continue
        confirmed.outcomes.append(outcome)
        if outcome.status == "kept":
            confirmed.kept.setdefault(stem, set()).add("*" if outcome.origin == "llm" else outcome.test)
    return confirmed


def _stem_of(gen: Generation, outcome: Outcome) -> str:
    if outcome.origin == "llm":
        return next(f.stem for f in gen.llm_files if f.repo_path == outcome.test)
    return next(m.file_stem for m in gen.modules.values() if outcome.test in m.owner)


def _repo_path(gen: Generation, file_name: str) -> str:
    stem = file_name.removesuffix(".py")
    for module in gen.modules.values():
        if module.file_stem == stem:
            return module.repo_path
    return next(f.repo_path for f in gen.llm_files if f.stem == stem)


async def kept_tests_coverage(gen: Generation, sandbox: PythonSandbox) -> float | None:
    """Line coverage of the targeted Python functions when the kept tests (as offered) run under coverage.py,
    the way they were validated (same sandbox, same run directory); 0 when no test was kept, None when it
    could not be measured (a note says why)."""
    final, files, targets = gen.base / "final", gen.final_files, gen.report.python.targets
    if not targets:
        return None
    if not files:
        return 0.0
    if gen.deadline.remaining() <= 1:
        gen.report.notes.append("The coverage of the kept tests could not be measured: " + OUT_OF_TIME + ".")
        return None
    root = gen.workspace.root
    data, out = final / ".coverage-kept", final / "coverage-kept.json"
    include = sorted({root / t.path for t in targets})
    run = await sandbox.run(coverage_argv(sandbox.python, data, include, files), final, gen.deadline.remaining())
    if run.timed_out:
        gen.report.notes.append("The coverage of the kept tests could not be measured in the agent's time.")
        return None
    done = await sandbox.run(json_argv(sandbox.python, data, out), final, max(gen.deadline.remaining(), 5))
    if done.returncode != 0 or not out.is_file():
        gen.report.notes.append(f"The coverage of the kept tests could not be read: {output_tail(done.output)}")
        return None
    report = await asyncio.to_thread(lambda: json.loads(out.read_text(encoding="utf-8")))
    return percent(*targets_coverage(report, root, targets))


async def validate_js(gen: Generation, written: list[tuple[Request, str]]) -> dict[str, str]:
    """Run each LLM-written JavaScript test with the repository's runner; the kept files by repo path."""
    framework = gen.config.framework
    missing = js_runner_missing(gen.workspace.root, framework)
    if missing is not None:
        offer = gen.workspace.options.testgen_target is not None  # asked for by name: offered, marked not run
        for request, code in written:
            gen.report.outcomes.append(Outcome(request.target, "llm", request.test_path, "not-validated", missing,
                                               file=request.test_path if offer else ""))  # fmt: skip
        return {request.test_path: code for request, code in written} if offer else {}
    tree = gen.base / "js-tree"
    await asyncio.to_thread(copy_tree, gen.workspace.root, tree)
    kept: dict[str, str] = {}
    for request, code in written:
        if gen.deadline.remaining() <= 1:
            gen.drop(request.target, "llm", request.test_path, OUT_OF_TIME, status="not-validated")
            continue
        (tree / request.test_path).write_text(code, encoding="utf-8")
        result = await run_js_test(tree, request.test_path, framework, js_env(gen.dirs), gen.deadline.remaining())
        (tree / request.test_path).unlink(missing_ok=True)
        if result.returncode == 0 and not result.timed_out:
            kept[request.test_path] = code
            gen.report.outcomes.append(Outcome(request.target, "llm", request.test_path, "kept",
                                               file=request.test_path))  # fmt: skip
        else:
            why = "it did not finish in time" if result.timed_out else \
                f"`{framework}` exited with {result.returncode}: {last_line(result.output)}"
            gen.drop(request.target, "llm", request.test_path, why)
    return kept


# -------------------------------------------------------------------------------------- the agent


def named_lines(root: Path, spec: str, cfg: TestGenerationConfig) -> tuple[dict[str, set[int]], list[str]] | str:
    """The lines an API request's `target` names, without excluded and test files (notes say which were left
    out); the reason when nothing is left (blocking: reads the work tree)."""
    found = target_lines(root, spec)
    if isinstance(found, str):
        return found
    left_out = sorted(path for path in found if cfg.is_excluded(path) or is_test_file(path))
    kept = {path: lines for path, lines in found.items() if path not in left_out}
    if not kept:
        return (f"{plural(len(left_out), 'file')} {'is' if len(left_out) == 1 else 'are'} a test file or excluded "
                f"by `test_generation.exclude` ({', '.join(code_span(p) for p in left_out[:5])})")
    notes = [f"Left out of the target, being test files or excluded by `test_generation.exclude`: "
             f"{', '.join(code_span(p) for p in left_out[:10])}{' …' if len(left_out) > 10 else ''}."] \
        if left_out else []  # fmt: skip
    return kept, notes


class TestGenerationAgent:
    """Tests for changed functions without tests: generated, run, kept when they pass (`aqe/test-generation`)."""

    __test__ = False
    name = "test-generation"
    needs = ("tests",)  # imports the code with the tests agent's virtualenv (the repository's dependencies)

    def applies_to(self, workspace: Workspace, config: Any) -> bool:
        return as_testgen_config(config).enabled

    async def run(
        self, workspace: Workspace, config: TestGenerationConfig | dict[str, Any] | None, progress: Progress
    ) -> AgentResult:
        started, cfg = time.monotonic(), as_testgen_config(config)
        if not cfg.enabled:
            return AgentResult(agent=self.name, conclusion="skipped", title="Test generation is disabled",
                               summary="`test_generation.enabled` is false in `.aqe.yml`.")  # fmt: skip
        await progress(0.05, "Finding changed functions without tests")
        lines, named = workspace.changed_lines, workspace.options.testgen_target
        notes: list[str] = []
        if named is not None:
            found = await asyncio.to_thread(named_lines, workspace.root, named, cfg)
            if isinstance(found, str):
                return AgentResult(agent=self.name, conclusion="failure", title="The target names no function",
                                   summary=f"The request asked for tests of `{head_text(named, 200)}`: {found}.",
                                   duration_s=round(time.monotonic() - started, 3))  # fmt: skip
            lines, notes = found
        python = await asyncio.to_thread(select_targets, workspace.root, lines, cfg, "python", named=bool(named))
        javascript = TargetSelection()
        if cfg.uses_js:
            javascript = await asyncio.to_thread(select_targets, workspace.root, lines, cfg, "javascript",
                                                 named=bool(named))  # fmt: skip
        llm = workspace.options.llm if cfg.wants_llm() else None
        if not python.targets and not (javascript.targets and llm):
            return self._nothing_to_do(python, javascript, cfg, workspace, started)
        report = Report(python, javascript, fail_on_bugs=cfg.fail_on_bugs, coverage_target=cfg.coverage_target,
                        named=named is not None, notes=notes)  # fmt: skip
        gen = Generation(workspace, cfg, Deadline(cfg.timeout), report, workspace.scratch / "testgen")
        gen.base.mkdir(parents=True, exist_ok=True)
        if javascript.targets and llm is None:  # only an LLM writes JavaScript tests
            report.notes.append(reporting.nothing_to_do_reason(TargetSelection(), javascript, True, False))
            javascript.skipped += [Skipped(t.path, t.qualname, "needs the LLM backend") for t in javascript.targets]
            javascript.targets = []
        offered = await self._generate(gen, llm, progress)
        await progress(0.95, "Writing the generated tests")
        await self._offer(gen, offered)
        return reporting.result(self.name, gen.report, round(time.monotonic() - started, 3))

    def _nothing_to_do(self, python: TargetSelection, javascript: TargetSelection, cfg: TestGenerationConfig,
                       workspace: Workspace, started: float) -> AgentResult:  # fmt: skip
        why = reporting.nothing_to_do_reason(python, javascript, cfg.uses_js, workspace.options.llm is not None)
        if workspace.options.testgen_target is not None:  # asked for by name: say what stands in the way
            why = reporting.named_nothing_reason(python, javascript, cfg.uses_js, workspace.options.llm is not None)
            return AgentResult(agent=self.name, conclusion="failure" if cfg.coverage_target else "neutral",
                               title="The target has no function AQE can write tests for",
                               summary=reporting.nothing_to_do_summary(python, javascript, why),
                               metrics=reporting.empty_metrics(python, javascript),
                               duration_s=round(time.monotonic() - started, 3))  # fmt: skip
        return AgentResult(agent=self.name, conclusion="neutral", title="No changed function needs generated tests",
                           summary=reporting.nothing_to_do_summary(python, javascript, why),
                           metrics=reporting.empty_metrics(python, javascript),
                           duration_s=round(time.monotonic() - started, 3))  # fmt: skip

    async def _generate(self, gen: Generation, llm: LlmOptions | None, progress: Progress) -> dict[str, str]:
        offered: dict[str, str] = {}
        python_targets = gen.report.python.targets
        untested: list[Target] = []
        sandbox: PythonSandbox | None = None
        test_type = gen.config.test_type
        if python_targets:
            await progress(0.1, "Preparing the Python environment")
            roots = sorted({gen.workspace.root / t.import_root for t in python_targets})
            sandbox = await python_sandbox(gen.workspace.artifacts.get("venv"), gen.dirs, roots)
            if test_type == "unit":
                await progress(0.2, f"Writing property tests for {len(python_targets)} functions")
                answers = await ghostwrite(gen, sandbox, python_targets)
                untested = collect_property_tests(gen, python_targets, answers)
            else:  # integration, e2e, api, performance tests: only the LLM writes them
                untested = list(python_targets)
        if llm is not None and (gen.config.llm or test_type != "unit") and untested:
            await progress(0.35, "Asking the LLM for tests")
            for request, code in await ask_llm(gen, llm, [python_llm_request(t, test_type) for t in untested]):
                accept_python_code(gen, request, code)
        elif llm is None and test_type != "unit" and untested:
            gen.report.notes.append(f"{test_type} tests are written by the LLM backend, and this AQE has none "
                                    "(`AQE_LLM_URL`, `AQE_LLM_MODEL`).")
        if sandbox is not None and (gen.modules or gen.llm_files):
            offered |= await validate_python(gen, sandbox, progress)
        if sandbox is not None and (gen.config.coverage_target is not None or gen.report.named):
            await progress(0.78, "Measuring the coverage of the kept tests")
            gen.report.coverage = await kept_tests_coverage(gen, sandbox)
        if llm is not None and gen.report.javascript.targets:
            await progress(0.8, "Asking the LLM for JavaScript tests")
            requests = [js_llm_request(t, gen.config.framework, test_type) for t in gen.report.javascript.targets]
            offered |= await validate_js(gen, await ask_llm(gen, llm, requests))
        return offered

    async def _offer(self, gen: Generation, offered: dict[str, str]) -> None:
        if not offered:
            return
        out = gen.base / "out"
        await asyncio.to_thread(write_files, out, offered)
        gen.workspace.artifacts["generated-tests"] = out
        gen.report.files = sorted(offered)
        try:
            patch = await make_patch(out, sorted(offered), gen.dirs.home)
        except PatchError as exc:
            gen.report.notes.append(f"The patch of the generated tests could not be made: {exc}.")
            return
        path = gen.base / "generated-tests.patch"
        path.write_text(patch, encoding="utf-8")
        gen.workspace.artifacts["generated-tests.patch"] = path
