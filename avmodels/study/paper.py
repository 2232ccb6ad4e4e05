"""The published numbers of the paper's Tables 1-6, for side-by-side reporting.

Tian & Xu, "Can audio-visual integration strengthen robustness under multimodal attacks?",
CVPR 2021 (arXiv:2104.02000). The numbers live in ``paper_results.yaml`` beside this module,
nested as table -> dataset -> attack -> method -> column (the file's header explains the keys).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

PAPER_RESULTS = Path(__file__).with_name("paper_results.yaml")
CITATION = (
    'Tian & Xu, "Can audio-visual integration strengthen robustness under multimodal attacks?", '
    "CVPR 2021 (arXiv:2104.02000)"
)
PAPER_COLUMNS = ["table", "dataset", "attack", "method", "column", "value"]

# Dataset names as printed, and which published dataset each run dataset is compared with.
DATASET_NAMES = {
    "music": "MIT-MUSIC",
    "kinetics_sounds": "Kinetics-Sounds",
    "ave": "AVE",
    "synthetic_music": "Synthetic MUSIC (embedded)",
}
REFERENCE_DATASETS = {
    "music": "music",
    "kinetics_sounds": "kinetics_sounds",
    "ave": "ave",
    "synthetic_music": "music",
}


@lru_cache(maxsize=4)
def _load(path: str) -> dict:
    return yaml.load(Path(path).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def paper_data(path: str | Path = PAPER_RESULTS) -> dict:
    """The parsed YAML file (cached; do not modify the returned mapping)."""
    return _load(str(path))


def paper_cells(path: str | Path = PAPER_RESULTS) -> pd.DataFrame:
    """Every published number, one row per cell: ``PAPER_COLUMNS`` (value in percent)."""
    rows = [
        (table, dataset, attack, method, column, float(value))
        for table, spec in paper_data(path)["tables"].items()
        for dataset, attacks in spec["results"].items()
        for attack, methods in attacks.items()
        for method, columns in methods.items()
        for column, value in columns.items()
    ]
    return pd.DataFrame(rows, columns=PAPER_COLUMNS)


def paper_value(
    table: str, dataset: str | None, attack: str, method: str, column: str, path=PAPER_RESULTS
) -> float:
    """One published number, NaN where the paper prints none."""
    results = paper_data(path)["tables"].get(table, {}).get("results", {})
    value = results.get(dataset, {}).get(attack, {}).get(method, {}).get(column)
    return np.nan if value is None else float(value)


def paper_datasets(table: str, path=PAPER_RESULTS) -> tuple[str, ...]:
    """The datasets a table reports in the paper."""
    return tuple(paper_data(path)["tables"].get(table, {}).get("results", {}))


def paper_caption(table: str, path=PAPER_RESULTS) -> str:
    return paper_data(path)["tables"].get(table, {}).get("caption", "")


def paper_notes(table: str, dataset: str | None = None, path=PAPER_RESULTS) -> list[str]:
    """Remarks on a table's published numbers (e.g. a value that does not recompute),
    for one dataset or (``dataset=None``) all."""
    notes = paper_data(path)["tables"].get(table, {}).get("notes", {})
    keys = list(notes) if dataset is None else [dataset]
    return [n for key in keys for n in notes.get(key, [])]


def reference_dataset(dataset: str) -> str | None:
    """The published dataset a run dataset is compared with (None: no published reference)."""
    return REFERENCE_DATASETS.get(dataset)


def dataset_name(dataset: str | None) -> str:
    return DATASET_NAMES.get(dataset, dataset) if dataset else "—"
