"""Download one shard of a dataset's clips from YouTube (time ranges only; failures listed)."""

from avmodels.download import download_shard, ensure_ffmpeg
from avmodels.jobs import job
from avmodels.lists import read_records, shard_records

wc = snakemake.wildcards
with job(snakemake) as log:
    ensure_ffmpeg()
    records = shard_records(
        read_records(snakemake.input.records), int(wc.shard), snakemake.params.shards
    )
    summary = download_shard(
        records,
        snakemake.output.videos,
        snakemake.output.failures,
        url_template=snakemake.params.url_template,
    )
    log.info("%s", summary)
