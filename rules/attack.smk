rule evaluate:
    input:
        unpack(eval_inputs),
    output:
        EVALUATION,
    log:
        "logs/{dataset}/eval/{model}/{defense}/{attack}/{eps}.log",
    benchmark:
        "benchmarks/{dataset}/eval/{model}/{defense}/{attack}/{eps}.tsv"
    group:
        "evaluation"
    conda:
        "../envs/avmodels.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        evaluation=canonical(plan.attack_settings(config)),
        exfmem=exfmem_settings,
        inputs=model_inputs(),
        code=code("evaluate"),
        attempt=failed_attempts(EVALUATION),
    script:
        "../workflow_scripts/evaluate.py"
