"""One model under APGD and Square: each attack's accuracy and the worst case, per mode.

Beyond the paper's FGSM, PGD and MIM: the attacks of AutoAttack (Croce & Hein, ICML 2020,
arXiv:2003.01690) on the audio (``a``), visual (``v``) and audio-visual (``av``) modes of
:mod:`avmodels.study.evaluate`, each attack run on every clip (no cascade), so each attack's own
accuracy is known beside the worst case (a clip is robust only if every attack fails).

APGD and Square take no custom loss: a defended model is attacked with cross-entropy or DLR
on its logits (APGD) or the margin loss (Square), not with its training loss as the adaptive
FGSM, PGD and MIM are. With ``bpda`` an ExFMem model is attacked through :class:`BPDA` (its
sparse coder the identity in the backward pass); it is always scored as it is.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict

import torch
from torch import Tensor, nn
from tqdm import tqdm

from avmodels.atomic import Rows
from avmodels.data.dataset import require_clips
from avmodels.registry import AUTOATTACK
from avmodels.robustness.bpda import BPDA
from avmodels.robustness.exfmem import ExFMemModel
from avmodels.robustness.metrics import EVAL_COLUMNS
from avmodels.robustness.worstcase import WORST, AttackSpec, worst_case_by_mode
from avmodels.settings import EvalSettings
from avmodels.study.evaluate import correctness_string, job_budgets, nominal_budgets
from avmodels.study.running import (
    Manifest,
    make_loader,
    model_modalities,
    resolve_device,
    run_settings,
)

ATTACKED_MODES = ("a", "v", "av")
#: Columns of an APGD and Square evaluation file: the evaluations' and the per-clip ``correct``.
COLUMNS = [*EVAL_COLUMNS, "correct"]


def attack_label(entry: Mapping[str, object]) -> str:
    """``apgd-ce``, ``apgd-dlr`` or ``square`` for one ``autoattack.attacks`` entry."""
    name = entry["attack"]
    return f"{name}-{entry.get('loss', 'ce')}" if name == "apgd" else str(name)


def attack_specs(attacks: Sequence[Mapping[str, object]], seed: int = 0) -> dict[str, AttackSpec]:
    """Config entries ``{attack, loss (APGD only), steps}`` -> labelled worst-case specs."""
    specs: dict[str, AttackSpec] = {}
    for entry in attacks:
        name = entry["attack"]
        if name not in AUTOATTACK:
            raise ValueError(f"unknown attack {name!r}; valid: {', '.join(AUTOATTACK)}")
        kwargs: dict[str, object] = {"steps": int(entry["steps"]), "seed": seed}
        if name == "apgd":
            kwargs["loss"] = entry.get("loss", "ce")
        elif "loss" in entry:
            raise ValueError(f"{name} takes no loss (it minimises the margin)")
        label = attack_label(entry)
        if label in specs:
            raise ValueError(f"attack {label} listed twice")
        specs[label] = (str(name), kwargs)
    return specs


def evaluate_autoattack(
    model: nn.Module,
    manifest: Manifest,
    specs: Mapping[str, AttackSpec],
    eps: float,
    settings: EvalSettings | None = None,
    *,
    bpda: bool = False,
    dataset: str = "",
    model_name: str = "",
    defense: str = "none",
    seed: int = 1234,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> Rows:
    """Accuracy (percent) clean and, per mode at budget ``eps``, under each attack and the worst.

    Returns ``COLUMNS`` rows: one ``clean`` row (attack ``clean``), then per mode one row per
    attack label of ``specs`` and one ``worst`` row; ``correct`` is the per-clip correctness in
    the manifest's order (:func:`avmodels.study.evaluate.correctness_string`); ``.frame()``
    gives a DataFrame. Modes perturbing an input the model does not read are left out. A
    manifest without clips raises :class:`avmodels.data.dataset.EmptySplit`.
    """
    require_clips(manifest, "test", dataset)
    settings = settings or EvalSettings()
    budgets = job_budgets(model, ATTACKED_MODES, eps, settings.paper_budget, "omit")
    attacked = BPDA(model) if bpda and isinstance(model, ExFMemModel) else None
    dev = resolve_device(device)
    data = {"batch_size": settings.batch_size, **asdict(settings.inputs)}
    loader = make_loader(manifest, train=False, seed=seed, **data)
    modalities = model_modalities(model)
    hits: dict[tuple[str, str], list[Tensor]] = {}
    with run_settings(torch.get_num_threads(), True, dev):
        torch.manual_seed(seed)
        model.to(dev).eval()
        for batch in tqdm(loader, file=sys.stderr, disable=not progress, desc="autoattack"):
            labels = batch["label"].to(dev)
            inputs = {m: batch[m].to(dev) for m in modalities}
            found = worst_case_by_mode(
                model, inputs, labels, specs, budgets, cascade=False, attacked=attacked
            )
            for mode, per in found.items():
                for label, correct in per.items():
                    hits.setdefault((mode, label), []).append(correct.cpu())
    joined = {k: torch.cat(v) for k, v in hits.items()}
    keys = [("clean", "clean")] if budgets else []
    keys += [(m, label) for m in budgets for label in (*specs, WORST)]
    first = next(iter(budgets), None)
    rows = []
    for mode, label in keys:
        correct = joined[(first, "clean")] if mode == "clean" else joined[(mode, label)]
        rows.append(
            {
                "dataset": dataset,
                "model": model_name,
                "defense": defense,
                "eps": float(eps),
                "mode": mode,
                **nominal_budgets(mode, eps),
                "attack": label,
                "accuracy": 100.0 * int(correct.sum()) / max(len(correct), 1),
                "n_correct": int(correct.sum()),
                "n": len(correct),
                "correct": correctness_string(correct),
            }
        )
    return Rows(COLUMNS, rows)


def failed_autoattack() -> Rows:
    """The scores of a job that failed: none (its table cells show as missing)."""
    return Rows(COLUMNS, [])
