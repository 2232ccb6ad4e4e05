import sys
from pathlib import Path

# The workflow's own folder, also when another workflow imports this one as a module
# (workflow.basedir is then the importer's): the library, the schema and the scripts are
# found from here. Jobs find the library beside their scripts (workflow_scripts/_library.py).
ROOT = Path(workflow.current_basedir).parent
sys.path.insert(0, str(ROOT))

from avmodels.workflow import plan
from avmodels.data.classes import class_names
from avmodels.workflow.config import ConfigError, canonical, check_config, load_schema
from avmodels.data.local import csv_classes
from avmodels.workflow.jobs import failed_attempts
from avmodels.workflow.codehash import rule_code_hash, table_code_hash
from avmodels.data import weights
from avmodels.registry import ATTACKS, DEFENSES, SPLITS
from avmodels.settings import DatasetSettings, PreprocessSettings

check_config(config, load_schema(ROOT / "config" / "config.schema.yaml"))

DATASETS = plan.datasets(config)
SYNTHETIC = [d for d in DATASETS if config["datasets"][d]["source"] == "synthetic"]
YOUTUBE = [d for d in DATASETS if config["datasets"][d]["source"] == "youtube"]
LOCAL = [d for d in DATASETS if config["datasets"][d]["source"] == "local"]
OWN = [d for d in DATASETS if config["datasets"][d]["source"] == "csv"]
for _ds in OWN:
    if not Path(config["datasets"][_ds]["csv"]).is_file():
        raise ConfigError(f"config error at datasets.{_ds}.csv: no such file")
# the `inputs` keys a model reads (frame_short_side is preprocessing's alone)
MODEL_INPUTS = ("audio_samples", "image_size", "resize_size")
PREPROCESS = PreprocessSettings.from_config(config["inputs"])


if YOUTUBE:

    onstart:
        preflight()


def alternatives(names):
    """A wildcard pattern that matches exactly the given names (none: matches nothing)."""
    return "|".join(names) if names else "(?!x)x"


wildcard_constraints:
    dataset=alternatives(DATASETS),
    model=alternatives(config["variants"]),
    defense=alternatives(DEFENSES),
    attack=alternatives(ATTACKS),
    eps=r"[0-9.e-]+",
    shard=r"\d+",
    table=alternatives(plan.TABLES),
    split=alternatives(SPLITS),


def code(name):
    """Hash of the normalised source that the named workflow script reaches."""
    return rule_code_hash(ROOT / "workflow_scripts" / f"{name}.py")


def table_code(wildcards):
    """The table script's code plus the spec module of this table only."""
    script = ROOT / "workflow_scripts" / "table.py"
    return table_code_hash(script, wildcards.table)


def dataset_setting(wildcards, key, default=None):
    return canonical(config["datasets"][wildcards.dataset].get(key, default))


def dataset_settings(dataset):
    return DatasetSettings.from_config(config["datasets"][dataset])


def shard_count(wildcards):
    return dataset_settings(wildcards.dataset).shards


def synthetic_settings(wildcards):
    return dataset_setting(wildcards, "synthetic", {})


def url_template(wildcards):
    return dataset_settings(wildcards.dataset).url_template


def whole_videos(wildcards):
    """Whether the clips are whole videos the user holds (AVE needs no segment lists)."""
    return wildcards.dataset in LOCAL


def training_runtime(wildcards, attempt):
    """Minutes for a training job; a retried one (timed out) asks for more and resumes."""
    return 1440 * attempt


def section(name, keys=None):
    """A config section as a job parameter: key-sorted, only ``keys`` when given."""
    values = config.get(name, {})
    return canonical({k: v for k, v in values.items() if keys is None or k in keys})


def table_settings():
    """``tables`` by table name; the datasets under a table keep their order (its rows)."""
    return {table: config["tables"][table] for table in sorted(config["tables"])}


def model_inputs():
    return section("inputs", MODEL_INPUTS)


def exfmem_settings(wildcards):
    """The ExFMem settings, for evaluations under ExFMem only (the others read none)."""
    return section("exfmem") if wildcards.defense == "exfmem" else None


def dataset_classes(wildcards):
    """Class names in index order: the paper's, or an own dataset's (config or its CSV)."""
    spec = config["datasets"][wildcards.dataset]
    if spec["source"] == "csv":
        return list(spec.get("classes") or csv_classes(spec["csv"]))
    return list(class_names(wildcards.dataset))


def list_exclusion_files(wildcards):
    """Rows dropped before preprocessing: list rows, and videos not found locally."""
    ds = wildcards.dataset
    files = [] if ds in OWN else [f"resources/{ds}/list_exclusions.csv"]
    return files + ([f"resources/{ds}/missing.csv"] if ds in LOCAL + OWN else [])


def records_file(wildcards):
    ds = wildcards.dataset
    return f"resources/{ds}/{'sources' if ds in LOCAL + OWN else 'records'}.csv"


def failure_files(wildcards):
    """Download failures (none for clips the user holds)."""
    if wildcards.dataset in LOCAL + OWN:
        return []
    return shard_outputs(wildcards, "failures")


def clip_store(dataset, shard):
    """Where a shard's clips are kept (a download's store; the synthetic set's output)."""
    return f"resources/{dataset}/videos/shard{shard}"


def shard_store(wildcards):
    return clip_store(wildcards.dataset, wildcards.shard)


def store_failures(wildcards):
    """The failure record kept beside a shard's clip store."""
    return f"{shard_store(wildcards)}.failures.csv"


def video_input(wildcards):
    """What preprocess waits for: a download's list of finished clips, or the rendered set."""
    if wildcards.dataset in YOUTUBE:
        return f"resources/{wildcards.dataset}/downloads/shard{wildcards.shard}.csv"
    return clip_store(wildcards.dataset, wildcards.shard)


def download_options():
    """The ``download:`` settings a download uses (not the pre-flight's disk estimate)."""
    unused = {"min_free_gb", "mb_per_clip"}
    return canonical(
        {k: v for k, v in config.get("download", {}).items() if k not in unused}
    )


def preflight():
    """Stop the run before any job, in one line, if YouTube clips cannot be downloaded."""
    from avmodels.workflow.preflight import (
        PreflightError,
        check,
        clips_to_fetch,
        estimate_bytes,
    )
    from avmodels.settings import DownloadSettings

    settings = DownloadSettings.from_config(config.get("download"))
    pending = [
        clips_to_fetch(
            f"resources/{ds}/records.csv", [clip_store(ds, k) for k in shard_ids(ds)]
        )
        for ds in YOUTUBE
    ]
    stores = [f"resources/{ds}/videos" for ds in YOUTUBE]
    try:
        found = check(stores, estimate_bytes(settings, pending), settings.js_runtime)
    except PreflightError as err:
        raise PreflightError(f"pre-flight: {err}") from None
    print("pre-flight: " + "; ".join(found), file=sys.stderr)


def list_files(wildcards):
    lists = config["datasets"][wildcards.dataset]["lists"]
    return {name: f"resources/lists/{wildcards.dataset}/{name}" for name in lists}


def shard_ids(dataset):
    return [str(k) for k in range(dataset_settings(dataset).shards)]


def shard_outputs(wildcards, kind):
    ds = wildcards.dataset
    return [f"resources/{ds}/{kind}/shard{k}.csv" for k in shard_ids(ds)]


def shard_manifests(wildcards):
    return shard_outputs(wildcards, "manifests")


def shard_exclusions(wildcards):
    return shard_outputs(wildcards, "exclusions")


def train_settings(wildcards):
    return canonical(plan.variant_settings(config, wildcards.model, wildcards.dataset))


def pretrained_inputs(wildcards):
    """The visual weights a model starts from (none for the audio-only network)."""
    path = weights.visual_weights_file(config)
    arch = plan.variant_settings(config, wildcards.model)["arch"]
    if path is None or arch == "audio":
        return {}
    return {"visual_weights": path}


def finetune_settings(wildcards):
    return canonical(plan.finetune_settings(config, wildcards.model, wildcards.dataset))


def eval_inputs(wildcards):
    """Checkpoint, test manifest and, under ExFMem, the banks; the full defense reads the
    fine-tuned checkpoint when ``full_defense.mode`` is ``finetune``."""
    ds, model = wildcards.dataset, wildcards.model
    tuned = plan.finetuned(config, model, wildcards.defense)
    inputs = {
        "checkpoint": f"results/{ds}/models/{model}{'_exfmem' if tuned else ''}/checkpoint.pt",
        "manifest": f"results/{ds}/data/manifest_test.csv",
    }
    if wildcards.defense == "exfmem":
        inputs["memory"] = f"results/{ds}/memory/{model}.pt"
    return inputs


def table_budgets(wildcards):
    return canonical(plan.table_budgets(config, wildcards.table))


def evaluation_outputs():
    return [key.path for key in plan.all_evaluations(config)]


def table_inputs(wildcards):
    return [
        key.path
        for ds in plan.table_datasets(config, wildcards.table)
        for key in plan.table_evaluations(config, wildcards.table, ds)
    ]


def sweep_inputs(wildcards):
    return [key.path for key in plan.sweep_evaluations(config, wildcards.dataset)]


def table_outputs():
    return expand("results/tables/{table}.csv", table=plan.tables(config))


def figure_outputs():
    figures = expand("results/figures/{dataset}_budget_curves.png", dataset=DATASETS)
    figures += expand(
        "results/figures/{dataset}_localization.png",
        dataset=plan.analysis_datasets(config, "localization"),
    )
    figures += expand(
        "results/figures/{dataset}_tsne.png",
        dataset=plan.analysis_datasets(config, "tsne"),
    )
    return figures


def autoattack_params():
    """What shapes an APGD and Square job's numbers (its budget is in its path)."""
    settings = plan.autoattack_settings(config)
    return canonical({k: settings[k] for k in ("attacks", "bpda", "seed")})


def autoattack_outputs():
    return plan.autoattack_evaluations(config)


def autoattack_table():
    return ["results/tables/autoattack.csv"] if autoattack_outputs() else []


def get_final_output():
    return (
        table_outputs()
        + autoattack_table()
        + figure_outputs()
        + ["results/findings.md"]
    )
