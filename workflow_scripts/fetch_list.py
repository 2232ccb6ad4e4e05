"""Download one dataset list from its public URL and check its pinned sha256."""

from avmodels.jobs import job
from avmodels.lists import fetch_list

with job(snakemake) as log:
    fetch_list(snakemake.params.url, snakemake.output[0], snakemake.params.sha256)
    log.info("fetched %s", snakemake.params.url)
