"""Score one model under one attack at one budget: clean, audio, visual and audio-visual."""

import _library  # noqa: F401  (this workflow's avmodels, first on sys.path)

from avmodels import atomic
from avmodels.robustness.defended import load_evaluated_model
from avmodels.settings import EvalSettings, ExfmemSettings
from avmodels.study.evaluate import evaluate, failed_evaluation
from avmodels.workflow.jobs import job

ev = snakemake.params.evaluation
wc = snakemake.wildcards


def mark_failed(reason: str) -> None:
    rows = failed_evaluation(wc.dataset, wc.model, wc.defense, wc.attack, float(wc.eps), reason)
    atomic.write_csv(rows, snakemake.output[0], index=False)


with job(snakemake, on_error=mark_failed) as log:
    model, loss = load_evaluated_model(
        snakemake.input.checkpoint,
        memory=snakemake.input.get("memory"),
        exfmem=ExfmemSettings.from_config(snakemake.params.exfmem),
        adaptive=ev["adaptive"],
    )
    rows = evaluate(
        model,
        snakemake.input.manifest,
        wc.attack,
        float(wc.eps),
        EvalSettings.from_config(ev, snakemake.params.inputs),
        loss=loss,
        dataset=wc.dataset,
        model_name=wc.model,
        defense=wc.defense,
    )
    atomic.write_csv(rows, snakemake.output[0], index=False)
    log.info("\n%s", rows.text())
