"""Build the table "Defenses under APGD and Square" (CSV, Markdown, LaTeX)."""

from pathlib import Path

import _library  # noqa: F401  (this workflow's avmodels, first on sys.path)

from avmodels.study.autotable import build_autoattack_table, load_autoattack, write_autoattack_table
from avmodels.workflow.jobs import job

with job(snakemake) as log:
    evals = load_autoattack(snakemake.input)
    cells = build_autoattack_table(evals, snakemake.params.datasets)
    write_autoattack_table(
        cells, Path(snakemake.output.csv).with_suffix(""), snakemake.params.budget
    )
    log.info("%d cells, %d missing", len(cells), int(cells["ours"].isna().sum()))
