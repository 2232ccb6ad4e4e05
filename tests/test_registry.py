"""The registries are the only lists of names; the schema's enums and defaults agree with them."""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

from avmodels import registry, weights
from avmodels.attacks import ATTACKS
from avmodels.config import LISTED, load_schema
from avmodels.defenses import TRAINING_LOSSES
from avmodels.devices import REQUESTS
from avmodels.fusion import FUSIONS
from avmodels.lasso import LASSO_METHODS, STOP_RULES
from avmodels.model import VARIANTS
from avmodels.plan import FINETUNE_DEFAULTS, attack_settings, autoattack_settings
from avmodels.settings import AttackSettings, EvalSettings, InputSettings
from avmodels.table_specs import TABLE_NAMES

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
    from avmodels.apgd import LOSSES  # after avmodels.attacks: it registers the attacks

    assert tuple(autoattack["loss"]["enum"]) == tuple(LOSSES)
    tables = PROPS["tables"]
    assert tuple(tables["propertyNames"]["enum"]) == TABLE_NAMES
    assert tuple(tables["additionalProperties"]["additionalProperties"]["enum"]) == LISTED


def test_schema_defaults_equal_the_settings_defaults():
    evaluation = PROPS["evaluation"]["properties"]
    defaults = {k: v["default"] for k, v in evaluation.items() if "default" in v}
    assert defaults == asdict(AttackSettings())
    assert PROPS["device"]["default"] == REQUESTS[0]
    paper = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    assert asdict(InputSettings()) == {k: paper["inputs"][k] for k in asdict(InputSettings())}
    assert attack_settings({"evaluation": {}}) == defaults
    finetune = DEFS["finetune_settings"]["properties"]
    assert {k: v["default"] for k, v in finetune.items() if "default" in v} == FINETUNE_DEFAULTS
    autoattack = PROPS["autoattack"]["properties"]
    filled = autoattack_settings({"evaluation": {"table_budgets": {"multi": 0.1}}, "tables": {}})
    assert {k: v["default"] for k, v in autoattack.items() if "default" in v} == {
        k: filled[k] for k in ("bpda", "seed")
    }
    pretrained = PROPS["pretrained"]["properties"]
    assert {k: v["default"] for k, v in pretrained.items()} == weights.DEFAULTS


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
    "evaluation columns": (r"\"accuracy\",\s*\"n_correct\"", "avmodels/metrics.py"),
    "failure columns": (r"\"reason\",\s*\"message\"|reason,message", "avmodels/lists.py"),
    "clip-id formula": (r":07d\}_\{", "avmodels/lists.py"),
    "time-range check": (r"(?<!need )0 <= \w+ < \w*end\b|\bend <= ", "avmodels/lists.py"),
    "file sha256": (r"lambda: (?!resp)\w+\.read\(", "avmodels/fetch.py"),
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
