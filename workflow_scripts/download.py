"""Download one shard of a dataset's clips into its clip store (time ranges only).

The store and its record of failed clips are not outputs of the step, so Snakemake never
deletes them: a clip on disk is never fetched again. The outputs are the list of finished
clips and a copy of the failures.
"""

import shutil
import sys

import _library  # noqa: F401  (this workflow's avmodels, first on sys.path)

from avmodels.data.download import (
    DownloadStopped,
    RuntimeMissing,
    download_shard,
    shard_options,
    write_done_list,
)
from avmodels.data.failures import TRANSIENT
from avmodels.data.records import read_records, shard_records
from avmodels.settings import DownloadSettings
from avmodels.workflow.jobs import job

wc, params = snakemake.wildcards, snakemake.params
try:
    with job(snakemake) as log:
        records = shard_records(read_records(snakemake.input.records), int(wc.shard), params.shards)
        summary = download_shard(
            records,
            params.store,
            params.failures,
            url_template=params.url_template,
            **shard_options(DownloadSettings.from_config(params.options)),
        )
        log.info("%s", summary)
        transient = sum(summary.failed[r] for r in TRANSIENT)
        if transient:
            log.warning("%d clips failed for now; `--forcerun download` fetches them", transient)
        write_done_list(params.store, [str(r.clip_id) for r in records], snakemake.output.done)
        tmp = f"{snakemake.output.failures}.tmp"
        shutil.copyfile(params.failures, tmp)
        shutil.move(tmp, snakemake.output.failures)
except (DownloadStopped, RuntimeMissing) as err:  # one line, not a traceback
    sys.exit(f"download of {wc.dataset} shard {wc.shard}: {err}")
