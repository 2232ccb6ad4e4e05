"""Robustness evaluation under single-modality and audio-visual attacks.

Tian & Xu, "Can audio-visual integration strengthen robustness under multimodal attacks?",
CVPR 2021 (arXiv:2104.02000), Sec. 3.2 and 4.3-4.6. One job scores a model on clean inputs
and under the attack modes of ``metrics.MODES`` at one budget level:

- ``a``: only the audio is perturbed (L-inf budget eps),
- ``v``: only the image is perturbed (eps; with ``paper_budget`` measured in the
  ImageNet-normalised space, see ``model.visual_eps``),
- ``av``: both, eps each.

The paper prints no localization score (Sec. 4.5 judges attention maps by eye); this module
measures one: the overlap of the attacked attention map with the clean one,
``sum_i min(w_i^clean, w_i^adv)`` (1 = unchanged, 0 = disjoint), and how far, in feature-map
cells, the attention peak and the attention centre of mass move.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from tqdm import tqdm

from avmodels.data.dataset import require_clips
from avmodels.models.model import AVModel, visual_eps
from avmodels.robustness.attacks import ATTACKS, FGSM, LossFn, build_attack, predict_sets
from avmodels.robustness.defenses import ExFMemModel
from avmodels.robustness.metrics import EVAL_COLUMNS, MODES
from avmodels.settings import EvalSettings
from avmodels.study.running import (
    Manifest,
    make_loader,
    model_modalities,
    resolve_device,
    run_settings,
)

log = logging.getLogger(__name__)

#: Extra columns of an ExFMem model's evaluation -> key of ``ExFMemModel.solver_stats()``.
SOLVER_COLUMNS = {
    "lasso_iterations": "max_iterations",
    "lasso_max_gap": "max_gap",
    "lasso_mean_gap": "mean_gap",
}
LOCALIZATION_COLUMNS = [
    "mode", "eps_audio", "eps_visual", "accuracy", "overlap", "peak_shift", "com_shift", "n",
]  # fmt: skip
ATTACKED = {"clean": (), "a": ("audio",), "v": ("visual",), "av": ("audio", "visual")}
Budget = dict[str, float | Tensor]


def accuracy(logits: Tensor, labels: Tensor) -> float:
    """Percent of samples whose arg-max logit is the label; logits (B, C), labels (B,)."""
    if labels.numel() == 0:
        raise ValueError("accuracy of an empty batch")
    return 100.0 * float((logits.argmax(dim=1) == labels).float().mean())


def mode_budgets(modes: Sequence[str], eps: float, paper_budget: bool) -> dict[str, Budget]:
    """Per-input L-inf budgets (raw input units) of each attack mode.

    Modes share the budget objects, so ``FGSM.sweep`` builds each perturbed input once.
    """
    unknown = [m for m in modes if m not in ATTACKED]
    if unknown:
        raise ValueError(f"unknown mode(s) {unknown}; valid: {', '.join(ATTACKED)}")
    units = {"audio": float(eps), "visual": visual_eps(eps, paper_budget)}
    return {mode: {m: units[m] for m in ATTACKED[mode]} for mode in modes}


def _restrict(budget: Budget, modalities: Sequence[str]) -> Budget:
    return {m: e for m, e in budget.items() if m in modalities}


def _key(budget: Budget) -> tuple[str, ...]:
    """Budgets of one job differ only by which inputs they perturb."""
    return tuple(sorted(budget))


class Attacker:
    """Adversarial inputs for several budgets of one attack, batch by batch.

    FGSM takes one gradient for all budgets (``FGSM.sweep``), as every FGSM mode steps from
    the clean input along the sign of the same gradient; PGD and MIM run once per budget.
    An empty budget returns the clean inputs.
    """

    def __init__(
        self,
        model: nn.Module,
        attack: str,
        budgets: Mapping[tuple[str, ...], Budget],
        loss: LossFn | None = None,
        **attack_kwargs,
    ) -> None:
        self.budgets = {k: b for k, b in budgets.items() if b}
        self.sweep = attack == "fgsm"
        if self.sweep:
            self.attacks = {"sweep": FGSM(model, eps={}, loss=loss)}
        else:
            self.attacks = {
                k: build_attack(attack, model, eps=b, loss=loss, **attack_kwargs)
                for k, b in self.budgets.items()
            }

    def __call__(
        self, inputs: dict[str, Tensor], labels: Tensor
    ) -> dict[tuple[str, ...], dict[str, Tensor]]:
        out: dict[tuple[str, ...], dict[str, Tensor]] = {(): inputs}
        if self.sweep and self.budgets:
            keys = list(self.budgets)
            advs = self.attacks["sweep"].sweep(inputs, labels, [self.budgets[k] for k in keys])
            out.update(zip(keys, advs, strict=True))
        else:
            out.update({k: attack(inputs, labels) for k, attack in self.attacks.items()})
        return out


def _shares_features(model: nn.Module) -> bool:
    """Whether ``predict_sets`` may reuse per-input features: ``model(x) == head(encode(x))``
    with each input encoded on its own (AVModel, and ExFMem around one; not LocalizationModel,
    whose visual feature depends on the audio)."""
    if isinstance(model, ExFMemModel):
        return _shares_features(model.base)
    return type(model) is AVModel


def _job_budgets(
    model: nn.Module, modes: Sequence[str], eps: float, paper_budget: bool, inapplicable: str
) -> dict[str, Budget]:
    """Mode -> budget on the model's own inputs; modes a model cannot see are dropped if asked."""
    if inapplicable not in ("omit", "score"):
        raise ValueError(f"inapplicable must be 'omit' or 'score', got {inapplicable!r}")
    modalities = model_modalities(model)
    budgets = {}
    for mode, full in mode_budgets(modes, eps, paper_budget).items():
        if inapplicable == "omit" and set(full) - set(modalities):
            log.info("mode %s skipped: the model reads only %s", mode, modalities)
            continue
        budgets[mode] = _restrict(full, modalities)
    return budgets


def _attacked_batches(
    model: nn.Module,
    manifest: Manifest,
    attack: str,
    budgets: Mapping[tuple[str, ...], Budget],
    modalities: Sequence[str],
    *,
    loss: LossFn | None,
    settings: EvalSettings,
    attack_kwargs: Mapping | None,
    seed: int,
    device: str | torch.device | None,
    progress: bool,
    desc: str,
) -> Iterator[tuple[Tensor, dict[tuple[str, ...], dict[str, Tensor]]]]:
    """Labels and {budget key: inputs} per batch (key ``()``: clean), deterministically."""
    if attack not in ATTACKS:
        raise ValueError(f"unknown attack {attack!r}; valid: {', '.join(ATTACKS)}")
    dev = resolve_device(device)
    data = {"batch_size": settings.batch_size, **asdict(settings.inputs)}
    loader = make_loader(manifest, train=False, seed=seed, **data)
    with run_settings(torch.get_num_threads(), True, dev):
        torch.manual_seed(seed)  # only a random start draws
        model.to(dev).eval()
        steps = {} if attack == "fgsm" else {"steps": settings.steps}
        kwargs = {**steps, **(attack_kwargs or {})}
        attacker = Attacker(model, attack, budgets, loss, **kwargs)
        for batch in tqdm(loader, file=sys.stderr, disable=not progress, desc=desc):
            labels = batch["label"].to(dev)
            yield labels, attacker({m: batch[m].to(dev) for m in modalities}, labels)


def evaluate(
    model: nn.Module,
    manifest: Manifest,
    attack: str,
    eps: float,
    settings: EvalSettings | None = None,
    *,
    modes: Sequence[str] = MODES,
    loss: LossFn | None = None,
    attack_kwargs: Mapping | None = None,
    inapplicable: str = "omit",
    dataset: str = "",
    model_name: str = "",
    defense: str = "none",
    seed: int = 1234,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Accuracy (percent) on clean inputs and under each attack mode at budget ``eps``.

    Arguments:
        model: an ``AVModel``, or a defended wrapper (``defenses.ExFMemModel``).
        attack: a key of ``attacks.ATTACKS``; ``settings.steps`` (and ``attack_kwargs``,
            e.g. ``{"decay": 1.0}``) reach PGD and MIM.
        settings: budget space (``paper_budget``: image budget in the ImageNet-normalised
            space, as the paper's code), attack steps, batch size and input sizes; default
            :class:`~avmodels.settings.EvalSettings` ().
        loss: the attacker's objective (default cross-entropy), e.g.
            ``defenses.adaptive_attack_loss("minsim")`` against a MinSim model.
        inapplicable: for a unimodal model, ``"omit"`` drops the modes that perturb an input
            it does not read (audio model: ``v``, ``av``); ``"score"`` scores them, the
            perturbation of the missing input never reaching the model (the paper's Table 3).
        dataset, model_name, defense: copied into the rows.
        device: where the model (moved in place) and batches go; default CUDA if available.

    Returns one row per scored mode with columns ``EVAL_COLUMNS`` and ``correct`` (per-clip
    correctness in the manifest's order, see :func:`correctness_string`; the findings'
    paired intervals read it); ``eps_audio`` and ``eps_visual`` are the nominal budgets the
    attacker was given (0 if unattacked). An ExFMem model adds ``SOLVER_COLUMNS``, the same
    in every row: over all sparse codings of the job (attack steps and scoring), the most
    solver iterations of one call and the largest and mean final relative duality gap of a
    sample. A manifest without clips raises :class:`avmodels.data.dataset.EmptySplit`.
    """
    require_clips(manifest, "test", dataset)
    settings = settings or EvalSettings()
    budgets = _job_budgets(model, modes, eps, settings.paper_budget, inapplicable)
    if isinstance(model, ExFMemModel):
        model.reset_stats()
    by_key = {_key(b): b for b in budgets.values()}
    correct: dict[tuple[str, ...], list[Tensor]] = {k: [] for k in by_key}
    shared = _shares_features(model)
    total = 0
    batches = _attacked_batches(
        model,
        manifest,
        attack,
        by_key,
        model_modalities(model),
        loss=loss,
        settings=settings,
        attack_kwargs=attack_kwargs,
        seed=seed,
        device=device,
        progress=progress,
        desc=f"{attack} {eps:g}",
    )
    for labels, advs in batches:
        keys = list(correct)
        logits = predict_sets(model, [advs[k] for k in keys], share_features=shared)
        for key, out in zip(keys, logits, strict=True):
            correct[key].append((out.argmax(1) == labels).cpu())
        total += len(labels)
    hits = {k: torch.cat(v) if v else torch.zeros(0, dtype=torch.bool) for k, v in correct.items()}
    rows = [
        {
            "dataset": dataset,
            "model": model_name,
            "defense": defense,
            "attack": attack,
            "eps": float(eps),
            "mode": mode,
            **_nominal(mode, eps),
            "accuracy": 100.0 * int(hits[_key(budget)].sum()) / max(total, 1),
            "n_correct": int(hits[_key(budget)].sum()),
            "n": total,
            "correct": correctness_string(hits[_key(budget)]),
        }
        for mode, budget in budgets.items()
    ]
    frame = pd.DataFrame(rows, columns=[*EVAL_COLUMNS, "correct"])
    if isinstance(model, ExFMemModel):
        stats = model.solver_stats()
        for column, key in SOLVER_COLUMNS.items():
            frame[column] = stats[key]
    return frame


def correctness_string(hits: Tensor) -> str:
    """Per-clip correctness in test-clip order, "1" right and "0" wrong (column ``correct``)."""
    return "".join("1" if h else "0" for h in hits.tolist())


def _nominal(mode: str, eps: float) -> dict[str, float]:
    """The budgets a mode gives each input, as named in the evaluation CSV."""
    return {f"eps_{m}": float(eps) if m in ATTACKED[mode] else 0.0 for m in ("audio", "visual")}


def _frame(manifest: Manifest) -> pd.DataFrame:
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
    return manifest if limit is None else _frame(manifest).head(limit)


def spread_over_classes(manifest: Manifest, limit: int | None) -> Manifest:
    """``limit`` clips taken from the classes in turn: the first clip of each class (classes
    by label index), then the second of each, ...; clips keep their manifest order within a
    class. Test manifests list clips class by class, so their first clips share one class."""
    if limit is None:
        return manifest
    frame = _frame(manifest)
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
    batches = _attacked_batches(
        model,
        spread_over_classes(manifest, limit),
        attack,
        {_key(b): b for b in budgets.values()},
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
            adv = advs[_key(budgets[mode])]
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
                **_nominal(m, eps),
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
    budgets = {m: _restrict(b, modalities) for m, b in full.items()}
    feats: dict[str, dict[str, list[Tensor]]] = {m: {k: [] for k in modalities} for m in modes}
    labels: list[Tensor] = []
    batches = _attacked_batches(
        model,
        _limited(manifest, limit),
        attack,
        {_key(b): b for b in budgets.values()},
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
                encoded = model.encode(**advs[_key(budgets[mode])])
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


def failed_evaluation(
    dataset: str, model: str, defense: str, attack: str, eps: float, reason: str
) -> pd.DataFrame:
    """Evaluation rows that mark every mode as failed (accuracy NaN) with the reason."""
    rows = [
        {
            "dataset": dataset,
            "model": model,
            "defense": defense,
            "attack": attack,
            "eps": eps,
            "mode": mode,
            "eps_audio": float("nan"),
            "eps_visual": float("nan"),
            "accuracy": float("nan"),
            "n_correct": 0,
            "n": 0,
            "status": f"failed: {reason}",
        }
        for mode in MODES
    ]
    return pd.DataFrame(rows, columns=[*EVAL_COLUMNS, "status"])
