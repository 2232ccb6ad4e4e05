"""t-SNE of audio and visual embeddings without and with MinSim (the paper's Fig. 5 / 10 / 11)."""

from pathlib import Path

import _library  # noqa: F401  (this workflow's avmodels, first on sys.path)

from avmodels.study.figures import plot_tsne
from avmodels.workflow.jobs import job

out = snakemake.output
with job(snakemake, seed=snakemake.params.seed):
    for png, attacked in ((out.png, None), (out.audio_png, "audio"), (out.visual_png, "visual")):
        plot_tsne(
            snakemake.input[0],
            Path(png).with_suffix(""),
            attacked=attacked,
            seed=snakemake.params.seed,
        )
