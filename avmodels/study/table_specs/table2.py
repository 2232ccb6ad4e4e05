"""Table 2: audio-visual fusions under FGSM."""

from avmodels.study.table_specs.base import AVG_CLEAN, FUSIONS, Row, TableSpec, standard_columns

SPEC = TableSpec(
    "table2",
    "Table 2: audio-visual fusions under FGSM",
    standard_columns("multi", [AVG_CLEAN]),
    tuple(Row("fgsm", f) for f in FUSIONS),
)
