"""Check the paper's claims on this run's evaluations and on the paper's printed tables."""

import _library  # noqa: F401  (this workflow's avmodels, first on sys.path)

from avmodels.study.autotable import load_autoattack, masking_findings
from avmodels.study.findings import RunCells, check_claims, paper_claims, write_findings
from avmodels.study.tables import load_evaluations
from avmodels.workflow.jobs import job

params = snakemake.params
with job(snakemake) as log:
    localization = dict(
        zip(params.localization_datasets, snakemake.input.localization, strict=True)
    )
    cells = RunCells(
        load_evaluations(snakemake.input.evaluations),
        params.tables,
        params.table_budgets,
        localization,
    )
    datasets = sorted({d for mapping in params.tables.values() for d in mapping})
    claims = check_claims(cells)
    extra = []
    if snakemake.input.autoattack:
        evals = load_autoattack(snakemake.input.autoattack)
        extra = masking_findings(evals, params.autoattack_datasets)
    write_findings(claims, snakemake.output[0], paper_claims(), datasets, extra)
    log.info("%d claims checked: %s", len(claims), ", ".join(c.verdict for c in claims))
