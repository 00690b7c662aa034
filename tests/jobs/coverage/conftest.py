"""Fixtures of the coverage tests (the data itself is in `coverage_samples`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.jobs.coverage.coverage_samples import make_sample_project, make_sample_repo


@pytest.fixture
def sample_project(tmp_path: Path) -> Path:
    """The base version of the sample project (not a git repository)."""
    return make_sample_project(tmp_path / "project")


@pytest.fixture
def sample_repo(tmp_path: Path) -> Path:
    """A git repository: `main` at the base version, branch `feature` checked out at the head version."""
    return make_sample_repo(tmp_path / "repo")
