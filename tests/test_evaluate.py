"""Robustness evaluation: rows per attack mode, unimodal modes, localization, feature sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_train import make_manifests, tiny_config

from avmodels.models.model import IMAGENET_STD, ModelConfig, build_model, load_checkpoint
from avmodels.robustness import defenses, exfmem
from avmodels.settings import EvalSettings, InputSettings
from avmodels.study.analyses import (
    LOCALIZATION_COLUMNS,
    attention_scores,
    evaluate_localization,
    feature_sets,
)
from avmodels.study.evaluate import EVAL_COLUMNS, evaluate, mode_budgets
from avmodels.study.running import extract_features
from avmodels.study.train import train

# A budget the easy set cannot withstand: a quarter of the pixel range and of the waveform's
# (the test tone's peak is 1/8), so attacking both inputs flips clips on any machine.
EPS = 0.25
INPUTS = InputSettings(audio_samples=4096, image_size=32, resize_size=36)
DATA = {"progress": False}


def settings(**changes) -> EvalSettings:
    """The tests' evaluation settings: tiny inputs, ``changes`` over the defaults."""
    return EvalSettings(inputs=INPUTS, **changes)


@pytest.fixture(scope="module")
def manifests(tmp_path_factory) -> dict[str, Path]:
    return make_manifests(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def trained(manifests, tmp_path_factory):
    """A Concat model trained to 100% on the easy test clips."""
    root = tmp_path_factory.mktemp("model")
    summary = train(
        ModelConfig(variant="concat", num_classes=2),
        tiny_config(epochs=4),
        manifests["train"],
        manifests["test"],
        root / "c.pt",
        root / "l.csv",
        progress=False,
    )
    assert summary["best_val_acc"] == 100.0
    return load_checkpoint(root / "c.pt")[0]


@pytest.mark.parametrize("attack", ["fgsm", "pgd", "mim"])
def test_rows_and_attacked_accuracy(trained, manifests, attack):
    job = settings(paper_budget=False, batch_size=3, steps=3)
    rows = evaluate(
        trained, manifests["test"], attack, EPS, job, dataset="tiny", model_name="concat", **DATA
    ).frame()
    assert list(rows.columns) == [*EVAL_COLUMNS, "correct"]
    assert rows["mode"].tolist() == ["clean", "a", "v", "av"]
    assert [c.count("1") for c in rows["correct"]] == rows["n_correct"].tolist()
    assert rows["correct"].str.len().tolist() == rows["n"].tolist()
    assert rows.set_index("mode").loc["clean", "correct"] == "1111"  # trained to 100 %
    assert (rows[["dataset", "model", "defense", "attack"]].drop_duplicates().values.tolist()) == [
        ["tiny", "concat", "none", attack]
    ]
    assert (rows["n"] == 4).all() and (rows["eps"] == EPS).all()
    assert rows["eps_audio"].tolist() == [0.0, EPS, 0.0, EPS]
    assert rows["eps_visual"].tolist() == [0.0, 0.0, EPS, EPS]
    assert (rows["accuracy"] == 100.0 * rows["n_correct"] / rows["n"]).all()
    clean = rows.set_index("mode")["accuracy"]
    assert clean["clean"] == 100.0
    assert (clean[["a", "v", "av"]] <= clean["clean"]).all()
    assert clean["av"] < clean["clean"]


def test_evaluation_is_deterministic(trained, manifests):
    job = settings(paper_budget=True, batch_size=4, steps=2)
    first = evaluate(trained, manifests["test"], "pgd", 0.02, job, **DATA)
    second = evaluate(trained, manifests["test"], "pgd", 0.02, job, **DATA)
    pd.testing.assert_frame_equal(first.frame(), second.frame())


@pytest.mark.parametrize(
    ("variant", "omit", "score"),
    [
        ("audio", ["clean", "a"], ["clean", "a", "v", "av"]),
        ("visual", ["clean", "v"], ["clean", "a", "v", "av"]),
    ],
)
def test_unimodal_modes(manifests, variant, omit, score):
    torch.manual_seed(0)
    model = build_model(ModelConfig(variant=variant, num_classes=2))
    job = settings(batch_size=4)
    rows = evaluate(model, manifests["test"], "fgsm", 0.01, job, **DATA)
    assert rows.column("mode") == omit
    rows = evaluate(model, manifests["test"], "fgsm", 0.01, job, inapplicable="score", **DATA)
    rows = rows.frame()
    assert rows["mode"].tolist() == score
    acc = rows.set_index("mode")["accuracy"]
    unseen = "v" if variant == "audio" else "a"  # the perturbation never reaches the model
    assert acc[unseen] == acc["clean"]
    assert acc["av"] == acc["v" if variant == "visual" else "a"]


def test_mode_budgets_paper_semantics():
    budgets = mode_budgets(["clean", "a", "v", "av"], 0.006, paper_budget=True)
    assert budgets["clean"] == {} and budgets["a"] == {"audio": 0.006}
    expected = 0.006 * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    assert torch.allclose(budgets["v"]["visual"], expected)
    assert budgets["av"]["visual"] is budgets["v"]["visual"]
    assert mode_budgets(["v"], 0.006, paper_budget=False)["v"] == {"visual": 0.006}
    with pytest.raises(ValueError, match="unknown mode"):
        mode_budgets(["x"], 0.1, paper_budget=False)


def test_custom_loss_reaches_the_attack(trained, manifests):
    calls = []

    def loss(model, inputs, labels):
        calls.append(sorted(inputs))
        return torch.nn.functional.cross_entropy(model(**inputs), labels)

    job = settings(steps=2, batch_size=4)
    evaluate(trained, manifests["test"], "pgd", 0.01, job, modes=("av",), loss=loss, **DATA)
    assert calls == [["audio", "visual"]] * 2


def test_defended_model(trained, manifests):
    feats, _ = extract_features(trained, manifests["train"], batch_size=4, inputs=INPUTS, **DATA)
    banks = exfmem.build_memory_banks(feats, size=6, seed=0)
    defended = exfmem.ExFMemModel(trained, banks, max_iter=50)
    rows = evaluate(
        defended,
        manifests["test"],
        "fgsm",
        0.02,
        settings(batch_size=4),
        defense="exfmem",
        loss=defenses.adaptive_attack_loss("minsim"),
        **DATA,
    ).frame()
    assert rows["mode"].tolist() == ["clean", "a", "v", "av"]
    assert (rows["defense"] == "exfmem").all()
    acc = rows.set_index("mode")["accuracy"]
    assert (acc[["a", "v", "av"]] <= acc["clean"]).all()
    assert rows["lasso_iterations"].min() >= 1  # solver statistics of the job, every row
    assert (rows["lasso_max_gap"] <= 1e-4).all() and (rows["lasso_mean_gap"] >= 0).all()


def test_attention_scores():
    clean = torch.zeros(2, 3, 3)
    clean[:, 0, 0] = 1.0
    moved = torch.zeros(2, 3, 3)
    moved[0, 0, 0] = 1.0  # unchanged
    moved[1, 2, 2] = 0.5  # half the mass moves to the far corner
    moved[1, 0, 0] = 0.5
    scores = attention_scores(clean, moved)
    assert scores["overlap"].tolist() == pytest.approx([1.0, 0.5])
    assert scores["peak_shift"].tolist() == pytest.approx([0.0, 0.0])
    assert scores["com_shift"].tolist() == pytest.approx([0.0, np.hypot(1.0, 1.0)])


def test_localization(manifests):
    torch.manual_seed(0)
    model = build_model(ModelConfig(variant="localization", num_classes=2, visual_output_stride=8))
    result = evaluate_localization(
        model,
        manifests["test"],
        "fgsm",
        0.05,
        settings(paper_budget=False, batch_size=3),
        keep_frames=2,
        **DATA,
    )
    assert list(result.summary.columns) == LOCALIZATION_COLUMNS
    assert result.summary["mode"].tolist() == ["clean", "a", "v", "av"]
    clean = result.summary.iloc[0]
    assert clean["overlap"] == pytest.approx(1.0) and clean["com_shift"] == pytest.approx(0.0)
    for mode, maps in result.attention.items():
        assert maps.shape == (4, 4, 4), mode
        assert np.allclose(maps.sum((1, 2)), 1.0, atol=1e-5)
        assert result.scores[mode]["overlap"].shape == (4,)
        assert result.frames[mode].shape == (2, 32, 32, 3)
    assert result.summary["overlap"].between(0.0, 1.0 + 1e-6).all()
    assert np.array_equal(result.frames["a"], result.frames["clean"])
    assert not np.array_equal(result.frames["v"], result.frames["clean"])
    assert result.labels.tolist() == [0, 0, 1, 1]


def test_feature_sets(trained, manifests):
    feats, labels = feature_sets(
        trained,
        manifests["test"],
        "fgsm",
        0.05,
        settings(paper_budget=False, batch_size=2),
        limit=3,
        **DATA,
    )
    assert set(feats) == {"clean", "a", "v"} and labels.tolist() == [0, 0, 1]
    for mode in feats:
        assert {k: tuple(v.shape) for k, v in feats[mode].items()} == {
            "audio": (3, 512),
            "visual": (3, 512),
        }
    # attacking one input changes only its own embedding
    assert torch.equal(feats["a"]["visual"], feats["clean"]["visual"])
    assert not torch.equal(feats["a"]["audio"], feats["clean"]["audio"])
    assert torch.equal(feats["v"]["audio"], feats["clean"]["audio"])
    assert not torch.equal(feats["v"]["visual"], feats["clean"]["visual"])
