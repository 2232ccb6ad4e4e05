"""Accuracy against attack strength (the paper's Fig. 3 / 7 / 8) for one dataset."""

from pathlib import Path

import _library  # noqa: F401  (this workflow's avmodels, first on sys.path)

from avmodels.figures import plot_budget_curves
from avmodels.jobs import job
from avmodels.tables import load_evaluations

with job(snakemake):
    evals = load_evaluations(snakemake.input)
    plot_budget_curves(
        evals, snakemake.wildcards.dataset, Path(snakemake.output.png).with_suffix("")
    )
