rule evaluate:
    input:
        unpack(eval_inputs),
    output:
        plan.EVALUATION,
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
        mem_mb=16000,
        runtime=30,
    params:
        evaluation=canonical(plan.attack_settings(config)),
        exfmem=exfmem_settings,
        inputs=model_inputs(),
        code=code("evaluate"),
        attempt=failed_attempts(plan.EVALUATION),
    script:
        "../workflow_scripts/evaluate.py"


rule autoattack:
    input:
        unpack(eval_inputs),
    output:
        plan.AUTOATTACK_EVALUATION,
    log:
        "logs/{dataset}/autoattack/{model}/{defense}/{eps}.log",
    benchmark:
        "benchmarks/{dataset}/autoattack/{model}/{defense}/{eps}.tsv"
    priority: 1  # a long job: started last, it would end the run on one core
    conda:
        "../envs/avmodels.yaml"
    threads: 1
    resources:
        mem_mb=16000,
        runtime=60,
    params:
        evaluation=canonical(plan.attack_settings(config)),
        autoattack=autoattack_params(),
        exfmem=exfmem_settings,
        inputs=model_inputs(),
        code=code("autoattack"),
    script:
        "../workflow_scripts/autoattack.py"
