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

#: Keys of the config's ``exfmem`` section that reach :class:`ExFMemModel` (the rest, e.g. the
#: bank ``size``, are used when the banks are built).
EXFMEM_SETTINGS = ("lam", "blend", "max_iter", "tol", "method", "stop")


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
    attacker sees through it. ``exfmem``: the config's ``exfmem`` section (its
    ``EXFMEM_SETTINGS`` keys reach :class:`ExFMemModel`; keys left out take its defaults).
    """
    model, extra = load_checkpoint(checkpoint)
    if memory is not None:
        settings = {k: v for k, v in (exfmem or {}).items() if k in EXFMEM_SETTINGS}
        banks = torch.load(memory, map_location="cpu", weights_only=True)
        model = ExFMemModel(model, banks, **settings).eval()
    train_config = extra.get("train_config", {})
    loss_name = train_config.get("loss", "ce")
    if not adaptive or loss_name != "minsim":
        return model, None
    return model, adaptive_attack_loss("minsim", train_config.get("loss_weight", 1.0))
