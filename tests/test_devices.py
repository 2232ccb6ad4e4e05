"""Device choice: a job that asks for a GPU stops in one line without one; every job logs its
device."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_train import make_manifests

from avmodels import devices

REPO = Path(__file__).resolve().parents[1]
NO_GPU = devices.cuda_problem() is not None
needs_no_gpu = pytest.mark.skipif(not NO_GPU, reason="this machine has a usable GPU")

SNAKEFILE = """
rule all:
    input:
        "out/music/checkpoint.pt",


rule train:
    input:
        train="{train}",
        val="{val}",
    output:
        checkpoint="out/{{dataset}}/checkpoint.pt",
        history="out/{{dataset}}/training.csv",
    log:
        "logs/{{dataset}}/train.log",
    threads: 1
    resources:
        gpu=1,
    params:
        settings=dict(
            arch="concat", visual_output_stride=32, visual_pool="avg", epochs=1, batch_size=6,
            milestones=[],
        ),
        inputs=dict(audio_samples=4096, image_size=32, resize_size=36),
        seed=1234,
        classes=["cello", "flute"],
    script:
        "{script}"
"""


def test_cpu_and_auto_without_gpu():
    assert devices.choose("cpu", gpu_asked=True) == torch.device("cpu")
    if NO_GPU:
        assert devices.choose("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="device must be one of auto, cpu, cuda"):
        devices.choose("tpu")


@needs_no_gpu
@pytest.mark.parametrize(("request_", "asked"), [("cuda", False), ("auto", True)])
def test_required_gpu_is_refused_with_the_reason(request_, asked):
    with pytest.raises(devices.DeviceUnavailable, match="a GPU is required but not usable: "):
        devices.choose(request_, gpu_asked=asked)


def test_reasons(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    assert "CPU-only build" in devices.cuda_problem()
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert "no GPU visible" in devices.cuda_problem()
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setattr(devices.glob, "glob", lambda pattern: ["/dev/nvidia0"])
    problem = devices.cuda_problem()
    assert "driver is likely too old for this CUDA build" in problem and "CUDA 12.8" in problem
    monkeypatch.setattr(devices.glob, "glob", lambda pattern: [])
    assert "no GPU device" in devices.cuda_problem()


def _snakemake(work: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    args = ["snakemake", "--cores", "1", "--directory", str(work), "-s", str(work / "Snakefile")]
    return subprocess.run(
        [*args, *extra], env=env, capture_output=True, text=True, timeout=600, check=False
    )


@needs_no_gpu
def test_gpu_rule_on_a_machine_without_gpu_stops_in_one_line(tmp_path):
    paths = make_manifests(tmp_path / "data")
    script = REPO / "workflow_scripts" / "train.py"
    (tmp_path / "Snakefile").write_text(
        SNAKEFILE.format(train=paths["train"], val=paths["val"], script=script)
    )
    run = _snakemake(tmp_path)
    assert run.returncode != 0
    log = (tmp_path / "logs" / "music" / "train.log").read_text()
    lines = [line for line in log.splitlines() if line.strip()]
    assert len(lines) == 1 and "device: a GPU is required but not usable: " in lines[0], log
    said = [line for line in run.stderr.splitlines() if "not usable" in line]
    assert len(said) == 1 and said[0].endswith(lines[0].split(" device: ", 1)[1]), run.stderr
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "out").exists()  # no training started

    # the same job without the GPU request trains on the CPU and says so
    run = _snakemake(tmp_path, "--set-resources", "train:gpu=0")
    assert run.returncode == 0, run.stderr[-3000:]
    log = (tmp_path / "logs" / "music" / "train.log").read_text()
    assert "device: cpu (1 threads" in log
    assert (tmp_path / "out" / "music" / "checkpoint.pt").exists()
