"""Building blocks of the table specifications: methods, columns, rows, specs.

Each of Tables 1-6 is one module beside this one (``table1`` ... ``table6``) holding its
``SPEC``, so the code that shapes one table can change without touching the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from avmodels.registry import ATTACKS, FUSIONS  # noqa: F401 (the rows' names, re-exported)


@dataclass(frozen=True)
class Method:
    """A table row's model: the trained variant and the test-time defense on top of it."""

    label: str
    model: str
    defense: str = "none"


METHODS: dict[str, Method] = {
    "concat": Method("Concat", "concat"),
    "sum": Method("Sum", "sum"),
    "film": Method("FiLM", "film"),
    "gated_sum": Method("Gated-Sum", "gated_sum"),
    "gated_concat": Method("Gated-Concat", "gated_concat"),
    "none": Method("None", "concat"),
    "unimodal_a": Method("Unimodal A", "audio"),
    "unimodal_v": Method("Unimodal V", "visual"),
    "pcl": Method("PCL", "pcl"),
    "maxsim": Method("MaxSim", "maxsim"),
    "minsim": Method("MinSim", "minsim"),
    "exfmem": Method("ExFMem", "concat", "exfmem"),
    "minsim_exfmem": Method("MinSim+ExFMem", "minsim", "exfmem"),
}
# The mode that attacks the only input of a unimodal model.
UNIMODAL_MODES = {"audio": "a", "visual": "v"}


@dataclass(frozen=True)
class Column:
    """A table column: measured (``mode`` at budget role ``budget``) or ``derived``."""

    key: str
    header: str
    mode: str | None = None
    budget: str | None = None
    derived: str | None = None  # "avg" | "avg_clean" | "ri"


@dataclass(frozen=True)
class Row:
    """A table row: one method under one attack; ``columns`` restricts the cells it has."""

    attack: str
    method: str
    columns: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TableSpec:
    name: str
    title: str
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    baseline: str = "none"  # the RI reference method

    def column(self, key: str) -> Column:
        return next(c for c in self.columns if c.key == key)

    def row_columns(self, row: Row) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if row.columns is None or c.key in row.columns)


def standard_columns(single: str, derived: Sequence[Column]) -> tuple[Column, ...]:
    return (
        Column("clean", "Clean AV", mode="clean"),
        Column("a", "A", mode="a", budget=single),
        Column("v", "V", mode="v", budget=single),
        Column("av", "AV", mode="av", budget="multi"),
        *derived,
    )


AVG = Column("avg", "Avg", derived="avg")
AVG_CLEAN = Column("avg_clean", "Avg (with clean)", derived="avg_clean")
RI = Column("ri", "RI", derived="ri")
DEFENSES = (
    "none",
    "unimodal_a",
    "unimodal_v",
    "pcl",
    "maxsim",
    "minsim",
    "exfmem",
    "minsim_exfmem",
)
MIM_DEFENSES = ("none", "unimodal_a", "unimodal_v", "pcl", "maxsim", "minsim_exfmem")
UNIMODAL_CLEAN_ROWS = (
    Row("none", "unimodal_a", ("clean",)),
    Row("none", "unimodal_v", ("clean",)),
)
