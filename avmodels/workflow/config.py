"""Study configuration checks: the JSON schema plus the cross-references it cannot express.

Errors are one line naming the offending key, raised before any job starts.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from avmodels.data.classes import CLASSES, SYNTHETIC_DATASET


class ConfigError(ValueError):
    """A study configuration that cannot run; the message names the key."""


def _key_path(path: Any) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _one_line(error: jsonschema.ValidationError) -> str:
    where = _key_path(error.absolute_path)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        names = ", ".join(extra)
        return f"config error at {where}: unknown key(s) {names}"
    if error.validator == "propertyNames":
        return f"config error at {where}: unknown name {error.instance!r}"
    if error.validator == "enum":
        allowed = ", ".join(map(str, error.validator_value))
        return f"config error at {where}: {error.instance!r} is not one of {allowed}"
    return f"config error at {where}: {error.message}"


def canonical(value: Any) -> Any:
    """``value`` with the keys of every mapping sorted, lists kept in order: Snakemake
    compares parameters as text, and the order of keys in a YAML mapping means nothing."""
    if isinstance(value, dict):
        return {key: canonical(value[key]) for key in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return [canonical(item) for item in value]
    return value


def load_schema(path: str | Path) -> dict:
    return yaml.load(Path(path).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _check_finite(value: Any, path: tuple = ()) -> None:
    """Every number is finite: YAML's ``.nan`` and ``.inf`` pass a JSON schema's bounds."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config error at {_key_path(path)}: {value} is not a finite number")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_finite(item, (*path, index))


def check_config(config: dict, schema: dict) -> None:
    """Validate ``config``; raise :class:`ConfigError` with a one-line reason."""
    _check_finite(config)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), e.path))
    if errors:
        raise ConfigError(_one_line(errors[0]))
    _check_references(config)


LISTED = tuple(CLASSES)  # the paper's datasets: their clips come from public lists
_NEEDS = {"youtube": ("lists",), "local": ("lists", "videos"), "csv": ("csv",)}
_ONLY = {"lists": ("youtube", "local"), "videos": ("local",), "csv": ("csv",), "classes": ("csv",)}


def _check_dataset(name: str, spec: dict) -> None:
    """A dataset's source fits its name, and has the keys its source needs and no others."""
    source, where = spec["source"], f"config error at datasets.{name}"
    if source == "synthetic" and name != SYNTHETIC_DATASET:
        raise ConfigError(f"{where}.source: only synthetic_music is synthetic")
    if source in ("youtube", "local") and name not in LISTED:
        raise ConfigError(f"{where}.source: {source} needs one of {', '.join(LISTED)}")
    if source == "csv" and name in (*LISTED, SYNTHETIC_DATASET):
        raise ConfigError(f"{where}.source: csv datasets need a name of their own")
    for key in _NEEDS.get(source, ()):
        if not spec.get(key):
            raise ConfigError(f"{where}.{key}: {source} datasets need {key}")
    for key, sources in _ONLY.items():
        if key in spec and source not in sources:
            raise ConfigError(f"{where}.{key}: only for source {' or '.join(sources)}")


def _check_references(config: dict) -> None:
    variants = config["variants"]
    for model in config["evaluation"].get("sweep_models", []):
        if model not in variants:
            raise ConfigError(
                f"config error at evaluation.sweep_models: {model!r} is not a variant "
                f"(variants: {', '.join(variants)})"
            )
    for table, shown in config["tables"].items():
        for dataset in shown:
            if dataset not in config["datasets"]:
                raise ConfigError(f"config error at tables.{table}: unknown dataset {dataset!r}")
    for dataset in config.get("autoattack", {}).get("datasets", []):
        if dataset not in config["datasets"]:
            raise ConfigError(f"config error at autoattack.datasets: unknown dataset {dataset!r}")
    for name, spec in config["datasets"].items():
        _check_dataset(name, spec)
    inputs = config["inputs"]
    if inputs["resize_size"] < inputs["image_size"]:
        raise ConfigError("config error at inputs.resize_size: smaller than inputs.image_size")
