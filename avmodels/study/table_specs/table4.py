"""Table 4: Concat model under FGSM, PGD and MIM (all budgets 0.006), with the clean
unimodal models."""

from avmodels.study.table_specs.base import (
    ATTACKS,
    AVG,
    UNIMODAL_CLEAN_ROWS,
    Row,
    TableSpec,
    standard_columns,
)

SPEC = TableSpec(
    "table4",
    "Table 4: Concat model under FGSM, PGD and MIM (all budgets 0.006), with the clean "
    "unimodal models",
    standard_columns("multi", [AVG]),
    (*(Row(a, "concat") for a in ATTACKS), *UNIMODAL_CLEAN_ROWS),
)
