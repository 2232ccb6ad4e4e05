rule visual_weights:
    output:
        weights.IMAGENET_FILE,
    log:
        "logs/weights/resnet18_imagenet1k_v1.log",
    localrule: True
    conda:
        "../envs/avmodels.yaml"
    params:
        url=weights.settings(config).url,
        sha256=weights.settings(config).sha256,
        code=code("visual_weights"),
    script:
        "../workflow_scripts/visual_weights.py"


rule train:
    input:
        unpack(pretrained_inputs),
        train="results/{dataset}/data/manifest_train.csv",
        val="results/{dataset}/data/manifest_val.csv",
    output:
        checkpoint="results/{dataset}/models/{model}/checkpoint.pt",
        history="results/{dataset}/models/{model}/training.csv",
    log:
        "logs/{dataset}/train/{model}.log",
    benchmark:
        "benchmarks/{dataset}/train/{model}.tsv"
    priority: 1  # a long job: started last, it would end the run on one core
    conda:
        "../envs/avmodels.yaml"
    threads: 1
    resources:
        mem_mb=32000,
        runtime=training_runtime,
    params:
        settings=train_settings,
        inputs=model_inputs(),
        seed=config["seed"],
        classes=dataset_classes,
        code=code("train"),
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
    benchmark:
        "benchmarks/{dataset}/memory/{model}.tsv"
    priority: 1  # on the way to the fine-tuned model and its evaluations
    conda:
        "../envs/avmodels.yaml"
    threads: 1
    resources:
        mem_mb=16000,
        runtime=60,
    params:
        exfmem=section("exfmem", ["size"]),
        inputs=model_inputs(),
        seed=config["seed"],
        code=code("memory_bank"),
    script:
        "../workflow_scripts/memory_bank.py"


rule finetune:
    input:
        checkpoint="results/{dataset}/models/{model}/checkpoint.pt",
        memory="results/{dataset}/memory/{model}.pt",
        train="results/{dataset}/data/manifest_train.csv",
        val="results/{dataset}/data/manifest_val.csv",
    output:
        checkpoint="results/{dataset}/models/{model}_exfmem/checkpoint.pt",
        history="results/{dataset}/models/{model}_exfmem/training.csv",
    log:
        "logs/{dataset}/finetune/{model}_exfmem.log",
    benchmark:
        "benchmarks/{dataset}/finetune/{model}_exfmem.tsv"
    priority: 1  # a long job: started last, it would end the run on one core
    conda:
        "../envs/avmodels.yaml"
    threads: 1
    resources:
        mem_mb=32000,
        runtime=training_runtime,
    params:
        settings=finetune_settings,
        exfmem=section("exfmem"),
        inputs=model_inputs(),
        seed=config["seed"],
        code=code("finetune"),
    script:
        "../workflow_scripts/finetune.py"
