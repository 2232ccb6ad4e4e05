"""Turn a dataset's lists into clip records (the paper's splits, duplicates resolved)."""

import _library  # noqa: F401  (this workflow's avmodels, first on sys.path)

from avmodels.data.records import records_with_exclusions, write_exclusions, write_records
from avmodels.workflow.jobs import job

with job(snakemake) as log:
    lists = {name: path for name, path in snakemake.input.items()}
    records, excluded = records_with_exclusions(
        snakemake.wildcards.dataset, lists, whole_videos=snakemake.params.whole_videos
    )
    write_records(snakemake.output.records, records)
    write_exclusions(snakemake.output.exclusions, excluded)
    log.info("%d records, %d excluded", len(records), len(excluded))
