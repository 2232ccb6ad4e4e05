"""Match a listed dataset's records to the videos of a local folder, by ID."""

import _library  # noqa: F401  (this workflow's avmodels, first on sys.path)

from avmodels.data.local import match_records, write_sources
from avmodels.data.records import read_records, write_exclusions
from avmodels.workflow.jobs import job

with job(snakemake) as log:
    clips, missing = match_records(read_records(snakemake.input.records), snakemake.params.videos)
    write_sources(snakemake.output.sources, clips)
    write_exclusions(snakemake.output.missing, missing)
    log.info("%d videos found in %s, %d not", len(clips), snakemake.params.videos, len(missing))
