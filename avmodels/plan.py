"""Which models, evaluations and analyses a study configuration asks for.

Pure Python over the validated config dictionary, shared by the workflow's
input functions and the tests. A table or figure depends on exactly the
evaluations listed here for it, so a budget change reruns only what uses it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

TABLES = ("table1", "table2", "table3", "table4", "table5", "table6")

# What each of the paper's tables evaluates (facts of the paper, Tables 1-6):
# the models (config lists), the attacks and whether ExFMem rows are included.
TABLE_SPECS: dict[str, dict[str, Any]] = {
    "table1": {"models": "sweep_models", "attacks": "all", "budgets": ("single", "multi")},
    "table2": {"models": "fusion_models", "attacks": ("fgsm",), "budgets": ("multi",)},
    "table3": {"models": "defense_models", "attacks": ("fgsm",), "budgets": ("multi",), "exfmem": True},
    "table4": {"models": "sweep_models", "attacks": "all", "budgets": ("single", "multi")},
    "table5": {"models": "defense_models", "attacks": ("fgsm",), "budgets": ("multi",), "exfmem": True},
    "table6": {"models": "defense_models", "attacks": ("mim",), "budgets": ("multi",), "exfmem": True},
}


@dataclass(frozen=True, order=True)
class EvalKey:
    """One evaluation job: a model (optionally defended) under one attack at one budget."""

    dataset: str
    model: str
    defense: str
    attack: str
    eps: str

    @property
    def path(self) -> str:
        return f"results/{self.dataset}/eval/{self.model}/{self.defense}/{self.attack}/{self.eps}.csv"


def fmt_eps(value: float) -> str:
    """Budget as it appears in file names: ``0.006`` -> ``"0.006"``."""
    return f"{float(value):g}"


def datasets(config: dict) -> list[str]:
    return list(config["datasets"])


def _models(config: dict, key: str) -> list[str]:
    ev = config["evaluation"]
    defaults = {
        "sweep_models": ["concat", "audio", "visual"],
        "fusion_models": ["sum", "concat", "film", "gated_sum", "gated_concat"],
        "defense_models": ["concat", "audio", "visual", "pcl", "maxsim", "minsim"],
        "exfmem_models": ["concat", "minsim"],
    }
    return [m for m in ev.get(key, defaults[key]) if m in config["variants"]]


def table_evaluations(config: dict, table: str, dataset: str) -> list[EvalKey]:
    """The evaluation jobs one table needs for one dataset."""
    spec = TABLE_SPECS[table]
    ev = config["evaluation"]
    attacks = ev["attacks"] if spec["attacks"] == "all" else spec["attacks"]
    budgets = [fmt_eps(ev["table_budgets"][b]) for b in spec["budgets"]]
    keys = [
        EvalKey(dataset, model, "none", attack, eps)
        for model in _models(config, spec["models"])
        for attack in attacks
        for eps in budgets
    ]
    if spec.get("exfmem"):
        keys += [
            EvalKey(dataset, model, "exfmem", attack, eps)
            for model in _models(config, "exfmem_models")
            for attack in attacks
            for eps in budgets
        ]
    return sorted(set(keys))


def sweep_budgets(config: dict) -> list[str]:
    """Budget levels of the accuracy-vs-budget figures (table levels included)."""
    ev = config["evaluation"]
    values = {*ev.get("sweep_budgets", []), *ev["table_budgets"].values()}
    return [fmt_eps(v) for v in sorted(values)]


def sweep_evaluations(config: dict, dataset: str) -> list[EvalKey]:
    ev = config["evaluation"]
    return sorted(
        EvalKey(dataset, model, "none", attack, eps)
        for model in _models(config, "sweep_models")
        for attack in ev["attacks"]
        for eps in sweep_budgets(config)
    )


def table_datasets(config: dict, table: str) -> list[str]:
    return [d for d in config["tables"].get(table, {}) if d in config["datasets"]]


def tables(config: dict) -> list[str]:
    return [t for t in TABLES if table_datasets(config, t)]


def all_evaluations(config: dict) -> list[EvalKey]:
    keys: set[EvalKey] = set()
    for table in tables(config):
        for dataset in table_datasets(config, table):
            keys.update(table_evaluations(config, table, dataset))
    for dataset in datasets(config):
        keys.update(sweep_evaluations(config, dataset))
    return sorted(keys)


def variant_settings(config: dict, model: str, dataset: str | None = None) -> dict[str, Any]:
    """Training settings of one variant: shared, then the dataset's, then the variant's own."""
    variant = config["variants"][model]
    per_dataset = config["datasets"][dataset].get("train", {}) if dataset else {}
    settings = {**config["train"], **per_dataset, **variant.get("train", {})}
    settings["arch"] = variant["arch"]
    settings["visual_output_stride"] = variant.get("visual_output_stride", 32)
    return settings


def analysis_datasets(config: dict, kind: str) -> list[str]:
    """Datasets with the localization or t-SNE analysis switched on."""
    needs = {"localization": ("localization",), "tsne": ("concat", "minsim")}[kind]
    return [
        d
        for d, spec in config["datasets"].items()
        if spec.get(kind, False) and all(m in config["variants"] for m in needs)
    ]


def unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
