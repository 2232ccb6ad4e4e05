"""Table 6: defenses under MIM."""

from avmodels.study.table_specs.base import AVG, MIM_DEFENSES, RI, Row, TableSpec, standard_columns

SPEC = TableSpec(
    "table6",
    "Table 6: defenses under MIM",
    standard_columns("multi", [AVG, RI]),
    tuple(Row("mim", m) for m in MIM_DEFENSES),
)
