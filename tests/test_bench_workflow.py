"""bench/workflow.py: the SLURM plugin's probe is reported as what this machine does."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_workflow", REPO / "bench/workflow.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def fake_scontrol(folder: Path, body: str) -> str:
    folder.mkdir()
    script = folder / "scontrol"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return str(folder)


def test_slurm_probe_tells_the_three_cases(bench, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no scontrol at all
    assert bench.slurm_probe()["case"].startswith("no scontrol")
    monkeypatch.setenv("PATH", fake_scontrol(tmp_path / "up", "echo MinJobAge = 300"))
    row = bench.slurm_probe()
    assert row["case"] == "the controller answered" and row["value"] < 5
    monkeypatch.setenv("PATH", fake_scontrol(tmp_path / "down", "exit 1"))
    assert bench.slurm_probe()["case"] == "no controller answered"
