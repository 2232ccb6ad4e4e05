"""Training loop: per-group learning rates, best-validation checkpoint, log, determinism."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch

from avmodels.data import clips, media, probing
from avmodels.data.manifests import MANIFEST_COLUMNS
from avmodels.models.model import ModelConfig, build_model, load_checkpoint
from avmodels.settings import InputSettings
from avmodels.study.running import extract_features
from avmodels.study.train import LOG_COLUMNS, TrainConfig, parameter_groups, train

# An easy two-class set: the class sets both the frame colour and the tone's pitch.
CLASSES = (("cello", (200, 40, 30), 330.0), ("flute", (30, 60, 210), 1760.0))
SECONDS = 4.0


def _render(path: Path, rgb: tuple[int, int, int], freq: float) -> None:
    colour = "0x" + "".join(f"{c:02x}" for c in rgb)
    args = [
        "ffmpeg",
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"color=c={colour}:s=64x48:r=8:d={SECONDS}",
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency={freq}:sample_rate={clips.SAMPLE_RATE}:d={SECONDS}",
        "-c:v",
        "mpeg4",
        "-c:a",
        "aac",
        "-shortest",
        str(path),
    ]
    subprocess.run(args, check=True)


def make_manifests(root: Path, per_class: int = 3, held_out: int = 2) -> dict[str, Path]:
    """Tiny preprocessed clips of ``CLASSES``; manifests "train" (all clips) and "val" / "test"
    (the first ``held_out`` clips of each class: the set is for mechanics, not generalisation).
    """
    probing.ensure_ffmpeg()
    (root / "videos").mkdir(parents=True, exist_ok=True)
    rows = []
    for index, (label, rgb, freq) in enumerate(CLASSES):
        for k in range(per_class):
            clip_id = f"{label}_{k}"
            video = root / "videos" / f"{clip_id}.mp4"
            _render(video, tuple(min(255, c + 12 * k) for c in rgb), freq * (1.0 + 0.03 * k))
            info = media.preprocess_clip(video, root / "clips" / clip_id)
            rows.append(
                {
                    "clip_id": clip_id,
                    "dataset": "tiny",
                    "label": label,
                    "label_index": index,
                    "split": "train",
                    "clip_dir": str(root / "clips" / clip_id),
                    "duration": info.duration,
                    "num_samples": info.num_samples,
                    "num_frames": info.num_frames,
                    "k": k,
                }
            )
    table = pd.DataFrame(rows)
    paths = {}
    for split in ("train", "val", "test"):
        part = table if split == "train" else table[table["k"] < held_out]
        paths[split] = root / f"manifest_{split}.csv"
        part.assign(split=split)[MANIFEST_COLUMNS].to_csv(paths[split], index=False)
    return paths


def tiny_config(**changes) -> TrainConfig:
    """32 px frames, 4096-sample audio, one batch of all six training clips."""
    base = TrainConfig(
        epochs=2,
        batch_size=6,
        lr_audio=1e-2,
        lr_visual=1e-2,
        lr_head=1e-2,
        milestones=(),
        audio_samples=4096,
        image_size=32,
        resize_size=36,
    )
    return replace(base, **changes)


@pytest.fixture(scope="module")
def manifests(tmp_path_factory) -> dict[str, Path]:
    return make_manifests(tmp_path_factory.mktemp("tiny"))


def _state(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    model, extra = load_checkpoint(path)
    return model.state_dict(), extra


def test_train_writes_log_and_best_checkpoint(manifests, tmp_path):
    cfg = tiny_config(epochs=3, milestones=(2,), gamma=0.5)
    summary = train(
        ModelConfig(variant="concat", num_classes=2),
        cfg,
        manifests["train"],
        manifests["val"],
        tmp_path / "ckpt.pt",
        tmp_path / "log.csv",
        progress=False,
    )
    log = pd.read_csv(tmp_path / "log.csv")
    assert list(log.columns) == LOG_COLUMNS
    assert log["epoch"].tolist() == [1, 2, 3]
    assert log["lr"].tolist() == pytest.approx([1e-2, 1e-2, 5e-3])
    assert (log["val_acc"].between(0, 100)).all() and (log["seconds"] >= 0).all()
    best = log.loc[log["val_acc"].idxmax()]
    assert summary["best_epoch"] == best["epoch"]
    assert summary["best_val_acc"] == pytest.approx(best["val_acc"])
    model, extra = load_checkpoint(tmp_path / "ckpt.pt")
    assert extra["epoch"] == best["epoch"]
    assert extra["val_accuracy"] == pytest.approx(best["val_acc"])
    assert TrainConfig(**extra["train_config"]) == cfg
    assert model.config.variant == "concat" and model.config.num_classes == 2


def test_loss_decreases_on_easy_set(manifests, tmp_path):
    summary = train(
        ModelConfig(variant="concat", num_classes=2),
        tiny_config(epochs=4),
        manifests["train"],
        manifests["val"],
        tmp_path / "c.pt",
        tmp_path / "l.csv",
        progress=False,
    )
    losses = [row["train_loss"] for row in summary["history"]]
    assert losses[-1] < losses[0]
    assert summary["history"][-1]["train_acc"] == 100.0


def test_two_runs_are_identical(manifests, tmp_path):
    cfg = tiny_config(loss="minsim")
    for run in ("a", "b"):
        train(
            ModelConfig(variant="concat", num_classes=2),
            cfg,
            manifests["train"],
            manifests["val"],
            tmp_path / run / "ckpt.pt",
            tmp_path / run / "log.csv",
            progress=False,
        )
    (state_a, extra_a), (state_b, extra_b) = (_state(tmp_path / r / "ckpt.pt") for r in "ab")
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key
    assert extra_a == extra_b
    # the archive's inner names follow the file name, equal here: the files are byte-identical
    assert (tmp_path / "a" / "ckpt.pt").read_bytes() == (tmp_path / "b" / "ckpt.pt").read_bytes()
    log_a, log_b = (pd.read_csv(tmp_path / r / "log.csv") for r in "ab")
    pd.testing.assert_frame_equal(log_a.drop(columns="seconds"), log_b.drop(columns="seconds"))


@pytest.mark.parametrize("variant", ["audio", "visual"])
def test_unimodal_and_pcl_training(manifests, tmp_path, variant):
    summary = train(
        ModelConfig(variant=variant, num_classes=2),
        tiny_config(epochs=1, loss="pcl"),
        manifests["train"],
        manifests["val"],
        tmp_path / "c.pt",
        tmp_path / "l.csv",
        progress=False,
    )
    model, extra = load_checkpoint(tmp_path / "c.pt")
    assert model.modalities == (variant,)
    assert summary["best_epoch"] == 1
    assert extra["loss_state"]["centres"].shape == (2, 512)  # PCL's centres are saved


def test_parameter_groups_split_audio_visual_head():
    model = build_model(ModelConfig(variant="concat", num_classes=3))
    centres = torch.nn.Parameter(torch.zeros(3, 512))
    cfg = TrainConfig(lr_audio=0.1, lr_visual=0.2, lr_head=0.3, lr_loss=0.4)
    groups = {g["name"]: g for g in parameter_groups(model, cfg, [centres])}
    assert {k: g["lr"] for k, g in groups.items()} == {
        "audio": 0.1,
        "visual": 0.2,
        "head": 0.3,
        "loss": 0.4,
    }
    ids = {k: {id(p) for p in g["params"]} for k, g in groups.items()}
    assert ids["audio"] == {id(p) for p in model.audio_net.parameters()}
    assert ids["visual"] == {id(p) for p in model.visual_net.parameters()}
    assert ids["head"] == {id(p) for p in model.classifier.parameters()} | {
        id(p) for p in model.fusion.parameters()
    }
    assert ids["loss"] == {id(centres)}


def test_unknown_loss_is_rejected():
    with pytest.raises(ValueError, match="unknown training loss 'triplet'"):
        TrainConfig(loss="triplet")


def test_extract_features_shapes(manifests):
    model = build_model(ModelConfig(variant="concat", num_classes=2))
    inputs = InputSettings(audio_samples=4096, image_size=32, resize_size=36)
    feats, labels = extract_features(
        model, manifests["val"], batch_size=3, inputs=inputs, progress=False
    )
    assert set(feats) == {"audio", "visual"}
    assert feats["audio"].shape == feats["visual"].shape == (4, 512)
    assert labels.tolist() == [0, 0, 1, 1]


class _Killed(Exception):
    """Stands for the job being killed mid-epoch."""


def test_killed_run_resumes_and_matches_uninterrupted(manifests, tmp_path, monkeypatch):
    from avmodels.study import train as train_module

    cfg, model_cfg = tiny_config(epochs=4, loss="pcl"), ModelConfig(variant="concat", num_classes=2)
    args = (model_cfg, cfg, manifests["train"], manifests["val"])
    train(*args, tmp_path / "full" / "ckpt.pt", tmp_path / "full" / "log.csv", progress=False)

    real_epoch, calls = train_module._train_epoch, []

    def epoch_then_kill(*a, **kw):
        calls.append(1)
        if len(calls) == 3:  # killed during epoch 3, after epochs 1 and 2 finished
            raise _Killed
        return real_epoch(*a, **kw)

    monkeypatch.setattr(train_module, "_train_epoch", epoch_then_kill)
    ckpt, log_csv = tmp_path / "cut" / "ckpt.pt", tmp_path / "cut" / "log.csv"
    with pytest.raises(_Killed):
        train(*args, ckpt, log_csv, progress=False)
    assert train_module.resume_path(ckpt).exists()
    assert pd.read_csv(log_csv)["epoch"].tolist() == [1, 2]
    ckpt.unlink()  # a retried job starts without the outputs of the failed one
    log_csv.unlink()

    calls.clear()
    summary = train(*args, ckpt, log_csv, progress=False)
    assert len(calls) == 2  # epochs 3 and 4 only
    assert [row["epoch"] for row in summary["history"]] == [1, 2, 3, 4]
    assert not train_module.resume_path(ckpt).exists()
    assert ckpt.read_bytes() == (tmp_path / "full" / "ckpt.pt").read_bytes()
    full, resumed = (pd.read_csv(tmp_path / r / "log.csv") for r in ("full", "cut"))
    pd.testing.assert_frame_equal(full.drop(columns="seconds"), resumed.drop(columns="seconds"))


def test_resume_state_of_other_settings_is_ignored(manifests, tmp_path, monkeypatch):
    from avmodels.study import train as train_module

    model_cfg = ModelConfig(variant="audio", num_classes=2)
    ckpt = tmp_path / "ckpt.pt"
    monkeypatch.setattr(train_module, "_train_epoch", _kill_second_epoch(train_module))
    with pytest.raises(_Killed):
        train(
            model_cfg,
            tiny_config(epochs=2),
            manifests["train"],
            manifests["val"],
            ckpt,
            tmp_path / "log.csv",
            progress=False,
        )
    monkeypatch.undo()
    summary = train(
        model_cfg,
        tiny_config(epochs=2, lr_head=5e-3),
        manifests["train"],
        manifests["val"],
        ckpt,
        tmp_path / "log.csv",
        progress=False,
    )
    assert summary["history"][0]["lr"] == 5e-3  # started over with the new settings


def _kill_second_epoch(module):
    real, calls = module._train_epoch, []

    def run(*a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise _Killed
        return real(*a, **kw)

    return run


def _epochs_of_batches(manifest: Path, workers: int) -> list[list[torch.Tensor]]:
    from avmodels.study.running import make_loader

    loader = make_loader(
        manifest,
        train=True,
        batch_size=3,
        audio_samples=4096,
        image_size=32,
        resize_size=36,
        num_workers=workers,
    )
    epochs = []
    for epoch in (1, 2):
        loader.sampler.dataset.set_epoch(epoch)
        epochs.append([torch.cat([b["audio"].flatten(), b["visual"].flatten()]) for b in loader])
    return epochs


def test_persistent_workers_see_each_epoch(manifests):
    alone, workers = (_epochs_of_batches(manifests["train"], n) for n in (0, 2))
    for epoch_alone, epoch_workers in zip(alone, workers, strict=True):
        assert all(torch.equal(a, b) for a, b in zip(epoch_alone, epoch_workers, strict=True))
    assert not torch.equal(alone[0][0], alone[1][0])  # a new epoch, new augmentations


def test_loader_workers_follow_the_device():
    from avmodels.study.running import loader_workers

    assert loader_workers(8, torch.device("cuda")) == 7
    assert loader_workers(1, torch.device("cuda")) == 0
    assert loader_workers(8, torch.device("cpu")) == 0
