"""The full defense fine-tuned through the sparse coding: gradients, a real step, the plan."""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from studies import copy_workflow, snakemake, tail
from test_train import make_manifests, tiny_config

from avmodels.models.model import ModelConfig, build_model, load_checkpoint, save_checkpoint
from avmodels.robustness.defenses import minsim_loss
from avmodels.robustness.exfmem import ExFMemModel, build_memory_banks
from avmodels.settings import ExfmemSettings
from avmodels.study.finetune import finetune_full_defense
from avmodels.workflow import plan

INPUTS = {"audio_samples": 4096, "image_size": 32, "resize_size": 36}


def _inputs(batch: int = 4) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {
        "audio": (0.5 * torch.randn(batch, 4096, generator=gen)).clamp(-1, 1),
        "visual": torch.rand(batch, 3, 32, 32, generator=gen),
    }


def _encoder_grads(model: torch.nn.Module) -> dict[str, float]:
    return {
        name: sum(float(p.grad.abs().sum()) for p in net.parameters() if p.grad is not None)
        for name, net in (("audio", model.audio_net), ("visual", model.visual_net))
    }


def test_gradients_reach_both_encoders_only_through_the_sparse_codes() -> None:
    torch.manual_seed(0)
    base = build_model(ModelConfig(variant="concat", num_classes=2)).eval()
    inputs, labels = _inputs(), torch.tensor([0, 1, 0, 1])
    with torch.no_grad():
        banks = build_memory_banks(base.encode(**inputs), size=8, seed=0)
    # blend 1: the classifier sees M a only, so every gradient to an encoder passes the coder
    defended = ExFMemModel(base, banks, lam=1e-3, blend=1.0, max_iter=100, tol=1e-6)
    feats = defended.encode(**inputs)
    loss = minsim_loss(defended.head(feats), labels, feats)
    loss.backward()
    grads = _encoder_grads(base)
    assert all(g > 0 and g == g for g in grads.values()), grads
    # the codes are what moved: with lambda so large that every code is 0, no gradient is left
    base.zero_grad(set_to_none=True)
    silent = ExFMemModel(base, banks, lam=1e6, blend=1.0, max_iter=100, tol=1e-6)
    feats = silent.encode(**inputs)
    torch.nn.functional.cross_entropy(silent.head(feats), labels).backward()
    assert _encoder_grads(base) == {"audio": 0.0, "visual": 0.0}


@pytest.fixture(scope="module")
def manifests(tmp_path_factory) -> dict[str, Path]:
    return make_manifests(tmp_path_factory.mktemp("clips"))


def test_a_finetuning_step_changes_both_encoders(manifests, tmp_path: Path) -> None:
    torch.manual_seed(0)
    base = build_model(ModelConfig(variant="concat", num_classes=2))
    save_checkpoint(tmp_path / "minsim.pt", base, train_config={"loss": "minsim"})
    before = {k: v.clone() for k, v in base.state_dict().items()}
    with torch.no_grad():
        feats = base.eval().encode(**_inputs(6))
    banks = build_memory_banks(feats, size=6, seed=0)
    cfg = tiny_config(epochs=1, loss="minsim", lr_audio=1e-4, lr_visual=1e-4, lr_head=1e-4)
    exfmem = ExfmemSettings(lam=1e-3, blend=1.0, max_iter=100, tol=1e-6)
    summary = finetune_full_defense(
        tmp_path / "minsim.pt",
        banks,
        exfmem,
        cfg,
        manifests["train"],
        manifests["val"],
        tmp_path / "ft.pt",
        tmp_path / "ft.csv",
        device="cpu",
        progress=False,
    )
    log = pd.read_csv(tmp_path / "ft.csv")
    assert log["epoch"].tolist() == [1] and log["train_loss"].notna().all()
    assert summary["best_epoch"] == 1
    tuned, extra = load_checkpoint(tmp_path / "ft.pt")
    assert extra["finetuned_from"] == str(tmp_path / "minsim.pt")
    assert extra["exfmem"] == asdict(exfmem) and extra["train_config"]["loss"] == "minsim"
    after = tuned.state_dict()
    assert not any(k.startswith("bank_") for k in after)  # the banks stay in their own file
    for net in ("audio_net", "visual_net", "classifier"):
        weights = [k for k in before if k.startswith(net) and before[k].is_floating_point()]
        assert any(not torch.equal(before[k], after[k]) for k in weights), net


def _config(repo_dir: Path, name: str) -> dict:
    return yaml.safe_load((repo_dir / name).read_text())


def test_paper_settings_of_the_finetuning(repo_dir: Path) -> None:
    config = _config(repo_dir, "config/paper.yaml")
    assert plan.full_defense_mode(config) == "finetune"
    epochs = {}
    for dataset in ("music", "ave", "kinetics_sounds"):
        settings = plan.finetune_settings(config, "minsim", dataset)
        assert settings["lr_audio"] == settings["lr_visual"] == settings["lr_head"] == 1e-4
        assert (settings["loss"], settings["loss_weight"]) == ("minsim", 1.0)
        epochs[dataset] = settings["epochs"]
    assert epochs == {"music": 100, "ave": 100, "kinetics_sounds": 30}
    for name in ("config.yaml", "config/tiny.yaml"):
        small = _config(repo_dir, name)
        assert plan.full_defense_mode(small) == "finetune"
        assert small["full_defense"]["finetune"]["epochs"] <= 2
    assert plan.full_defense_mode({}) == "test_time"
    assert not plan.finetuned({"full_defense": {"mode": "test_time"}}, "minsim", "exfmem")
    assert not plan.finetuned(config, "concat", "exfmem")  # ExFMem alone stays test-time


JOB_RE = re.compile(r"^\s*(?:local)?rule (\w+):\s*$", re.M)


def _dry_run(repo_dir: Path, root: Path, configfile: str) -> dict[str, list[dict[str, str]]]:
    """Jobs of ``snakemake -n all`` by rule, each with its ``input``/``output``/``wildcards``."""
    done = snakemake(copy_workflow(repo_dir, root), "-n", "all", configfile=configfile)
    assert done.returncode == 0, tail(done.stdout)
    jobs: dict[str, list[dict[str, str]]] = {}
    for block in re.split(r"\n(?=\s*(?:local)?rule \w+:)", done.stdout):
        found = JOB_RE.match(block)
        if found:
            fields = dict(re.findall(r"^\s+(\w+): (.*)$", block, re.M))
            jobs.setdefault(found.group(1), []).append(fields)
    return jobs


@pytest.mark.parametrize("mode", ["finetune", "test_time"])
def test_paper_plan_runs_the_finetuning(repo_dir: Path, tmp_path: Path, mode: str) -> None:
    config = _config(repo_dir, "config/paper.yaml")
    config["full_defense"]["mode"] = mode
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(config))
    jobs = _dry_run(repo_dir, tmp_path / "wf", str(tmp_path / "cfg.yaml"))
    tuned = {ds: f"results/{ds}/models/minsim_exfmem/checkpoint.pt" for ds in config["datasets"]}
    full = [j for j in jobs["evaluate"] if "model=minsim, defense=exfmem" in j["wildcards"]]
    assert {j["wildcards"].split(",")[0] for j in full} == {f"dataset={d}" for d in tuned}
    if mode == "test_time":
        assert "finetune" not in jobs
        assert not any("minsim_exfmem" in j["input"] for j in full)
        return
    outputs = sorted(j["output"].split(", ")[0] for j in jobs["finetune"])
    assert outputs == sorted(tuned.values())
    for job in full:
        dataset = job["wildcards"].split(",")[0].removeprefix("dataset=")
        assert job["input"].split(", ")[0] == tuned[dataset]
    others = [j for j in jobs["evaluate"] if j not in full]
    assert others and not any("minsim_exfmem" in j["input"] for j in others)
