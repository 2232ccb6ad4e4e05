"""Attention maps of the localization model, clean and attacked (the paper's Fig. 4 / 9)."""

from pathlib import Path

import _library  # noqa: F401  (this workflow's avmodels, first on sys.path)

from avmodels.study.figures import plot_localization
from avmodels.workflow.jobs import job

with job(snakemake):
    plot_localization(snakemake.input[0], Path(snakemake.output.png).with_suffix(""))
