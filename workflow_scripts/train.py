"""Train one model variant and keep its best-validation checkpoint."""

import _library  # noqa: F401  (this workflow's avmodels, first on sys.path)

from avmodels.jobs import job
from avmodels.model import ModelConfig
from avmodels.train import TrainConfig, train

settings = dict(snakemake.params.settings)
inputs = snakemake.params.inputs
with job(snakemake, seed=snakemake.params.seed) as log:
    model_config = ModelConfig(
        variant=settings.pop("arch"),
        num_classes=len(snakemake.params.classes),
        visual_output_stride=settings.pop("visual_output_stride"),
        visual_pool=settings.pop("visual_pool"),
        pretrained_visual=snakemake.input.get("visual_weights"),
    )
    train_config = TrainConfig(
        **settings,
        seed=snakemake.params.seed,
        threads=snakemake.threads,
        audio_samples=inputs["audio_samples"],
        image_size=inputs["image_size"],
        resize_size=inputs["resize_size"],
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
