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


rule autoattack_table:
    input:
        autoattack_outputs(),
    output:
        csv=report(
            "results/tables/autoattack.csv",
            caption="../report/autoattack.rst",
            category="Tables",
            labels={"table": "autoattack"},
        ),
        md="results/tables/autoattack.md",
        tex="results/tables/autoattack.tex",
    log:
        "logs/tables/autoattack.log",
    localrule: True
    conda:
        "../envs/avmodels.yaml"
    params:
        datasets=plan.autoattack_settings(config)["datasets"],
        budget=plan.autoattack_settings(config)["budget"],
        code=code("autoattack_table"),
    script:
        "../workflow_scripts/autoattack_table.py"


rule findings:
    input:
        evaluations=evaluation_outputs(),
        tables=table_outputs(),
        autoattack=autoattack_outputs(),
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
        autoattack_datasets=plan.autoattack_settings(config)["datasets"],
        code=code("findings"),
    script:
        "../workflow_scripts/findings.py"
