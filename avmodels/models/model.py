"""Audio-visual event recognition models (Tian & Xu, CVPR 2021, arXiv:2104.02000).

``AVModel`` = encoders (``nets``) + fusion (``fusion``) + a linear classifier (Sec. 3.2),
or one encoder + classifier for the unimodal baselines. Images enter raw in [0, 1] and
are ImageNet-normalised inside the model, so attacks work in pixel space.
``LocalizationModel`` replaces the pooled visual feature by an audio-guided attention
over the visual feature map (Sec. 4.5).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from avmodels import __version__, atomic
from avmodels.models.fusion import FUSIONS, build_fusion
from avmodels.models.nets import FEATURE_DIM, AudioNet, VisualNet

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VARIANTS = (*FUSIONS, "audio", "visual", "localization")
CLASSIFIER_INIT_STD = 1e-4  # the authors' code: classifier weights ~ N(0, 1e-4), bias 0
CHECKPOINT_FORMAT = "avmodels-checkpoint-1"


@dataclass
class ModelConfig:
    """Which model to build; stored verbatim (``asdict``) in every checkpoint."""

    variant: str = "concat"  # a fusion name, "audio", "visual" or "localization"
    num_classes: int = 11  # MUSIC has 11 instruments
    feature_dim: int = FEATURE_DIM  # per-modality feature size; the encoders emit 512
    visual_output_stride: int = 32  # 16 or 8 keeps a finer map for localization
    pretrained_visual: str | None = None  # local torchvision resnet18 state-dict file
    visual_pool: str = "max"  # "max" (paper's text) or "avg" (the authors' code), nets.VisualNet

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], num_classes: int, pretrained_visual: str | None = None
    ) -> ModelConfig:
        """From a variant's settings (``plan.variant_settings``: ``arch``,
        ``visual_output_stride``, ``visual_pool``; other keys are its training's)."""
        return cls(
            variant=settings["arch"],
            num_classes=num_classes,
            visual_output_stride=settings["visual_output_stride"],
            visual_pool=settings["visual_pool"],
            pretrained_visual=pretrained_visual,
        )


class _Unimodal(nn.Module):
    """The 'fusion' of a unimodal model: its one feature, unchanged."""

    def __init__(self, modality: str, dim: int) -> None:
        super().__init__()
        self.modality, self.out_dim = modality, dim

    def forward(self, feats: dict[str, Tensor]) -> Tensor:
        return feats[self.modality]


class AVModel(nn.Module):
    """Audio-visual (or unimodal) event recognition network, Fig. 2 of the paper.

    Arguments:
        config: a ``ModelConfig``; ``variant`` picks the fusion or the single modality.

    Shape:
        audio: (B, T) waveform in [-1, 1]; visual: (B, 3, H, W) image in [0, 1].
        ``encode``: {modality: (B, 512)}; ``forward``: logits (B, num_classes).

    >>> model = AVModel(ModelConfig(variant="sum", num_classes=3)).eval()
    >>> model(audio=torch.zeros(1, 4096), visual=torch.zeros(1, 3, 32, 32)).shape
    torch.Size([1, 3])
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        d = config.feature_dim
        if config.variant in ("audio", "visual"):
            self.modalities: tuple[str, ...] = (config.variant,)
            self.fusion: nn.Module = _Unimodal(config.variant, d)
        else:
            self.modalities = ("audio", "visual")
            fusion = "concat" if config.variant == "localization" else config.variant
            self.fusion = build_fusion(fusion, d)
        if "audio" in self.modalities:
            self.audio_net = AudioNet()
        if "visual" in self.modalities:
            self.visual_net = VisualNet(
                config.visual_output_stride, config.pretrained_visual, config.visual_pool
            )
        self.classifier = nn.Linear(self.fusion.out_dim, config.num_classes)
        nn.init.normal_(self.classifier.weight, 0.0, CLASSIFIER_INIT_STD)
        nn.init.zeros_(self.classifier.bias)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def normalize(self, visual: Tensor) -> Tensor:
        """[0, 1] image -> ImageNet-normalised image, (B, 3, H, W)."""
        return (visual - self.mean) / self.std

    def select_inputs(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """The entries of ``inputs`` this model reads (KeyError if one is missing)."""
        return {m: inputs[m] for m in self.modalities}

    def _check(self, audio: Tensor | None, visual: Tensor | None) -> None:
        given = {"audio": audio, "visual": visual}
        missing = [m for m in self.modalities if given[m] is None]
        if missing:
            raise ValueError(f"{self.config.variant} model needs input(s) {missing}")

    def encode(
        self, audio: Tensor | None = None, visual: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Raw inputs -> {modality: (B, 512) feature}; inputs the model does not use are ignored."""
        self._check(audio, visual)
        feats = {}
        if "audio" in self.modalities:
            feats["audio"] = self.audio_net(audio)
        if "visual" in self.modalities:
            feats["visual"] = self.visual_net(self.normalize(visual))
        return feats

    def head(self, feats: dict[str, Tensor]) -> Tensor:
        """Features -> fusion -> linear classifier -> logits (B, num_classes)."""
        return self.classifier(self.fusion(feats))

    def forward(self, audio: Tensor | None = None, visual: Tensor | None = None) -> Tensor:
        return self.head(self.encode(audio=audio, visual=visual))


class LocalizationModel(AVModel):
    """Weakly-supervised sound source localization by audio-guided visual attention (Sec. 4.5).

    With the visual map F_v = [f_v^1; ...; f_v^{hw}] (hw, d) and the audio feature f_a,
    w_i = exp(f_a^T f_v^i) / sum_j exp(f_a^T f_v^j) and f_v^att = sum_i w_i f_v^i replaces
    f_v in the Concat network. After Tian et al., ECCV 2018 (arXiv:1803.08842) and
    Senocak et al., CVPR 2018 (arXiv:1803.03849).

    Shape:
        ``attend``: attention (B, h, w) summing to 1 per sample, logits (B, num_classes).
    """

    def _attend_features(self, audio: Tensor, visual: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        self._check(audio, visual)
        f_a = self.audio_net(audio)  # (B, d)
        fmap = self.visual_net.feature_map(self.normalize(visual))  # (B, d, h, w)
        b, _, h, w = fmap.shape
        f_vs = fmap.flatten(2).transpose(1, 2)  # (B, hw, d)
        weights = torch.softmax(torch.bmm(f_vs, f_a.unsqueeze(2)).squeeze(2), dim=1)  # (B, hw)
        f_v = torch.bmm(weights.unsqueeze(1), f_vs).squeeze(1)  # (B, d)
        return {"audio": f_a, "visual": f_v}, weights.view(b, h, w)

    def encode(
        self, audio: Tensor | None = None, visual: Tensor | None = None
    ) -> dict[str, Tensor]:
        return self._attend_features(audio, visual)[0]

    def attend(self, audio: Tensor, visual: Tensor) -> tuple[Tensor, Tensor]:
        """(attention map (B, h, w), logits (B, num_classes))."""
        feats, attention = self._attend_features(audio, visual)
        return attention, self.head(feats)


def build_model(config: ModelConfig) -> AVModel:
    """The model ``config`` describes; ValueError for an unknown variant."""
    if config.variant not in VARIANTS:
        raise ValueError(f"unknown variant {config.variant!r}; valid: {', '.join(VARIANTS)}")
    if config.feature_dim != FEATURE_DIM:
        raise ValueError(f"feature_dim must be {FEATURE_DIM} (the encoders' output size)")
    cls = LocalizationModel if config.variant == "localization" else AVModel
    return cls(config)


def save_checkpoint(path: str | Path, model: AVModel, **extra: Any) -> None:
    """Write config (``asdict``), weights and ``extra`` metadata as one plain-dict file.

    ``extra`` values must be plain data (numbers, strings, lists, dicts, tensors) so the
    file loads with ``torch.load(weights_only=True)``.
    """
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": dataclasses.asdict(model.config),
        "state_dict": model.state_dict(),
        "versions": {"avmodels": __version__, "torch": str(torch.__version__)},
        "extra": extra,
    }
    atomic.torch_save(payload, path)


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[AVModel, dict[str, Any]]:
    """Rebuild the model saved by ``save_checkpoint``; returns (model in eval mode, extra).
    A file that cannot be deserialised raises :class:`avmodels.atomic.UnreadableFile`."""
    payload = atomic.torch_load(path, map_location=map_location, weights_only=True)
    if payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not an avmodels checkpoint (format {payload.get('format')!r})")
    fields = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = set(payload["config"]) - fields
    if unknown:
        raise ValueError(f"{path}: unknown model config keys {sorted(unknown)}")
    config = ModelConfig(**payload["config"])
    # the saved weights replace the pretrained ones, whose file need not exist here
    model = build_model(dataclasses.replace(config, pretrained_visual=None))
    model.config = config
    model.load_state_dict(payload["state_dict"])
    logger.info("loaded %s model from %s", config.variant, path)
    return model.to(map_location).eval(), payload["extra"]


def visual_eps(eps: float, paper_semantics: bool) -> float | Tensor:
    """The image L-inf budget in raw [0, 1] pixel units.

    The paper measured the image budget in the ImageNet-normalised space, i.e. a raw-pixel
    budget of eps * std per channel: a (1, 3, 1, 1) tensor. Otherwise eps is in pixel units.
    """
    if paper_semantics:
        return eps * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return float(eps)
