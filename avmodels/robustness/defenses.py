"""Audio-visual defenses of Tian & Xu, CVPR 2021 (arXiv:2104.02000), Sec. 3.3 and 4.6.

* Training losses (:data:`TRAINING_LOSSES`): cross-entropy, MinSim (CE + cosine similarity of the
  audio and visual features, Eqs. 2-3), MaxSim (CE + 1 - cosine) and the prototype conformity
  loss PCL of Mustafa et al. (:class:`PCLLoss`).
* ExFMem (Sec. 3.3.2), the memory banks and the sparse-coding model, is in
  :mod:`avmodels.robustness.exfmem`.
* :func:`adaptive_attack_loss`: the attacker's loss against a defended model;
  :func:`training_loss_attack`: a trained loss module (PCL with its centres) as that loss.

>>> loss = make_training_loss("minsim", num_classes=11, feature_dim=512, weight=1.0)
>>> loss(logits, labels, {"audio": f_a, "visual": f_v})  # scalar
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avmodels.models.fusion import FUSIONS

LossFn = Callable[
    [nn.Module, dict[str, Tensor], Tensor], Tensor
]  # as in avmodels.robustness.attacks


# -- training losses -----------------------------------------------------------------------------
def cosine_similarity(fa: Tensor, fv: Tensor, eta: float = 1e-8) -> Tensor:
    """Paper Eq. 2: ``fa . fv / max(||fa||_2 ||fv||_2, eta)`` per sample; (B, d) x2 -> (B,)."""
    norms = fa.norm(dim=-1) * fv.norm(dim=-1)
    return (fa * fv).sum(dim=-1) / norms.clamp(min=eta)


def _pair(feats: Mapping[str, Tensor], what: str) -> tuple[Tensor, Tensor]:
    if "audio" not in feats or "visual" not in feats:
        raise ValueError(f"{what} needs audio and visual features, got {sorted(feats)}")
    return feats["audio"], feats["visual"]


def ce_loss(logits: Tensor, labels: Tensor, feats: Mapping[str, Tensor], **_: object) -> Tensor:
    """Plain cross-entropy (the undefended "None" model); ``feats`` are unused."""
    return F.cross_entropy(logits, labels)


def minsim_loss(
    logits: Tensor, labels: Tensor, feats: Mapping[str, Tensor], weight: float = 1.0, **_: object
) -> Tensor:
    """MinSim, Eq. 3: CE + weight * mean cosine(f_a, f_v) (the paper uses weight 1)."""
    fa, fv = _pair(feats, "minsim")
    return F.cross_entropy(logits, labels) + weight * cosine_similarity(fa, fv).mean()


def maxsim_loss(
    logits: Tensor, labels: Tensor, feats: Mapping[str, Tensor], weight: float = 1.0, **_: object
) -> Tensor:
    """MaxSim baseline (Sec. 4.6): CE + weight * mean(1 - cosine(f_a, f_v))."""
    fa, fv = _pair(feats, "maxsim")
    return F.cross_entropy(logits, labels) + weight * (1.0 - cosine_similarity(fa, fv)).mean()


def _distances(x: Tensor, y: Tensor, eps: float = 1e-12) -> Tensor:
    """Euclidean distances (N, C) between rows of x (N, d) and y (C, d); finite gradient at 0."""
    sq = (x.unsqueeze(1) - y.unsqueeze(0)).pow(2).sum(-1)
    return sq.clamp(min=eps).sqrt()


def prototype_conformity(features: Tensor, labels: Tensor, centres: Tensor) -> Tensor:
    """The PC loss of Mustafa et al. (ICCV 2019, arXiv:1904.00887, Eq. 3), batch mean.

    ``||f_i - w_{y_i}|| - 1/(k-1) sum_{j != y_i} (||f_i - w_j|| + ||w_{y_i} - w_j||)``: pull each
    feature to its class centre, push it from the other centres and keep the centres apart.
    Shape: features (B, D), labels (B,), centres (k, D) -> scalar.
    """
    k = centres.shape[0]
    if k < 2:
        raise ValueError("the prototype conformity loss needs at least two classes")
    to_centres = _distances(features, centres)  # (B, k)
    between = _distances(centres, centres)[labels]  # (B, k): ||w_{y_i} - w_j||
    own = F.one_hot(labels, k).to(features.dtype)
    pull = (to_centres * own).sum(1)
    push = ((to_centres + between) * (1.0 - own)).sum(1) / (k - 1)
    return (pull - push).mean()


class PCLLoss(nn.Module):
    """CE + weight * prototype conformity loss with learnable class centres (Mustafa et al.).

    Mustafa et al., "Adversarial Defense by Restricting the Hidden Space of Deep Neural
    Networks", ICCV 2019 (arXiv:1904.00887), Eqs. 3-4: ``L = L_CE + L_PC`` (weight 1).

    Choices (the audio-visual paper gives none):
      * the loss acts on the classifier's input, the fused feature: ``feats["fused"]`` when given
        (see :func:`fused_features`), else the concatenation of ``feats[m]`` over ``modalities``,
        which is the fused feature of the Concat network the paper's PCL baseline uses;
      * one layer only (Mustafa et al. also add it at intermediate layers through auxiliary
        projection branches, which the audio-visual nets do not have);
      * Euclidean (not squared) distances as in the paper's equation; batch mean instead of sum,
        so the weight does not depend on the batch size;
      * one set of centres ``centres`` (k, D), initialised N(0, 1) like the reference code, to be
        trained with the model: add ``loss.parameters()`` to the optimiser (own learning rate).

    The PCL reference code (and the flags left in the audio-visual authors' code) instead trains
    two separate centre sets with squared distances, one pulled (``lr_prox`` 0.5, weight 1) and
    one pushed (``lr_conprox`` 1e-4, weight 1e-4); those flags are unused there and here.
    The centre-separation term has a gradient of constant size, so the centres drift apart at a
    rate set by their learning rate: at the features' rate they outrun the features; give them a
    smaller one (the reference code's pushed centres learn 5000x slower than its pulled ones).
    """

    def __init__(
        self,
        num_classes: int,
        feature_dim: int = 512,
        modalities: Sequence[str] = ("audio", "visual"),
        weight: float = 1.0,
        fused_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.modalities = tuple(modalities)
        self.weight = float(weight)
        dim = feature_dim * len(self.modalities) if fused_dim is None else fused_dim
        self.centres = nn.Parameter(torch.randn(num_classes, dim))

    def features(self, feats: Mapping[str, Tensor]) -> Tensor:
        """The feature PCL acts on: ``feats["fused"]`` or the concatenated modality features."""
        if "fused" in feats:
            return feats["fused"]
        return torch.cat([feats[m] for m in self.modalities], dim=1)

    def forward(self, logits: Tensor, labels: Tensor, feats: Mapping[str, Tensor]) -> Tensor:
        f = self.features(feats)
        if f.shape[1] != self.centres.shape[1]:
            raise ValueError(f"PCL feature has {f.shape[1]} dims, centres {self.centres.shape[1]}")
        pc = prototype_conformity(f, labels, self.centres)
        return F.cross_entropy(logits, labels) + self.weight * pc

    def extra_repr(self) -> str:
        k, dim = self.centres.shape
        return f"classes={k}, dim={dim}, weight={self.weight}, modalities={self.modalities}"


#: Training objectives by name: functions ``fn(logits, labels, feats, weight=...)``, or a module
#: class (PCL) built with ``(num_classes, feature_dim, modalities, weight)`` whose parameters
#: join the optimiser; :func:`make_training_loss` builds either as a module.
TRAINING_LOSSES: dict[str, Callable] = {
    "ce": ce_loss,
    "minsim": minsim_loss,
    "maxsim": maxsim_loss,
    "pcl": PCLLoss,
}


class TrainingLoss(nn.Module):
    """A parameter-free entry of :data:`TRAINING_LOSSES` as a module with a fixed weight."""

    def __init__(self, name: str, weight: float = 1.0) -> None:
        super().__init__()
        self.name, self.weight = name, float(weight)
        self.fn = TRAINING_LOSSES[name]

    def forward(self, logits: Tensor, labels: Tensor, feats: Mapping[str, Tensor]) -> Tensor:
        return self.fn(logits, labels, feats, weight=self.weight)

    def extra_repr(self) -> str:
        return f"{self.name}, weight={self.weight}"


def make_training_loss(
    name: str,
    num_classes: int,
    feature_dim: int = 512,
    weight: float = 1.0,
    modalities: Sequence[str] = ("audio", "visual"),
) -> nn.Module:
    """The loss module ``loss(logits, labels, feats)`` called ``name``; ValueError if unknown.

    ``feature_dim`` is the per-modality feature size. PCL's centres are ``loss.parameters()``.
    """
    if name not in TRAINING_LOSSES:
        raise ValueError(f"unknown training loss {name!r}; valid: {', '.join(TRAINING_LOSSES)}")
    if name == "pcl":
        return PCLLoss(num_classes, feature_dim, modalities, weight)
    return TrainingLoss(name, weight)


def fused_features(model: nn.Module, feats: Mapping[str, Tensor]) -> Tensor:
    """The classifier input of an ``AVModel``-like model: ``model.fusion(feats)``, (B, D)."""
    fusion = getattr(model, "fusion", None)
    if fusion is None:
        fusion = model.base.fusion  # a wrapper such as ExFMemModel
    return fusion({m: feats[m] for m in feats if m != "fused"})


# -- the attacker's loss -------------------------------------------------------------------------
_SIMILARITY_TERMS: dict[str, Callable[[Tensor], Tensor]] = {
    "minsim": lambda cos: cos,  # the authors' attack on MinSim: CE + cosine
    "maxsim": lambda cos: 1.0 - cos,  # the same rule for MaxSim: its own training term
}
_KNOWN_PARTS = {"none", "ce", "pcl", "exfmem", "unimodal", "audio", "visual", "a", "v"}
_KNOWN_PARTS |= {part for name in FUSIONS for part in name.split("_")} | set(_SIMILARITY_TERMS)


def adaptive_attack_loss(defense: str, weight: float = 1.0) -> LossFn:
    """The loss an adaptive attacker maximises against ``defense``: ``(model, inputs, labels)``.

    ``defense`` is a training-loss or defense name ("ce", "minsim", "maxsim", "pcl", "exfmem",
    "minsim_exfmem", ...). With MinSim in it: CE + weight * mean cosine(f_a, f_v), as the
    authors attack MinSim (they used 0.8 for Kinetics-Sounds); with MaxSim: CE + weight *
    mean(1 - cosine); otherwise CE. Features come from ``model.encode`` (after ExFMem's
    denoising for a wrapped model, as in the authors' code) and logits from ``model.head``.
    """
    parts = defense.lower().replace("+", "_").split("_")
    unknown = [p for p in parts if p not in _KNOWN_PARTS]
    if unknown:
        raise ValueError(f"unknown defense {defense!r} (parts {unknown} not recognised)")
    terms = [p for p in parts if p in _SIMILARITY_TERMS]
    if len(terms) > 1:
        raise ValueError(f"defense {defense!r} names more than one similarity term")
    term = _SIMILARITY_TERMS[terms[0]] if terms else None

    def loss(model: nn.Module, inputs: dict[str, Tensor], labels: Tensor) -> Tensor:
        feats = model.encode(**inputs)
        value = F.cross_entropy(model.head(feats), labels)
        if term is not None and "audio" in feats and "visual" in feats:
            value = value + weight * term(cosine_similarity(feats["audio"], feats["visual"])).mean()
        return value

    loss.__name__ = f"adaptive_{defense}" + (f"_w{weight:g}" if term is not None else "")
    return loss


def training_loss_attack(loss_module: nn.Module) -> LossFn:
    """A model's training loss ``loss_module(logits, labels, feats)`` as the attacker's loss.

    For an adaptive attack on a defense whose loss has state (PCL's trained class centres):
    the attacker maximises exactly what the model minimised, with features from
    ``model.encode`` and logits from ``model.head``. The module is frozen and follows the
    inputs' device.
    """
    loss_module = loss_module.eval().requires_grad_(False)

    def loss(model: nn.Module, inputs: dict[str, Tensor], labels: Tensor) -> Tensor:
        feats = model.encode(**inputs)
        logits = model.head(feats)
        return loss_module.to(logits.device)(logits, labels, feats)

    loss.__name__ = f"adaptive_{type(loss_module).__name__}"
    return loss
