"""Check the paper's main claims on this run's evaluations."""

from avmodels.findings import check_claims, write_findings
from avmodels.jobs import job
from avmodels.tables import load_evaluations, paper_evaluations

with job(snakemake) as log:
    evals = load_evaluations(snakemake.input.evaluations)
    budgets = snakemake.params.table_budgets
    claims = check_claims(evals, budgets=budgets)
    write_findings(claims, snakemake.output[0], check_claims(paper_evaluations(budgets)))
    log.info("%d claims checked", len(claims))
