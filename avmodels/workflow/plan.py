"""Which models, evaluations and analyses a study configuration asks for.

Pure Python over the validated config dictionary, shared by the workflow's
input functions and the tests. A table or figure depends on exactly the
evaluations listed here for it, so a budget change reruns only what uses it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from avmodels.registry import ATTACKS, AUTOATTACK_DEFENSES
from avmodels.settings import (
    AttackSettings,
    DatasetSettings,
    FinetuneSettings,
    FullDefenseSettings,
    SweepSettings,
)
from avmodels.study.table_specs import TABLE_NAMES, load_spec
from avmodels.study.table_specs.base import METHODS

TABLES = TABLE_NAMES
#: Where one evaluation job writes its scores (the workflow's ``evaluate`` output).
EVALUATION = "results/{dataset}/eval/{model}/{defense}/{attack}/{eps}.csv"


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
        return EVALUATION.format(**asdict(self))


def fmt_eps(value: float) -> str:
    """Budget as it appears in file names: ``0.006`` -> ``"0.006"``."""
    return f"{float(value):g}"


def datasets(config: dict) -> list[str]:
    return list(config["datasets"])


def _sweep_models(config: dict) -> list[str]:
    models = SweepSettings.from_config(config["evaluation"]).sweep_models
    return [m for m in models if m in config["variants"]]


def attack_settings(config: dict) -> dict[str, Any]:
    """The ``evaluation`` keys that shape an attack, defaults filled in (not which budgets
    or models run: a job's parameters hold only what changes its result)."""
    return asdict(AttackSettings.from_config(config["evaluation"]))


def _row_roles(spec, row) -> set[str]:
    """Budget roles of a row's measured (attacked) columns."""
    return {col.budget or "multi" for col in spec.row_columns(row) if col.mode}


def _budget_roles(table: str) -> set[str]:
    spec = load_spec(table)
    return {role for row in spec.rows for role in _row_roles(spec, row)}


def table_budgets(config: dict, table: str) -> dict[str, float]:
    """The budget levels (``single``/``multi``) that one table reports, by role."""
    levels = config["evaluation"]["table_budgets"]
    return {role: levels[role] for role in sorted(_budget_roles(table))}


def table_evaluations(config: dict, table: str, dataset: str) -> list[EvalKey]:
    """The evaluation jobs one table needs for one dataset, read off the table's spec.

    A row needs its model's job at the budget of each measured column; a row of clean
    accuracies only (no attack) reads it from the first configured attack's job.
    Rows whose model is not among the configured variants are left to show as missing.
    """
    spec = load_spec(table)
    ev = config["evaluation"]
    keys = set()
    for row in spec.rows:
        method = METHODS[row.method]
        if method.model not in config["variants"]:
            continue
        attack = row.attack if row.attack in ATTACKS else ev["attacks"][0]
        for role in _row_roles(spec, row):
            eps = fmt_eps(ev["table_budgets"][role])
            keys.add(EvalKey(dataset, method.model, method.defense, attack, eps))
    return sorted(keys)


def sweep_budgets(config: dict) -> list[str]:
    """Budget levels of the accuracy-vs-budget figures (table levels included)."""
    ev = config["evaluation"]
    values = {*ev.get("sweep_budgets", []), *ev["table_budgets"].values()}
    return [fmt_eps(v) for v in sorted(values)]


def sweep_evaluations(config: dict, dataset: str) -> list[EvalKey]:
    ev = config["evaluation"]
    return sorted(
        EvalKey(dataset, model, "none", attack, eps)
        for model in _sweep_models(config)
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
    """Training settings of one variant: shared, then the dataset's, then the variant's own;
    with the network's ``settings.MODEL_KEYS``."""
    variant = config["variants"][model]
    per_dataset = config["datasets"][dataset].get("train", {}) if dataset else {}
    settings = {**config["train"], **per_dataset, **variant.get("train", {})}
    settings["arch"] = variant["arch"]
    settings["visual_output_stride"] = variant.get("visual_output_stride", 32)
    settings["visual_pool"] = variant.get("visual_pool", "max")
    return settings


#: The variant under the full defense (the MinSim+ExFMem rows of Tables 3-6).
FULL_DEFENSE_MODEL = "minsim"


def full_defense_mode(config: dict) -> str:
    """``"finetune"`` or ``"test_time"`` (the default when ``full_defense`` is absent)."""
    return FullDefenseSettings.from_config(config.get("full_defense")).mode


def finetuned(config: dict, model: str, defense: str) -> bool:
    """Whether the evaluation of ``model`` under ``defense`` uses the fine-tuned full defense."""
    return (
        defense == "exfmem"
        and model == FULL_DEFENSE_MODEL
        and full_defense_mode(config) == "finetune"
    )


def finetune_settings(config: dict, model: str, dataset: str) -> dict[str, Any]:
    """Training settings of the full defense's fine-tuning: the variant's own, then
    ``full_defense.finetune``, then ``datasets.<name>.finetune``; ``lr`` sets every part's rate."""
    own = {
        **config.get("full_defense", {}).get("finetune", {}),
        **config["datasets"][dataset].get("finetune", {}),
    }
    return variant_settings(config, model, dataset) | FinetuneSettings.from_config(own).overrides()


def analysis_datasets(config: dict, kind: str) -> list[str]:
    """Datasets with the localization or t-SNE analysis switched on."""
    needs = {"localization": ("localization",), "tsne": ("concat", "minsim")}[kind]
    return [
        d
        for d, spec in config["datasets"].items()
        if getattr(DatasetSettings.from_config(spec), kind)
        and all(m in config["variants"] for m in needs)
    ]


#: Where one APGD and Square job writes its scores (the workflow's ``autoattack`` output).
AUTOATTACK_EVALUATION = "results/{dataset}/autoattack/{model}/{defense}/{eps}.csv"
DEFENSE_TABLES = ("table3", "table4", "table5", "table6")


def autoattack_settings(config: dict) -> dict[str, Any]:
    """The ``autoattack`` section, defaults filled in: no attacks, the tables' ``multi``
    budget, the datasets of Tables 3-6, no BPDA, seed 0."""
    section = config.get("autoattack", {})
    shown = [d for t in DEFENSE_TABLES for d in table_datasets(config, t)]
    return {
        "attacks": list(section.get("attacks", [])),
        "budget": float(section.get("budget", config["evaluation"]["table_budgets"]["multi"])),
        "datasets": list(section.get("datasets", dict.fromkeys(shown))),
        "bpda": bool(section.get("bpda", False)),
        "seed": int(section.get("seed", 0)),
    }


def autoattack_evaluations(config: dict) -> list[str]:
    """The APGD and Square jobs' outputs: each defended model of each dataset (none when
    no attack is configured); a defense whose variant is not configured is left out."""
    settings = autoattack_settings(config)
    if not settings["attacks"]:
        return []
    eps = fmt_eps(settings["budget"])
    return [
        AUTOATTACK_EVALUATION.format(dataset=d, model=m.model, defense=m.defense, eps=eps)
        for d in settings["datasets"]
        for m in (METHODS[name] for name in AUTOATTACK_DEFENSES)
        if m.model in config["variants"]
    ]
