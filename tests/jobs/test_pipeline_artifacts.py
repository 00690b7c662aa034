"""The artifacts a job keeps: only regular files (never through a link the code under test planted),
coverage.xml only when it is a coverage report, each name once however the agents interleave."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from jobs import pipeline
from jobs.agents.base import Workspace
from jobs.model import JobRecord, RunRequest

SECRET = "GITHUB_APP_PRIVATE_KEY=aqe-worker-secret-5d1c\n"
COBERTURA = b'<?xml version="1.0" ?><coverage version="1"><packages/></coverage>'


class Store:
    def __init__(self, delay: float = 0.0) -> None:
        self.saved: list[tuple[str, bytes]] = []
        self.delay = delay

    async def save_artifact(self, job_id: str, name: str, data: bytes) -> None:
        await asyncio.sleep(self.delay)
        self.saved.append((name, data))


def job_run(store: Store) -> pipeline.JobRun:
    request = RunRequest(forge="github", repo="acme/widgets", clone_url="u", head_sha="a" * 40,  # type: ignore[call-arg]
                         trigger="pull_request.opened", agents=["tests", "coverage"], pr_number=1)
    run = object.__new__(pipeline.JobRun)
    run.record = JobRecord(id="0" * 24, status="running", request=request, created_at=0.0)
    run.services = SimpleNamespace(store=store)  # type: ignore[assignment]
    return run


def workspace_with(tmp_path: Path, coverage: Path) -> Workspace:
    workspace = Workspace(root=tmp_path, scratch=tmp_path, head_sha="a" * 40)
    workspace.artifacts["coverage.cobertura"] = coverage
    return workspace


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "worker.env"
    path.write_text(SECRET)
    return path


async def test_a_coverage_report_is_kept(tmp_path: Path) -> None:
    (tmp_path / "coverage.xml").write_bytes(COBERTURA)
    run = job_run(store := Store())
    await run._keep_artifacts(workspace_with(tmp_path, tmp_path / "coverage.xml"))
    assert run.record.artifacts == ["coverage.xml"] and store.saved == [("coverage.xml", COBERTURA)]


@pytest.mark.parametrize("planted", ["link", "not a report", "fifo"])
async def test_a_coverage_artifact_that_is_a_link_or_not_a_report_is_not_kept(
    tmp_path: Path, secret: Path, planted: str
) -> None:
    coverage = tmp_path / "reports" / "coverage.xml"
    coverage.parent.mkdir()
    if planted == "link":
        coverage.symlink_to(secret)
    elif planted == "fifo":
        os.mkfifo(coverage)
    else:
        coverage.write_text(SECRET)
    run = job_run(store := Store())
    await run._keep_artifacts(workspace_with(tmp_path, coverage))
    assert run.record.artifacts == [] and store.saved == []


async def test_agents_finishing_together_keep_an_artifact_once(tmp_path: Path) -> None:
    (tmp_path / "coverage.xml").write_bytes(COBERTURA)
    workspace = workspace_with(tmp_path, tmp_path / "coverage.xml")
    run = job_run(store := Store(delay=0.05))
    await asyncio.gather(*(run._keep_artifacts(workspace) for _ in range(3)))
    assert run.record.artifacts == ["coverage.xml"] and len(store.saved) == 1


async def test_an_artifact_that_could_not_be_saved_is_not_listed(tmp_path: Path) -> None:
    class Failing(Store):
        async def save_artifact(self, job_id: str, name: str, data: bytes) -> None:
            raise ConnectionError("redis gone")

    (tmp_path / "coverage.xml").write_bytes(COBERTURA)
    run = job_run(Failing())
    with pytest.raises(ConnectionError):
        await run._keep_artifacts(workspace_with(tmp_path, tmp_path / "coverage.xml"))
    assert run.record.artifacts == []


def test_generated_files_skip_links_to_files_and_directories(tmp_path: Path, secret: Path) -> None:
    out = tmp_path / "out"
    (out / "tests" / "generated").mkdir(parents=True)
    (out / "tests" / "generated" / "test_a.py").write_text("def test_a():\n    pass\n")
    (out / "tests" / "generated" / "test_env.py").symlink_to(secret)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "key.pem").write_text(SECRET)
    (out / "tests" / "linked").symlink_to(outside, target_is_directory=True)
    os.mkfifo(out / "tests" / "pipe.py")
    assert pipeline.generated_files(out) == {"tests/generated/test_a.py": b"def test_a():\n    pass\n"}
    assert pipeline.generated_files(None) == {} and pipeline.generated_files(tmp_path / "missing") == {}
