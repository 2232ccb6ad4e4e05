"""Preprocess one shard of the clips the user holds (read in place, never changed)."""

import _library  # noqa: F401  (this workflow's avmodels, first on sys.path)
import pandas as pd

from avmodels import atomic
from avmodels.data.local import read_sources
from avmodels.data.manifests import MANIFEST_COLUMNS
from avmodels.data.media import DiskFullError
from avmodels.data.preprocess import preprocess_many
from avmodels.data.records import EXCLUSION_COLUMNS, shard_of
from avmodels.workflow.jobs import job

wc, params = snakemake.wildcards, snakemake.params
with job(snakemake) as log:
    clips = [
        c
        for c in read_sources(snakemake.input.sources)
        if shard_of(c.clip_id, params.shards) == int(wc.shard)
    ]
    try:
        rows, excluded = preprocess_many(
            clips,
            snakemake.output.clips,
            classes=params.classes,
            max_short_side=params.frame_short_side,
            workers=snakemake.threads,
        )
    except DiskFullError as err:  # not a bad clip: stop, record nothing
        log.error("stopped: %s", err)
        raise SystemExit(f"preprocess stopped: {err}") from None
    manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    atomic.write_csv(manifest, snakemake.output.manifest, index=False)
    exclusions = pd.DataFrame(excluded, columns=EXCLUSION_COLUMNS)
    atomic.write_csv(exclusions, snakemake.output.exclusions, index=False)
    log.info("%d clips usable, %d excluded", len(rows), len(excluded))
