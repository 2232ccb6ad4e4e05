"""The specifications of the paper's Tables 1-6, one module each, loaded by name."""

from __future__ import annotations

import importlib

from avmodels.study.table_specs.base import TableSpec

TABLE_NAMES = ("table1", "table2", "table3", "table4", "table5", "table6")


def load_spec(name: str) -> TableSpec:
    """The spec of one table (``"table1"`` ... ``"table6"``), imported by name."""
    if name not in TABLE_NAMES:
        raise ValueError(f"unknown table {name!r}; valid: {', '.join(TABLE_NAMES)}")
    return importlib.import_module(f"{__name__}.{name}").SPEC
