"""Train one model variant and keep its best-validation checkpoint."""

import _library  # noqa: F401  (this workflow's avmodels, first on sys.path)

from avmodels.models.model import ModelConfig
from avmodels.settings import InputSettings
from avmodels.study.train import TrainConfig, train
from avmodels.workflow.jobs import job

params = snakemake.params
with job(snakemake, seed=params.seed) as log:
    model_config = ModelConfig.from_settings(
        params.settings, len(params.classes), snakemake.input.get("visual_weights")
    )
    train_config = TrainConfig.from_settings(
        params.settings,
        InputSettings.from_config(params.inputs),
        seed=params.seed,
        threads=snakemake.threads,
    )
    summary = train(
        model_config,
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
