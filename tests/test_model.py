"""AVModel, unimodal and localization variants, checkpoints, image budgets."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import Tensor

from avmodels.models.fusion import FUSIONS
from avmodels.models.model import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    VARIANTS,
    AVModel,
    LocalizationModel,
    ModelConfig,
    build_model,
    load_checkpoint,
    save_checkpoint,
    visual_eps,
)

NUM_CLASSES = 5
MODALITIES = {"audio": ("audio",), "visual": ("visual",)}


def make(variant: str, **kw) -> AVModel:
    stride = 8 if variant == "localization" else 32  # a 4x4 map from 32 px images
    return build_model(ModelConfig(variant, NUM_CLASSES, visual_output_stride=stride, **kw))


@pytest.fixture
def inputs() -> dict[str, Tensor]:
    torch.manual_seed(0)
    return {"audio": torch.rand(2, 4096) * 2 - 1, "visual": torch.rand(2, 3, 32, 32)}


def test_variants() -> None:
    assert (*FUSIONS, "audio", "visual", "localization") == VARIANTS


@pytest.mark.parametrize("variant", VARIANTS)
def test_forward_and_gradient_reach_inputs_and_parameters(variant, inputs) -> None:
    model = make(variant)
    assert model.modalities == MODALITIES.get(variant, ("audio", "visual"))
    used = {m: inputs[m].clone().requires_grad_() for m in model.modalities}
    logits = model(**used)
    assert logits.shape == (2, NUM_CLASSES)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])).backward()
    for name, value in used.items():
        assert value.grad is not None and value.grad.abs().sum() > 0, name
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


@pytest.mark.parametrize("variant", ["audio", "visual"])
def test_unimodal_models_hold_one_encoder(variant, inputs) -> None:
    model = make(variant)
    other = "visual" if variant == "audio" else "audio"
    assert not hasattr(model, f"{other}_net")
    assert model.classifier.in_features == 512
    assert model.select_inputs(inputs).keys() == {variant}
    model.eval()
    torch.testing.assert_close(model(**inputs), model(**model.select_inputs(inputs)))


def test_missing_input_raises(inputs) -> None:
    model = make("concat")
    with pytest.raises(ValueError, match="visual"):
        model(audio=inputs["audio"])
    with pytest.raises(KeyError):
        model.select_inputs({"audio": inputs["audio"]})


def test_images_are_normalised_inside(inputs) -> None:
    model = make("visual").eval()
    assert {"mean", "std"} <= dict(model.named_buffers()).keys()
    assert not {"mean", "std"} & model.state_dict().keys()
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = model.visual_net((inputs["visual"] - mean) / std)
        torch.testing.assert_close(model.encode(visual=inputs["visual"])["visual"], expected)
    assert model.double().std.dtype == torch.float64


def test_classifier_init_and_training_reduces_loss(inputs) -> None:
    model = make("concat")
    assert model.classifier.weight.std() < 1e-3 and model.classifier.bias.abs().sum() == 0
    labels = torch.tensor([1, 3])
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)  # the reference head lr
    losses = []
    for _ in range(8):
        loss = torch.nn.functional.cross_entropy(model(**inputs), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_localization_attention(inputs) -> None:
    model = make("localization").eval()
    assert isinstance(model, LocalizationModel) and model.classifier.in_features == 1024
    attention, logits = model.attend(**inputs)
    assert attention.shape == (2, 4, 4) and logits.shape == (2, NUM_CLASSES)
    assert (attention >= 0).all()
    torch.testing.assert_close(attention.sum(dim=(1, 2)), torch.ones(2))
    torch.testing.assert_close(logits, model(**inputs))
    fmap = model.visual_net.feature_map(model.normalize(inputs["visual"]))  # (B, d, h, w)
    attended = (fmap * attention.unsqueeze(1)).sum(dim=(2, 3))
    torch.testing.assert_close(model.encode(**inputs)["visual"], attended)


def test_localization_attention_depends_on_both_inputs(inputs) -> None:
    model = make("localization").eval()
    leaves = {m: v.clone().requires_grad_() for m, v in inputs.items()}
    attention, _ = model.attend(**leaves)
    (attention * torch.randn_like(attention)).sum().backward()
    assert all(leaf.grad.abs().sum() > 0 for leaf in leaves.values())


def test_unknown_variant_and_dim_raise() -> None:
    with pytest.raises(ValueError, match="bilinear") as err:
        build_model(ModelConfig(variant="bilinear"))
    assert all(name in str(err.value) for name in VARIANTS)
    with pytest.raises(ValueError, match="feature_dim"):
        build_model(ModelConfig(feature_dim=256))


@pytest.mark.parametrize("variant", ["concat", "film", "audio", "localization"])
def test_checkpoint_round_trip(variant, inputs, tmp_path) -> None:
    model = make(variant)
    model(**inputs)  # a train-mode pass moves the BatchNorm running statistics
    model.eval()
    path = tmp_path / "ckpt" / "model.pt"
    save_checkpoint(path, model, epoch=3, metrics={"val_accuracy": 81.5}, commit="abc123")
    loaded, extra = load_checkpoint(path)
    assert type(loaded) is type(model) and not loaded.training
    assert loaded.config == model.config
    assert extra == {"epoch": 3, "metrics": {"val_accuracy": 81.5}, "commit": "abc123"}
    with torch.no_grad():
        assert torch.equal(loaded(**inputs), model(**inputs))


def test_checkpoint_keeps_pretrained_path_without_needing_the_file(inputs, tmp_path) -> None:
    weights = tmp_path / "resnet18.pth"
    torch.save(make("visual").visual_net.resnet.state_dict(), weights)
    model = make("visual", pretrained_visual=str(weights)).eval()
    save_checkpoint(tmp_path / "model.pt", model)
    weights.unlink()
    loaded, _ = load_checkpoint(tmp_path / "model.pt")
    assert loaded.config.pretrained_visual == str(weights)
    with torch.no_grad():
        assert torch.equal(loaded(**inputs), model(**inputs))


def test_checkpoint_rejects_foreign_files(tmp_path) -> None:
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an avmodels checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    model = make("audio")
    save_checkpoint(tmp_path / "model.pt", model)
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    payload["config"]["dropout"] = 0.5
    torch.save(payload, tmp_path / "model.pt")
    with pytest.raises(ValueError, match="dropout"):
        load_checkpoint(tmp_path / "model.pt")


def test_checkpoint_config_is_plain_dict(tmp_path) -> None:
    model = make("gated_sum")
    save_checkpoint(tmp_path / "model.pt", model)
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    assert payload["config"] == dataclasses.asdict(model.config)


def test_visual_eps_semantics(inputs) -> None:
    assert visual_eps(0.006, paper_semantics=False) == pytest.approx(0.006)
    eps = visual_eps(0.006, paper_semantics=True)
    assert eps.shape == (1, 3, 1, 1)
    torch.testing.assert_close(eps.flatten(), 0.006 * torch.tensor(IMAGENET_STD))
    # a raw-pixel step of eps * std is a step of exactly eps in the normalised space
    model = make("visual")
    shift = model.normalize(inputs["visual"] + eps) - model.normalize(inputs["visual"])
    torch.testing.assert_close(shift, torch.full_like(shift, 0.006))
