"""The full defense as Tian & Xu train it: MinSim+ExFMem fine-tuned through the sparse coding.

The authors' ``main_defense.py`` (``train_defense_*.sh``) wraps the trained MinSim model in
ExFMem and trains the whole network end to end: initialised from the MinSim checkpoint, the
memory banks fixed (built from the MinSim model beforehand, ``--dic fix``), the networks in
training mode, one learning rate 1e-4 for the audio net, the visual net and the classifier,
loss CE + mean cosine of the *denoised* audio and visual features (MinSim), 100 epochs on
MUSIC and AVE and 30 on Kinetics-Sounds, the best-validation weights kept. The gradient of
the loss reaches both encoders through the sparse codes
(:func:`avmodels.robustness.lasso.sparse_code`).

Here the banks are the ``memory_bank`` step's: features of the training clips computed by the
MinSim model in evaluation mode (evaluation transforms), before fine-tuning. The same banks
wrap the fine-tuned model when it is evaluated; they are not rebuilt after fine-tuning.

>>> summary = finetune_full_defense("minsim.pt", "memory/minsim.pt", ExfmemSettings(), cfg,
...                                 "manifest_train.csv", "manifest_val.csv", "ft.pt", "ft.csv")
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path

import torch

from avmodels.models.model import load_checkpoint
from avmodels.robustness.exfmem import exfmem_model, load_banks
from avmodels.settings import ExfmemSettings
from avmodels.study.running import Manifest, resolve_device, run_settings, seed_everything
from avmodels.study.train import TrainConfig, fit, summarize


def finetune_full_defense(
    checkpoint: str | Path,
    memory: str | Path | Mapping[str, torch.Tensor],
    exfmem: ExfmemSettings,
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
    """Fine-tune the model of ``checkpoint`` inside ExFMem (banks ``memory``, settings
    ``exfmem``) with ``train_cfg``; write the best-validation base model and a per-epoch log.

    The checkpoint holds the base network only (the banks stay in their own file) with
    ``finetuned_from`` and the ``exfmem`` settings it was trained under; evaluate it wrapped
    in the same banks. Returns the summary of :func:`avmodels.study.train.train` (whose empty-split
    error names ``dataset``).
    """
    dev = resolve_device(device)
    banks = memory if isinstance(memory, Mapping) else load_banks(memory)
    with run_settings(train_cfg.threads, train_cfg.deterministic, dev):
        seed_everything(train_cfg.seed)
        base, _ = load_checkpoint(checkpoint)
        model = exfmem_model(base, banks, exfmem).to(dev)
        extra = {"finetuned_from": str(checkpoint), "exfmem": asdict(exfmem)}
        history = fit(
            model,
            train_cfg,
            train_manifest,
            val_manifest,
            checkpoint_path,
            log_csv,
            device=dev,
            progress=progress,
            saved_model=base,
            extra=extra,
            dataset=dataset,
        )
    return summarize(history, checkpoint_path, log_csv)
