"""The claims of Tian & Xu, CVPR 2021 (arXiv:2104.02000), Sec. 4.3-4.6 and B.1-B.3, as checks.

Each :class:`ClaimSpec` names the tables it is read from, in order of preference (a dataset
uses the first of them it appears in: Table 1 for MIT-MUSIC and Kinetics-Sounds, Table 4 for
AVE), the paper datasets it is made on (None: all), and a function returning its
comparisons on one table of one dataset, each a :class:`verdicts.Check` built from that
table's own cells. Every comparison is strict: a tie is no win.

Read where the paper's own tables support the text: MIM's "lowest accuracy" and MinSim's
"overall more robust" on Avg (per column, MIM ties PGD on Table 1's MIT-MUSIC V and AV, and
MinSim is below MaxSim on Table 3's Kinetics-Sounds V: 28.12 vs 29.57); PCL's gain on None
under the audio-visual attack only (under the visual one Table 3's MIT-MUSIC prints 37.50 vs
45.19); the full model's best RI under MIM on MIT-MUSIC and AVE, where the paper claims it
(on Kinetics-Sounds PCL's 19.44 is higher).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from avmodels.study.table_specs.base import ATTACKS, FUSIONS, METHODS
from avmodels.study.verdicts import Check, Measure, Score, compare

FULL = "minsim_exfmem"
CLEAN_MARGIN = 2.0  # points: "comparable" clean accuracy (Sec. 4.6)
MOVED = 50.0  # percent of attention mass: the map "fails to localize" below this overlap


class Cells(Protocol):
    """The numbers a claim reads: table cells and the localization results."""

    def cell(
        self, table: str, dataset: str, attack: str, method: str, column: str
    ) -> Measure | None: ...

    def localization(self, dataset: str) -> dict[str, np.ndarray] | None: ...


CheckFn = Callable[[Cells, str, str], list[Check]]


@dataclass(frozen=True)
class ClaimSpec:
    """A claim: its statement, tables (in order of preference), check and paper datasets."""

    name: str
    statement: str
    tables: tuple[str, ...]
    check: CheckFn
    datasets: tuple[str, ...] | None = None


def _label(method: str, column: str) -> str:
    names = {"clean": "clean", "a": "A", "v": "V", "av": "AV", "avg": "Avg", "ri": "RI"}
    return f"{METHODS[method].label} {names.get(column, column)}"


def _above(
    cells: Cells, table: str, dataset: str, attack: str, hi: tuple, lo: tuple, margin: float = 0.0
) -> Check | None:
    """``hi > lo``, each (method, column) under ``attack`` or (attack, method, column) of one
    table; None if a cell is missing."""
    hi, lo = ((attack, *side) if len(side) == 2 else side for side in (hi, lo))
    x = cells.cell(table, dataset, *hi)
    y = cells.cell(table, dataset, *lo)
    if x is None or y is None:
        return None
    less = f" - {margin:g}" if margin else ""
    text = (
        f"{attack.upper()}: {_label(*hi[1:])} {x.value:.2f} > {_label(*lo[1:])} {y.value:.2f}{less}"
    )
    return compare(text, x, y, margin)


def _all(*checks: Check | None) -> list[Check]:
    return [c for c in checks if c is not None]


def pairs(*spec: tuple[str, tuple[str, str], tuple[str, str]], margin: float = 0.0) -> CheckFn:
    """A claim made of fixed comparisons ``(attack, hi, lo)``; ``attack`` "*" = each attack."""

    def check(cells: Cells, table: str, dataset: str) -> list[Check]:
        out = []
        for attack, hi, lo in spec:
            for a in ATTACKS if attack == "*" else (attack,):
                out.append(_above(cells, table, dataset, a, hi, lo, margin))
        return _all(*out)

    return check


def _unimodal_clean(cells: Cells, dataset: str, table: str, method: str) -> Measure | None:
    """A unimodal model's clean accuracy: its Table 1/4 row, read beside Table 2's cells."""
    source = "table1" if table == "table2" else table
    return cells.cell(source, dataset, "none", method, "clean")


def _below_other_unimodal(cells: Cells, table: str, dataset: str) -> list[Check]:
    rows = FUSIONS if table == "table2" else ("concat",)
    attacks = ("fgsm",) if table == "table2" else ATTACKS
    out = []
    for attack in attacks:
        for fusion in rows:
            for mode, other in (("a", "unimodal_v"), ("v", "unimodal_a")):
                x = _unimodal_clean(cells, dataset, table, other)
                y = cells.cell(table, dataset, attack, fusion, mode)
                if x is not None and y is not None:
                    text = (
                        f"{attack.upper()}: {_label(fusion, mode)} {y.value:.2f} < clean "
                        f"{METHODS[other].label} {x.value:.2f}"
                    )
                    out.append(compare(text, x, y))
    return out


def beats(
    best: str, others: tuple[str, ...], attack: str, column: str, high: bool = True
) -> CheckFn:
    """``best`` beats each of ``others`` on ``column`` (higher, or lower if not ``high``)."""
    sides = [((best, column), (o, column)) for o in others if o != best]
    return pairs(*((attack, *(s if high else s[::-1])) for s in sides))


def _mim_strongest(cells: Cells, table: str, dataset: str) -> list[Check]:
    out = []
    for other in ("fgsm", "pgd"):
        x = cells.cell(table, dataset, other, "concat", "avg")
        y = cells.cell(table, dataset, "mim", "concat", "avg")
        if x is not None and y is not None:
            text = f"Avg under MIM {y.value:.2f} < under {other.upper()} {x.value:.2f}"
            out.append(compare(text, x, y))
    return out


def _localization_fooled(cells: Cells, table: str, dataset: str) -> list[Check]:
    arrays = cells.localization(dataset)
    if arrays is None:
        return []
    labels = np.asarray(arrays["labels"])
    n = len(labels)

    def score(name: str, values: np.ndarray) -> Measure:
        values = np.asarray(values, dtype=float)
        return Measure.of(Score(float(values.mean()), n, values, f"{dataset}/{name}"))

    clean = score("clean", 100.0 * (arrays["pred_clean"] == labels))
    out = []
    for mode in ("a", "v", "av"):
        if f"pred_{mode}" not in arrays:
            continue
        attacked = score(mode, 100.0 * (arrays[f"pred_{mode}"] == labels))
        text = f"{mode.upper()} attack: accuracy {attacked.value:.2f} < clean {clean.value:.2f}"
        out.append(compare(text, clean, attacked))
        overlap = score(f"overlap_{mode}", 100.0 * np.asarray(arrays[f"score_{mode}"]))
        text = (
            f"{mode.upper()} attack: attention overlap with the clean map "
            f"{overlap.value:.2f} % < {MOVED:g} %"
        )
        out.append(compare(text, Measure(MOVED, ()), overlap))
    return out


def _pcl(cells: Cells, table: str, dataset: str) -> list[Check]:
    get = {
        (m, c): cells.cell(table, dataset, "fgsm", m, c)
        for m in ("pcl", "none")
        for c in ("clean", "a", "av")
    }
    out = [_above(cells, table, dataset, "fgsm", ("pcl", "av"), ("none", "av"))]
    if all(v is not None for v in get.values()):
        drop = {m: get[(m, "clean")] - get[(m, "a")] for m in ("pcl", "none")}
        text = (
            f"FGSM: clean - A drop of PCL {drop['pcl'].value:.2f} < of None "
            f"{drop['none'].value:.2f}"
        )
        out.append(compare(text, drop["none"], drop["pcl"]))
    return _all(*out)


ATTACK_TABLES = ("table1", "table4")
DEFENSE_TABLES = ("table3", "table5")
OTHERS = ("none", "unimodal_a", "unimodal_v", "pcl", "maxsim", "minsim", "exfmem")
MIM_OTHERS = ("none", "unimodal_a", "unimodal_v", "pcl", "maxsim")

CLAIMS: tuple[ClaimSpec, ...] = (
    ClaimSpec(
        "attacks_decrease",
        "Sec. 4.3: FGSM, PGD and MIM each decrease the Concat model's accuracy: Avg < clean "
        "(Tables 1, 4).",
        ATTACK_TABLES,
        pairs(("*", ("concat", "clean"), ("concat", "avg"))),
    ),
    ClaimSpec(
        "mim_strongest",
        "Sec. 4.3, B.3: MIM is the strongest of the three attacks: the lowest Avg (Tables 1, 4).",
        ATTACK_TABLES,
        _mim_strongest,
    ),
    ClaimSpec(
        "clean_av_beats_unimodal",
        "Sec. 4.3: on clean inputs the audio-visual model beats both unimodal models "
        "(Tables 1, 4).",
        ATTACK_TABLES,
        pairs(
            ("fgsm", ("concat", "clean"), ("none", "unimodal_a", "clean")),
            ("fgsm", ("concat", "clean"), ("none", "unimodal_v", "clean")),
        ),
    ),
    ClaimSpec(
        "single_attack_below_unimodal",
        "Sec. 4.3, B.1: under each attack, the audio-visual model with its audio attacked (7A) "
        "is below clean Unimodal V, with its visual attacked (7V) below clean Unimodal A, at "
        "Table 1's budget (Table 4's on AVE).",
        ATTACK_TABLES,
        _below_other_unimodal,
    ),
    ClaimSpec(
        "av_attack_strongest",
        "Sec. 4.3: attacking both modalities (7AV) hurts more than attacking one: AV < A and "
        "AV < V under each attack (Tables 1, 4).",
        ATTACK_TABLES,
        pairs(("*", ("concat", "a"), ("concat", "av")), ("*", ("concat", "v"), ("concat", "av"))),
    ),
    ClaimSpec(
        "av_model_beats_attacked_unimodal",
        "Sec. 4.3: on MIT-MUSIC under FGSM the audio-visual model's 7AV beats Unimodal A's 7A "
        "and Unimodal V's 7V (Table 3).",
        ("table3",),
        pairs(
            ("fgsm", ("none", "av"), ("unimodal_a", "a")),
            ("fgsm", ("none", "av"), ("unimodal_v", "v")),
        ),
        ("music",),
    ),
    ClaimSpec(
        "joint_worse_than_visual_ks",
        "Sec. 4.3: on Kinetics-Sounds under FGSM the audio-visual model's 7AV is below "
        "Unimodal V's 7V (Table 3).",
        ("table3",),
        pairs(("fgsm", ("unimodal_v", "v"), ("none", "av"))),
        ("kinetics_sounds",),
    ),
    ClaimSpec(
        "film_worst_clean",
        "Sec. 4.4: on clean inputs FiLM is worse than every other fusion (Table 2).",
        ("table2",),
        beats("film", FUSIONS, "fgsm", "clean", high=False),
    ),
    ClaimSpec(
        "fusion_single_attack_below_unimodal",
        "Sec. 4.4: with every fusion, 7A is below clean Unimodal V and 7V below clean "
        "Unimodal A, at Table 2's budget (Table 2; unimodal rows of Table 1).",
        ("table2",),
        _below_other_unimodal,
    ),
    ClaimSpec(
        "concat_fusions_beat_mixing",
        "Sec. 4.4: under the audio-visual attack, Concat and Gated-Concat beat Sum, FiLM and "
        "Gated-Sum (Table 2).",
        ("table2",),
        pairs(
            *(
                ("fgsm", (k, "av"), (m, "av"))
                for k in ("concat", "gated_concat")
                for m in ("sum", "film", "gated_sum")
            )
        ),
    ),
    ClaimSpec(
        "concat_most_robust_fusion",
        "Sec. 4.4: Concat is the most robust fusion under the audio-visual attack (Table 2).",
        ("table2",),
        beats("concat", FUSIONS, "fgsm", "av"),
    ),
    ClaimSpec(
        "localization_fooled",
        "Sec. 4.5, B.2: single-modality and audio-visual attacks fool the sound source "
        "localization model: its accuracy falls and its attention keeps under half its clean "
        "mass (overlap < 50 %) (Figs. 4, 9; the paper judges the maps by eye).",
        ("localization",),
        _localization_fooled,
    ),
    ClaimSpec(
        "unimodal_a_worse",
        "Sec. 4.6: Unimodal A is worse than None on clean inputs and under the audio attack "
        "(Table 3).",
        ("table3",),
        pairs(
            ("fgsm", ("none", "clean"), ("unimodal_a", "clean")),
            ("fgsm", ("none", "a"), ("unimodal_a", "a")),
        ),
    ),
    ClaimSpec(
        "unimodal_v_worse",
        "Sec. 4.6: Unimodal V is worse than None on clean inputs and under the visual attack "
        "(Table 3).",
        ("table3",),
        pairs(
            ("fgsm", ("none", "clean"), ("unimodal_v", "clean")),
            ("fgsm", ("none", "v"), ("unimodal_v", "v")),
        ),
    ),
    ClaimSpec(
        "unimodal_defenses_fail_music",
        "Sec. 4.6: on MIT-MUSIC neither unimodal model improves robustness: RI < 0 (Table 3).",
        ("table3",),
        pairs(
            ("fgsm", ("none", "ri"), ("unimodal_a", "ri")),
            ("fgsm", ("none", "ri"), ("unimodal_v", "ri")),
        ),
        ("music",),
    ),
    ClaimSpec(
        "pcl_audio_robust",
        "Sec. 4.6: PCL barely suffers from the audio attack (its clean - A drop is smaller "
        "than None's) and beats None under the audio-visual attack (Table 3).",
        ("table3",),
        _pcl,
    ),
    ClaimSpec(
        "maxsim_beats_none_av",
        "Sec. 4.6: MaxSim beats None under the audio-visual attack (Table 3).",
        ("table3",),
        pairs(("fgsm", ("maxsim", "av"), ("none", "av"))),
    ),
    ClaimSpec(
        "minsim_beats_maxsim",
        "Sec. 4.6: MinSim is overall more robust than MaxSim: higher Avg (Tables 3, 5).",
        DEFENSE_TABLES,
        pairs(("fgsm", ("minsim", "avg"), ("maxsim", "avg"))),
    ),
    ClaimSpec(
        "minsim_improves_every_attack",
        "Sec. 4.6, B.3: MinSim beats None under the audio, visual and audio-visual attacks "
        "(Tables 3, 5).",
        DEFENSE_TABLES,
        pairs(*(("fgsm", ("minsim", c), ("none", c)) for c in ("a", "v", "av"))),
    ),
    ClaimSpec(
        "exfmem_improves_every_attack",
        "Sec. 4.6, B.3: ExFMem beats None under the audio, visual and audio-visual attacks "
        "(Tables 3, 5).",
        DEFENSE_TABLES,
        pairs(*(("fgsm", ("exfmem", c), ("none", c)) for c in ("a", "v", "av"))),
    ),
    ClaimSpec(
        "exfmem_adds_to_minsim",
        "Sec. 4.6: adding ExFMem to MinSim improves it further: higher Avg (Tables 3, 5).",
        DEFENSE_TABLES,
        pairs(("fgsm", (FULL, "avg"), ("minsim", "avg"))),
    ),
    ClaimSpec(
        "full_best_ri",
        "Sec. 4.6, B.3: the full model (MinSim+ExFMem) has a higher RI than every other method "
        "(Tables 3, 5).",
        DEFENSE_TABLES,
        beats(FULL, OTHERS, "fgsm", "ri"),
    ),
    ClaimSpec(
        "full_clean_not_sacrificed",
        f"Sec. 4.6: the full model's clean accuracy is comparable to None's or better: at most "
        f"{CLEAN_MARGIN:g} points below (Tables 3, 5).",
        DEFENSE_TABLES,
        pairs(("fgsm", (FULL, "clean"), ("none", "clean")), margin=CLEAN_MARGIN),
    ),
    ClaimSpec(
        "full_raises_ri_mim",
        "B.3: the full model improves on None under MIM: RI > 0 (Table 6).",
        ("table6",),
        pairs(("mim", (FULL, "ri"), ("none", "ri"))),
    ),
    ClaimSpec(
        "full_best_ri_mim",
        "B.3: under MIM the full model has a higher RI than every other method on MIT-MUSIC "
        "and AVE (Table 6).",
        ("table6",),
        beats(FULL, MIM_OTHERS, "mim", "ri"),
        ("music", "ave"),
    ),
    ClaimSpec(
        "biased_defenses_lower_clean_ks",
        "B.3: on Kinetics-Sounds, Unimodal V and PCL are below None on clean inputs (Table 6).",
        ("table6",),
        pairs(
            ("mim", ("none", "clean"), ("unimodal_v", "clean")),
            ("mim", ("none", "clean"), ("pcl", "clean")),
        ),
        ("kinetics_sounds",),
    ),
)
