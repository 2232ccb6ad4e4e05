"""What the study costs: the rules' benchmark files and the cost model of bench/study_cost.py."""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from studies import copy_workflow, snakemake

REPO = Path(__file__).resolve().parents[1]
LISTS = REPO.parent / "shared" / "data" / "lists" / "av_robustness_cvpr21"
STEPS = ("train_step", "forward", "fgsm", "pgd", "mim", "lasso", "resnet50_step")


@pytest.fixture(scope="module")
def cost() -> ModuleType:
    sys.path.insert(0, str(REPO / "bench"))  # its sibling modules: sparse_code, workflow
    try:
        spec = importlib.util.spec_from_file_location("study_cost", REPO / "bench/study_cost.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(REPO / "bench"))
    return module


def test_fit_recovers_a_linear_cost(cost: ModuleType) -> None:
    fit = cost.Fit.of(lambda batch: 0.5 + 0.25 * batch, 2, 4)
    assert fit.fixed == pytest.approx(0.5) and fit.per_sample == pytest.approx(0.25)
    assert fit(48) == pytest.approx(12.5)
    assert fit.over(10, 4) == pytest.approx(3 * 0.5 + 10 * 0.25)  # batches of 4, 4 and 2


def test_dry_run_jobs_include_group_members(cost: ModuleType) -> None:
    text = """[Sun Nov 29 17:51:06 2026]
rule train:
    jobid: 119
    wildcards: dataset=music, model=sum
[Sun Nov 29 17:51:06 2026] Group job evaluation (jobs in lexicogr. order):

    [Sun Nov 29 17:51:06 2026]
    rule evaluate:
        jobid: 214
        wildcards: dataset=ave, model=pcl, defense=none, attack=mim, eps=0.006
localrule all:
    jobid: 0
"""
    jobs = [(j.rule, j.wildcards) for j in cost.dry_run_jobs(text)]
    assert jobs == [
        ("train", {"dataset": "music", "model": "sum"}),
        (
            "evaluate",
            {"dataset": "ave", "model": "pcl", "defense": "none", "attack": "mim", "eps": "0.006"},
        ),
        ("all", {}),
    ]


def test_schedule_waits_for_inputs_and_fills_the_devices(cost: ModuleType) -> None:
    job = cost.Job
    a, b = job("train", {"model": "a"}, 10.0), job("train", {"model": "b"}, 4.0)
    jobs = [
        a,
        b,
        job("evaluate", {"model": "a"}, 3.0, after=[a.key]),
        job("evaluate", {"model": "b"}, 3.0, after=[b.key]),
    ]
    assert cost.wall_seconds(jobs, 1) == pytest.approx(20.0)
    assert cost.wall_seconds(jobs, 2) == pytest.approx(13.0)  # a -> its evaluation
    assert cost.wall_seconds(jobs, 8) == pytest.approx(13.0)  # the critical path


def test_jobs_are_costed_from_epochs_clips_and_attacks(cost: ModuleType) -> None:
    config = yaml.safe_load((REPO / "config/paper.yaml").read_text())
    fits = {step: cost.Fit(0.0, 1.0) for step in STEPS}  # one second per clip and step
    job = cost.Job
    jobs = cost.cost_jobs(
        [
            job("train", {"dataset": "music", "model": "concat"}),
            job("train", {"dataset": "kinetics_sounds", "model": "concat"}),
            job("memory_bank", {"dataset": "ave", "model": "minsim"}),
            job("finetune", {"dataset": "music", "model": "minsim"}),
            job(
                "evaluate",
                {
                    "dataset": "music",
                    "model": "audio",
                    "defense": "none",
                    "attack": "pgd",
                    "eps": "0.006",
                },
            ),
            job(
                "evaluate",
                {
                    "dataset": "music",
                    "model": "minsim",
                    "defense": "exfmem",
                    "attack": "fgsm",
                    "eps": "0.006",
                },
            ),
            job("table", {"table": "table1"}),
        ],
        fits,
        config,
    )
    seconds = {(j.rule, j.wildcards.get("dataset")): j.seconds for j in jobs}
    assert ("table", None) not in seconds  # not a GPU rule
    assert seconds["train", "music"] == 100 * (312 + 104)  # 100 epochs, train + val clips
    assert seconds["train", "kinetics_sounds"] == 30 * (9309 + 3103)
    assert seconds["memory_bank", "ave"] == 3339
    assert seconds["finetune", "music"] == 100 * (312 + 104) * 3  # + two sparse codings
    audio, minsim = (j for j in jobs if j.rule == "evaluate")
    assert audio.seconds == pytest.approx(104 / 3)  # one attacked mode of three
    assert minsim.seconds == 104 + 104 * (1 + 4) * 2  # FGSM + codings at 1 gradient, 4 scores
    assert minsim.after == [
        ("finetune", ("dataset", "music"), ("model", "minsim")),
        ("memory_bank", ("dataset", "music"), ("model", "minsim")),
    ]


def test_gpu_measured_steps_cost_the_jobs_without_scaling(cost: ModuleType) -> None:
    """Step times from ``--measure-gpu`` give each job its steps' sum, in hours, unscaled."""
    config = yaml.safe_load((REPO / "config/paper.yaml").read_text())
    measured = {
        "device": "Some GPU",
        "torch": "2.x",
        "cuda": "13.0",
        "measured": "2026-01-01T00:00:00",
        "fits": {step: {"fixed": 0.0, "per_sample": 1.0} for step in STEPS},
    }
    planned = [cost.Job("memory_bank", {"dataset": "ave", "model": "minsim"})]
    rows = cost.gpu_rows(measured, planned, config, (1, 2))
    by_figure = {r["figure"]: r["value"] for r in rows}
    assert by_figure["paper study: Some GPU GPU-hours (measured steps)"] == round(3339 / 3600, 2)
    assert planned[0].seconds == 0.0  # the planned jobs are left as they were
    section = rows[-1]["section"]
    assert section["title"].endswith("on one Some GPU")
    assert "| memory_bank | 1 | 0.927 |" in section["body"]


@pytest.mark.skipif(not LISTS.is_dir(), reason="the published lists are not beside the project")
def test_clip_counts_are_the_published_lists(cost: ModuleType) -> None:
    def rows(name: str) -> int:
        return len((LISTS / f"{name}.csv").read_text().splitlines())

    for dataset, suffix in (("music", ""), ("kinetics_sounds", "_kinetics"), ("ave", "_AVE")):
        sizes = tuple(rows(f"{split}{suffix}") for split in ("train", "val", "test"))
        assert cost.CLIPS[dataset] == sizes, dataset


@pytest.mark.slow
def test_compute_jobs_write_their_benchmark_files(tmp_path: Path) -> None:
    root = copy_workflow(REPO, tmp_path / "wf")
    target = "results/synthetic_music/models/audio/checkpoint.pt"
    done = snakemake(root, "--cores", "2", target, configfile="config/tiny.yaml", timeout=900)
    assert done.returncode == 0, done.stdout[-3000:]
    for step in ("synthesize", "preprocess/shard0", "train/audio"):
        path = root / "benchmarks" / "synthetic_music" / f"{step}.tsv"
        with open(path) as fh:
            (row,) = list(csv.DictReader(fh, delimiter="\t"))
        assert float(row["s"]) > 0 and float(row["cpu_time"]) > 0, (step, row)
    assert not list((root / "results").rglob("*.tsv")), "benchmarks stay out of results/"


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
def test_measure_gpu_without_a_gpu_stops_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / "steps.json"
    done = subprocess.run(
        [sys.executable, "bench/study_cost.py", "--measure-gpu", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip() == "measure-gpu: no usable CUDA device on this machine"
    assert not out.exists()


def test_loader_bench_measures_a_given_manifest(tmp_path: Path) -> None:
    """``bench/loader_workers.py --manifest`` reads clips made elsewhere, rendering none."""
    from test_train import make_manifests

    manifest = make_manifests(tmp_path / "clips", per_class=2)["train"]
    done = subprocess.run(
        [sys.executable, "bench/loader_workers.py", "--manifest", str(manifest),
         "--workers", "1", "--epochs", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    rates = [float(line.split()[1]) for line in done.stdout.splitlines() if "samples/s" in line]
    assert len(rates) == 2 and min(rates) > 0, done.stdout
