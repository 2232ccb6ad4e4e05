"""Config validation: presets pass; bad configs fail with one line naming the key."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from avmodels.workflow.config import ConfigError, canonical, check_config, load_schema
from avmodels.workflow.plan import all_evaluations, variant_settings

PRESETS = ["config.yaml", "config/tiny.yaml", "config/paper.yaml"]


@pytest.fixture(scope="module")
def schema(repo_dir: Path) -> dict:
    return load_schema(repo_dir / "config" / "config.schema.yaml")


def _load(repo_dir: Path, name: str) -> dict:
    return yaml.safe_load((repo_dir / name).read_text())


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_are_valid(repo_dir: Path, schema: dict, preset: str) -> None:
    check_config(_load(repo_dir, preset), schema)


def _broken(config: dict, edit: str) -> dict:
    config = copy.deepcopy(config)
    if edit == "unknown key":
        config["evaluation"]["stepz"] = 10
    elif edit == "wrong type":
        config["train"]["epochs"] = "ten"
    elif edit == "unknown fusion":
        config["variants"]["concat"]["arch"] = "concatenate"
    elif edit == "negative budget":
        config["evaluation"]["table_budgets"]["multi"] = -0.006
    elif edit == "unknown variant in a list":
        config["evaluation"]["sweep_models"] = ["concat", "nope"]
    elif edit == "dataset name not an identifier":
        config["datasets"]["my set"] = {"source": "csv", "csv": "x.csv"}
    elif edit == "local without videos":
        config["datasets"]["ave"] = {"source": "local", "lists": {}}
    elif edit == "local source of an unlisted dataset":
        config["datasets"]["birds"] = {"source": "local", "videos": "v", "lists": {}}
    elif edit == "own csv under a paper name":
        config["datasets"]["music"] = {"source": "csv", "csv": "x.csv"}
    elif edit == "csv key on a youtube dataset":
        lists = {"test": {"url": "file:///t.csv", "sha256": None}}
        config["datasets"]["music"] = {"source": "youtube", "lists": lists, "csv": "x.csv"}
    elif edit == "nan learning rate":
        config["train"]["lr_audio"] = float("nan")
    elif edit == "infinite budget in a list":
        config["evaluation"]["sweep_budgets"] = [0.006, float("inf")]
    elif edit == "negative infinite weight":
        config["variants"]["minsim"]["train"]["loss_weight"] = float("-inf")
    elif edit == "variant name as a regex":
        config["variants"][".*"] = {"arch": "concat"}
    elif edit == "list name as a path":
        lists = {"../x": {"url": "file:///t.csv", "sha256": None}}
        config["datasets"]["ave"] = {"source": "local", "videos": "AVE", "lists": lists}
    elif edit == "dataset name as a path":
        config["datasets"]["../x"] = {"source": "csv", "csv": "x.csv"}
    return config


CASES = {
    "unknown key": "evaluation: unknown key(s) stepz",
    "wrong type": "train.epochs: 'ten' is not of type 'integer'",
    "unknown fusion": "variants.concat.arch: 'concatenate' is not one of",
    "negative budget": "evaluation.table_budgets.multi: -0.006",
    "unknown variant in a list": "evaluation.sweep_models: 'nope' is not a variant",
    "dataset name not an identifier": "datasets: 'my set' does not match",
    "local without videos": "datasets.ave.lists: local datasets need lists",
    "local source of an unlisted dataset": "datasets.birds.source: local needs one of music",
    "own csv under a paper name": "datasets.music.source: csv datasets need a name of their own",
    "csv key on a youtube dataset": "datasets.music.csv: only for source csv",
    "nan learning rate": "train.lr_audio: nan is not a finite number",
    "infinite budget in a list": "evaluation.sweep_budgets.1: inf is not a finite number",
    "negative infinite weight": "variants.minsim.train.loss_weight: -inf is not a finite number",
    "variant name as a regex": "variants: '.*' does not match",
    "list name as a path": "datasets.ave.lists: '../x' does not match",
    "dataset name as a path": "datasets: '../x' does not match",
}


def test_own_dataset_config_is_valid(repo_dir: Path, schema: dict) -> None:
    config = _load(repo_dir, "config/tiny.yaml")
    config["datasets"]["my_sounds"] = {"source": "csv", "csv": "clips.csv", "classes": ["a", "b"]}
    config["datasets"]["ave"] = {"source": "local", "videos": "AVE", "lists": {}}
    with pytest.raises(ConfigError, match="ave.lists"):
        check_config(config, schema)
    config["datasets"]["ave"]["lists"] = {"test": {"url": "file:///t.csv", "sha256": None}}
    check_config(config, schema)


@pytest.mark.parametrize("edit", list(CASES))
def test_bad_config_names_the_key(repo_dir: Path, schema: dict, edit: str) -> None:
    config = _broken(_load(repo_dir, "config/tiny.yaml"), edit)
    with pytest.raises(ConfigError) as err:
        check_config(config, schema)
    message = str(err.value)
    assert "\n" not in message
    assert CASES[edit] in message


@pytest.mark.parametrize(
    "edit",
    [
        "unknown key",
        "wrong type",
        "unknown fusion",
        "negative budget",
        "nan learning rate",
        "variant name as a regex",
        "list name as a path",
    ],
)
def test_snakemake_rejects_bad_config_before_any_job(
    repo_dir: Path, tmp_path: Path, edit: str
) -> None:
    config = _broken(_load(repo_dir, "config/tiny.yaml"), edit)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "all",
            "-s",
            str(repo_dir / "Snakefile"),
            "--cores",
            "1",
            "--directory",
            str(tmp_path),
            "--configfile",
            str(path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode != 0
    assert CASES[edit] in run.stderr
    assert not (tmp_path / "results").exists()
    assert not (tmp_path / "resources").exists()


def test_variant_settings_layering(repo_dir: Path) -> None:
    config = _load(repo_dir, "config/paper.yaml")
    music = variant_settings(config, "minsim", "music")
    assert (music["epochs"], music["loss"], music["arch"]) == (100, "minsim", "concat")
    ks = variant_settings(config, "concat", "kinetics_sounds")
    assert (ks["epochs"], ks["milestones"], ks["loss"]) == (30, [10, 20], "ce")


def test_budget_change_touches_only_its_evaluations(repo_dir: Path) -> None:
    config = _load(repo_dir, "config.yaml")
    before = set(all_evaluations(config))
    changed = copy.deepcopy(config)
    assert config["evaluation"]["sweep_budgets"][-1] == 0.024
    changed["evaluation"]["sweep_budgets"][-1] = 0.03
    after = set(all_evaluations(changed))
    assert {k.eps for k in before - after} == {"0.024"}
    assert {k.eps for k in after - before} == {"0.03"}


def test_canonical_sorts_keys_and_keeps_list_order() -> None:
    one = {
        "train": {"lr": 0.1, "epochs": 3},
        "budgets": [0.02, 0.01],
        "a": {"z": 1, "b": [{"y": 2, "x": 1}]},
    }
    two = {
        "a": {"b": [{"x": 1, "y": 2}], "z": 1},
        "budgets": [0.02, 0.01],
        "train": {"epochs": 3, "lr": 0.1},
    }
    assert repr(one) != repr(two)
    assert repr(canonical(one)) == repr(canonical(two))
    assert canonical(one) == one
    assert canonical(one)["budgets"] == [0.02, 0.01]
