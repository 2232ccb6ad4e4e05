"""Seeded training loop for the audio-visual event recognition models.

Settings follow Tian & Xu, "Can audio-visual integration strengthen robustness under
multimodal attacks?", CVPR 2021 (arXiv:2104.02000), Sec. A.5: SGD with momentum 0.9,
weight decay 1e-4, one learning rate per part of the network, step decay, and the
best-validation checkpoint kept.

Learning rates: the paper's text gives audio 1e-4 / visual 1e-3, the authors' code
audio 1e-3 / visual 1e-4 (ImageNet-pretrained ResNet18 fine-tuned slowly, audio net
trained from scratch faster). The code's values are the defaults here because they
are the ones that produced the published numbers; both are plain config values.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import random
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from avmodels import atomic
from avmodels.data.dataset import require_clips
from avmodels.models.model import ModelConfig, build_model, save_checkpoint
from avmodels.models.nets import AudioNet, VisualNet
from avmodels.robustness import defenses
from avmodels.settings import AUDIO_SAMPLES, IMAGE_SIZE, MODEL_KEYS, RESIZE_SIZE, InputSettings
from avmodels.study.running import (
    Manifest,
    accuracy_on,
    loader_workers,
    make_loader,
    model_modalities,
    resolve_device,
    run_settings,
    seed_everything,
    split_batch,
)

log = logging.getLogger(__name__)

LOG_COLUMNS = ["epoch", "lr", "train_loss", "train_acc", "val_acc", "seconds"]


@dataclass
class TrainConfig:
    """Optimisation and data settings of one training run (defaults: MUSIC, reference code)."""

    epochs: int = 100
    batch_size: int = 12
    lr_audio: float = 1e-3  # reference code; the paper's text says 1e-4
    lr_visual: float = 1e-4  # reference code; the paper's text says 1e-3
    lr_head: float = 1e-3  # fusion + classifier
    lr_loss: float = 1e-3  # parameters of the training loss (PCL class centres)
    momentum: float = 0.9
    weight_decay: float = 1e-4
    milestones: tuple[int, ...] = (30, 60, 90)  # epochs where every lr is multiplied by gamma
    gamma: float = 0.1
    seed: int = 1234
    loss: str = "ce"  # a key of defenses.TRAINING_LOSSES: "ce", "minsim", "maxsim", "pcl"
    loss_weight: float = 1.0  # weight of the defense term added to cross-entropy
    threads: int = 1  # torch CPU threads
    audio_samples: int = AUDIO_SAMPLES
    image_size: int = IMAGE_SIZE
    resize_size: int = RESIZE_SIZE
    num_workers: int | None = None  # DataLoader workers; None: loader_workers(threads, device)
    deterministic: bool = True  # torch.use_deterministic_algorithms during the run

    def __post_init__(self) -> None:
        self.milestones = tuple(int(m) for m in self.milestones)
        if self.loss not in defenses.TRAINING_LOSSES:
            valid = ", ".join(sorted(defenses.TRAINING_LOSSES))
            raise ValueError(f"unknown training loss {self.loss!r}; valid: {valid}")

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], inputs: InputSettings, *, seed: int, threads: int
    ) -> TrainConfig:
        """From a variant's merged training settings (``plan.variant_settings`` or
        ``plan.finetune_settings``; the network's ``MODEL_KEYS`` left out) and the inputs."""
        own = {k: v for k, v in settings.items() if k not in MODEL_KEYS}
        return cls(**own, seed=seed, threads=threads, **asdict(inputs))


def parameter_groups(
    model: nn.Module, cfg: TrainConfig, loss_params: list[nn.Parameter]
) -> list[dict]:
    """SGD groups: audio net, visual net, everything else of the model, loss parameters."""
    audio = {id(p) for m in model.modules() if isinstance(m, AudioNet) for p in m.parameters()}
    visual = {id(p) for m in model.modules() if isinstance(m, VisualNet) for p in m.parameters()}
    groups: dict[str, list[nn.Parameter]] = {"audio": [], "visual": [], "head": []}
    for p in model.parameters():
        if not p.requires_grad:
            continue
        key = "audio" if id(p) in audio else "visual" if id(p) in visual else "head"
        groups[key].append(p)
    lrs = {"audio": cfg.lr_audio, "visual": cfg.lr_visual, "head": cfg.lr_head}
    out = [{"name": k, "params": v, "lr": lrs[k]} for k, v in groups.items() if v]
    if loss_params:
        out.append({"name": "loss", "params": loss_params, "lr": cfg.lr_loss})
    return out


def train(
    model_config: ModelConfig,
    train_cfg: TrainConfig,
    train_manifest: Manifest,
    val_manifest: Manifest,
    checkpoint_path: str | Path,
    log_csv: str | Path,
    *,
    device: str | torch.device | None = None,
    progress: bool = True,
    dataset: str = "",
) -> dict:
    """Train one model, keep its best-validation checkpoint and write a per-epoch log.

    Returns a summary: ``best_epoch``, ``best_val_acc``, ``final_train_loss``,
    ``history`` (the log rows), ``checkpoint``, ``log_csv``. An empty training or
    validation split is an error naming ``dataset`` (:class:`avmodels.data.dataset.EmptySplit`).
    Two runs with the same arguments give the same checkpoint and log (but the timing).
    """
    dev = resolve_device(device)
    with run_settings(train_cfg.threads, train_cfg.deterministic, dev):
        seed_everything(train_cfg.seed)
        model = build_model(model_config).to(dev)
        history = fit(
            model,
            train_cfg,
            train_manifest,
            val_manifest,
            checkpoint_path,
            log_csv,
            device=dev,
            progress=progress,
            dataset=dataset,
        )
    return summarize(history, checkpoint_path, log_csv)


def fit(
    model: nn.Module,
    cfg: TrainConfig,
    train_manifest: Manifest,
    val_manifest: Manifest,
    checkpoint_path: str | Path,
    log_csv: str | Path,
    *,
    device: torch.device,
    progress: bool = True,
    saved_model: nn.Module | None = None,
    extra: Mapping[str, Any] | None = None,
    dataset: str = "",
) -> list[dict]:
    """Optimise ``model`` (already on ``device``, seeded) with ``cfg``; the per-epoch log rows.

    ``model`` is an ``AVModel`` or a wrapper with ``encode``/``head``/``config`` (ExFMem); the
    best-validation checkpoint holds ``saved_model`` (default ``model``) and ``extra``.
    A training or validation manifest without clips raises
    :class:`avmodels.data.dataset.EmptySplit` (naming ``dataset``) before any epoch.
    """
    require_clips(train_manifest, "train", dataset)
    require_clips(val_manifest, "validation", dataset)
    loss_fn = defenses.make_training_loss(
        cfg.loss,
        model.config.num_classes,
        model.config.feature_dim,
        cfg.loss_weight,
        model_modalities(model),
    ).to(device)
    optimizer = torch.optim.SGD(
        parameter_groups(model, cfg, list(loss_fn.parameters())),
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=list(cfg.milestones), gamma=cfg.gamma
    )
    data = {
        "batch_size": cfg.batch_size,
        "audio_samples": cfg.audio_samples,
        "image_size": cfg.image_size,
        "resize_size": cfg.resize_size,
        "seed": cfg.seed,
        "num_workers": (
            loader_workers(cfg.threads, device) if cfg.num_workers is None else cfg.num_workers
        ),
        "pin_memory": device.type == "cuda",
    }
    train_loader = make_loader(train_manifest, train=True, **data)
    val_loader = make_loader(val_manifest, train=False, **data)
    saved = (saved_model or model, dict(extra or {}))
    return _fit(
        model,
        loss_fn,
        optimizer,
        scheduler,
        train_loader,
        val_loader,
        cfg,
        device,
        Path(checkpoint_path),
        Path(log_csv),
        progress,
        saved,
    )


def summarize(history: list[dict], checkpoint_path: str | Path, log_csv: str | Path) -> dict:
    """The run's summary: best epoch and validation accuracy, final loss, log rows, paths."""
    best = max(history, key=lambda row: (row["val_acc"], -row["epoch"]))
    return {
        "best_epoch": best["epoch"],
        "best_val_acc": best["val_acc"],
        "final_train_loss": history[-1]["train_loss"],
        "history": history,
        "checkpoint": str(checkpoint_path),
        "log_csv": str(log_csv),
    }


def _fit(
    model: nn.Module,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    train_loader: DataLoader,
    val_loader: DataLoader,
    cfg: TrainConfig,
    device: torch.device,
    checkpoint_path: Path,
    log_csv: Path,
    progress: bool,
    saved: tuple[nn.Module, dict[str, Any]],
) -> list[dict]:
    """The epoch loop: train, validate, log a row, save ``saved`` on a new best accuracy.

    After every epoch the whole run state goes atomically to :func:`resume_path`; a run
    that finds it (a retried or requeued job) continues after its last finished epoch.
    """
    resume = resume_path(checkpoint_path)
    state = _load_resume(resume, _run_key(cfg, saved[0], train_loader, val_loader))
    history: list[dict] = state["history"] if state else []
    best_acc: float = state["best_acc"] if state else -1.0
    if state:
        model.load_state_dict(state["model"])
        loss_fn.load_state_dict(state["loss"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        train_loader.sampler.generator.set_state(state["loader_rng"])
        _set_rng(state["rng"])
        atomic.write_bytes(checkpoint_path, state["best_checkpoint"])
        log.info("resuming after epoch %d from %s", len(history), resume)
    _write_log(log_csv, history)
    bar = tqdm(
        total=cfg.epochs * len(train_loader), file=sys.stderr, disable=not progress, desc="train"
    )
    bar.update(len(history) * len(train_loader))
    for epoch in range(len(history) + 1, cfg.epochs + 1):
        start = time.perf_counter()
        train_loader.sampler.dataset.set_epoch(epoch)
        lr = next(g["lr"] for g in optimizer.param_groups if g["name"] == "head")
        train_loss, train_acc = _train_epoch(model, loss_fn, optimizer, train_loader, device, bar)
        scheduler.step()
        val_acc, _, _ = accuracy_on(model, val_loader, device)
        row = {
            "epoch": epoch,
            "lr": lr,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "val_acc": val_acc,
            "seconds": round(time.perf_counter() - start, 3),
        }
        history.append(row)
        _write_log(log_csv, history)
        bar.set_postfix(epoch=epoch, loss=f"{train_loss:.3f}", val=f"{val_acc:.1f}")
        if val_acc > best_acc:
            best_acc = val_acc
            save_checkpoint(
                checkpoint_path,
                saved[0],
                **saved[1],
                train_config=asdict(cfg),
                epoch=epoch,
                val_accuracy=val_acc,
                loss_state=loss_fn.state_dict(),  # PCL's class centres; empty otherwise
            )
            log.info("epoch %d: new best val accuracy %.2f", epoch, val_acc)
        run_state = {
            "key": _run_key(cfg, saved[0], train_loader, val_loader),
            "history": history,
            "best_acc": best_acc,
            "best_checkpoint": checkpoint_path.read_bytes(),
            "model": model.state_dict(),
            "loss": loss_fn.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "loader_rng": train_loader.sampler.generator.get_state(),
            "rng": _get_rng(),
        }
        atomic.torch_save(run_state, resume)
    bar.close()
    resume.unlink(missing_ok=True)
    return history


def resume_path(checkpoint_path: str | Path) -> Path:
    """Where a run keeps the state it resumes from: beside its checkpoint, until it ends."""
    path = Path(checkpoint_path)
    return path.with_name(f".{path.name}.resume")


def _run_key(cfg: TrainConfig, model: nn.Module, *loaders: DataLoader) -> str:
    """What a resumed run must share with the saved one: settings, model and clip lists."""
    parts = [repr(asdict(cfg)), repr(model.config)]
    parts += [repr(getattr(loader.dataset, "items", loader.dataset).clips) for loader in loaders]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _load_resume(path: Path, key: str) -> dict | None:
    """The saved run state of ``path``, when it exists and was saved by a run with ``key``."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # a state that cannot be read only costs the epochs it held
        log.warning("ignoring unreadable resume state %s: %s", path, err)
        return None
    if state.get("key") != key:
        log.warning("ignoring resume state %s of other training settings", path)
        return None
    return state


def _get_rng() -> dict[str, Any]:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng(state: Mapping[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _write_log(log_csv: Path, history: list[dict]) -> None:
    """The per-epoch log, rewritten atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, LOG_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    atomic.write_bytes(log_csv, buffer.getvalue().encode())


def _train_epoch(
    model: nn.Module,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: DataLoader,
    device: torch.device,
    bar: tqdm,
) -> tuple[float, float]:
    """One pass over the training set; mean loss and accuracy (percent)."""
    model.train()
    loss_fn.train()
    total_loss = 0.0
    correct = total = 0
    for batch in loader:
        inputs, labels = split_batch(batch, model_modalities(model), device)
        feats = model.encode(**inputs)
        logits = model.head(feats)
        loss = loss_fn(logits, labels, feats)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total_loss += float(loss.detach()) * len(labels)
        correct += int((logits.detach().argmax(1) == labels).sum())
        total += len(labels)
        bar.update(1)
    return total_loss / max(total, 1), 100.0 * correct / max(total, 1)
