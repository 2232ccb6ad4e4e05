"""Fetch the visual network's pretrained weights once and verify their sha256."""

import _library  # noqa: F401  (this workflow's avmodels, first on sys.path)

from avmodels.data.weights import fetch_weights
from avmodels.workflow.jobs import job

with job(snakemake) as log:
    fetch_weights(snakemake.params.url, snakemake.output[0], snakemake.params.sha256)
    log.info("fetched %s", snakemake.params.url)
