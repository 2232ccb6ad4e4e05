"""Shared fixtures: one thread for torch, the reference data beside the repository, the
tiny study run once per session."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from studies import Study, copy_workflow, run_study

REPO = Path(__file__).resolve().parents[1]
torch.set_num_threads(1)
log = logging.getLogger(__name__)


@pytest.fixture(scope="session")
def repo_dir() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The reference material (paper, real lists, paper tables) checked out beside the repo."""
    path = REPO.parent / "shared"
    assert path.is_dir(), f"reference data not found at {path}"
    return path


@pytest.fixture(scope="session")
def study(tmp_path_factory: pytest.TempPathFactory) -> Study:
    """The tiny study, run once from scratch in a copy of the workflow (slow tests only)."""
    root = copy_workflow(REPO, tmp_path_factory.mktemp("study"))
    seconds = run_study(root)
    log.info("tiny study ran in %.0f s", seconds)
    return Study(root, seconds)
