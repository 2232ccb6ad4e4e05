"""APGD and Square in the study: the jobs' plan, the evaluation, the table and the check."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_evaluate import EPS, INPUTS, settings
from test_train import make_manifests, tiny_config

from avmodels import registry
from avmodels.models.model import ModelConfig, build_model, load_checkpoint
from avmodels.robustness import exfmem
from avmodels.robustness.worstcase import WORST
from avmodels.study import autotable
from avmodels.study.autoeval import COLUMNS, attack_specs, evaluate_autoattack
from avmodels.study.findings import per_clip
from avmodels.study.running import extract_features
from avmodels.study.table_specs.base import METHODS
from avmodels.study.train import train
from avmodels.workflow import plan
from avmodels.workflow.config import ConfigError, check_config, load_schema

ROOT = Path(__file__).resolve().parents[1]
ATTACKS = [
    {"attack": "apgd", "loss": "ce", "steps": 3},
    {"attack": "apgd", "loss": "dlr", "steps": 3},
    {"attack": "square", "steps": 20},
]


def tiny() -> dict:
    return yaml.safe_load((ROOT / "config" / "tiny.yaml").read_text())


# --- configuration and plan --------------------------------------------------------------------


def test_attack_specs_are_labelled_and_bad_entries_refused():
    specs = attack_specs(ATTACKS, seed=3)
    assert specs == {
        "apgd-ce": ("apgd", {"steps": 3, "seed": 3, "loss": "ce"}),
        "apgd-dlr": ("apgd", {"steps": 3, "seed": 3, "loss": "dlr"}),
        "square": ("square", {"steps": 20, "seed": 3}),
    }
    with pytest.raises(ValueError, match="square takes no loss"):
        attack_specs([{"attack": "square", "loss": "ce", "steps": 2}])
    with pytest.raises(ValueError, match="listed twice"):
        attack_specs([ATTACKS[0], {**ATTACKS[0], "steps": 9}])
    with pytest.raises(ValueError, match="unknown attack 'pgd'"):
        attack_specs([{"attack": "pgd", "steps": 2}])


def test_plan_runs_every_defended_model_at_the_multi_budget():
    config = tiny()
    outputs = plan.autoattack_evaluations(config)
    eps = plan.fmt_eps(config["evaluation"]["table_budgets"]["multi"])
    assert outputs == [
        f"results/synthetic_music/autoattack/{METHODS[m].model}/{METHODS[m].defense}/{eps}.csv"
        for m in registry.AUTOATTACK_DEFENSES
    ]
    config["autoattack"]["budget"] = 0.1
    assert all(p.endswith("/0.1.csv") for p in plan.autoattack_evaluations(config))
    config["autoattack"]["attacks"] = []
    assert plan.autoattack_evaluations(config) == []
    del config["autoattack"]
    assert plan.autoattack_settings(config)["datasets"] == ["synthetic_music"]


def test_config_refuses_an_unknown_dataset_and_attack():
    schema = load_schema(ROOT / "config" / "config.schema.yaml")
    config = tiny()
    check_config(config, schema)
    bad = copy.deepcopy(config)
    bad["autoattack"]["datasets"] = ["music"]
    with pytest.raises(ConfigError, match="autoattack.datasets: unknown dataset 'music'"):
        check_config(bad, schema)
    bad = copy.deepcopy(config)
    bad["autoattack"]["attacks"][0]["attack"] = "fgsm"
    with pytest.raises(ConfigError, match="autoattack.attacks"):
        check_config(bad, schema)


# --- the evaluation on real clips --------------------------------------------------------------


@pytest.fixture(scope="module")
def manifests(tmp_path_factory) -> dict[str, Path]:
    return make_manifests(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def trained(manifests, tmp_path_factory):
    """A Concat model trained to 100 % on the easy test clips (three classes: DLR needs them)."""
    root = tmp_path_factory.mktemp("model")
    train(
        ModelConfig(variant="concat", num_classes=3), tiny_config(epochs=4),
        manifests["train"], manifests["test"], root / "c.pt", root / "l.csv", progress=False,
    )  # fmt: skip
    return load_checkpoint(root / "c.pt")[0]


def test_each_attack_and_the_worst_case_per_mode(trained, manifests):
    specs = attack_specs(ATTACKS, seed=0)
    job = settings(paper_budget=False, batch_size=3)
    rows = evaluate_autoattack(
        trained, manifests["test"], specs, EPS, job, model_name="concat", progress=False
    ).frame()
    assert list(rows.columns) == COLUMNS
    expected = [("clean", "clean")] + [(m, a) for m in ("a", "v", "av") for a in (*specs, WORST)]
    assert list(zip(rows["mode"], rows["attack"], strict=True)) == expected
    clips = {(r.mode, r.attack): per_clip(pd.Series(r._asdict()), r.n) for r in rows.itertuples()}
    clean = clips[("clean", "clean")]
    assert clean.mean() == 100.0
    for mode in ("a", "v", "av"):
        worst = clips[(mode, WORST)]
        for attack in specs:  # a clip is robust only if every attack fails on it
            assert (worst <= clips[(mode, attack)]).all()
        assert (worst == pd.DataFrame([clips[(mode, a)] for a in specs]).min().to_numpy()).all()
    # a quarter of both inputs' range flips clips of the easy set (see test_evaluate.EPS)
    assert clips[("av", WORST)].mean() < 100.0
    again = evaluate_autoattack(trained, manifests["test"], specs, EPS, job, progress=False)
    assert again.column("correct") == rows["correct"].tolist()  # seeded


def test_bpda_attacks_exfmem_and_scores_it_as_it_is(trained, manifests):
    feats, _ = extract_features(
        trained, manifests["train"], batch_size=4, inputs=INPUTS, progress=False
    )
    defended = exfmem.ExFMemModel(trained, exfmem.build_memory_banks(feats, 6, 0), max_iter=50)
    specs = attack_specs(ATTACKS[:1], seed=0)
    job = settings(paper_budget=False, batch_size=6)
    plain, bpda = (
        evaluate_autoattack(defended, manifests["test"], specs, EPS, job, bpda=b, progress=False)
        for b in (False, True)
    )
    assert plain.column("correct")[0] == bpda.column("correct")[0]  # the same clean clips' scores
    assert all(n > 0 for n in bpda.column("n"))


def test_a_unimodal_model_gets_only_its_own_mode(manifests):
    audio = build_model(ModelConfig(variant="audio", num_classes=3)).eval()
    specs = attack_specs([{"attack": "square", "steps": 2}], seed=0)
    rows = evaluate_autoattack(audio, manifests["test"], specs, 0.01, settings(), progress=False)
    assert rows.column("mode") == ["clean", "a", "a"]


# --- the table and the findings, on synthetic evaluations --------------------------------------


def _rows(model: str, defense: str, per_attack: dict[str, str]) -> pd.DataFrame:
    """Evaluation rows of one job: every mode gets the same per-clip strings."""
    n = len(next(iter(per_attack.values())))
    rows = [("clean", "clean", "1" * n)]
    for mode in ("a", "v", "av"):
        worst = "".join(min(bits) for bits in zip(*per_attack.values(), strict=True))
        rows += [(mode, a, bits) for a, bits in per_attack.items()] + [(mode, WORST, worst)]
    return pd.DataFrame(
        [
            {
                "dataset": "synthetic_music",
                "model": model,
                "defense": defense,
                "eps": 0.025,
                "mode": mode,
                "eps_audio": 0.0,
                "eps_visual": 0.0,
                "attack": attack,
                "accuracy": 100.0 * bits.count("1") / n,
                "n_correct": bits.count("1"),
                "n": n,
                "correct": bits,
            }  # fmt: skip
            for mode, attack, bits in rows
        ],
        columns=COLUMNS,
    )


def write_jobs(root: Path) -> list[Path]:
    """Five defenses, 40 clips: under ExFMem Square fools every clip APGD leaves standing
    (masked gradients by construction), MinSim is only one clip apart, the others tie."""
    strong, weak = "1" * 30 + "0" * 10, "0" * 40
    jobs = {
        ("pcl", "none"): {"apgd-ce": strong, "apgd-dlr": strong, "square": strong},
        ("maxsim", "none"): {"apgd-ce": weak, "apgd-dlr": weak, "square": weak},
        ("minsim", "none"): {"apgd-ce": strong, "apgd-dlr": strong, "square": "0" + strong[1:]},
        ("concat", "exfmem"): {"apgd-ce": strong, "apgd-dlr": strong, "square": weak},
        # the full defense's job is missing
    }
    paths = []
    for (model, defense), per_attack in jobs.items():
        path = root / f"{model}_{defense}.csv"
        _rows(model, defense, per_attack).to_csv(path, index=False)
        paths.append(path)
    return paths


def test_table_has_every_defense_attack_and_mode(tmp_path):
    evals = autotable.load_autoattack(write_jobs(tmp_path))
    cells = autotable.build_autoattack_table(evals, ["synthetic_music"])
    attacks = ["apgd-ce", "apgd-dlr", "square", WORST]
    assert len(cells) == 5 * (1 + 3 * len(attacks))
    value = cells.set_index(["method", "mode", "attack"])["ours"]
    assert value[("exfmem", "av", "square")] == 0.0
    assert value[("exfmem", "av", "apgd-ce")] == 75.0
    assert value[("exfmem", "v", WORST)] == 0.0
    assert value[("pcl", "clean", "clean")] == 100.0
    assert value.loc["minsim_exfmem"].isna().all()  # missing job: kept, as NaN
    assert cells.loc[cells["method"] == "pcl", "source_record"].str.endswith(".prov.json").all()
    autotable.write_autoattack_table(cells, tmp_path / "autoattack", 0.025)
    md = (tmp_path / "autoattack.md").read_text()
    assert md.startswith(f"## {autotable.TITLE}") and "| MinSim+ExFMem | — |" in md
    assert "| ExFMem | 100.00 | 75.00 | 75.00 | 0.00 | 0.00 |" in md
    assert "AV worst" in md and "budget 0.025" in md
    tex = (tmp_path / "autoattack.tex").read_text()
    assert r"\label{tab:autoattack}" in tex and "AV apgd-ce" in tex
    back = pd.read_csv(tmp_path / "autoattack.csv")
    assert list(back.columns) == autotable.CELL_COLUMNS and len(back) == len(cells)


def test_findings_flag_the_defense_whose_gradients_are_masked(tmp_path):
    evals = autotable.load_autoattack(write_jobs(tmp_path))
    text = "\n".join(autotable.masking_findings(evals, ["synthetic_music"]))
    verdicts = dict(
        re.findall(r"^### `(\w+)` on .+: (held|not held|within noise|not evaluated)$", text, re.M)
    )
    assert verdicts == {
        "pcl": "not held",  # tie
        "maxsim": "not held",
        "minsim": "within noise",  # one clip of 40
        "exfmem": "held",  # Square fools 30 clips APGD does not
        "minsim_exfmem": "not evaluated",
    }, text
    assert "AV: accuracy under apgd-ce, apgd-dlr above square's: n=40, difference +75.00" in text
    assert "(paired bootstrap)" in text


def test_findings_without_evaluations_say_so():
    lines = autotable.masking_findings(pd.DataFrame(), ["synthetic_music"])
    assert lines[-2] == "- not evaluated: no APGD and Square evaluations"
