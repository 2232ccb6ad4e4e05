rule evaluate:
    input:
        unpack(eval_inputs),
    output:
        "results/{dataset}/eval/{model}/{defense}/{attack}/{eps}.csv",
    log:
        "logs/{dataset}/eval/{model}/{defense}/{attack}/{eps}.log",
    params:
        evaluation=config["evaluation"],
        exfmem=config["exfmem"],
        inputs=config["inputs"],
        code=code("evaluate"),
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
    group:
        "evaluation"
    conda:
        "../envs/avmodels.yaml"
    script:
        "../workflow_scripts/evaluate.py"
