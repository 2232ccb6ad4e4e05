rule fetch_list:
    output:
        "resources/lists/{dataset}/{name}",
    log:
        "logs/{dataset}/fetch_list/{name}.log",
    localrule: True
    conda:
        "../envs/avmodels.yaml"
    params:
        url=lookup(dpath="datasets/{dataset}/lists/{name}/url", within=config),
        sha256=lookup(dpath="datasets/{dataset}/lists/{name}/sha256", within=config),
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
        whole_videos=whole_videos,
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
        videos=lookup(dpath="datasets/{dataset}/videos", within=config),
        code=code("local_sources"),
    script:
        "../workflow_scripts/local_sources.py"


rule own_sources:
    input:
        csv=lookup(dpath="datasets/{dataset}/csv", within=config),
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
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        settings=synthetic_settings,
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
        shards=shard_count,
        url_template=url_template,
        store=shard_store,
        failures=store_failures,
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
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        shards=shard_count,
        frame_short_side=PREPROCESS.frame_short_side,
        classes=dataset_classes,
        video_dir=shard_store,
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
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        shards=shard_count,
        frame_short_side=PREPROCESS.frame_short_side,
        classes=dataset_classes,
        code=code("preprocess_local"),
    script:
        "../workflow_scripts/preprocess_local.py"


rule manifest:
    input:
        records=records_file,
        list_exclusions=list_exclusion_files,
        manifests=shard_manifests,
        exclusions=shard_exclusions,
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
