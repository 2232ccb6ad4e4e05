rule table:
    input:
        table_inputs,
    output:
        csv=report(
            "results/tables/{table}.csv",
            caption="../report/table.rst",
            category="Tables",
            labels={"table": "{table}"},
        ),
        md="results/tables/{table}.md",
        tex="results/tables/{table}.tex",
    log:
        "logs/tables/{table}.log",
    localrule: True
    conda:
        "../envs/avmodels.yaml"
    params:
        datasets=lookup(dpath="tables/{table}", within=config),
        table_budgets=table_budgets,
        code=table_code,
    script:
        "../workflow_scripts/table.py"


rule findings:
    input:
        evaluations=evaluation_outputs(),
        tables=table_outputs(),
        localization=expand(
            "results/{dataset}/analysis/localization.npz",
            dataset=sorted(plan.analysis_datasets(config, "localization")),
        ),
    output:
        report(
            "results/findings.md",
            caption="../report/findings.rst",
            category="Findings",
            labels={"file": "findings.md"},
        ),
    log:
        "logs/findings.log",
    localrule: True
    conda:
        "../envs/avmodels.yaml"
    params:
        table_budgets=canonical(config["evaluation"]["table_budgets"]),
        tables=table_settings(),
        localization_datasets=sorted(plan.analysis_datasets(config, "localization")),
        code=code("findings"),
    script:
        "../workflow_scripts/findings.py"
