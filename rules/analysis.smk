rule localization:
    input:
        checkpoint="results/{dataset}/models/localization/checkpoint.pt",
        manifest="results/{dataset}/data/manifest_test.csv",
    output:
        "results/{dataset}/analysis/localization.npz",
    log:
        "logs/{dataset}/analysis/localization.log",
    benchmark:
        "benchmarks/{dataset}/analysis/localization.tsv"
    conda:
        "../envs/avmodels.yaml"
    threads: 1
    resources:
        mem_mb=16000,
        runtime=60,
    params:
        analysis=section("analysis", ["attack", "budget", "localization_samples"]),
        paper_budget=plan.attack_settings(config)["paper_budget"],
        inputs=model_inputs(),
        classes=dataset_classes,
        code=code("localization"),
    script:
        "../workflow_scripts/localization.py"


rule embeddings:
    input:
        plain="results/{dataset}/models/concat/checkpoint.pt",
        minsim="results/{dataset}/models/minsim/checkpoint.pt",
        manifest="results/{dataset}/data/manifest_test.csv",
    output:
        "results/{dataset}/analysis/embeddings.npz",
    log:
        "logs/{dataset}/analysis/embeddings.log",
    benchmark:
        "benchmarks/{dataset}/analysis/embeddings.tsv"
    conda:
        "../envs/avmodels.yaml"
    threads: 1
    resources:
        mem_mb=16000,
        runtime=60,
    params:
        analysis=section("analysis", ["tsne_attack", "tsne_budget", "tsne_samples"]),
        paper_budget=plan.attack_settings(config)["paper_budget"],
        inputs=model_inputs(),
        classes=dataset_classes,
        code=code("embeddings"),
    script:
        "../workflow_scripts/embeddings.py"


rule budget_figure:
    input:
        sweep_inputs,
    output:
        png=report(
            "results/figures/{dataset}_budget_curves.png",
            caption="../report/budget_curves.rst",
            category="Figures",
            subcategory="Budget curves",
            labels={"dataset": "{dataset}"},
        ),
        pdf="results/figures/{dataset}_budget_curves.pdf",
    log:
        "logs/{dataset}/figures/budget_curves.log",
    localrule: True
    conda:
        "../envs/avmodels.yaml"
    params:
        code=code("budget_figure"),
    script:
        "../workflow_scripts/budget_figure.py"


rule localization_figure:
    input:
        "results/{dataset}/analysis/localization.npz",
    output:
        png=report(
            "results/figures/{dataset}_localization.png",
            caption="../report/localization.rst",
            category="Figures",
            subcategory="Localization",
            labels={"dataset": "{dataset}"},
        ),
        pdf="results/figures/{dataset}_localization.pdf",
    log:
        "logs/{dataset}/figures/localization.log",
    localrule: True
    conda:
        "../envs/avmodels.yaml"
    params:
        code=code("localization_figure"),
    script:
        "../workflow_scripts/localization_figure.py"


rule tsne_figure:
    input:
        "results/{dataset}/analysis/embeddings.npz",
    output:
        png=report(
            "results/figures/{dataset}_tsne.png",
            caption="../report/tsne.rst",
            category="Figures",
            subcategory="t-SNE",
            labels={"dataset": "{dataset}", "view": "clean"},
        ),
        pdf="results/figures/{dataset}_tsne.pdf",
        audio_png=report(
            "results/figures/{dataset}_tsne_attacked_audio.png",
            caption="../report/tsne.rst",
            category="Figures",
            subcategory="t-SNE",
            labels={"dataset": "{dataset}", "view": "attacked audio"},
        ),
        audio_pdf="results/figures/{dataset}_tsne_attacked_audio.pdf",
        visual_png=report(
            "results/figures/{dataset}_tsne_attacked_visual.png",
            caption="../report/tsne.rst",
            category="Figures",
            subcategory="t-SNE",
            labels={"dataset": "{dataset}", "view": "attacked visual"},
        ),
        visual_pdf="results/figures/{dataset}_tsne_attacked_visual.pdf",
    log:
        "logs/{dataset}/figures/tsne.log",
    localrule: True
    conda:
        "../envs/avmodels.yaml"
    params:
        seed=config["seed"],
        code=code("tsne_figure"),
    script:
        "../workflow_scripts/tsne_figure.py"
