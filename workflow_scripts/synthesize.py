"""Render the embedded synthetic dataset as real mp4 files (no download)."""

import shutil
from pathlib import Path

import _library  # noqa: F401  (this workflow's avmodels, first on sys.path)

from avmodels import atomic
from avmodels.data.lists import FAILURE_COLUMNS
from avmodels.data.records import write_exclusions
from avmodels.data.synthetic import Difficulty, generate
from avmodels.settings import SyntheticSettings
from avmodels.workflow.jobs import job

settings = SyntheticSettings.from_config(snakemake.params.settings)
out = snakemake.output
with job(snakemake, seed=settings.seed) as log:
    staging = Path(out.videos).parent / "synthetic.staging"
    shutil.rmtree(staging, ignore_errors=True)
    records = generate(
        staging,
        settings.counts(),
        seed=settings.seed,
        difficulty=Difficulty.from_settings(settings.difficulty),
        workers=snakemake.threads,
    )
    Path(out.videos).parent.mkdir(parents=True, exist_ok=True)
    (staging / "videos").rename(out.videos)
    (staging / "records.csv").rename(out.records)
    shutil.rmtree(staging)
    write_exclusions(out.exclusions, [])
    atomic.write_text(out.failures, ",".join(FAILURE_COLUMNS) + "\n")
    log.info("rendered %d clips", len(records))
