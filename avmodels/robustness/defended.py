"""A trained model as the evaluation sees it: its test-time defense and the attacker's loss."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from avmodels.models.model import ModelConfig, load_checkpoint
from avmodels.robustness.attacks import LossFn
from avmodels.robustness.defenses import (
    adaptive_attack_loss,
    make_training_loss,
    training_loss_attack,
)
from avmodels.robustness.exfmem import exfmem_model, load_banks
from avmodels.settings import ExfmemSettings


def load_evaluated_model(
    checkpoint: str | Path,
    memory: str | Path | None = None,
    exfmem: ExfmemSettings | None = None,
    adaptive: bool = True,
) -> tuple[nn.Module, LossFn | None]:
    """Load a checkpoint, wrap it in ExFMem when memory banks are given, pick the attack loss.

    With ``adaptive`` the attacker maximises the defended model's own training loss
    (:func:`attack_loss`): CE plus the cosine term for MinSim (as the authors' code attacks
    MinSim), CE plus 1 - cosine for MaxSim, CE plus the prototype conformity term with the
    trained centres for PCL; plain cross-entropy (``None``) for a CE-trained model or without
    ``adaptive``. The ExFMem sparse coding is differentiable, so the attacker sees through it.
    """
    model, extra = load_checkpoint(checkpoint)
    if memory is not None:
        model = exfmem_model(model, load_banks(memory), exfmem).eval()
    return model, attack_loss(model.config, extra) if adaptive else None


def attack_loss(config: ModelConfig, extra: Mapping[str, Any]) -> LossFn | None:
    """The adaptive attacker's loss: the training loss named in a checkpoint's ``extra``
    (``train_config``: ``loss``, ``loss_weight``; ``loss_state``: PCL's centres); ``None``
    (plain cross-entropy) for a model trained with CE."""
    train_config = extra.get("train_config", {})
    name, weight = train_config.get("loss", "ce"), train_config.get("loss_weight", 1.0)
    if name == "ce":
        return None
    if name in ("minsim", "maxsim"):
        return adaptive_attack_loss(name, weight)
    unimodal = config.variant in ("audio", "visual")
    modalities = (config.variant,) if unimodal else ("audio", "visual")
    module = make_training_loss(name, config.num_classes, config.feature_dim, weight, modalities)
    module.load_state_dict(extra.get("loss_state", {}))
    return training_loss_attack(module)
