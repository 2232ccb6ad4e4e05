"""Read an own-dataset CSV (video, label, split) into the sources table."""

import _library  # noqa: F401  (this workflow's avmodels, first on sys.path)

from avmodels.data.lists import ListFormatError
from avmodels.data.local import read_own_csv, write_sources
from avmodels.data.records import write_exclusions
from avmodels.workflow.jobs import job

with job(snakemake) as log:
    clips, missing = read_own_csv(snakemake.input.csv, snakemake.wildcards.dataset)
    unknown = sorted({c.label for c in clips} - set(snakemake.params.classes))
    if unknown:
        raise ListFormatError(f"{snakemake.input.csv}: labels not in classes: {unknown}")
    write_sources(snakemake.output.sources, clips)
    write_exclusions(snakemake.output.missing, missing)
    log.info("%d clips, %d listed files missing", len(clips), len(missing))
