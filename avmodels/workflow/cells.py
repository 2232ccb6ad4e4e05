"""Cells of the long table CSVs: reading, naming and selecting them.

Each row of ``results/tables/<table>.csv`` is one cell: ``table, dataset, attack, method,
column``, our value (``ours``), the paper's, and ``source_record``, the provenance records
of the evaluations it came from (``;``-separated; ``paper:<table>`` for a published value).
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from pathlib import Path

CELL_KEYS = ("table", "dataset", "attack", "method", "column")
PUBLISHED = "paper:"  # a source_record naming a published value, not a record


def _norm(text: str) -> str:
    """Case- and punctuation-blind form: ``MinSim+ExFMem`` -> ``minsim_exfmem``."""
    return re.sub(r"[^0-9a-z.]+", "_", str(text).strip().lower()).strip("_")


def read_cells(path: str | Path) -> list[dict[str, str]]:
    """The rows of a table CSV."""
    with Path(path).open(newline="") as fh:
        return list(csv.DictReader(fh))


def cell_label(cell: dict[str, str]) -> str:
    """A cell named by its keys: ``table3 dataset=music attack=fgsm method=minsim column=av``."""
    keys = [k for k in CELL_KEYS[1:] if k in cell]
    return f"{cell.get('table', '?')} " + " ".join(f"{k}={cell[k]}" for k in keys)


def select_cells(
    cells: Sequence[dict[str, str]], row: str | None, col: str | None
) -> list[dict[str, str]]:
    """The cells a ``--row``/``--col`` selection names.

    ``row`` is comma-separated filters: ``key=value`` on a column of the table CSV, or a bare
    value matched against any of ``table, dataset, attack, method, column`` (so ``minsim``
    or ``minsim,fgsm`` work). Matching ignores case and punctuation (``MinSim+ExFMem``).
    """
    found = list(cells)
    known = set(cells[0]) if cells else set()
    for token in (t.strip() for t in (row or "").split(",")):
        if not token:
            continue
        if "=" in token:
            key, value = (s.strip() for s in token.split("=", 1))
            if key not in known:
                raise ValueError(f"no column {key!r}; columns: {', '.join(sorted(known))}")
            found = [c for c in found if _norm(c[key]) == _norm(value)]
        else:
            found = [
                c for c in found if any(_norm(c.get(k, "")) == _norm(token) for k in CELL_KEYS)
            ]
    if col:
        found = [c for c in found if _norm(c.get("column", "")) == _norm(col)]
    return found


def number(text: str | None) -> float:
    """A cell value as a float (NaN when empty or not a number)."""
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


def sources(cell: dict[str, str]) -> list[str]:
    """The records a cell names in ``source_record`` (``;``-separated)."""
    return [s.strip() for s in (cell.get("source_record") or "").split(";") if s.strip()]


def table_cells(results: Path) -> dict[tuple[str, ...], dict[str, str]]:
    """Cells of the long table CSVs under ``results/tables``, keyed by ``CELL_KEYS``."""
    cells: dict[tuple[str, ...], dict[str, str]] = {}
    for path in sorted((results / "tables").glob("*.csv")):
        rows = read_cells(path)
        if not rows or not {"column", "ours"} <= set(rows[0]):
            continue
        for cell in rows:
            cell = {"table": path.stem, **{k: v for k, v in cell.items() if v is not None}}
            cells[tuple(cell.get(k, "") for k in CELL_KEYS)] = {**cell, "_file": str(path)}
    return cells
