"""Download one dataset list from its public URL and check its pinned sha256."""

import _library  # noqa: F401  (this workflow's avmodels, first on sys.path)

from avmodels.data.lists import fetch_list
from avmodels.workflow.jobs import job

with job(snakemake) as log:
    fetch_list(snakemake.params.url, snakemake.output[0], snakemake.params.sha256)
    log.info("fetched %s", snakemake.params.url)
