"""The project's own table "Defenses under APGD and Square" and its gradient-masking check.

Reads the CSVs of :func:`avmodels.study.autoeval.evaluate_autoattack` (one per dataset, model and
defense). The table has one row per defense and, per mode (A, V, AV), one column per attack
and the worst case, rendered as CSV (long, one row per cell), Markdown and LaTeX.

The check (Athalye et al., ICML 2018; Croce & Hein, ICML 2020): a gradient-free attack that
fools more clips than the gradient attacks at the same budget is a sign that the defense
masks its gradients. Per mode it compares the accuracy under all gradient attacks together
(a clip counts once every gradient attack fails on it) with the gradient-free one's, with
n and a 95 % interval as the other findings (:func:`avmodels.study.verdicts.compare`: paired
bootstrap over the clips). A defense is "held" (masking suspected) when some mode holds,
"within noise" when none holds and one spans zero, else "not held".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from avmodels import atomic
from avmodels.provenance import record_path
from avmodels.registry import AUTOATTACK_DEFENSES
from avmodels.study.findings import per_clip
from avmodels.study.paper import dataset_name
from avmodels.study.rendering import MISSING, latex_escape
from avmodels.study.table_specs.base import METHODS
from avmodels.study.verdicts import HELD, NOISE, NOT_HELD, Check, Measure, Score, compare

TITLE = "Defenses under APGD and Square"
DEFENDED = AUTOATTACK_DEFENSES
#: Attacks that read no gradient: beating the gradient attacks hints at masked gradients.
GRADIENT_FREE = ("square",)
WORST = (
    "worst"  # avmodels.robustness.worstcase.WORST (not imported: this module runs without torch)
)
MODE_HEADERS = {"a": "A", "v": "V", "av": "AV"}
CELL_COLUMNS = ["dataset", "method", "mode", "attack", "ours", "n", "source_record"]


def load_autoattack(paths: Iterable[str | Path]) -> pd.DataFrame:
    """The evaluation CSVs in one frame, each row naming its provenance record (``record``)."""
    frames = []
    for path in paths:
        frame = pd.read_csv(path, dtype={"correct": "string"})
        frame["record"] = str(record_path(path))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _attacks(evals: pd.DataFrame) -> list[str]:
    """Attack labels in first-seen order, the worst case last."""
    labels = [a for a in dict.fromkeys(evals["attack"]) if a not in ("clean", WORST)]
    return [*labels, WORST]


def _rows(evals: pd.DataFrame, dataset: str, method: str) -> pd.DataFrame:
    m = METHODS[method]
    sel = (evals["dataset"] == dataset) & (evals["model"] == m.model)
    return evals[sel & (evals["defense"] == m.defense)]


def _find(rows: pd.DataFrame, mode: str, attack: str) -> pd.Series | None:
    if rows.empty:
        return None
    found = rows[(rows["mode"] == mode) & (rows["attack"] == attack)]
    return found.iloc[0] if len(found) else None


def _fmt(value: float) -> str:
    return MISSING if np.isnan(value) else f"{value:.2f}"


def build_autoattack_table(evals: pd.DataFrame, datasets: Sequence[str]) -> pd.DataFrame:
    """Long cells (``CELL_COLUMNS``): per dataset and defense, clean and each (mode, attack);
    a defense without its evaluation keeps its cells, as NaN."""
    cells = []
    attacks = _attacks(evals) if len(evals) else [WORST]
    for dataset in datasets:
        for method in DEFENDED:
            rows = _rows(evals, dataset, method) if len(evals) else evals
            keys = [("clean", "clean")] + [(m, a) for m in MODE_HEADERS for a in attacks]
            for mode, attack in keys:
                found = (
                    rows[(rows["mode"] == mode) & (rows["attack"] == attack)] if len(rows) else rows
                )
                hit = found.iloc[0] if len(found) else None
                cells.append(
                    {
                        "dataset": dataset,
                        "method": method,
                        "mode": mode,
                        "attack": attack,
                        "ours": np.nan if hit is None else round(float(hit["accuracy"]), 4),
                        "n": 0 if hit is None else int(hit["n"]),
                        "source_record": "" if hit is None else str(hit["record"]),
                    }
                )
    return pd.DataFrame(cells, columns=CELL_COLUMNS)


def _header(cells: pd.DataFrame) -> list[tuple[str, str]]:
    """(mode, attack) columns in order, clean first."""
    return list(dict.fromkeys(zip(cells["mode"], cells["attack"], strict=True)))


def _grid(cells: pd.DataFrame) -> tuple[list[str], list[tuple[str, list[list[str]]]]]:
    cols = _header(cells)
    names = ["Method"] + ["Clean" if m == "clean" else f"{MODE_HEADERS[m]} {a}" for m, a in cols]
    out = []
    for dataset, part in cells.groupby("dataset", sort=False):
        value = {(r.method, r.mode, r.attack): r.ours for r in part.itertuples(index=False)}
        lines = [
            [METHODS[method].label]
            + [
                MISSING if np.isnan(value[(method, *c)]) else f"{value[(method, *c)]:.2f}"
                for c in cols
            ]
            for method in dict.fromkeys(part["method"])
        ]
        out.append((str(dataset), lines))
    return names, out


def _notes(budget: float) -> list[str]:
    return [
        "Accuracy in percent; worst: a clip counts as robust only if every attack fails on it.",
        f"L-inf budget {budget:g} per attacked modality (the image's measured as the tables'); "
        "APGD attacks with cross-entropy or DLR on the logits, not the defense's training loss.",
    ]


def to_markdown(cells: pd.DataFrame, budget: float) -> str:
    names, grid = _grid(cells)
    out = [f"## {TITLE}", ""]
    for dataset, lines in grid:
        out += [f"### {dataset_name(dataset)}", "", "| " + " | ".join(names) + " |"]
        out.append("| --- |" + " ---: |" * (len(names) - 1))
        out += ["| " + " | ".join(line) + " |" for line in lines]
        out.append("")
    return "\n".join(out + [f"- {n}" for n in _notes(budget)]) + "\n"


def to_latex(cells: pd.DataFrame, budget: float) -> str:
    names, grid = _grid(cells)
    width = len(names)
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        rf"\caption{{{TITLE}.}}",
        r"\label{tab:autoattack}",
        rf"\begin{{tabular}}{{l{'r' * (width - 1)}}}",
        r"\toprule",
        " & ".join(latex_escape(n) for n in names) + r" \\",
    ]
    for dataset, rows in grid:
        lines += [
            r"\midrule",
            rf"\multicolumn{{{width}}}{{l}}{{\textit{{{latex_escape(dataset_name(dataset))}}}}} \\",
            r"\midrule",
        ]
        lines += [" & ".join(latex_escape(c) for c in row) + r" \\" for row in rows]
    lines += [r"\bottomrule", r"\end{tabular}", r"\par\smallskip\footnotesize"]
    lines += [latex_escape(n) + r"\\" for n in _notes(budget)]
    return "\n".join([*lines, r"\end{table}"]) + "\n"


def write_autoattack_table(cells: pd.DataFrame, out_stem: str | Path, budget: float) -> None:
    """Write ``<out_stem>.csv`` (long), ``.md`` and ``.tex``, each atomically."""
    stem = Path(out_stem)
    atomic.write_csv(cells, stem.with_suffix(".csv"), index=False, float_format="%.4f")
    atomic.write_text(stem.with_suffix(".md"), to_markdown(cells, budget))
    atomic.write_text(stem.with_suffix(".tex"), to_latex(cells, budget))


# --- the gradient-masking check ----------------------------------------------------------------


def _score(rows: pd.DataFrame, what: str) -> Score | None:
    """All of ``rows`` (one mode's attacks) as one score: correct only where all are."""
    n = int(rows["n"].iloc[0])
    clips = [per_clip(r, n) for _, r in rows.iterrows()]
    if n == 0 or any(c is None for c in clips):
        return None
    joint = np.minimum.reduce(clips)
    return Score(float(joint.mean()), n, joint, what)


def masking_checks(rows: pd.DataFrame, label: str) -> list[Check]:
    """Per mode: accuracy under the gradient attacks minus the gradient-free attack's."""
    checks = []
    for mode, header in MODE_HEADERS.items():
        part = rows[rows["mode"] == mode]
        free = part[part["attack"].isin(GRADIENT_FREE)]
        grad = part[~part["attack"].isin([*GRADIENT_FREE, WORST])]
        if free.empty or grad.empty:
            continue
        names = (", ".join(grad["attack"]), ", ".join(free["attack"]))
        x, y = _score(grad, f"{label}/{mode}/grad"), _score(free, f"{label}/{mode}/free")
        if x is None or y is None:
            continue
        text = f"{header}: accuracy under {names[0]} above {names[1]}'s"
        checks.append(compare(text, Measure.of(x), Measure.of(y)))
    return checks


def masking_verdict(checks: Sequence[Check]) -> str:
    """Held when some mode holds, within noise when one spans zero, else not held."""
    verdicts = {c.verdict() for c in checks}
    if not verdicts:
        return "not evaluated"
    return HELD if HELD in verdicts else NOISE if NOISE in verdicts else NOT_HELD


def masking_findings(evals: pd.DataFrame, datasets: Sequence[str]) -> list[str]:
    """The Markdown section of ``findings.md``: one verdict per dataset and defense."""
    lines = [
        f"## Beyond the paper: {TITLE[0].lower()}{TITLE[1:]}",
        "",
        "Does the gradient-free attack (Square) fool more clips than the gradient attacks "
        "(APGD) at the same budget? That is a sign of masked gradients (held: in some mode).",
        "",
    ]
    if evals.empty:
        return [*lines, "- not evaluated: no APGD and Square evaluations", ""]
    for dataset in datasets:
        for method in DEFENDED:
            rows = _rows(evals, dataset, method)
            checks = masking_checks(rows, f"{dataset}/{method}") if len(rows) else []
            verdict = masking_verdict(checks)
            lines.append(f"### `{method}` on {dataset_name(dataset)}: {verdict}")
            lines.append("")
            lines += [f"- {c.describe()}" for c in checks] or [
                "- the evaluations it needs are missing"
            ]
            lines.append("")
    return lines
