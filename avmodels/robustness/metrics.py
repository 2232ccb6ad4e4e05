"""The summary metrics of Tian & Xu, CVPR 2021 (arXiv:2104.02000), Sec. 4.6.

All values are percentages. The attack modes are clean inputs and attacks on the audio only,
the visual only and both (the paper's columns 3AV, 7A, 7V, 7AV).

>>> round(attack_average([51.92, 45.19, 15.38]), 2)  # Table 3, MUSIC, None: Avg
37.5
>>> round(relative_improvement(91.35, 50.96, 88.46, 37.50), 2)  # MinSim vs None: RI
16.35
"""

from __future__ import annotations

from collections.abc import Sequence

MODES = ("clean", "a", "v", "av")
#: Columns of an evaluation file: one row per attack mode of one model, defense, attack, budget.
EVAL_COLUMNS = [
    "dataset", "model", "defense", "attack", "eps", "mode",
    "eps_audio", "eps_visual", "accuracy", "n_correct", "n",
]  # fmt: skip


def attack_average(attacked: Sequence[float]) -> float:
    """``Avg = (7A + 7V + 7AV) / 3``: the mean of the attacked columns (Tables 1, 3-6)."""
    if len(attacked) == 0:
        raise ValueError("no attacked accuracies to average")
    return sum(float(a) for a in attacked) / len(attacked)


def average_with_clean(clean: float, attacked: Sequence[float]) -> float:
    """Table 2's average: the mean of the clean and the attacked columns together."""
    return attack_average([clean, *attacked])


def relative_improvement(clean_m: float, avg_m: float, clean_none: float, avg_none: float) -> float:
    """``RI = (3AV_m + Avg_m) - (3AV_n + Avg_n)``: a defense m against the base model n (None)."""
    return (clean_m + avg_m) - (clean_none + avg_none)
