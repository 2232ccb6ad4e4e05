"""Preprocess one shard's videos: 11025 Hz mono audio and 8 fps frames per clip."""

import _library  # noqa: F401  (this workflow's avmodels, first on sys.path)
import pandas as pd

from avmodels import atomic
from avmodels.data.manifests import MANIFEST_COLUMNS
from avmodels.data.media import DiskFullError
from avmodels.data.preprocess import preprocess_many
from avmodels.data.records import EXCLUSION_COLUMNS, read_records, shard_records
from avmodels.workflow.jobs import job

wc = snakemake.wildcards
with job(snakemake) as log:
    records = shard_records(
        read_records(snakemake.input.records), int(wc.shard), snakemake.params.shards
    )
    try:
        rows, excluded = preprocess_many(
            records,
            snakemake.output.clips,
            video_dir=snakemake.params.video_dir,
            classes=snakemake.params.classes,
            max_short_side=snakemake.params.frame_short_side,
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
