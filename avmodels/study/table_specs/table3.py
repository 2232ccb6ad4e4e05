"""Table 3: defenses under FGSM."""

from avmodels.study.table_specs.base import AVG, DEFENSES, RI, Row, TableSpec, standard_columns

SPEC = TableSpec(
    "table3",
    "Table 3: defenses under FGSM",
    standard_columns("multi", [AVG, RI]),
    tuple(Row("fgsm", m) for m in DEFENSES),
)
