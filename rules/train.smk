rule train:
    input:
        train="results/{dataset}/data/manifest_train.csv",
        val="results/{dataset}/data/manifest_val.csv",
    output:
        checkpoint="results/{dataset}/models/{model}/checkpoint.pt",
        history="results/{dataset}/models/{model}/training.csv",
    log:
        "logs/{dataset}/train/{model}.log",
    params:
        settings=train_settings,
        inputs=config["inputs"],
        seed=config["seed"],
        code=code("train"),
    threads: 1
    resources:
        mem_mb=8000,
        runtime=720,
    conda:
        "../envs/avmodels.yaml"
    script:
        "../workflow_scripts/train.py"


rule memory_bank:
    input:
        checkpoint="results/{dataset}/models/{model}/checkpoint.pt",
        manifest="results/{dataset}/data/manifest_train.csv",
    output:
        "results/{dataset}/memory/{model}.pt",
    log:
        "logs/{dataset}/memory/{model}.log",
    params:
        exfmem=config["exfmem"],
        inputs=config["inputs"],
        seed=config["seed"],
        code=code("memory_bank"),
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../envs/avmodels.yaml"
    script:
        "../workflow_scripts/memory_bank.py"
