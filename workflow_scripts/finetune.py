"""Fine-tune the full defense (MinSim+ExFMem) through the sparse coding from its variant."""

import _library  # noqa: F401  (this workflow's avmodels, first on sys.path)

from avmodels.finetune import finetune_full_defense
from avmodels.jobs import job
from avmodels.plan import MODEL_KEYS
from avmodels.train import TrainConfig

# the network comes from the checkpoint: only the training settings are used
settings = {k: v for k, v in snakemake.params.settings.items() if k not in MODEL_KEYS}
inputs = snakemake.params.inputs
with job(snakemake, seed=snakemake.params.seed) as log:
    train_config = TrainConfig(
        **settings,
        seed=snakemake.params.seed,
        threads=snakemake.threads,
        audio_samples=inputs["audio_samples"],
        image_size=inputs["image_size"],
        resize_size=inputs["resize_size"],
    )
    summary = finetune_full_defense(
        snakemake.input.checkpoint,
        snakemake.input.memory,
        snakemake.params.exfmem,
        train_config,
        snakemake.input.train,
        snakemake.input.val,
        snakemake.output.checkpoint,
        snakemake.output.history,
        dataset=snakemake.wildcards.dataset,
    )
    log.info(
        "best epoch %s, validation accuracy %.2f", summary["best_epoch"], summary["best_val_acc"]
    )
