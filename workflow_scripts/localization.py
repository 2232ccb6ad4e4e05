"""Localize sound sources with the attention model, clean and under A, V and AV attacks."""

import _library  # noqa: F401  (this workflow's avmodels, first on sys.path)

from avmodels.models.model import load_checkpoint
from avmodels.settings import EvalSettings, LocalizationSettings
from avmodels.study.analyses import evaluate_localization
from avmodels.study.analysis_arrays import save_localization_npz
from avmodels.workflow.jobs import job

params = snakemake.params
analysis = LocalizationSettings.from_config(params.analysis)
settings = EvalSettings.from_config({"paper_budget": params.paper_budget}, params.inputs)
with job(snakemake) as log:
    model, _ = load_checkpoint(snakemake.input.checkpoint)
    result = evaluate_localization(
        model,
        snakemake.input.manifest,
        analysis.attack,
        analysis.budget,
        settings,
        limit=analysis.samples,
        keep_frames=analysis.samples,
    )
    save_localization_npz(
        snakemake.output[0],
        frames=result.frames,
        attention=result.attention,
        predictions=result.predictions,
        labels=result.labels,
        scores={mode: s["overlap"] for mode, s in result.scores.items()},
        class_names=snakemake.params.classes,
    )
    log.info("\n%s", result.summary.to_string(index=False))
