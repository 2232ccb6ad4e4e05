"""Build one of the paper's Tables 1-6 (CSV, Markdown, LaTeX) beside the paper's numbers."""

from pathlib import Path

import _library  # noqa: F401  (this workflow's avmodels, first on sys.path)

from avmodels.study.rendering import write_table
from avmodels.study.tables import build_table, load_evaluations
from avmodels.workflow.jobs import job

with job(snakemake) as log:
    table = snakemake.wildcards.table
    evals = load_evaluations(snakemake.input)
    budgets = snakemake.params.table_budgets
    cells = build_table(table, evals, dict(snakemake.params.datasets), budgets)
    stem = Path(snakemake.output.csv).with_suffix("")
    write_table(cells, stem, table, budgets)
    log.info("%s: %d cells, %d missing", table, len(cells), int(cells["ours"].isna().sum()))
