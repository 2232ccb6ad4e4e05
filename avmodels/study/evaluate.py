"""Robustness evaluation under single-modality and audio-visual attacks.

Tian & Xu, "Can audio-visual integration strengthen robustness under multimodal attacks?",
CVPR 2021 (arXiv:2104.02000), Sec. 3.2 and 4.3-4.6. One job scores a model on clean inputs
and under the attack modes of ``metrics.MODES`` at one budget level:

- ``a``: only the audio is perturbed (L-inf budget eps),
- ``v``: only the image is perturbed (eps; with ``paper_budget`` measured in the
  ImageNet-normalised space, see ``model.visual_eps``),
- ``av``: both, eps each.

Localization under attack and the t-SNE embeddings are in :mod:`avmodels.study.analyses`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict

import torch
from torch import Tensor, nn
from tqdm import tqdm

from avmodels.atomic import Rows
from avmodels.data.dataset import require_clips
from avmodels.models.model import AVModel, visual_eps
from avmodels.robustness.attacks import ATTACKS, FGSM, LossFn, build_attack, predict_sets
from avmodels.robustness.exfmem import ExFMemModel
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


def restrict_budget(budget: Budget, modalities: Sequence[str]) -> Budget:
    return {m: e for m, e in budget.items() if m in modalities}


def budget_key(budget: Budget) -> tuple[str, ...]:
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


def job_budgets(
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
        budgets[mode] = restrict_budget(full, modalities)
    return budgets


def attacked_batches(
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
) -> Rows:
    """Accuracy (percent) on clean inputs and under each attack mode at budget ``eps``.

    Arguments:
        model: an ``AVModel``, or a defended wrapper (``exfmem.ExFMemModel``).
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
    sample. The rows are :class:`avmodels.atomic.Rows` (``.frame()`` for a DataFrame). A
    manifest without clips raises :class:`avmodels.data.dataset.EmptySplit`.
    """
    require_clips(manifest, "test", dataset)
    settings = settings or EvalSettings()
    budgets = job_budgets(model, modes, eps, settings.paper_budget, inapplicable)
    if isinstance(model, ExFMemModel):
        model.reset_stats()
    by_key = {budget_key(b): b for b in budgets.values()}
    correct: dict[tuple[str, ...], list[Tensor]] = {k: [] for k in by_key}
    shared = _shares_features(model)
    total = 0
    batches = attacked_batches(
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
            **nominal_budgets(mode, eps),
            "accuracy": 100.0 * int(hits[budget_key(budget)].sum()) / max(total, 1),
            "n_correct": int(hits[budget_key(budget)].sum()),
            "n": total,
            "correct": correctness_string(hits[budget_key(budget)]),
        }
        for mode, budget in budgets.items()
    ]
    columns = [*EVAL_COLUMNS, "correct"]
    if isinstance(model, ExFMemModel):
        stats = model.solver_stats()
        solver = {column: stats[key] for column, key in SOLVER_COLUMNS.items()}
        rows = [row | solver for row in rows]
        columns += list(SOLVER_COLUMNS)
    return Rows(columns, rows)


def correctness_string(hits: Tensor) -> str:
    """Per-clip correctness in test-clip order, "1" right and "0" wrong (column ``correct``)."""
    return "".join("1" if h else "0" for h in hits.tolist())


def nominal_budgets(mode: str, eps: float) -> dict[str, float]:
    """The budgets a mode gives each input, as named in the evaluation CSV."""
    return {f"eps_{m}": float(eps) if m in ATTACKED[mode] else 0.0 for m in ("audio", "visual")}


def failed_evaluation(
    dataset: str, model: str, defense: str, attack: str, eps: float, reason: str
) -> Rows:
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
    return Rows([*EVAL_COLUMNS, "status"], rows)
