"""A trained model as the evaluation sees it: its test-time defense and the attacker's loss."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from avmodels.attacks import LossFn
from avmodels.defenses import ExFMemModel, adaptive_attack_loss
from avmodels.model import load_checkpoint


def load_banks(path: str | Path) -> dict[str, torch.Tensor]:
    """The memory banks ``{modality: (d, K)}`` written by the ``memory_bank`` step."""
    return torch.load(path, map_location="cpu", weights_only=True)


def exfmem_model(
    base: nn.Module, banks: Mapping[str, torch.Tensor], exfmem: Mapping[str, Any] | None = None
) -> ExFMemModel:
    """``base`` inside ExFMem with the config's ``exfmem`` settings (the same for the
    evaluation and the full defense's fine-tuning)."""
    settings = dict(exfmem or {})
    return ExFMemModel(
        base,
        banks,
        lam=settings.get("lam", 0.1),
        blend=settings.get("blend", 0.5),
        max_iter=settings.get("max_iter", 2000),
        tol=settings.get("tol", 8e-4),
    )


def load_evaluated_model(
    checkpoint: str | Path,
    memory: str | Path | None = None,
    exfmem: Mapping[str, Any] | None = None,
    adaptive: bool = True,
) -> tuple[nn.Module, LossFn | None]:
    """Load a checkpoint, wrap it in ExFMem when memory banks are given, pick the attack loss.

    With ``adaptive`` the attacker maximises the defended model's own training loss
    (cross-entropy plus the cosine term for MinSim, as the authors' code attacks MinSim);
    otherwise plain cross-entropy. The ExFMem sparse coding is differentiable, so the
    attacker sees through it.
    """
    model, extra = load_checkpoint(checkpoint)
    if memory is not None:
        model = exfmem_model(model, load_banks(memory), exfmem).eval()
    train_config = extra.get("train_config", {})
    loss_name = train_config.get("loss", "ce")
    if not adaptive or loss_name != "minsim":
        return model, None
    return model, adaptive_attack_loss("minsim", train_config.get("loss_weight", 1.0))
