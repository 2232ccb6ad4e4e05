"""Table 1: Concat model under FGSM, PGD and MIM, with the clean unimodal models."""

from avmodels.study.table_specs.base import (
    ATTACKS,
    AVG,
    UNIMODAL_CLEAN_ROWS,
    Row,
    TableSpec,
    standard_columns,
)

SPEC = TableSpec(
    "table1",
    "Table 1: Concat model under FGSM, PGD and MIM, with the clean unimodal models",
    standard_columns("single", [AVG]),
    (*(Row(a, "concat") for a in ATTACKS), *UNIMODAL_CLEAN_ROWS),
)
