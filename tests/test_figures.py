"""Figures: written as PNG + PDF, non-empty, byte-identical when drawn twice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from avmodels.study import analysis_arrays, figures

BUDGETS = (0.002, 0.006, 0.012)


def sweep_evals(seed: int = 0) -> pd.DataFrame:
    """Accuracy falling with the budget for the AV model and the unimodal models."""
    rng = np.random.default_rng(seed)
    rows = []
    for model, modes in (("concat", "a v av"), ("audio", "a"), ("visual", "v")):
        clean = float(rng.uniform(60, 90))
        for attack in ("fgsm", "pgd", "mim"):
            for eps in BUDGETS:
                for mode in ("clean", *modes.split()):
                    drop = 0.0 if mode == "clean" else eps * 4000 * rng.uniform(0.5, 1.5)
                    rows.append(
                        {
                            "dataset": "synthetic_music",
                            "model": model,
                            "defense": "none",
                            "attack": attack,
                            "eps": eps,
                            "mode": mode,
                            "eps_audio": eps if mode in ("a", "av") else 0.0,
                            "eps_visual": eps if mode in ("v", "av") else 0.0,
                            "accuracy": max(clean - drop, 0.0),
                            "n_correct": 0,
                            "n": 10,
                        }
                    )
    return pd.DataFrame(rows)


def assert_written_twice_identically(first: list[Path], second: list[Path]) -> None:
    assert [p.suffix for p in first] == [".png", ".pdf"]
    for a, b in zip(first, second, strict=True):
        assert a.stat().st_size > 1000
        assert a.read_bytes() == b.read_bytes(), a.name
    assert first[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert first[1].read_bytes()[:5] == b"%PDF-"


def test_budget_curves_data():
    evals = sweep_evals()
    data = figures.budget_curves(evals, "synthetic_music")
    assert set(data["panel"]) == {"a", "v", "av"}
    assert set(data["curve"]) == {"AV model", "unimodal A", "unimodal V"}
    for _, part in data.groupby(["panel", "attack", "curve"]):
        assert list(part["eps"]) == [0.0, *BUDGETS]
    clean = evals[(evals["model"] == "concat") & (evals["mode"] == "clean")]["accuracy"].iloc[0]
    start = data[(data["panel"] == "av") & (data["curve"] == "AV model") & (data["eps"] == 0)]
    assert (start["accuracy"] == clean).all()
    assert figures.budget_curves(evals, "elsewhere").empty


def test_budget_curve_figure(tmp_path):
    evals = sweep_evals()
    first = figures.plot_budget_curves(evals, "synthetic_music", tmp_path / "a" / "fig3")
    second = figures.plot_budget_curves(evals, "synthetic_music", tmp_path / "b" / "fig3")
    assert_written_twice_identically(first, second)
    empty = figures.plot_budget_curves(evals, "elsewhere", tmp_path / "empty")
    assert all(p.stat().st_size > 0 for p in empty)


def localization_arrays(tmp_path: Path, n: int = 2) -> Path:
    rng = np.random.default_rng(0)
    modes = ("clean", "a", "v", "av")
    frames = {m: rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8) for m in ("clean", "v")}
    frames["av"] = rng.random((n, 32, 32, 3)).astype(np.float32)  # floats in [0, 1] too
    attention = {m: rng.dirichlet(np.ones(16), size=n).reshape(n, 4, 4) for m in modes}
    predictions = {m: rng.integers(0, 3, n) for m in modes}
    scores = {m: rng.random(n) for m in modes}
    return analysis_arrays.save_localization_npz(
        tmp_path / "loc.npz",
        frames,
        attention,
        predictions,
        np.arange(n),
        scores,
        class_names=["cello", "flute", "tuba"],
    )


def test_localization_figure(tmp_path):
    source = localization_arrays(tmp_path)
    first = figures.plot_localization(source, tmp_path / "a" / "fig4")
    second = figures.plot_localization(source, tmp_path / "b" / "fig4")
    assert_written_twice_identically(first, second)
    with np.load(source) as data:
        assert {"frames_clean", "attention_av", "pred_v", "score_a", "labels"} <= set(data.files)
        no_frames = {k: data[k] for k in data.files if not k.startswith("frames")}
    with pytest.raises(ValueError, match="frames_clean"):
        figures.plot_localization(no_frames, tmp_path / "c" / "fig4")


def tsne_arrays(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 4)
    features = {
        model: {s: rng.normal(size=(12, 8)) + labels[:, None] for s in analysis_arrays.STREAMS}
        for model in ("concat", "minsim")
    }
    return analysis_arrays.save_tsne_npz(tmp_path / "tsne.npz", features, labels, ["a", "b", "c"])


def test_tsne_figure(tmp_path):
    source = tsne_arrays(tmp_path)
    first = figures.plot_tsne(source, tmp_path / "a" / "fig10", attacked="audio")
    second = figures.plot_tsne(source, tmp_path / "b" / "fig10", attacked="audio")
    assert_written_twice_identically(first, second)
    with pytest.raises(ValueError, match="attacked"):
        figures.plot_tsne(source, tmp_path / "c", attacked="both")


def test_tsne_embedding_is_repeatable_and_split():
    rng = np.random.default_rng(1)
    parts = [rng.normal(size=(5, 4)), rng.normal(size=(7, 4))]
    first = figures.tsne_embed(parts, seed=3)
    second = figures.tsne_embed(parts, seed=3)
    assert [p.shape for p in first] == [(5, 2), (7, 2)]
    np.testing.assert_array_equal(np.concatenate(first), np.concatenate(second))
