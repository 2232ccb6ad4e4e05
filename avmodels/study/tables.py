"""Tables 1-6 of Tian & Xu, CVPR 2021 (arXiv:2104.02000) from this run's evaluations.

Each table is a :class:`TableSpec`: data naming, for every cell, the model, defense,
attack, mode and budget its number comes from; one generic function (:func:`build_table`)
builds any of them. Derived columns use ``avmodels.robustness.metrics``: ``avg`` = mean of the A, V,
AV columns (Tables 1, 3-6), ``avg_clean`` = mean with the clean column (Table 2), ``ri`` =
relative improvement over the "None" row (Sec. 4.6).

A cell without its evaluation is kept and marked missing (NaN, "—" when rendered), never
dropped. The paper's number for the same cell is shown beside ours where it exists.

Unimodal models (Tables 3, 5, 6, rows "Unimodal A/V"): an attack on the modality a model
does not read leaves its input unchanged, and an audio-visual attack reduces to the attack
on its own modality. The published numbers follow this: Unimodal A has V = clean and
AV = A, Unimodal V has A = clean and AV = V (e.g. Table 3, MIT-MUSIC: 59.62 / 0.00 / 59.62 /
0.00). Where the evaluation has no row for such a mode, the cell is filled by this rule and
its note says so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from avmodels.provenance import record_path
from avmodels.robustness.metrics import (
    EVAL_COLUMNS,
    attack_average,
    average_with_clean,
    relative_improvement,
)
from avmodels.study.paper import (
    paper_cells,
    paper_datasets,
    paper_value,
    reference_dataset,
)
from avmodels.study.table_specs import TABLE_NAMES, load_spec
from avmodels.study.table_specs.base import (  # noqa: F401 (re-exported for callers)
    ATTACKS,
    DEFENSES,
    FUSIONS,
    METHODS,
    MIM_DEFENSES,
    UNIMODAL_MODES,
    Column,
    Row,
    TableSpec,
)

log = logging.getLogger(__name__)

CELL_COLUMNS = [
    "table", "dataset", "attack", "method", "column", "ours", "paper", "delta",
    "source_record", "paper_dataset", "note",
]  # fmt: skip
# Budget roles of the tables (L-inf per modality): "single" for single-modality attacks in
# Table 1, "multi" for audio-visual attacks and for Tables 2-6 (the paper's code README).
DEFAULT_BUDGETS = {"single": 0.012, "multi": 0.006}
UNIMODAL_MARK = "†"


TABLES: dict[str, TableSpec] = {name: load_spec(name) for name in TABLE_NAMES}


# --- evaluations ---------------------------------------------------------------------------


def as_evaluations(frame: pd.DataFrame) -> pd.DataFrame:
    """Check and normalise an evaluation table (``EVAL_COLUMNS`` + optional ``record``).

    Budgets left empty are filled from ``eps`` and the mode; exact duplicate rows are dropped;
    two rows for the same evaluation with different accuracies raise ``ValueError``.
    """
    missing = [c for c in EVAL_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"evaluations lack column(s) {', '.join(missing)}")
    df = frame.copy()
    if "record" not in df.columns:
        df["record"] = ""
    df["record"] = df["record"].fillna("").astype(str)
    for col in ("dataset", "model", "defense", "attack", "mode"):
        df[col] = df[col].astype(str)
    bad = sorted(set(df["mode"]) - {"clean", "a", "v", "av"})
    if bad:
        raise ValueError(f"unknown evaluation mode(s) {', '.join(bad)}")
    for col in ("eps", "eps_audio", "eps_visual", "accuracy"):
        df[col] = pd.to_numeric(df[col], errors="raise").astype(float)
    for col, modes in (("eps_audio", ("a", "av")), ("eps_visual", ("v", "av"))):
        attacked = df["mode"].isin(modes)
        df[col] = df[col].where(df[col].notna(), np.where(attacked, df["eps"], 0.0))
    key = ["dataset", "model", "defense", "attack", "eps", "mode", "eps_audio", "eps_visual"]
    df = df.drop_duplicates(subset=[*key, "accuracy"]).reset_index(drop=True)
    clash = df[df.duplicated(subset=key, keep=False)]
    if len(clash):
        first = clash.iloc[0]
        raise ValueError(
            "conflicting evaluations for "
            + ", ".join(f"{k}={first[k]}" for k in key)
            + f": accuracies {sorted(clash['accuracy'].unique())}"
        )
    return df


def load_evaluations(
    paths: Iterable[str | Path], records: Sequence[str | Path] | None = None
) -> pd.DataFrame:
    """Read evaluation CSVs (one per job) into one table with a ``record`` column.

    ``record`` is the provenance record of each row's CSV: the CSV's own ``record`` column
    if it has one, else ``records[i]`` if given, else the sidecar path
    (``provenance.record_path``, ``<csv>.prov.json``).
    """
    paths = [Path(p) for p in paths]
    if records is not None and len(records) != len(paths):
        raise ValueError(f"{len(records)} records for {len(paths)} evaluation files")
    frames = []
    for i, path in enumerate(paths):
        df = pd.read_csv(path, dtype={"correct": "string"})  # per-clip "0"/"1", not a number
        missing = [c for c in EVAL_COLUMNS if c not in df.columns]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
        default = str(records[i]) if records is not None else str(record_path(path))
        if "record" not in df.columns:
            df["record"] = default
        df["record"] = df["record"].fillna(default)
        frames.append(df)
    if not frames:
        return as_evaluations(pd.DataFrame(columns=[*EVAL_COLUMNS, "record"]))
    return as_evaluations(pd.concat(frames, ignore_index=True))


def _close(series: pd.Series, value: float) -> np.ndarray:
    return np.isclose(series.to_numpy(dtype=float), value, rtol=1e-6, atol=1e-9)


def find_evaluation(
    evals: pd.DataFrame,
    dataset: str,
    model: str,
    defense: str,
    attack: str,
    mode: str,
    eps_audio: float = 0.0,
    eps_visual: float = 0.0,
) -> pd.Series | None:
    """The evaluation row of one cell, or None.

    Clean accuracy does not depend on the attack: any job's clean row serves, the same
    attack's preferred. For attacked modes the budgets of the attacked inputs must match.
    """
    sel = (evals["dataset"] == dataset) & (evals["model"] == model)
    sel &= (evals["defense"] == defense) & (evals["mode"] == mode)
    if mode == "clean":
        found = evals[sel]
        if found.empty:
            return None
        order = np.lexsort((found["eps"].to_numpy(), (found["attack"] != attack).to_numpy()))
        if found["accuracy"].nunique() > 1:
            log.warning(
                "clean accuracy of %s/%s/%s differs between jobs: %s",
                dataset,
                model,
                defense,
                sorted(found["accuracy"].unique()),
            )
        return found.iloc[order[0]]
    sel &= evals["attack"] == attack
    if mode in ("a", "av"):
        sel &= _close(evals["eps_audio"], eps_audio)
    if mode in ("v", "av"):
        sel &= _close(evals["eps_visual"], eps_visual)
    found = evals[sel]
    return None if found.empty else found.iloc[0]


# --- building -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Cell:
    value: float
    records: tuple[str, ...] = ()
    note: str = ""


def _measured(
    evals: pd.DataFrame, dataset: str, row: Row, col: Column, budgets: Mapping[str, float]
) -> _Cell:
    method = METHODS[row.method]
    eps = budgets[col.budget] if col.budget else 0.0
    eps_a = eps if col.mode in ("a", "av") else 0.0
    eps_v = eps if col.mode in ("v", "av") else 0.0
    args = (evals, dataset, method.model, method.defense, row.attack)
    found = find_evaluation(*args, col.mode, eps_a, eps_v)
    note = ""
    own = UNIMODAL_MODES.get(method.model)
    if found is None and own is not None and col.mode not in ("clean", own):
        substitute = own if col.mode == "av" else "clean"
        found = find_evaluation(*args, substitute, eps_a, eps_v)
        absent = "visual" if own == "a" else "audio"
        note = (
            f"{UNIMODAL_MARK} unimodal: the {absent} perturbation never reaches the model, "
            f"so {col.mode.upper()} = {substitute.upper() if substitute != 'clean' else 'clean'}"
        )
    if found is None:
        what = f"model={method.model}, defense={method.defense}, attack={row.attack}"
        budget = f", eps={eps:g}" if col.mode != "clean" else ""
        return _Cell(np.nan, (), f"missing: no evaluation {what}, mode={col.mode}{budget}")
    record = str(found["record"])
    return _Cell(float(found["accuracy"]), (record,) if record else (), note)


def _derive(kind: str, parts: Sequence[_Cell]) -> _Cell:
    records = tuple(dict.fromkeys(r for c in parts for r in c.records))
    if any(np.isnan(c.value) for c in parts):
        return _Cell(np.nan, records, f"missing: needs {kind} inputs that are missing")
    values = [c.value for c in parts]
    if kind == "avg":
        value = attack_average(values)
    elif kind == "avg_clean":
        value = average_with_clean(values[0], values[1:])
    elif kind == "ri":
        value = relative_improvement(*values)
    else:
        raise ValueError(f"unknown derived column {kind!r}")
    return _Cell(float(value), records)


class _TableBuilder:
    """The cells of one table for one dataset (rows memoised: RI reads the baseline row)."""

    def __init__(self, spec: TableSpec, evals: pd.DataFrame, dataset: str, budgets) -> None:
        self.spec, self.evals, self.dataset, self.budgets = spec, evals, dataset, budgets
        self._rows: dict[tuple[str, str], dict[str, _Cell]] = {}

    def row(self, row: Row) -> dict[str, _Cell]:
        key = (row.attack, row.method)
        if key not in self._rows:
            self._rows[key] = self._compute(row)
        return self._rows[key]

    def _compute(self, row: Row) -> dict[str, _Cell]:
        spec = self.spec
        cells = {
            c.key: _measured(self.evals, self.dataset, row, c, self.budgets)
            for c in spec.columns
            if c.mode is not None
        }
        attacked = [cells[k] for k in ("a", "v", "av") if k in cells]
        for col in spec.columns:
            if col.derived == "avg":
                cells["avg"] = _derive("avg", attacked)
            elif col.derived == "avg_clean":
                cells["avg_clean"] = _derive("avg_clean", [cells["clean"], *attacked])
        if any(c.derived == "ri" for c in spec.columns):
            base = (
                cells if row.method == spec.baseline else self.row(Row(row.attack, spec.baseline))
            )
            if "avg" not in cells:
                cells["avg"] = _derive("avg", attacked)
            parts = [cells["clean"], cells["avg"], base["clean"], base["avg"]]
            cells["ri"] = _derive("ri", parts)
        return cells


def build_table(
    table: str | TableSpec,
    evals: pd.DataFrame,
    datasets: Mapping[str, str | None] | Sequence[str],
    budgets: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """The long table (``CELL_COLUMNS``, one row per cell) of one of Tables 1-6.

    Arguments:
        table: ``"table1"`` ... ``"table6"`` or a :class:`TableSpec`.
        evals: evaluations (:func:`load_evaluations`).
        datasets: run datasets to show, each mapped to the published dataset it is compared
            with (None: none); a plain list maps each through ``paper.reference_dataset``
            (``synthetic_music`` -> ``music``).
        budgets: the budget roles ``single`` and ``multi`` (default :data:`DEFAULT_BUDGETS`).
    """
    spec = TABLES[table] if isinstance(table, str) else table
    budgets = {**DEFAULT_BUDGETS, **(budgets or {})}
    if not isinstance(datasets, Mapping):
        datasets = {d: reference_dataset(d) for d in datasets}
    evals = as_evaluations(evals)
    rows = []
    published = paper_datasets(spec.name)
    for dataset, reference in datasets.items():
        reference = reference if reference in published else None
        builder = _TableBuilder(spec, evals, dataset, budgets)
        for row in spec.rows:
            cells = builder.row(row)
            for col in spec.row_columns(row):
                cell = cells[col.key]
                paper = paper_value(spec.name, reference, row.attack, row.method, col.key)
                ours = round(cell.value, 4)
                rows.append(
                    {
                        "table": spec.name,
                        "dataset": dataset,
                        "attack": row.attack,
                        "method": row.method,
                        "column": col.key,
                        "ours": ours,
                        "paper": paper,
                        "delta": round(ours - paper, 4),
                        "source_record": ";".join(cell.records),
                        "paper_dataset": reference or "",
                        "note": cell.note,
                    }
                )
    return pd.DataFrame(rows, columns=CELL_COLUMNS)


def paper_evaluations(budgets: Mapping[str, float] | None = None) -> pd.DataFrame:
    """The paper's measured cells (not Avg/RI) as evaluation rows of its three datasets.

    Rebuilds the published tables from their measured cells (the claim checks of
    ``findings`` read each table's printed cells instead). Cells shared by
    several tables (e.g. Table 2's Concat = Table 3's None) collapse into one row; where the
    paper prints two values for one evaluation (Kinetics-Sounds, FGSM, AV at 0.006: 8.18 in
    Table 1, 8.09 in Table 3) the first table's is kept.
    """
    budgets = {**DEFAULT_BUDGETS, **(budgets or {})}
    rows = []
    for cell in paper_cells().itertuples(index=False):
        spec = TABLES[cell.table]
        col = spec.column(cell.column)
        if col.mode is None:
            continue
        method = METHODS[cell.method]
        eps = budgets[col.budget] if col.budget else 0.0
        rows.append(
            {
                "dataset": cell.dataset,
                "model": method.model,
                "defense": method.defense,
                "attack": cell.attack,
                "eps": eps,
                "mode": col.mode,
                "eps_audio": eps if col.mode in ("a", "av") else 0.0,
                "eps_visual": eps if col.mode in ("v", "av") else 0.0,
                "accuracy": cell.value,
                "n_correct": np.nan,
                "n": np.nan,
                "record": f"paper:{cell.table}",
            }
        )
    frame = pd.DataFrame(rows)
    key = ["dataset", "model", "defense", "attack", "eps", "mode", "eps_audio", "eps_visual"]
    clash = frame[frame.duplicated(subset=key, keep=False)]
    clash = clash.groupby(key, sort=False).filter(lambda g: g["accuracy"].nunique() > 1)
    for _, group in clash.groupby(key, sort=False):
        first = group.iloc[0]
        log.debug(
            "paper: %s differ for %s; kept %s",
            list(zip(group["record"], group["accuracy"], strict=True)),
            dict(first[key]),
            first["accuracy"],
        )
    return as_evaluations(frame.drop_duplicates(subset=key).reset_index(drop=True))
