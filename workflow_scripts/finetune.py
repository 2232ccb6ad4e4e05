"""Fine-tune the full defense (MinSim+ExFMem) through the sparse coding from its variant."""

import _library  # noqa: F401  (this workflow's avmodels, first on sys.path)

from avmodels.settings import ExfmemSettings, InputSettings
from avmodels.study.finetune import finetune_full_defense
from avmodels.study.train import TrainConfig
from avmodels.workflow.jobs import job

params = snakemake.params
with job(snakemake, seed=params.seed) as log:
    # the network comes from the checkpoint: only the training settings are used
    train_config = TrainConfig.from_settings(
        params.settings,
        InputSettings.from_config(params.inputs),
        seed=params.seed,
        threads=snakemake.threads,
    )
    summary = finetune_full_defense(
        snakemake.input.checkpoint,
        snakemake.input.memory,
        ExfmemSettings.from_config(params.exfmem),
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
