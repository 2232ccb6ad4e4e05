"""Audio-visual fusion functions of Tian & Xu, CVPR 2021 (arXiv:2104.02000), appendix A.4.

Every fusion maps ``{"audio": f_a, "visual": f_v}`` (each (B, d)) to a fused feature
(B, out_dim), which a linear classifier turns into logits.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from avmodels import registry


class SumFusion(nn.Module):
    """Sum (A.4): f_av = f_a + f_v."""

    def __init__(self, dim: int = 512) -> None:
        super().__init__()
        self.out_dim = dim

    def forward(self, feats: dict[str, Tensor]) -> Tensor:
        return feats["audio"] + feats["visual"]


class ConcatFusion(nn.Module):
    """Concat (A.4, Sec. 3.2): f_av = [f_a; f_v]."""

    def __init__(self, dim: int = 512) -> None:
        super().__init__()
        self.out_dim = 2 * dim

    def forward(self, feats: dict[str, Tensor]) -> Tensor:
        return torch.cat([feats["audio"], feats["visual"]], dim=1)  # (B, 2d)


class FiLMFusion(nn.Module):
    """FiLM (A.4): f_av = alpha(f_a) * f_v + beta(f_a), alpha a FC layer, beta the identity.

    Perez et al., "FiLM: Visual reasoning with a general conditioning layer",
    AAAI 2018 (arXiv:1709.07871).
    """

    def __init__(self, dim: int = 512) -> None:
        super().__init__()
        self.alpha = nn.Linear(dim, dim)
        self.out_dim = dim

    def forward(self, feats: dict[str, Tensor]) -> Tensor:
        f_a = feats["audio"]
        return self.alpha(f_a) * feats["visual"] + f_a


class GatedSumFusion(nn.Module):
    """Gated-Sum (A.4, Eqs. 5-6): f_av = sigmoid(f_a) * f_v + sigmoid(f_v) * f_a.

    Kiela et al., "Efficient large-scale multi-modal classification", AAAI 2018
    (arXiv:1802.02892).
    """

    def __init__(self, dim: int = 512) -> None:
        super().__init__()
        self.out_dim = dim

    def forward(self, feats: dict[str, Tensor]) -> Tensor:
        f_a, f_v = feats["audio"], feats["visual"]
        return torch.sigmoid(f_a) * f_v + torch.sigmoid(f_v) * f_a


class GatedConcatFusion(nn.Module):
    """Gated-Concat (A.4): f_av = [sigmoid(f_a) * f_v; sigmoid(f_v) * f_a].

    Kiela et al., "Efficient large-scale multi-modal classification", AAAI 2018
    (arXiv:1802.02892).
    """

    def __init__(self, dim: int = 512) -> None:
        super().__init__()
        self.out_dim = 2 * dim

    def forward(self, feats: dict[str, Tensor]) -> Tensor:
        f_a, f_v = feats["audio"], feats["visual"]
        return torch.cat([torch.sigmoid(f_a) * f_v, torch.sigmoid(f_v) * f_a], dim=1)  # (B, 2d)


FUSIONS: dict[str, type[nn.Module]] = dict(
    zip(
        registry.FUSIONS,
        (SumFusion, ConcatFusion, FiLMFusion, GatedSumFusion, GatedConcatFusion),
        strict=True,
    )
)


def build_fusion(name: str, dim: int = 512) -> nn.Module:
    """The fusion called ``name`` over ``dim``-d features; ValueError for unknown names.

    >>> build_fusion("concat").out_dim
    1024
    """
    if name not in FUSIONS:
        raise ValueError(f"unknown fusion {name!r}; valid names: {', '.join(FUSIONS)}")
    return FUSIONS[name](dim)
