rule fetch_list:
    output:
        "resources/lists/{dataset}/{name}",
    log:
        "logs/{dataset}/fetch_list/{name}.log",
    localrule: True
    conda:
        "../envs/avmodels.yaml"
    params:
        url=lambda wc: config["datasets"][wc.dataset]["lists"][wc.name]["url"],
        sha256=lambda wc: config["datasets"][wc.dataset]["lists"][wc.name]["sha256"],
        code=code("fetch_list"),
    script:
        "../workflow_scripts/fetch_list.py"


rule list_records:
    input:
        unpack(list_files),
    output:
        records="resources/{dataset}/records.csv",
        exclusions="resources/{dataset}/list_exclusions.csv",
    log:
        "logs/{dataset}/list_records.log",
    wildcard_constraints:
        dataset=alternatives(YOUTUBE + LOCAL),
    localrule: True
    conda:
        "../envs/avmodels.yaml"
    params:
        whole_videos=lambda wc: wc.dataset in LOCAL,
        code=code("list_records"),
    script:
        "../workflow_scripts/list_records.py"


rule local_sources:
    input:
        records="resources/{dataset}/records.csv",
    output:
        sources="resources/{dataset}/sources.csv",
        missing="resources/{dataset}/missing.csv",
    log:
        "logs/{dataset}/local_sources.log",
    wildcard_constraints:
        dataset=alternatives(LOCAL),
    localrule: True
    conda:
        "../envs/avmodels.yaml"
    params:
        videos=lambda wc: dataset_setting(wc, "videos"),
        code=code("local_sources"),
    script:
        "../workflow_scripts/local_sources.py"


rule own_sources:
    input:
        csv=lambda wc: dataset_setting(wc, "csv"),
    output:
        sources="resources/{dataset}/sources.csv",
        missing="resources/{dataset}/missing.csv",
    log:
        "logs/{dataset}/own_sources.log",
    wildcard_constraints:
        dataset=alternatives(OWN),
    localrule: True
    conda:
        "../envs/avmodels.yaml"
    params:
        classes=dataset_classes,
        code=code("own_sources"),
    script:
        "../workflow_scripts/own_sources.py"


rule synthesize:
    output:
        records="resources/{dataset}/records.csv",
        exclusions="resources/{dataset}/list_exclusions.csv",
        videos=directory("resources/{dataset}/videos/shard0"),
        failures="resources/{dataset}/failures/shard0.csv",
    log:
        "logs/{dataset}/synthesize.log",
    benchmark:
        "benchmarks/{dataset}/synthesize.tsv"
    wildcard_constraints:
        dataset=alternatives(SYNTHETIC),
    conda:
        "../envs/avmodels.yaml"
    threads: 2
    params:
        settings=lambda wc: dataset_setting(wc, "synthetic", {}),
        code=code("synthesize"),
    script:
        "../workflow_scripts/synthesize.py"


# The clip store resources/{dataset}/videos/shard{shard}/ and its failure record beside it
# are no outputs: Snakemake never deletes them (reruns, killed runs, --rerun-incomplete).
rule download:
    input:
        records="resources/{dataset}/records.csv",
    output:
        done="resources/{dataset}/downloads/shard{shard}.csv",
        failures="resources/{dataset}/failures/shard{shard}.csv",
    log:
        "logs/{dataset}/download/shard{shard}.log",
    benchmark:
        "benchmarks/{dataset}/download/shard{shard}.tsv"
    wildcard_constraints:
        dataset=alternatives(YOUTUBE),
    localrule: True
    conda:
        "../envs/avmodels.yaml"
    params:
        shards=lambda wc: dataset_setting(wc, "shards", 1),
        url_template=lambda wc: dataset_setting(
            wc, "url_template", "https://www.youtube.com/watch?v={id}"
        ),
        store=lambda wc: clip_store(wc.dataset, wc.shard),
        failures=lambda wc: f"{clip_store(wc.dataset, wc.shard)}.failures.csv",
        options=download_options(),
        code=code("download"),
    script:
        "../workflow_scripts/download.py"


rule preprocess:
    input:
        records="resources/{dataset}/records.csv",
        videos=video_input,
    output:
        clips=directory("resources/{dataset}/clips/shard{shard}"),
        manifest="resources/{dataset}/manifests/shard{shard}.csv",
        exclusions="resources/{dataset}/exclusions/shard{shard}.csv",
    log:
        "logs/{dataset}/preprocess/shard{shard}.log",
    benchmark:
        "benchmarks/{dataset}/preprocess/shard{shard}.tsv"
    wildcard_constraints:
        dataset=alternatives(SYNTHETIC + YOUTUBE),
    conda:
        "../envs/avmodels.yaml"
    threads: 4
    params:
        shards=lambda wc: dataset_setting(wc, "shards", 1),
        frame_short_side=config["inputs"].get("frame_short_side", 256),
        classes=dataset_classes,
        video_dir=lambda wc: clip_store(wc.dataset, wc.shard),
        code=code("preprocess"),
    script:
        "../workflow_scripts/preprocess.py"


rule preprocess_local:
    input:
        sources="resources/{dataset}/sources.csv",
    output:
        clips=directory("resources/{dataset}/clips/shard{shard}"),
        manifest="resources/{dataset}/manifests/shard{shard}.csv",
        exclusions="resources/{dataset}/exclusions/shard{shard}.csv",
    log:
        "logs/{dataset}/preprocess/shard{shard}.log",
    benchmark:
        "benchmarks/{dataset}/preprocess/shard{shard}.tsv"
    wildcard_constraints:
        dataset=alternatives(LOCAL + OWN),
    conda:
        "../envs/avmodels.yaml"
    threads: 4
    params:
        shards=lambda wc: dataset_setting(wc, "shards", 1),
        frame_short_side=config["inputs"].get("frame_short_side", 256),
        classes=dataset_classes,
        code=code("preprocess_local"),
    script:
        "../workflow_scripts/preprocess_local.py"


rule manifest:
    input:
        records=records_file,
        list_exclusions=list_exclusion_files,
        manifests=lambda wc: shard_outputs(wc, "manifests"),
        exclusions=lambda wc: shard_outputs(wc, "exclusions"),
        failures=failure_files,
    output:
        train="results/{dataset}/data/manifest_train.csv",
        val="results/{dataset}/data/manifest_val.csv",
        test="results/{dataset}/data/manifest_test.csv",
        exclusions="results/{dataset}/data/exclusions.csv",
    log:
        "logs/{dataset}/manifest.log",
    localrule: True
    conda:
        "../envs/avmodels.yaml"
    params:
        code=code("manifest"),
    script:
        "../workflow_scripts/manifest.py"
