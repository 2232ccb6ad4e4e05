"""The analyses beside the accuracy tables: sound-source localization under attack (Sec. 4.5,
Fig. 4) and the embeddings behind the t-SNE maps (Fig. 5, 10, 11).

The paper prints no localization score (Sec. 4.5 judges attention maps by eye); this module
measures one: the overlap of the attacked attention map with the clean one,
``sum_i min(w_i^clean, w_i^adv)`` (1 = unchanged, 0 = disjoint), and how far, in feature-map
cells, the attention peak and the attention centre of mass move.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from avmodels.data.dataset import require_clips
from avmodels.robustness.attacks import LossFn
from avmodels.robustness.metrics import MODES
from avmodels.settings import EvalSettings
from avmodels.study.evaluate import (
    attacked_batches,
    budget_key,
    mode_budgets,
    nominal_budgets,
    restrict_budget,
)
from avmodels.study.running import (
    Manifest,
    model_modalities,
)

log = logging.getLogger(__name__)


LOCALIZATION_COLUMNS = [
    "mode", "eps_audio", "eps_visual", "accuracy", "overlap", "peak_shift", "com_shift", "n",
]  # fmt: skip


def manifest_frame(manifest: Manifest) -> pd.DataFrame:
    """The manifest as a table whose clip paths resolve from anywhere (a CSV's relative
    ``clip_dir`` entries are made absolute against its folder)."""
    if isinstance(manifest, pd.DataFrame):
        return manifest.reset_index(drop=True)
    frame = pd.read_csv(manifest)
    base = Path(manifest).resolve().parent
    frame["clip_dir"] = [str(base / d) for d in frame["clip_dir"]]
    return frame


def _limited(manifest: Manifest, limit: int | None) -> Manifest:
    """The first ``limit`` clips."""
    return manifest if limit is None else manifest_frame(manifest).head(limit)


def spread_over_classes(manifest: Manifest, limit: int | None) -> Manifest:
    """``limit`` clips taken from the classes in turn: the first clip of each class (classes
    by label index), then the second of each, ...; clips keep their manifest order within a
    class. Test manifests list clips class by class, so their first clips share one class."""
    if limit is None:
        return manifest
    frame = manifest_frame(manifest)
    turn = frame.groupby("label_index", sort=False).cumcount()
    order = pd.DataFrame({"turn": turn, "label": frame["label_index"]}).sort_values(
        ["turn", "label"], kind="stable"
    )
    return frame.loc[order.index[:limit]].reset_index(drop=True)


def attention_scores(clean: Tensor, attacked: Tensor) -> dict[str, Tensor]:
    """Per-sample change of an attention map (B, h, w) under attack.

    ``overlap``: sum of the element-wise minimum of the two maps (each sums to 1);
    ``peak_shift``: distance in cells between the two argmax cells;
    ``com_shift``: distance in cells between the two centres of mass.
    """
    b, h, w = clean.shape
    rows = torch.arange(h, dtype=clean.dtype).view(1, h, 1)
    cols = torch.arange(w, dtype=clean.dtype).view(1, 1, w)

    def centre(a: Tensor) -> Tensor:  # (B, 2)
        return torch.stack([(a * rows).sum((1, 2)), (a * cols).sum((1, 2))], dim=1)

    def peak(a: Tensor) -> Tensor:  # (B, 2)
        idx = a.flatten(1).argmax(1)
        return torch.stack([idx // w, idx % w], dim=1).to(clean.dtype)

    return {
        "overlap": torch.minimum(clean, attacked).sum((1, 2)),
        "peak_shift": (peak(clean) - peak(attacked)).norm(dim=1),
        "com_shift": (centre(clean) - centre(attacked)).norm(dim=1),
    }


@dataclass
class LocalizationResult:
    """Attention maps of the localization model, clean and under each attack mode.

    ``summary``: one row per mode (``LOCALIZATION_COLUMNS``, per-mode means; the clean row is
    the reference: overlap 1, shifts 0). ``attention``: mode -> (N, h, w) maps;
    ``scores``: mode -> {"overlap", "peak_shift", "com_shift"} -> (N,);
    ``predictions``: mode -> (N,); ``labels``: (N,); ``frames``: mode -> (K, H, W, 3)
    images in [0, 1] of the first ``keep_frames`` clips analysed, as the model saw them.
    """

    summary: pd.DataFrame
    attention: dict[str, np.ndarray]
    scores: dict[str, dict[str, np.ndarray]]
    predictions: dict[str, np.ndarray]
    labels: np.ndarray
    frames: dict[str, np.ndarray] = field(default_factory=dict)


def evaluate_localization(
    model: nn.Module,
    manifest: Manifest,
    attack: str,
    eps: float,
    settings: EvalSettings | None = None,
    *,
    modes: Sequence[str] = MODES,
    loss: LossFn | None = None,
    attack_kwargs: Mapping | None = None,
    limit: int | None = None,
    keep_frames: int = 8,
    seed: int = 1234,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> LocalizationResult:
    """Sound source localization under attack (Sec. 4.5, Fig. 4): how the attention moves.

    ``model`` must have ``attend(audio, visual) -> (attention (B, h, w), logits)``
    (``model.LocalizationModel``). The attacker maximises the classification loss only;
    it never sees the attention. ``limit`` keeps that many clips spread over the classes
    (:func:`spread_over_classes`), so the kept frames show different classes. A manifest
    without clips raises :class:`avmodels.data.dataset.EmptySplit`.
    """
    require_clips(manifest, "test")
    modes = ["clean", *(m for m in modes if m != "clean")]
    settings = settings or EvalSettings()
    budgets = mode_budgets(modes, eps, settings.paper_budget)
    maps: dict[str, list[Tensor]] = {m: [] for m in modes}
    preds: dict[str, list[Tensor]] = {m: [] for m in modes}
    frames: dict[str, list[Tensor]] = {m: [] for m in modes}
    labels: list[Tensor] = []
    batches = attacked_batches(
        model,
        spread_over_classes(manifest, limit),
        attack,
        {budget_key(b): b for b in budgets.values()},
        ("audio", "visual"),
        loss=loss,
        settings=settings,
        attack_kwargs=attack_kwargs,
        seed=seed,
        device=device,
        progress=progress,
        desc=f"localization {attack} {eps:g}",
    )
    kept = 0
    for y, advs in batches:
        take = max(0, min(keep_frames - kept, len(y)))
        for mode in modes:
            adv = advs[budget_key(budgets[mode])]
            with torch.no_grad():
                attention, logits = model.attend(adv["audio"], adv["visual"])
            maps[mode].append(attention.cpu())
            preds[mode].append(logits.argmax(1).cpu())
            frames[mode].append(adv["visual"][:take].permute(0, 2, 3, 1).cpu())  # (K, H, W, 3)
        labels.append(y.cpu())
        kept += take
    attention = {m: torch.cat(v) for m, v in maps.items()}
    predictions = {m: torch.cat(v) for m, v in preds.items()}
    y_all = torch.cat(labels)
    scores = {m: attention_scores(attention["clean"], attention[m]) for m in modes}
    summary = pd.DataFrame(
        [
            {
                "mode": m,
                **nominal_budgets(m, eps),
                "accuracy": 100.0 * float((predictions[m] == y_all).double().mean()),
                **{k: float(v.mean()) for k, v in scores[m].items()},
                "n": len(y_all),
            }
            for m in modes
        ],
        columns=LOCALIZATION_COLUMNS,
    )
    return LocalizationResult(
        summary=summary,
        attention={m: v.numpy() for m, v in attention.items()},
        scores={m: {k: v.numpy() for k, v in s.items()} for m, s in scores.items()},
        predictions={m: v.numpy() for m, v in predictions.items()},
        labels=y_all.numpy(),
        frames={m: torch.cat(v).numpy() for m, v in frames.items()},
    )


def feature_sets(
    model: nn.Module,
    manifest: Manifest,
    attack: str,
    eps: float,
    settings: EvalSettings | None = None,
    *,
    modes: Sequence[str] = ("clean", "a", "v"),
    loss: LossFn | None = None,
    attack_kwargs: Mapping | None = None,
    limit: int | None = None,
    seed: int = 1234,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> tuple[dict[str, dict[str, Tensor]], Tensor]:
    """Embeddings for t-SNE figures (Fig. 5, 10, 11): mode -> modality -> (N, d), labels (N,).

    Mode ``a`` gives the embeddings of audio-attacked clips (Fig. 10), ``v`` those of
    visually-attacked ones (Fig. 11); the attack targets the model's classification loss
    (or ``loss``). ``limit`` keeps the first clips of the manifest; see ``tsne_streams``.
    A manifest without clips raises :class:`avmodels.data.dataset.EmptySplit`.
    """
    require_clips(manifest, "test")
    modalities = model_modalities(model)
    settings = settings or EvalSettings()
    full = mode_budgets(modes, eps, settings.paper_budget)
    budgets = {m: restrict_budget(b, modalities) for m, b in full.items()}
    feats: dict[str, dict[str, list[Tensor]]] = {m: {k: [] for k in modalities} for m in modes}
    labels: list[Tensor] = []
    batches = attacked_batches(
        model,
        _limited(manifest, limit),
        attack,
        {budget_key(b): b for b in budgets.values()},
        modalities,
        loss=loss,
        settings=settings,
        attack_kwargs=attack_kwargs,
        seed=seed,
        device=device,
        progress=progress,
        desc=f"features {attack} {eps:g}",
    )
    for y, advs in batches:
        for mode in modes:
            with torch.no_grad():
                encoded = model.encode(**advs[budget_key(budgets[mode])])
            for k, f in encoded.items():
                feats[mode][k].append(f.cpu())
        labels.append(y.cpu())
    out = {m: {k: torch.cat(v) for k, v in fs.items()} for m, fs in feats.items()}
    return out, torch.cat(labels)


def tsne_streams(features: Mapping[str, Mapping[str, Tensor]]) -> dict[str, Tensor]:
    """``feature_sets`` output as the t-SNE streams of Fig. 5, 10, 11: clean ``audio`` and
    ``visual`` embeddings, ``audio_attacked`` (mode ``a``) and ``visual_attacked`` (mode ``v``).
    Streams whose mode was not computed are left out."""
    picks = {
        "audio": ("clean", "audio"),
        "visual": ("clean", "visual"),
        "audio_attacked": ("a", "audio"),
        "visual_attacked": ("v", "visual"),
    }
    return {
        name: features[mode][modality]
        for name, (mode, modality) in picks.items()
        if modality in features.get(mode, {})
    }
