"""Accuracy against attack strength (the paper's Fig. 3 / 7 / 8) for one dataset."""

from pathlib import Path

import _library  # noqa: F401  (this workflow's avmodels, first on sys.path)

from avmodels.study.figures import plot_budget_curves
from avmodels.study.tables import load_evaluations
from avmodels.workflow.jobs import job

with job(snakemake):
    evals = load_evaluations(snakemake.input)
    plot_budget_curves(
        evals, snakemake.wildcards.dataset, Path(snakemake.output.png).with_suffix("")
    )
