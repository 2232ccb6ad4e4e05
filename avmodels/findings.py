"""The paper's main claims, checked with numbers on this run's evaluations.

Tian & Xu, CVPR 2021 (arXiv:2104.02000), Sec. 4.3-4.6 and appendix B. Each claim is checked
per dataset (and attack) on the cells of the corresponding table (:mod:`avmodels.tables`);
a claim holds when every check that could be made holds, and is "not evaluated" when the
evaluations it needs are missing. ``check_claims(tables.paper_evaluations())`` runs the same
checks on the published numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from avmodels.paper import CITATION
from avmodels.tables import ATTACKS, FUSIONS, METHODS, as_evaluations, build_table


@dataclass(frozen=True)
class Claim:
    """One claim: ``held`` is True / False, or None when it could not be evaluated."""

    name: str
    statement: str
    held: bool | None
    evidence: str


Check = tuple[bool, str]
Cells = dict[tuple[str, str, str], float]


class _Run:
    """Table cells of one evaluation set, built once per (table, dataset)."""

    def __init__(self, evals: pd.DataFrame, budgets: Mapping[str, float] | None) -> None:
        self.evals, self.budgets = evals, budgets
        self._cache: dict[tuple[str, str], Cells] = {}

    def cells(self, table: str, dataset: str) -> Cells:
        key = (table, dataset)
        if key not in self._cache:
            long = build_table(table, self.evals, {dataset: None}, self.budgets)
            self._cache[key] = {
                (r.attack, r.method, r.column): float(r.ours)
                for r in long.itertuples(index=False)
                if not np.isnan(r.ours)
            }
        return self._cache[key]

    def attack_cells(self, dataset: str) -> Cells:
        """Table 1's cells (single-modality budget "single"); Table 4's (all "multi") if the
        single-modality attacks were evaluated only at the "multi" budget (AVE in the paper)."""
        first = self.cells("table1", dataset)
        if any((a, "concat", c) in first for a in ATTACKS for c in ("a", "v")):
            return first
        return self.cells("table4", dataset)


def _f(value: float) -> str:
    return f"{value:.2f}"


def _av_strongest(run: _Run, dataset: str) -> list[Check]:
    cells, checks = run.attack_cells(dataset), []
    for attack in ATTACKS:
        got = [cells.get((attack, "concat", c)) for c in ("a", "v", "av")]
        if None in got:
            continue
        a, v, av = got
        checks.append((av < min(a, v), f"{attack.upper()}: AV {_f(av)} vs A {_f(a)}, V {_f(v)}"))
    return checks


def _avg_of(cells: Cells, attack: str) -> float | None:
    return cells.get((attack, "concat", "avg"))


def _iterative_stronger(run: _Run, dataset: str) -> list[Check]:
    cells = run.attack_cells(dataset)
    fgsm = _avg_of(cells, "fgsm")
    if fgsm is None:
        return []
    checks = []
    for attack in ("pgd", "mim"):
        avg = _avg_of(cells, attack)
        if avg is not None:
            checks.append((avg < fgsm, f"Avg {attack.upper()} {_f(avg)} vs FGSM {_f(fgsm)}"))
    return checks


def _mim_strongest(run: _Run, dataset: str) -> list[Check]:
    cells = run.attack_cells(dataset)
    mim = _avg_of(cells, "mim")
    others = {a: _avg_of(cells, a) for a in ("fgsm", "pgd")}
    others = {a: v for a, v in others.items() if v is not None}
    if mim is None or not others:
        return []
    text = ", ".join(f"{a.upper()} {_f(v)}" for a, v in others.items())
    return [(all(mim <= v for v in others.values()), f"Avg MIM {_f(mim)} vs {text}")]


def _clean_av_best(run: _Run, dataset: str) -> list[Check]:
    cells = run.attack_cells(dataset)
    av = next((cells[k] for a in ATTACKS if (k := (a, "concat", "clean")) in cells), None)
    uni = {m: cells.get(("none", m, "clean")) for m in ("unimodal_a", "unimodal_v")}
    uni = {m: v for m, v in uni.items() if v is not None}
    if av is None or not uni:
        return []
    text = ", ".join(f"{METHODS[m].label} {_f(v)}" for m, v in uni.items())
    return [(all(av > v for v in uni.values()), f"clean AV {_f(av)} vs {text}")]


def _drags_below_other(run: _Run, dataset: str) -> list[Check]:
    ev = run.evals[(run.evals["dataset"] == dataset) & (run.evals["defense"] == "none")]

    def clean(model: str) -> float | None:
        part = ev[(ev["model"] == model) & (ev["mode"] == "clean")]
        return None if part.empty else float(part.sort_values("eps")["accuracy"].iloc[0])

    checks = []
    for attack in ATTACKS:
        for mode, column, other, label in (
            ("a", "eps_audio", "visual", "Unimodal V"), ("v", "eps_visual", "audio", "Unimodal A"),
        ):  # fmt: skip
            part = ev[(ev["model"] == "concat") & (ev["attack"] == attack) & (ev["mode"] == mode)]
            reference = clean(other)
            if part.empty or reference is None:
                continue
            top = part.loc[part[column].idxmax()]
            text = (
                f"{attack.upper()} {mode.upper()} at eps {top[column]:g}: AV model "
                f"{_f(top['accuracy'])} vs clean {label} {_f(reference)}"
            )
            checks.append((float(top["accuracy"]) < reference, text))
    return checks


def _concat_best_fusion(run: _Run, dataset: str) -> list[Check]:
    cells = run.cells("table2", dataset)
    av = {f: cells[("fgsm", f, "av")] for f in FUSIONS if ("fgsm", f, "av") in cells}
    if "concat" not in av or len(av) < 2:
        return []
    text = ", ".join(f"{METHODS[f].label} {_f(v)}" for f, v in av.items())
    return [(all(av["concat"] >= v for v in av.values()), f"FGSM AV column: {text}")]


def _ri_positive(method: str, table: str = "table3") -> Callable[[_Run, str], list[Check]]:
    def check(run: _Run, dataset: str) -> list[Check]:
        cells = run.cells(table, dataset)
        attack = "mim" if table == "table6" else "fgsm"
        ri = cells.get((attack, method, "ri"))
        if ri is None:
            return []
        return [(ri > 0, f"{attack.upper()}: RI {METHODS[method].label} {_f(ri)}")]

    return check


def _full_best_ri(run: _Run, dataset: str) -> list[Check]:
    cells = run.cells("table3", dataset)
    ri = {m: v for (a, m, c), v in cells.items() if c == "ri"}
    full = ri.pop("minsim_exfmem", None)
    if full is None or not ri:
        return []
    best = max(ri, key=ri.get)
    text = f"FGSM: RI MinSim+ExFMem {_f(full)} vs best other {METHODS[best].label} {_f(ri[best])}"
    return [(full >= ri[best], text)]


CLAIMS: tuple[tuple[str, str, Callable[[_Run, str], list[Check]]], ...] = (
    (
        "av_attack_strongest",
        "Audio-visual attacks hurt the Concat model more than single-modality ones: "
        "AV < min(A, V) under each attack (Tables 1, 4).",
        _av_strongest,
    ),
    (
        "iterative_stronger",
        "PGD and MIM are stronger attacks than FGSM: lower Avg (Tables 1, 4).",
        _iterative_stronger,
    ),
    (
        "mim_strongest",
        "MIM is the strongest of the three attacks: lowest Avg (Tables 1, 4).",
        _mim_strongest,
    ),
    (
        "clean_av_beats_unimodal",
        "On clean inputs the audio-visual model beats both unimodal models (Tables 1, 4).",
        _clean_av_best,
    ),
    (
        "attacked_modality_drags",
        "At the largest budget, attacking one modality drags the audio-visual model below "
        "the clean unimodal model of the other modality (Fig. 3, 7, 8).",
        _drags_below_other,
    ),
    (
        "concat_most_robust_fusion",
        "Concat is the most robust fusion under the audio-visual attack (Table 2).",
        _concat_best_fusion,
    ),
    (
        "minsim_raises_ri",
        "MinSim raises RI over None under FGSM (Tables 3, 5).",
        _ri_positive("minsim"),
    ),
    (
        "exfmem_raises_ri",
        "ExFMem raises RI over None under FGSM (Tables 3, 5).",
        _ri_positive("exfmem"),
    ),
    (
        "full_best_ri",
        "MinSim+ExFMem has the best RI of all defenses under FGSM (Tables 3, 5).",
        _full_best_ri,
    ),
    (
        "full_raises_ri_mim",
        "MinSim+ExFMem raises RI over None under MIM (Table 6).",
        _ri_positive("minsim_exfmem", "table6"),
    ),
)


def check_claims(
    evals: pd.DataFrame,
    datasets: Sequence[str] | None = None,
    budgets: Mapping[str, float] | None = None,
) -> list[Claim]:
    """Check :data:`CLAIMS` on ``evals`` for each dataset (default: all in ``evals``)."""
    evals = as_evaluations(evals)
    datasets = list(dict.fromkeys(evals["dataset"])) if datasets is None else list(datasets)
    run = _Run(evals, budgets)
    claims = []
    for name, statement, check in CLAIMS:
        results: list[Check] = []
        for dataset in datasets:
            results += [(ok, f"{dataset}: {text}") for ok, text in check(run, dataset)]
        if not results:
            claims.append(
                Claim(name, statement, None, "not evaluated: the evaluations it needs are missing")
            )
            continue
        held = all(ok for ok, _ in results)
        evidence = "; ".join(f"{text} [{'holds' if ok else 'fails'}]" for ok, text in results)
        claims.append(Claim(name, statement, held, evidence))
    return claims


def verdict(held: bool | None) -> str:
    return {True: "held", False: "not held", None: "not evaluated"}[held]


def write_findings(
    claims: Sequence[Claim], path: str | Path, paper_claims: Sequence[Claim] | None = None
) -> Path:
    """Markdown report: a summary table, then each claim with its numbers.

    ``paper_claims`` (e.g. ``check_claims(tables.paper_evaluations())``) adds the verdict
    of the same checks on the published numbers.
    """
    paper = {c.name: c for c in paper_claims or ()}
    lines = [
        "# Findings: the paper's claims checked on this run",
        "",
        f"Paper: {CITATION}. Accuracies in percent; each claim is checked per dataset "
        "(and attack) and holds when every check holds.",
        "",
    ]
    header = "| claim | this run |" + (" paper's numbers |" if paper else "")
    lines += [header, "|---|---|" + ("---|" if paper else "")]
    for claim in claims:
        row = f"| {claim.statement} | **{verdict(claim.held)}** |"
        if paper:
            ref = paper.get(claim.name)
            row += f" {verdict(ref.held) if ref else 'not evaluated'} |"
        lines.append(row)
    lines.append("")
    for claim in claims:
        lines += [f"## `{claim.name}`: {verdict(claim.held)}", "", claim.statement, ""]
        lines += [f"- {item}" for item in claim.evidence.split("; ")]
        ref = paper.get(claim.name)
        if ref is not None:
            lines += ["", f"Paper's numbers ({verdict(ref.held)}):", ""]
            lines += [f"- {item}" for item in ref.evidence.split("; ")]
        lines.append("")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path
