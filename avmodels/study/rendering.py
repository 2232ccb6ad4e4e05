"""Tables 1-6 rendered: Markdown and LaTeX beside the long CSV, our number and the paper's
in each cell, with the footnotes a table needs (missing evaluations, unimodal cells)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from avmodels import atomic
from avmodels.study.paper import dataset_name, paper_caption, paper_notes
from avmodels.study.table_specs.base import ATTACKS, METHODS, TableSpec
from avmodels.study.tables import DEFAULT_BUDGETS, TABLES, UNIMODAL_MARK

MISSING = "—"
ATTACK_NAMES = {**{name: name.upper() for name in ATTACKS}, "none": "clean only"}
_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "—": "---", "†": r"$^\dagger$",
}  # fmt: skip


def _fmt(value: float) -> str:
    return MISSING if np.isnan(value) else f"{value:.2f}"


def _budget_line(spec: TableSpec, budgets: Mapping[str, float]) -> str:
    parts = []
    for col in spec.columns:
        if col.mode in ("a", "v", "av"):
            parts.append(f"{col.header} {budgets[col.budget]:g}")
    return "L-inf budget per attacked modality: " + ", ".join(parts)


def _grid(cells: pd.DataFrame, spec: TableSpec) -> list[tuple[str, list[list[str]]]]:
    """Per dataset: its heading and the rows of rendered cells (ours (paper))."""
    out = []
    multi_attack = len({r.attack for r in spec.rows}) > 1
    for dataset, part in cells.groupby("dataset", sort=False):
        index = {(r.attack, r.method, r.column): r for r in part.itertuples(index=False)}
        lines = []
        for row in spec.rows:
            if not any((row.attack, row.method, c.key) in index for c in spec.columns):
                continue
            line = [ATTACK_NAMES.get(row.attack, row.attack)] if multi_attack else []
            line.append(METHODS[row.method].label)
            for col in spec.columns:
                cell = index.get((row.attack, row.method, col.key))
                if cell is None:
                    line.append("")
                    continue
                text = _fmt(cell.ours)
                if not np.isnan(cell.paper):
                    text += f" ({cell.paper:.2f})"
                if cell.note.startswith(UNIMODAL_MARK):
                    text += UNIMODAL_MARK
                line.append(text)
            lines.append(line)
        out.append((str(dataset), lines))
    return out


def _dataset_heading(cells: pd.DataFrame, dataset: str) -> str:
    reference = cells.loc[cells["dataset"] == dataset, "paper_dataset"].iloc[0]
    name = dataset_name(dataset)
    if not reference:
        return f"{name} (the paper reports no numbers for it in this table)"
    if reference == dataset:
        return f"{name} (paper's numbers in parentheses)"
    return (
        f"{name} (in parentheses: the paper's {dataset_name(reference)} numbers, a reference "
        "only: this dataset differs, so the numbers are not expected to match)"
    )


def _footnotes(cells: pd.DataFrame, spec: TableSpec) -> list[str]:
    notes = ["Accuracy in percent: ours (paper)."]
    if cells["ours"].isna().any():
        notes.append(f"{MISSING}: not evaluated (no evaluation found; see the CSV's note column).")
    if cells["note"].str.startswith(UNIMODAL_MARK).any():
        notes.append(
            f"{UNIMODAL_MARK}: unimodal model; an attack on the modality it does not read leaves "
            "it unchanged (V = clean for Unimodal A, A = clean for Unimodal V; AV = its own "
            "modality's attack), as in the paper's tables."
        )
    if "ri" in set(cells["column"]):
        notes.append("RI = (clean_m + Avg_m) - (clean_None + Avg_None), paper Sec. 4.6.")
    for reference in dict.fromkeys(cells["paper_dataset"]):
        if reference:
            notes += paper_notes(spec.name, reference)
    return notes


def to_markdown(cells: pd.DataFrame, table: str | TableSpec | None = None, budgets=None) -> str:
    """A Markdown rendering of :func:`build_table`'s output, one section per dataset."""
    spec = _spec_of(cells, table)
    budgets = {**DEFAULT_BUDGETS, **(budgets or {})}
    multi_attack = len({r.attack for r in spec.rows}) > 1
    header = (["Attack"] if multi_attack else []) + ["Method"] + [c.header for c in spec.columns]
    out = [f"## {spec.title}", ""]
    caption = paper_caption(spec.name)
    if caption:
        out += [f"Paper: {caption}", ""]
    out += [_budget_line(spec, budgets) + ".", ""]
    for dataset, lines in _grid(cells, spec):
        out += [f"### {_dataset_heading(cells, dataset)}", ""]
        out.append("| " + " | ".join(header) + " |")
        aligns = ["---"] * (len(header) - len(spec.columns)) + ["---:"] * len(spec.columns)
        out.append("| " + " | ".join(aligns) + " |")
        out += ["| " + " | ".join(line) + " |" for line in lines]
        out.append("")
    out += [f"- {n}" for n in _footnotes(cells, spec)]
    return "\n".join(out) + "\n"


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


def to_latex(cells: pd.DataFrame, table: str | TableSpec | None = None, budgets=None) -> str:
    """A booktabs LaTeX ``table`` of :func:`build_table`'s output, datasets as row groups."""
    spec = _spec_of(cells, table)
    budgets = {**DEFAULT_BUDGETS, **(budgets or {})}
    multi_attack = len({r.attack for r in spec.rows}) > 1
    header = (["Attack"] if multi_attack else []) + ["Method"] + [c.header for c in spec.columns]
    width = len(header)
    align = "l" * (width - len(spec.columns)) + "r" * len(spec.columns)
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        rf"\caption{{{latex_escape(spec.title)}. {latex_escape(_budget_line(spec, budgets))}.}}",
        rf"\label{{tab:{spec.name}}}",
        rf"\begin{{tabular}}{{{align}}}",
        r"\toprule",
        " & ".join(latex_escape(h) for h in header) + r" \\",
    ]
    for dataset, rows in _grid(cells, spec):
        heading = latex_escape(_dataset_heading(cells, dataset))
        lines += [
            r"\midrule",
            rf"\multicolumn{{{width}}}{{l}}{{\textit{{{heading}}}}} \\",
            r"\midrule",
        ]
        lines += [" & ".join(latex_escape(c) for c in row) + r" \\" for row in rows]
    lines += [r"\bottomrule", r"\end{tabular}", r"\par\smallskip\footnotesize"]
    lines += [latex_escape(n) + r"\\" for n in _footnotes(cells, spec)]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def _spec_of(cells: pd.DataFrame, table: str | TableSpec | None) -> TableSpec:
    if isinstance(table, TableSpec):
        return table
    name = table or (str(cells["table"].iloc[0]) if len(cells) else None)
    if name not in TABLES:
        raise ValueError(f"unknown table {name!r}; valid: {', '.join(TABLES)}")
    return TABLES[name]


def write_table(
    cells: pd.DataFrame,
    out_stem: str | Path,
    table: str | TableSpec | None = None,
    budgets: Mapping[str, float] | None = None,
) -> dict[str, Path]:
    """Write ``<out_stem>.csv`` (long), ``.md`` and ``.tex``; returns the paths by suffix."""
    stem = Path(out_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = {ext: stem.with_name(stem.name + f".{ext}") for ext in ("csv", "md", "tex")}
    atomic.write_csv(cells, paths["csv"], index=False, float_format="%.4f")
    atomic.write_text(paths["md"], to_markdown(cells, table, budgets))
    atomic.write_text(paths["tex"], to_latex(cells, table, budgets))
    return paths
