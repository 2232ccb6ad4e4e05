"""BPDA for ExFMem (Athalye et al., ICML 2018, arXiv:1802.00420): attack through the sparse coder
with the coder replaced by the identity in the backward pass.

ExFMem's Lasso solve is iterative and piecewise; differentiating through it (what the attacks do
by default, as :class:`avmodels.robustness.exfmem.ExFMemModel` is an ``nn.Module`` like any other)
can give gradients that say little about the decision. :class:`BPDA` computes exactly the same
logits but, in the backward pass, treats each denoised feature as if it were the encoder's feature:
``d denoise(f) / d f := I``. The coder then runs without autograd.

>>> adv = APGD(BPDA(exfmem), eps={"audio": 0.006, "visual": 0.006})(inputs, labels)
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from avmodels.robustness.exfmem import ExFMemModel


class _Identity(torch.autograd.Function):
    """Forward: ``replacement``; backward: the gradient goes to ``f`` unchanged."""

    @staticmethod
    def forward(ctx, f: Tensor, replacement: Tensor) -> Tensor:
        return replacement.clone()

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        return grad, None


class BPDA(nn.Module):
    """An ExFMem model whose sparse coder is the identity in the backward pass.

    Arguments:
        model: the :class:`ExFMemModel` to attack; its logits are returned unchanged.
    Shape:
        as ``model``: ``forward(**inputs) -> (B, classes)``; ``encode`` / ``head`` as ExFMem's.
    """

    def __init__(self, model: ExFMemModel) -> None:
        if not isinstance(model, ExFMemModel):
            raise TypeError(f"BPDA wraps an ExFMemModel, got {type(model).__name__}")
        super().__init__()
        self.model = model
        self.modalities = model.modalities

    @property
    def config(self) -> object:
        return self.model.config

    def encode(self, **inputs: Tensor) -> dict[str, Tensor]:
        feats = self.model.base.encode(**inputs)
        with torch.no_grad():
            denoised = self.model.denoise({m: f.detach() for m, f in feats.items()})
        return {
            m: _Identity.apply(f, denoised[m]) if m in self.model.banked else f
            for m, f in feats.items()
        }

    def head(self, feats: Mapping[str, Tensor]) -> Tensor:
        return self.model.head(feats)

    def forward(self, **inputs: Tensor) -> Tensor:
        return self.head(self.encode(**inputs))
