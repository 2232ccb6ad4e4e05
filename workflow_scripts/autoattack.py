"""Score one defended model under APGD and Square: each attack and the worst case, per mode."""

import _library  # noqa: F401  (this workflow's avmodels, first on sys.path)

from avmodels import atomic
from avmodels.robustness.defended import load_evaluated_model
from avmodels.settings import EvalSettings, ExfmemSettings
from avmodels.study.autoeval import attack_specs, evaluate_autoattack, failed_autoattack
from avmodels.workflow.jobs import job

params = snakemake.params
wc = snakemake.wildcards


def mark_failed(reason: str) -> None:
    atomic.write_csv(failed_autoattack(), snakemake.output[0], index=False)


with job(snakemake, on_error=mark_failed) as log:
    model, _ = load_evaluated_model(
        snakemake.input.checkpoint,
        memory=snakemake.input.get("memory"),
        exfmem=ExfmemSettings.from_config(params.exfmem),
        adaptive=False,  # APGD and Square take no custom loss
    )
    rows = evaluate_autoattack(
        model,
        snakemake.input.manifest,
        attack_specs(params.autoattack["attacks"], params.autoattack["seed"]),
        float(wc.eps),
        EvalSettings.from_config(params.evaluation, params.inputs),
        bpda=params.autoattack["bpda"],
        dataset=wc.dataset,
        model_name=wc.model,
        defense=wc.defense,
    )
    atomic.write_csv(rows, snakemake.output[0], index=False)
    log.info("\n%s", rows.text(leave_out=["correct"]))
