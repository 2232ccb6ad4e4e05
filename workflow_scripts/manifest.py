"""Merge the shards into one manifest per split and one exclusion list with reasons."""

import _library  # noqa: F401  (this workflow's avmodels, first on sys.path)

from avmodels.data.manifests import merge_manifests
from avmodels.registry import SPLITS
from avmodels.workflow.jobs import job

with job(snakemake) as log:
    counts = merge_manifests(
        manifests=snakemake.input.manifests,
        exclusions=[*snakemake.input.list_exclusions, *snakemake.input.exclusions],
        failures=snakemake.input.failures,
        outputs={split: snakemake.output[split] for split in SPLITS},
        exclusions_out=snakemake.output.exclusions,
    )
    log.info("clips per split: %s", counts)
