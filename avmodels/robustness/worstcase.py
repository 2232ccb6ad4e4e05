"""Worst-case robustness over a list of attacks, per clip (the AutoAttack protocol).

Croce & Hein, ICML 2020 (arXiv:2003.01690): a clip counts as robust only if every attack of
the list fails on it. The attacks run in order; with ``cascade`` each one attacks only the clips
that all earlier ones failed on (the worst case is the same, the cost lower), without it every
attack sees every clip, so each attack's own robust accuracy is known too. Modes follow
:mod:`avmodels.study.evaluate`: ``a`` perturbs the audio, ``v`` the image, ``av`` both.

>>> specs = {"apgd-ce": ("apgd", {"steps": 100}), "square": ("square", {"steps": 5000})}
>>> hits = worst_case_by_mode(model, inputs, labels, specs, {"av": {"audio": e, "visual": e}})
>>> hits["av"]["worst"].float().mean()   # robust accuracy under the worst case
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from avmodels.robustness.attacks import Budget, build_attack

#: Label -> (registry name, keyword arguments other than the budget), e.g. ("apgd", {"steps": 100}).
AttackSpec = tuple[str, Mapping[str, object]]
WORST = "worst"


@torch.no_grad()
def _correct(model: nn.Module, inputs: Mapping[str, Tensor], labels: Tensor) -> Tensor:
    training = model.training
    model.eval()
    try:
        return model(**inputs).argmax(1) == labels
    finally:
        model.train(training)


def worst_case(
    model: nn.Module,
    inputs: Mapping[str, Tensor],
    labels: Tensor,
    specs: Mapping[str, AttackSpec],
    eps: Mapping[str, Budget],
    cascade: bool = True,
    attacked: nn.Module | None = None,
) -> dict[str, Tensor]:
    """Per-clip correctness (B,) bool: ``"clean"``, each attack label, and ``"worst"``.

    The attacks differentiate ``attacked`` (default ``model``; e.g. ``BPDA(model)`` of
    :mod:`avmodels.robustness.bpda`) and ``model`` scores the clips.

    Under ``cascade`` an attack's entry is only meaningful where the earlier attacks failed
    (elsewhere it copies their verdict: the clip is already lost).
    """
    if not specs:
        raise ValueError("worst case over no attacks: give at least one attack")
    if WORST in specs or "clean" in specs:
        raise ValueError(f"attack labels 'clean' and {WORST!r} are reserved")
    clean = _correct(model, inputs, labels)
    hits, robust = {"clean": clean}, clean.clone()
    for label, (name, kwargs) in specs.items():
        attack = build_attack(name, attacked or model, eps=eps, **dict(kwargs))
        todo = robust.nonzero().squeeze(1) if cascade else torch.arange(len(labels))
        correct = robust.clone() if cascade else clean.clone()
        if len(todo):
            subset = {k: v[todo] for k, v in inputs.items()}
            adv = attack(subset, labels[todo])
            correct[todo] = _correct(model, adv, labels[todo]) & clean[todo]
        hits[label] = correct
        robust &= correct
    hits[WORST] = robust
    return hits


def worst_case_by_mode(
    model: nn.Module,
    inputs: Mapping[str, Tensor],
    labels: Tensor,
    specs: Mapping[str, AttackSpec],
    budgets: Mapping[str, Mapping[str, Budget]],
    cascade: bool = True,
    attacked: nn.Module | None = None,
) -> dict[str, dict[str, Tensor]]:
    """:func:`worst_case` per attack mode (e.g. ``evaluate.mode_budgets`` for a, v, av).

    A mode whose budget names an input the model does not take is an error.
    """
    out = {}
    for mode, eps in budgets.items():
        missing = sorted(set(eps) - set(inputs))
        if missing:
            raise ValueError(
                f"mode {mode!r} perturbs {missing} but the inputs are {sorted(inputs)}"
            )
        out[mode] = worst_case(model, inputs, labels, specs, eps, cascade, attacked)
    return out


def accuracies(hits: Mapping[str, Mapping[str, Tensor]]) -> list[dict[str, object]]:
    """Rows {mode, attack, accuracy, n_correct, n} from :func:`worst_case_by_mode`'s output."""
    return [
        {
            "mode": mode,
            "attack": label,
            "accuracy": float(correct.float().mean()),
            "n_correct": int(correct.sum()),
            "n": len(correct),
        }
        for mode, per in hits.items()
        for label, correct in per.items()
    ]
