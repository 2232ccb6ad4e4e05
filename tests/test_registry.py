"""The registries are the only lists of names; the schema's enums and defaults agree with them."""

from __future__ import annotations

import inspect
import re
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from avmodels import registry
from avmodels.data.synthetic import Difficulty
from avmodels.devices import REQUESTS
from avmodels.models.fusion import FUSIONS
from avmodels.models.model import VARIANTS, ModelConfig
from avmodels.robustness.attacks import ATTACKS
from avmodels.robustness.defenses import TRAINING_LOSSES
from avmodels.robustness.exfmem import ExFMemModel
from avmodels.robustness.lasso import LASSO_METHODS, STOP_RULES
from avmodels.settings import (
    AttackSettings,
    DatasetSettings,
    DownloadSettings,
    EvalSettings,
    ExfmemSettings,
    FinetuneSettings,
    FullDefenseSettings,
    InputSettings,
    LocalizationSettings,
    PreprocessSettings,
    PretrainedSettings,
    SweepSettings,
    SyntheticSettings,
    TsneSettings,
)
from avmodels.study.table_specs import TABLE_NAMES
from avmodels.study.train import TrainConfig
from avmodels.workflow.config import LISTED, canonical, load_schema
from avmodels.workflow.plan import attack_settings, autoattack_settings, full_defense_mode

ROOT = Path(__file__).resolve().parents[1]
PROPS = load_schema(ROOT / "config" / "config.schema.yaml")["properties"]
DEFS = load_schema(ROOT / "config" / "config.schema.yaml")["definitions"]


def test_class_registries_hold_the_registered_names_in_order():
    assert tuple(ATTACKS) == registry.ATTACKS + registry.AUTOATTACK
    assert tuple(FUSIONS) == registry.FUSIONS
    assert VARIANTS[: len(registry.FUSIONS)] == registry.FUSIONS


def test_schema_enums_equal_the_registries():
    evaluation, analysis = PROPS["evaluation"]["properties"], PROPS["analysis"]["properties"]
    assert tuple(evaluation["attacks"]["items"]["enum"]) == registry.ATTACKS
    assert tuple(analysis["attack"]["enum"]) == registry.ATTACKS
    assert tuple(analysis["tsne_attack"]["enum"]) == registry.ATTACKS
    variant = PROPS["variants"]["additionalProperties"]["properties"]
    assert tuple(variant["arch"]["enum"]) == VARIANTS
    dataset = PROPS["datasets"]["additionalProperties"]["properties"]
    assert tuple(dataset["source"]["enum"]) == registry.SOURCES
    assert tuple(dataset["synthetic"]["properties"])[1:4] == registry.SPLITS
    assert set(DEFS["train_settings"]["properties"]["loss"]["enum"]) == set(TRAINING_LOSSES)
    assert set(DEFS["finetune_settings"]["properties"]["loss"]["enum"]) < set(TRAINING_LOSSES)
    exfmem = PROPS["exfmem"]["properties"]
    assert set(exfmem["method"]["enum"]) == set(LASSO_METHODS)
    assert set(exfmem["stop"]["enum"]) == set(STOP_RULES)
    assert tuple(PROPS["device"]["enum"]) == REQUESTS
    autoattack = PROPS["autoattack"]["properties"]["attacks"]["items"]["properties"]
    assert tuple(autoattack["attack"]["enum"]) == registry.AUTOATTACK
    from avmodels.robustness.apgd import (
        LOSSES,  # after avmodels.robustness.attacks: it registers the attacks
    )

    assert tuple(autoattack["loss"]["enum"]) == tuple(LOSSES)
    tables = PROPS["tables"]
    assert tuple(tables["propertyNames"]["enum"]) == TABLE_NAMES
    assert tuple(tables["additionalProperties"]["additionalProperties"]["enum"]) == LISTED


SYNTHETIC = PROPS["datasets"]["additionalProperties"]["properties"]["synthetic"]
# Each config section and the dataclass its jobs build from it; True where every key of the
# section is a field of the class (the others also hold which models, attacks, budgets run).
SECTIONS: dict[str, tuple[dict, Any, bool]] = {
    "evaluation": (PROPS["evaluation"], (AttackSettings(), SweepSettings()), False),
    "train": (DEFS["train_settings"], TrainConfig(), True),
    "finetune": (DEFS["finetune_settings"], FinetuneSettings(), False),
    "exfmem": (PROPS["exfmem"], ExfmemSettings(), True),
    "download": (PROPS["download"], DownloadSettings(), True),
    "pretrained": (PROPS["pretrained"], PretrainedSettings(), True),
    "variants": (PROPS["variants"]["additionalProperties"], ModelConfig(), False),
    "inputs (preprocessing)": (PROPS["inputs"], PreprocessSettings(), False),
    "synthetic": (SYNTHETIC, SyntheticSettings(), True),
    "datasets": (PROPS["datasets"]["additionalProperties"], DatasetSettings(), False),
    "synthetic difficulty": (SYNTHETIC["properties"]["difficulty"], Difficulty(), True),
}


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_schema_defaults_equal_the_dataclass_defaults(name):
    """A key's schema default is its field's default; a field left ``None`` (unset: another
    setting decides) has no schema default or ``null``."""
    schema, classes, complete = SECTIONS[name]
    own = {}
    for settings in classes if isinstance(classes, tuple) else (classes,):
        own |= {f.name: canonical(getattr(settings, f.name)) for f in fields(settings)}
    if complete:
        assert set(schema["properties"]) <= set(own)
    own = {k: v for k, v in own.items() if k in schema["properties"]}
    assert own, name
    declared = {k: v["default"] for k, v in schema["properties"].items() if "default" in v}
    assert declared == {k: v for k, v in own.items() if v is not None or k in declared}


def test_other_defaults_agree_with_the_settings():
    assert PROPS["device"]["default"] == REQUESTS[0]
    paper = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    assert asdict(InputSettings()) == {k: paper["inputs"][k] for k in asdict(InputSettings())}
    assert attack_settings({"evaluation": {}}) == asdict(AttackSettings())
    assert full_defense_mode({}) == FullDefenseSettings().mode
    assert FullDefenseSettings().mode in PROPS["full_defense"]["properties"]["mode"]["enum"]
    autoattack = PROPS["autoattack"]["properties"]
    filled = autoattack_settings({"evaluation": {"table_budgets": {"multi": 0.1}}, "tables": {}})
    assert {k: v["default"] for k, v in autoattack.items() if "default" in v} == {
        k: filled[k] for k in ("bpda", "seed")
    }
    # the class ExFMem's settings reach has the same defaults
    signature = inspect.signature(ExFMemModel).parameters
    model_defaults = {k: signature[k].default for k in ExfmemSettings().model_kwargs()}
    assert model_defaults == ExfmemSettings().model_kwargs()


def test_analysis_settings_read_required_keys():
    analysis = PROPS["analysis"]
    section = {"attack": "pgd", "budget": 0.006, "localization_samples": 6}
    section |= {"tsne_attack": "fgsm", "tsne_budget": 0.02, "tsne_samples": 200}
    assert set(section) == set(analysis["required"]) == set(analysis["properties"])
    assert LocalizationSettings.from_config(section) == LocalizationSettings("pgd", 0.006, 6)
    assert TsneSettings.from_config(section) == TsneSettings("fgsm", 0.02, 200)


def test_settings_from_config_take_the_sections_keys():
    exfmem = ExfmemSettings.from_config({"size": 64, "tol": 1e-4, "method": "ista"})
    assert (exfmem.size, exfmem.tol, exfmem.method, exfmem.lam) == (64, 1e-4, "ista", 0.1)
    assert "size" not in exfmem.model_kwargs()
    finetune = FinetuneSettings.from_config({"lr": 0.5, "milestones": [2]})
    assert finetune.overrides() == {
        "epochs": 1,
        "loss": "minsim",
        "loss_weight": 1.0,
        "milestones": (2,),
        "lr_audio": 0.5,
        "lr_visual": 0.5,
        "lr_head": 0.5,
    }
    full = FullDefenseSettings.from_config({"mode": "finetune", "finetune": {"epochs": 3}})
    assert (full.mode, full.finetune.epochs) == ("finetune", 3)
    synthetic = SyntheticSettings.from_config(
        {"seed": 3, "test": 2, "difficulty": {"snr_db": [1, 2]}}
    )
    assert (synthetic.seed, synthetic.counts(), synthetic.difficulty) == (
        3,
        {"test": 2},
        {"snr_db": [1, 2]},
    )
    assert SyntheticSettings().counts() is None
    download = DownloadSettings.from_config({"retry": ["format"], "retries": 1})
    assert (download.retry, download.retries, download.stop_after) == (("format",), 1, 10)
    with pytest.raises(AttributeError):
        download.retries = 2  # type: ignore[misc]


def test_eval_settings_from_config_fill_defaults_and_ignore_other_keys():
    settings = EvalSettings.from_config({"steps": 3, "attacks": ["pgd"]}, {"image_size": 32})
    assert (settings.steps, settings.batch_size, settings.paper_budget) == (3, 32, True)
    assert settings.inputs == InputSettings(image_size=32)
    with pytest.raises(AttributeError):
        settings.steps = 4  # type: ignore[misc]


SOURCES = [
    p
    for folder in ("avmodels", "workflow_scripts", "rules")
    for p in sorted((ROOT / folder).rglob("*"))
    if p.suffix in (".py", ".smk")
] + [ROOT / "Snakefile"]

# One definition each: a pattern of the definition's text and the one file that holds it.
DEFINED_ONCE = {
    "splits": (r"\"train\",\s*\"val\",\s*\"test\"|train\|val", "avmodels/registry.py"),
    "attack names": (r"\"fgsm\",\s*\"pgd\",\s*\"mim\"|fgsm\|pgd", "avmodels/registry.py"),
    "fusion names": (r"\"sum\",\s*\"concat\",\s*\"film\"", "avmodels/registry.py"),
    "defense names": (r"\"none\",\s*\"exfmem\"|none\|exfmem", "avmodels/registry.py"),
    "evaluation columns": (r"\"accuracy\",\s*\"n_correct\"", "avmodels/robustness/metrics.py"),
    "failure columns": (r"\"reason\",\s*\"message\"|reason,message", "avmodels/data/lists.py"),
    "clip-id formula": (r":07d\}_\{", "avmodels/data/lists.py"),
    "time-range check": (r"(?<!need )0 <= \w+ < \w*end\b|\bend <= ", "avmodels/data/lists.py"),
    "file sha256": (r"lambda: (?!resp)\w+\.read\(", "avmodels/data/fetch.py"),
    "audio window default": (r"\b65535\b(?!-)", "avmodels/settings.py"),
}


@pytest.mark.parametrize("name", sorted(DEFINED_ONCE))
def test_each_name_is_defined_once(name):
    pattern, home = DEFINED_ONCE[name]
    regex = re.compile(pattern, re.MULTILINE)
    code = {p: _code(p.read_text()) for p in SOURCES}
    hits = {str(p.relative_to(ROOT)): len(regex.findall(text)) for p, text in code.items()}
    assert {p: n for p, n in hits.items() if n} == {home: 1}


def _code(text: str) -> str:
    """``text`` without comments and docstring lines (prose may name the values)."""
    lines, in_doc = [], False
    for line in text.splitlines():
        quotes = line.count('"""')
        if in_doc or line.lstrip().startswith(('"""', 'r"""')):
            in_doc = in_doc != (quotes % 2 == 1)
            continue
        lines.append(line.split("  #")[0])
    return "\n".join(lines)
