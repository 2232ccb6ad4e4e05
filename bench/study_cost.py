"""What the paper's study costs: per-rule compute at the paper's sizes, extrapolated to GPU-hours.

Measured here, on the CPU (one torch thread, CPU seconds of this process, so other jobs on a
shared machine do not inflate them), with the paper's inputs (65535 audio samples at
11025 Hz, 224 px images; random tensors: the cost of the networks does not depend on the
content) and the models of ``config/paper.yaml``:

  * one training step (forward, backward, SGD step) of the concat model;
  * one forward pass in evaluation mode (validation, memory banks);
  * one evaluation batch per attack as an ``evaluate`` job runs it: FGSM (one gradient for
    A, V and AV), PGD-10 and MIM-10 (10 steps for each of A, V and AV), then the scoring
    of clean, A, V and AV;
  * ExFMem's sparse coding (``avmodels.robustness.lasso.sparse_code``, exact active-set solver) of
    512-d features over a 512 x 1024 bank, forward and backward (attacks differentiate through it);
  * one training step of torchvision's ResNet-50 at 224 px, the network of the published GPU
    figure below.

Each step is timed at two small batch sizes and fitted as ``fixed + per_sample * batch``; the
paper's batch sizes (training 48, evaluation 32) are taken from the fit. The jobs come from
``snakemake -n all --configfile config/paper.yaml`` (rule and wildcards of every job), the
epochs from the config, the clips per split from :data:`CLIPS`. A job's CPU seconds are its
steps' sums; GPU seconds are CPU seconds / :func:`gpu_factor`, the ratio of NVIDIA's published
ResNet-50 training throughput on one A100 or V100 (:data:`GPU_REFERENCES`) to the one measured
here: the assumption is that our networks speed up on that GPU as ResNet-50 training does.
Wall time on N GPUs: a list schedule of the jobs in dependency order, longest path first.

On a machine with a GPU, ``--measure-gpu FILE`` times the same steps there (wall seconds,
waited for on the device, at the paper's batch sizes) and writes them to FILE; it needs no
Snakemake. With those times in ``bench/gpu_steps.json``, a run here adds the jobs' costs
from them, unscaled, beside the extrapolation.

    python bench/study_cost.py [--quick] [--gpus 1 4 8 16]
    python bench/study_cost.py --measure-gpu bench/gpu_steps.json   # on the GPU machine
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torchvision
import yaml
from _timing import interleaved
from sparse_code import make_problem
from workflow import failure_reason, fresh_copy, job_count, snakemake

from avmodels import atomic
from avmodels.models.model import ModelConfig, build_model
from avmodels.robustness.attacks import predict_sets
from avmodels.robustness.lasso import sparse_code
from avmodels.robustness.metrics import MODES
from avmodels.study.evaluate import Attacker, mode_budgets, restrict_budget
from avmodels.study.running import run_settings
from avmodels.workflow import plan

REPO = Path(__file__).resolve().parents[1]
PAPER = REPO / "config" / "paper.yaml"
#: Step times measured on a GPU machine (``--measure-gpu``), read by :func:`run` when present.
MEASURED_GPU = REPO / "bench" / "gpu_steps.json"
AUDIO, IMAGE = 65535, 224
#: Clips per split (train, val, test): the sizes of the published split lists the paper's
#: config downloads (AV-Robustness-CVPR21/data/*.csv), before any clip is lost to download.
CLIPS = {"music": (312, 104, 104), "kinetics_sounds": (9309, 3103, 3104), "ave": (3339, 402, 402)}
#: NVIDIA DeepLearningExamples, PyTorch ResNet-50 v1.5, README "Training performance" (one GPU,
#: batch 256, NGC pytorch-21.03): DGX A100 80GB with TF32 (torch's default for convolutions)
#: and DGX-1 V100 16GB with FP32, images/s.
SOURCE = (
    "https://github.com/NVIDIA/DeepLearningExamples/blob/master/PyTorch/"
    "Classification/ConvNets/resnet50v1.5/README.md"
)
GPU_REFERENCES = {"A100 (TF32)": 938.0, "V100 (FP32)": 367.0}
GPU_RULES = ("train", "finetune", "memory_bank", "evaluate", "localization", "embeddings")
UNIMODAL = ("audio", "visual")
CPU = torch.device("cpu")


def step_seconds(fn: Callable[[], object], reps: int, device: torch.device = CPU) -> float:
    """One call's time after a warm-up call (:func:`_timing.interleaved`): on the CPU the
    smallest CPU time of ``reps`` calls, on a GPU the median wall time, waited for on it."""
    times = interleaved({"step": fn}, reps, str(device))["step"]
    return statistics.median(times) if device.type == "cuda" else min(times)


@dataclass
class Fit:
    """CPU seconds of one step as ``fixed + per_sample * batch``."""

    fixed: float
    per_sample: float

    @classmethod
    def of(cls, measure: Callable[[int], float], small: int, large: int) -> Fit:
        t_small, t_large = measure(small), measure(large)
        per_sample = max(t_large - t_small, 0.0) / (large - small)
        return cls(max(t_small - per_sample * small, 0.0), per_sample)

    def __call__(self, batch: int) -> float:
        return self.fixed + self.per_sample * batch

    def over(self, clips: int, batch: int) -> float:
        """CPU seconds for ``clips`` clips in batches of ``batch``."""
        return math.ceil(clips / batch) * self.fixed + clips * self.per_sample


def _inputs(batch: int, device: torch.device = CPU) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    gen = torch.Generator().manual_seed(batch)
    audio = torch.rand(batch, AUDIO, generator=gen) * 2 - 1
    visual = torch.rand(batch, 3, IMAGE, IMAGE, generator=gen)
    labels = torch.zeros(batch, dtype=torch.long)
    return {"audio": audio.to(device), "visual": visual.to(device)}, labels.to(device)


def measure_steps(quick: bool, device: torch.device = CPU) -> dict[str, Fit]:
    """Fits of every step the cost model uses (see the module docstring): CPU seconds of one
    thread, or on a GPU wall seconds waited for on the device, with the jobs' determinism."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(variant="concat", num_classes=11)).to(device)
    optim = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    steps = 2 if quick else 10
    on_gpu = device.type == "cuda"

    def seconds(fn: Callable[[], object], cpu_reps: int = 1) -> float:
        return step_seconds(fn, 5 if on_gpu else cpu_reps, device)

    def train_step(batch: int) -> float:
        inputs, labels = _inputs(batch, device)

        def step() -> None:
            model.train()
            optim.zero_grad()
            torch.nn.functional.cross_entropy(model(**inputs), labels).backward()
            optim.step()

        return seconds(step)

    def forward(batch: int) -> float:
        inputs, _ = _inputs(batch, device)
        model.eval()
        with torch.no_grad():
            return seconds(lambda: model(**inputs), cpu_reps=2)

    def attack_batch(name: str) -> Callable[[int], float]:
        budgets = {m: restrict_budget(b, ("audio", "visual")) for m, b in
                   mode_budgets(MODES, 0.006, True).items()}  # fmt: skip
        by_key = {tuple(sorted(b)): b for b in budgets.values()}
        kwargs = {} if name == "fgsm" else {"steps": steps}

        def run(batch: int) -> float:
            inputs, labels = _inputs(batch, device)
            attacker = Attacker(model.eval(), name, by_key, **kwargs)

            def job_batch() -> None:
                advs = attacker(inputs, labels)
                predict_sets(model, list(advs.values()), share_features=True)

            scale = 10 / steps if name != "fgsm" else 1
            if on_gpu:
                return step_seconds(job_batch, 3, device) * scale
            start = time.process_time()  # no warm-up: the forward passes above warmed up
            job_batch()
            return (time.process_time() - start) * scale

        return run

    queries, memory = make_problem(512, 1024, 32, seed=0)
    queries, memory = queries.float().to(device), memory.float().to(device)

    def lasso(batch: int) -> float:
        def code() -> None:
            f = queries[:batch].clone().requires_grad_(True)
            sparse_code(f, memory, 0.1).sum().backward()

        return seconds(code)

    resnet50 = torchvision.models.resnet50().to(device)
    r50_optim = torch.optim.SGD(resnet50.parameters(), lr=0.1)

    def resnet50_step(batch: int) -> float:
        images = torch.rand(batch, 3, IMAGE, IMAGE, device=device)
        labels = torch.zeros(batch, dtype=torch.long, device=device)

        def step() -> None:
            r50_optim.zero_grad()
            torch.nn.functional.cross_entropy(resnet50(images), labels).backward()
            r50_optim.step()

        return seconds(step)

    if on_gpu:  # the paper's batch sizes and half of them; ResNet-50 at the published 256
        train, ev, attack, r50 = (24, 48), (16, 32), (16, 32), (128, 256)
    else:
        train = ev = (1, 2) if quick else (2, 4)
        attack, r50 = (1, 2), (1, 2)
    with run_settings(torch.get_num_threads(), True, device):  # as the jobs run
        fits = {
            "train_step": Fit.of(train_step, *train),
            "forward": Fit.of(forward, *ev),
            "fgsm": Fit.of(attack_batch("fgsm"), *ev),
            "pgd": Fit.of(attack_batch("pgd"), *attack),
            "mim": Fit.of(attack_batch("mim"), *attack),
            "lasso": Fit.of(lasso, 8, 32),
        }
    fits["resnet50_step"] = Fit.of(resnet50_step, *r50)  # as NVIDIA's figure: no determinism
    return fits


def gpu_factor(fits: dict[str, Fit], gpu: str) -> float:
    """Speed-up of ``gpu`` over one CPU thread: its published ResNet-50 training images/s
    over the images/s measured here (batch 48)."""
    return GPU_REFERENCES[gpu] / (48 / fits["resnet50_step"](48))


@dataclass
class Job:
    rule: str
    wildcards: dict[str, str]
    seconds: float = 0.0  # CPU seconds, one thread
    after: list[tuple] = field(default_factory=list)

    @property
    def key(self) -> tuple:
        return (self.rule, *sorted(self.wildcards.items()))


def dry_run_jobs(output: str) -> list[Job]:
    """Rule and wildcards of every job a dry run lists (group members indented too)."""
    jobs: list[Job] = []
    for line in output.splitlines():
        if m := re.match(r"^\s*(?:local)?rule (\w+):$", line):
            jobs.append(Job(m.group(1), {}))
        elif jobs and (m := re.match(r"^\s+wildcards: (.*)$", line)):
            jobs[-1].wildcards = dict(i.split("=", 1) for i in m.group(1).split(", "))
    return jobs


def planned_jobs(root: Path) -> list[Job]:
    """Jobs of the paper's study from a dry run in a fresh copy of the workflow."""
    done = snakemake(["-n", "all", "--configfile", "config/paper.yaml"], root)
    if done.returncode != 0:
        raise RuntimeError(failure_reason(done.output))
    jobs = dry_run_jobs(done.output)
    counts = job_count(done.output)
    listed = {r: sum(j.rule == r for j in jobs) for r in counts if r != "total"}
    if listed != {r: n for r, n in counts.items() if r != "total"}:
        raise RuntimeError(f"dry run lists {listed}, its job stats say {counts}")
    return jobs


def _key(rule: str, **wildcards: str) -> tuple:
    return (rule, *sorted(wildcards.items()))


def cost_jobs(jobs: list[Job], fits: dict[str, Fit], config: dict) -> list[Job]:
    """The GPU rules' jobs with their CPU seconds and the jobs each waits for."""
    train_batch = config["train"]["batch_size"]
    eval_batch = config["evaluation"]["batch_size"]
    steps = config["evaluation"]["steps"]
    # per sample, two modalities: a call codes a batch, and on a GPU its fixed cost dominates
    lasso = fits["lasso"](eval_batch) / eval_batch * 2
    out = []
    for job in (j for j in jobs if j.rule in GPU_RULES):
        w = job.wildcards
        n_train, n_val, n_test = CLIPS[w["dataset"]]
        model = w.get("model", "")
        if job.rule in ("train", "finetune"):
            if job.rule == "train":
                epochs = plan.variant_settings(config, model, w["dataset"])["epochs"]
            else:
                base = model.removesuffix("_exfmem")
                epochs = plan.finetune_settings(config, base, w["dataset"])["epochs"]
                job.after = [_key("memory_bank", dataset=w["dataset"], model=base)]
            per_epoch = fits["train_step"].over(n_train, train_batch)
            per_epoch += fits["forward"].over(n_val, eval_batch)
            if job.rule == "finetune":
                per_epoch += (n_train + n_val) * lasso
            job.seconds = epochs * per_epoch
        elif job.rule == "memory_bank":
            job.seconds = fits["forward"].over(n_train, eval_batch)
            job.after = [_key("train", dataset=w["dataset"], model=model)]
        elif job.rule == "evaluate":
            attack, defense = w["attack"], w["defense"]
            seconds = fits[attack].over(n_test, eval_batch)
            if model in UNIMODAL:  # one attacked mode of three
                seconds /= 3
            if defense == "exfmem":  # every gradient step and scoring codes both features
                grads = 1 if attack == "fgsm" else 3 * steps
                seconds += n_test * (grads + 4) * lasso
            job.seconds = seconds
            if plan.finetuned(config, model, defense):
                job.after = [_key("finetune", dataset=w["dataset"], model=model)]
            else:
                job.after = [_key("train", dataset=w["dataset"], model=model)]
            if defense == "exfmem":
                job.after.append(_key("memory_bank", dataset=w["dataset"], model=model))
        elif job.rule == "localization":
            samples = config["analysis"]["localization_samples"]
            job.seconds = fits[config["analysis"]["attack"]].over(samples, eval_batch)
            job.after = [_key("train", dataset=w["dataset"], model="localization")]
        elif job.rule == "embeddings":
            samples = min(config["analysis"]["tsne_samples"], n_test)
            job.seconds = 2 * fits[config["analysis"]["tsne_attack"]].over(samples, eval_batch)
            job.after = [_key("train", dataset=w["dataset"], model=m) for m in ("concat", "minsim")]
        out.append(job)
    return out


def wall_seconds(jobs: list[Job], gpus: int) -> float:
    """Makespan of a list schedule on ``gpus`` devices: ready jobs, longest path to the end
    first (a dependency-aware greedy schedule; at least the critical path and total / gpus)."""
    by_key = {j.key: j for j in jobs}
    children: dict[tuple, list[tuple]] = {k: [] for k in by_key}
    waiting = {k: 0 for k in by_key}
    for j in jobs:
        for dep in j.after:
            if dep in by_key:
                children[dep].append(j.key)
                waiting[j.key] += 1
    tail: dict[tuple, float] = {}

    def longest(key: tuple) -> float:
        if key not in tail:
            tail[key] = by_key[key].seconds + max((longest(c) for c in children[key]), default=0)
        return tail[key]

    sys.setrecursionlimit(10000)
    ready = [(-longest(k), k) for k, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    running: list[tuple[float, tuple]] = []
    now, free = 0.0, gpus
    while ready or running:
        while ready and free:
            _, key = heapq.heappop(ready)
            heapq.heappush(running, (now + by_key[key].seconds, key))
            free -= 1
        now, key = heapq.heappop(running)
        free += 1
        for child in children[key]:
            waiting[child] -= 1
            if not waiting[child]:
                heapq.heappush(ready, (-longest(child), child))
    return now


def _row(figure: str, value: float | None, **extra) -> dict:
    return {"benchmark": "study_cost", "figure": figure, "value": value, "target": None,
            "met": None} | extra  # fmt: skip


def section(fits: dict[str, Fit], jobs: list[Job], gpus: tuple[int, ...]) -> str:
    """Markdown: per-rule table, wall times, the steps measured and the scaling stated."""
    factors = {gpu: gpu_factor(fits, gpu) for gpu in GPU_REFERENCES}
    cpu_rate = 48 / fits["resnet50_step"](48)
    lines = [
        "The paper's study (`config/paper.yaml`; clips per split as its published lists: "
        "MUSIC 312/104/104, Kinetics-Sounds 9309/3103/3104, AVE 3339/402/402, before "
        "download losses): CPU hours of one thread, from the steps measured here, and GPU "
        "hours at the speed-up of ResNet-50 training, NVIDIA's published images/s "
        f"([source]({SOURCE}): "
        + ", ".join(f"{g} {r:.0f}" for g, r in GPU_REFERENCES.items())
        + f") over this CPU thread's measured {cpu_rate:.2f} images/s ("
        + ", ".join(f"{g} {f:,.0f}x" for g, f in factors.items())
        + ").",
        "",
        "| rule | jobs | CPU-thread hours | "
        + " | ".join(f"{g} GPU-hours" for g in factors)
        + " | longest job, A100 hours |",
        "|---|---:|---:|" + "---:|" * (len(factors) + 1),
    ]
    a100 = factors["A100 (TF32)"]
    for rule in (*GPU_RULES, "all"):
        mine = [j for j in jobs if rule in (j.rule, "all")]
        if not mine:
            continue
        cpu = sum(j.seconds for j in mine) / 3600
        longest = "" if rule == "all" else f"{max(j.seconds for j in mine) / 3600 / a100:.2f}"
        per_gpu = " | ".join(f"{cpu / f:,.1f}" for f in factors.values())
        lines.append(f"| {rule} | {len(mine)} | {cpu:,.0f} | {per_gpu} | {longest} |")
    walls = {g: {n: wall_seconds(jobs, n) / 3600 / f for n in gpus} for g, f in factors.items()}
    lines += [
        "",
        "Wall time on N GPUs (a dependency-aware list schedule of these jobs: no queue wait, "
        "data loading keeping up): "
        + "; ".join(
            f"{g}: " + ", ".join(f"{n} GPU{'s' if n > 1 else ''} {h:,.1f} h" for n, h in w.items())
            for g, w in walls.items()
        )
        + ".",
        "",
        "Steps measured (CPU seconds of one thread, `fixed + per_sample x batch`): "
        + "; ".join(f"{k} {f.fixed:.2f} + {f.per_sample:.3f} b" for k, f in fits.items())
        + ". The scaling assumes our networks (ResNet18 visual, 2-D conv audio net) gain on a "
        "GPU what ResNet-50 training gains; the published figures are at batch 256 with a "
        "tuned container, ours run at 48 (training) and 32 (evaluation) with deterministic "
        "kernels, so the GPU figures are optimistic. Not counted: `download` and "
        "`preprocess` (CPU jobs), tables and figures (seconds). Unimodal models are charged "
        "a third of a concat model's attack (one attacked mode of three, both encoders' "
        "cost: an upper bound); ExFMem's sparse coding is charged forward and backward at "
        "every gradient step and scoring pass.",
    ]
    return "\n".join(lines)


def measure_gpu(path: Path, quick: bool = False) -> dict:
    """Time the steps on this machine's GPU and write them to ``path`` (JSON), with the
    device, torch and CUDA versions: the jobs' costs are then computed where Snakemake is."""
    if not torch.cuda.is_available():
        raise SystemExit("measure-gpu: no usable CUDA device on this machine")
    fits = measure_steps(quick, torch.device("cuda"))
    record = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "fits": {k: {"fixed": f.fixed, "per_sample": f.per_sample} for k, f in fits.items()},
    }
    atomic.write_text(path, json.dumps(record, indent=1) + "\n")
    return record


def gpu_rows(measured: dict, planned: list[Job], config: dict, gpus: tuple[int, ...]) -> list:
    """Rows and a section from step times measured on a GPU (:func:`measure_gpu`): the
    jobs' GPU seconds are their measured steps' sums, no scaling."""
    fits = {k: Fit(**v) for k, v in measured["fits"].items()}
    jobs = cost_jobs([Job(j.rule, dict(j.wildcards)) for j in planned], fits, config)
    name = measured["device"]
    hours = sum(j.seconds for j in jobs) / 3600
    r50 = 256 / fits["resnet50_step"](256)
    rows = [
        _row(f"paper study: one training step, concat model, batch 48, {name} s",
             round(fits["train_step"](48), 4)),
        *(
            _row(f"paper study: one evaluation batch of 32 (A, V, AV + scoring), "
                 f"{n.upper()}{'' if n == 'fgsm' else '-10'}, {name} s", round(fits[n](32), 4))
            for n in ("fgsm", "pgd", "mim")
        ),
        _row(f"ResNet-50 training at batch 256 on {name}, images/s (NVIDIA's A100 TF32 figure: "
             f"{GPU_REFERENCES['A100 (TF32)']:.0f})", round(r50)),
        _row(f"paper study: {name} GPU-hours (measured steps)", round(hours, 2)),
        *(
            _row(f"paper study: wall hours on {n} x {name} (list schedule, measured steps)",
                 round(wall_seconds(jobs, n) / 3600, 3))
            for n in gpus
        ),
    ]  # fmt: skip
    per_rule = [
        f"| {rule} | {len(mine)} | {sum(j.seconds for j in mine) / 3600:.3f} | "
        f"{max(j.seconds for j in mine) / 60:.1f} |"
        for rule in GPU_RULES
        if (mine := [j for j in jobs if j.rule == rule])
    ]
    body = "\n".join([
        f"Step times measured on one {name} (torch {measured['torch']}, CUDA "
        f"{measured['cuda']}, {measured['measured']}; `python bench/study_cost.py --measure-gpu "
        f"{MEASURED_GPU.relative_to(REPO)}`): wall seconds waited for on the device, median "
        "of repeated calls after warm-up, at the paper's batch sizes, with the jobs' "
        "deterministic settings. The jobs and clip counts are those of the CPU section above; "
        "each job's GPU time is its steps' sum, no scaling.",
        "",
        "| rule | jobs | GPU-hours | longest job, minutes |",
        "|---|---:|---:|---:|",
        *per_rule,
        f"| all | {len(jobs)} | {hours:.2f} | |",
        "",
        "Steps (s, `fixed + per_sample x batch`): "
        + "; ".join(f"{k} {f.fixed:.4f} + {f.per_sample:.5f} b" for k, f in fits.items())
        + f". ResNet-50 training at batch 256 runs at {r50:,.0f} images/s here. Not counted: "
        "data loading (the figure assumes the loader keeps up), job start-up, queue waits.",
    ])  # fmt: skip
    rows[-1]["section"] = {"title": f"What the paper's study costs on one {name}", "body": body}
    return rows


def run(
    quick: bool = False, gpus: tuple[int, ...] = (1, 4, 8, 16), measured: Path = MEASURED_GPU
) -> list[dict]:
    """Rows {benchmark, figure, value, target, met}; the per-rule table as a section. Step
    times measured on a GPU (``measured``, when that file exists) add their own rows."""
    torch.set_num_threads(1)
    config = yaml.safe_load(PAPER.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        planned = planned_jobs(fresh_copy(Path(tmp) / "paper"))
    gpu_measured = (
        gpu_rows(json.loads(measured.read_text()), planned, config, gpus)
        if measured.exists()
        else []
    )
    fits = measure_steps(quick)
    jobs = cost_jobs(planned, fits, config)
    cpu_hours = sum(j.seconds for j in jobs) / 3600
    counts = {r: sum(j.rule == r for j in jobs) for r in GPU_RULES}
    rows = [
        _row("paper study: one training step, concat model, batch 48, CPU s (1 thread)",
             round(fits["train_step"](48), 2)),
        *(
            _row(f"paper study: one evaluation batch of 32 (A, V, AV + scoring), "
                 f"{name.upper()}{'' if name == 'fgsm' else '-10'}, CPU s (1 thread)",
                 round(fits[name](32), 1))
            for name in ("fgsm", "pgd", "mim")
        ),
        _row("paper study: ExFMem sparse coding fwd+bwd, 512x1024 bank, batch 32, CPU s",
             round(fits["lasso"](32), 3)),
        _row("paper study: GPU-rule jobs", len(jobs), jobs=counts),
        _row("paper study: CPU-thread hours (extrapolated)", round(cpu_hours),
             section={"title": "What the paper's study costs",
                      "body": section(fits, jobs, gpus)}),
    ]  # fmt: skip
    for gpu in GPU_REFERENCES:
        factor = gpu_factor(fits, gpu)
        rows += [
            _row(f"CPU thread -> one {gpu}: speed-up from ResNet-50 training images/s",
                 round(factor, 1), published=GPU_REFERENCES[gpu], source=SOURCE),
            _row(f"paper study: {gpu} GPU-hours (extrapolated)", round(cpu_hours / factor, 1)),
            *(
                _row(f"paper study: wall hours on {n} x {gpu} (list schedule)",
                     round(wall_seconds(jobs, n) / 3600 / factor, 2))
                for n in gpus
            ),
        ]  # fmt: skip
    return rows + gpu_measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--gpus", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument(
        "--measure-gpu",
        type=Path,
        metavar="FILE",
        help="only time the steps on this machine's GPU and write them to FILE (no Snakemake "
        f"needed); the rows use {MEASURED_GPU.relative_to(REPO)} when it exists",
    )
    args = parser.parse_args()
    if args.measure_gpu:
        print(json.dumps(measure_gpu(args.measure_gpu, args.quick), indent=1))
        return
    for row in run(args.quick, tuple(args.gpus)):
        print(f"{row['figure']}: {row['value']}")
        if row.get("section"):
            print(row["section"]["body"])


if __name__ == "__main__":
    main()
