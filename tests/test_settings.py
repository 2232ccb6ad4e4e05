"""The paper's settings: config values, adaptive attack losses per defense, the evaluation
resize kernel against the reference's, visual pooling, localization examples per class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms as T
import yaml
from PIL import Image
from test_dataset import write_clip

from avmodels.data.dataset import AVDataset, resize_short_side
from avmodels.models.model import ModelConfig, build_model, load_checkpoint, save_checkpoint
from avmodels.models.nets import VisualNet
from avmodels.robustness.defended import load_evaluated_model
from avmodels.robustness.defenses import cosine_similarity, make_training_loss
from avmodels.robustness.exfmem import build_memory_banks
from avmodels.settings import EvalSettings, ExfmemSettings, InputSettings
from avmodels.study.analyses import evaluate_localization, spread_over_classes
from avmodels.workflow.plan import analysis_datasets, variant_settings

PRESETS = ("config.yaml", "config/tiny.yaml", "config/paper.yaml")


def _load(repo_dir: Path, name: str) -> dict:
    return yaml.safe_load((repo_dir / name).read_text())


# -- config values -------------------------------------------------------------------------------
def test_paper_preset_follows_the_paper(repo_dir: Path) -> None:
    paper = _load(repo_dir, "config/paper.yaml")
    for dataset in paper["datasets"]:
        assert variant_settings(paper, "concat", dataset)["batch_size"] == 48  # A.5
    assert analysis_datasets(paper, "localization") == ["music", "kinetics_sounds", "ave"]
    assert paper["analysis"]["tsne_attack"] == "fgsm" and paper["analysis"]["tsne_budget"] == 0.02


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_uses_mustafas_pcl_weight_and_the_authors_tsne(
    repo_dir: Path, preset: str
) -> None:
    config = _load(repo_dir, preset)
    assert variant_settings(config, "pcl")["loss_weight"] == 1.0
    assert variant_settings(config, "pcl")["loss"] == "pcl"
    assert (config["analysis"]["tsne_attack"], config["analysis"]["tsne_budget"]) == ("fgsm", 0.02)
    assert {variant_settings(config, v)["visual_pool"] for v in config["variants"]} == {"max"}


# -- adaptive attacks: every defense attacked with its own training loss -------------------------
def _inputs(seed: int = 0) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    audio = (0.5 * torch.randn(4, 4096, generator=gen)).clamp(-1, 1)
    return {"audio": audio, "visual": torch.rand(4, 3, 32, 32, generator=gen)}, torch.arange(4) % 3


def _checkpoint(tmp_path: Path, loss: str, weight: float) -> tuple[Path, torch.nn.Module]:
    """A Concat model saved as training saves it, with its training loss module."""
    torch.manual_seed(1)
    model = build_model(ModelConfig(variant="concat", num_classes=3))
    torch.nn.init.normal_(model.classifier.weight, 0.0, 0.1)  # logits that depend on the inputs
    loss_fn = make_training_loss(loss, 3, 512, weight, model.modalities)
    path = tmp_path / f"{loss}.pt"
    save_checkpoint(
        path,
        model,
        train_config={"loss": loss, "loss_weight": weight},
        loss_state=loss_fn.state_dict(),
    )
    return path, loss_fn


@pytest.mark.parametrize("defense", ["minsim", "maxsim", "pcl"])
def test_each_defense_is_attacked_with_its_training_loss(tmp_path: Path, defense: str) -> None:
    path, loss_fn = _checkpoint(tmp_path, defense, 0.7)
    model, attack_loss = load_evaluated_model(path, adaptive=True)
    inputs, labels = _inputs()
    with torch.no_grad():
        feats = model.encode(**inputs)
        logits = model.head(feats)
        own = loss_fn.eval()(logits, labels, feats)
        got = attack_loss(model, inputs, labels)
    torch.testing.assert_close(got, own)
    ce = F.cross_entropy(logits, labels)
    assert abs(float(got - ce)) > 1e-3  # the defense's own term is in, not plain CE
    assert load_evaluated_model(path, adaptive=False)[1] is None


def test_pcl_attack_uses_the_trained_centres(tmp_path: Path) -> None:
    path, loss_fn = _checkpoint(tmp_path, "pcl", 1.0)
    model, attack_loss = load_evaluated_model(path)
    inputs, labels = _inputs()
    other = make_training_loss("pcl", 3, 512, 1.0)  # fresh random centres
    with torch.no_grad():
        feats = model.encode(**inputs)
        logits = model.head(feats)
        fresh = other(logits, labels, feats)
        assert abs(float(attack_loss(model, inputs, labels) - fresh)) > 1e-3
    leaves = {m: x.clone().requires_grad_(True) for m, x in inputs.items()}
    grads = torch.autograd.grad(attack_loss(model, leaves, labels), list(leaves.values()))
    assert all(g.abs().sum() > 0 for g in grads)


def test_a_ce_model_is_attacked_with_cross_entropy(tmp_path: Path) -> None:
    path, _ = _checkpoint(tmp_path, "ce", 1.0)
    assert load_evaluated_model(path, adaptive=True)[1] is None


def test_defended_models_loss_sees_the_denoised_features(tmp_path: Path) -> None:
    path, _ = _checkpoint(tmp_path, "maxsim", 1.0)
    base, _ = load_checkpoint(path)
    inputs, labels = _inputs()
    with torch.no_grad():
        banks = build_memory_banks(base.encode(**_inputs(5)[0]), size=4, seed=0)
    torch.save(banks, tmp_path / "banks.pt")
    model, attack_loss = load_evaluated_model(
        path, tmp_path / "banks.pt", ExfmemSettings(lam=0.05, max_iter=50)
    )
    with torch.no_grad():
        feats = model.encode(**inputs)  # after ExFMem
        expected = F.cross_entropy(model.head(feats), labels)
        expected = expected + (1 - cosine_similarity(feats["audio"], feats["visual"])).mean()
        torch.testing.assert_close(attack_loss(model, inputs, labels), expected)


# -- the evaluation resize: the reference's PIL bicubic ------------------------------------------
@pytest.mark.parametrize(("shape", "size"), [((48, 64), 32), ((256, 455), 224), ((256, 455), 32)])
def test_evaluation_resize_is_the_references_bicubic(shape: tuple[int, int], size: int) -> None:
    """The reference: ``Resize(size, Image.BICUBIC) -> CenterCrop(size)`` on PIL frames."""
    hwc = np.random.default_rng(size).integers(0, 256, (*shape, 3), dtype=np.uint8)
    reference = T.Compose([T.Resize(size, T.InterpolationMode.BICUBIC), T.CenterCrop(size)])
    expected = np.asarray(reference(Image.fromarray(hwc)), dtype=np.int16)
    ds = AVDataset(
        pd.DataFrame(columns=["clip_dir", "label_index", "num_samples", "num_frames", "duration"]),
        train=False,
        image_size=size,
        resize_size=size,
    )
    got = (ds.transform(hwc) * 255).round().to(torch.int16).permute(1, 2, 0).numpy()
    diff = np.abs(got - expected)
    assert got.shape == expected.shape
    assert diff.max() <= 1 and (diff > 0).mean() < 0.02  # PIL's fixed-point rounding
    img = torch.from_numpy(hwc).permute(2, 0, 1)
    bilinear = resize_short_side(img, size, "bilinear").permute(1, 2, 0).numpy().astype(np.int16)
    pil_size = Image.fromarray(hwc).resize(bilinear.shape[1::-1], Image.BICUBIC)
    assert np.abs(bilinear - np.asarray(pil_size, dtype=np.int16)).max() > 1  # a different kernel


# -- visual pooling ------------------------------------------------------------------------------
def test_visual_pool_max_or_avg() -> None:
    torch.manual_seed(0)
    img = torch.randn(2, 3, 64, 64)
    net = VisualNet(pool="max").eval()
    with torch.no_grad():
        fmap = net.feature_map(img)
        assert fmap.shape[-2:] == (2, 2)
        torch.testing.assert_close(net(img), fmap.amax(dim=(2, 3)))
        net.pool = "avg"
        avg = net(img)
    # the authors: torchvision's average pool, then a max over the 1x1 map it leaves
    authors = F.adaptive_max_pool2d(F.adaptive_avg_pool2d(fmap, 1), 1).flatten(1)
    torch.testing.assert_close(avg, authors)
    assert not torch.allclose(avg, fmap.amax(dim=(2, 3)))
    with pytest.raises(ValueError, match="visual pool"):
        VisualNet(pool="mean")


def test_visual_pool_reaches_the_model_and_its_checkpoint(tmp_path: Path) -> None:
    assert ModelConfig().visual_pool == "max"
    model = build_model(ModelConfig(variant="concat", num_classes=3, visual_pool="avg"))
    assert model.visual_net.pool == "avg"
    save_checkpoint(tmp_path / "m.pt", model)
    loaded, _ = load_checkpoint(tmp_path / "m.pt")
    assert loaded.config.visual_pool == "avg" and loaded.visual_net.pool == "avg"


# -- localization examples -----------------------------------------------------------------------
def _class_ordered_manifest(root: Path, classes: int = 3, per_class: int = 3) -> Path:
    rows = []
    for label in range(classes):
        for k in range(per_class):
            frames = np.full((16, 24, 32, 3), 40 * label + 10 * k, np.uint8)
            row = write_clip(root / f"c{label}_{k}", 2.0, frames=frames)
            rows.append({**row, "label_index": label})
    pd.DataFrame(rows).to_csv(root / "test.csv", index=False)
    return root / "test.csv"


def test_spread_over_classes_takes_the_classes_in_turn(tmp_path: Path) -> None:
    manifest = _class_ordered_manifest(tmp_path)
    picked = spread_over_classes(manifest, 5)
    assert picked["label_index"].tolist() == [0, 1, 2, 0, 1]
    assert [Path(d).name for d in picked["clip_dir"]] == ["c0_0", "c1_0", "c2_0", "c0_1", "c1_1"]
    assert all(Path(d).is_dir() for d in picked["clip_dir"])
    assert spread_over_classes(manifest, None) == manifest


def test_localization_examples_span_the_classes(tmp_path: Path) -> None:
    manifest = _class_ordered_manifest(tmp_path)
    torch.manual_seed(0)
    model = build_model(ModelConfig(variant="localization", num_classes=3, visual_output_stride=8))
    result = evaluate_localization(
        model,
        manifest,
        "fgsm",
        0.02,
        EvalSettings(paper_budget=False, inputs=InputSettings(2048, 16, 16)),
        limit=3,
        keep_frames=3,
        progress=False,
    )
    assert sorted(result.labels.tolist()) == [0, 1, 2]
    assert result.frames["clean"].shape[0] == 3
