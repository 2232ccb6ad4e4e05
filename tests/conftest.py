"""Shared fixtures: one thread for torch, the reference data beside the repository."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def repo_dir() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The reference material (paper, real lists, paper tables) checked out beside the repo."""
    path = REPO.parent / "shared"
    assert path.is_dir(), f"reference data not found at {path}"
    return path
