"""APGD and Square: their own rules (schedules, losses, seeds, queries) beyond the shared
properties that tests/test_attacks.py checks for every registered attack."""

from __future__ import annotations

import pytest
import torch
from test_attacks import CLASSES, ToyAV, ToyVisual, assert_in_box, bits, labels_for, make_inputs
from torch import Tensor, nn

from avmodels.robustness.apgd import APGD, checkpoints, dlr_loss, targeted_dlr_loss
from avmodels.robustness.attacks import ATTACKS, RAW_BOUNDS, build_attack
from avmodels.robustness.square import Square, margin_loss, window_fraction

NEW = {
    "apgd-ce": lambda m, eps, seed=0: APGD(m, eps, steps=8, seed=seed),
    "apgd-dlr": lambda m, eps, seed=0: APGD(m, eps, loss="dlr", steps=8, seed=seed),
    "apgd-t": lambda m, eps, seed=0: APGD(m, eps, targets=2, steps=8, seed=seed),
    "square": lambda m, eps, seed=0: Square(m, eps, steps=30, seed=seed),
}


def test_registered_and_importable_from_attacks():
    from avmodels.robustness.attacks import APGD as A
    from avmodels.robustness.attacks import Square as S

    assert A is APGD and S is Square
    assert ATTACKS["apgd"] is APGD and ATTACKS["square"] is Square
    assert isinstance(build_attack("apgd", ToyVisual(), eps={"visual": 0.1}, steps=3), APGD)


def test_checkpoints_follow_the_paper():
    # p = 0.22, 0.41, 0.57, 0.70, 0.80, 0.87, 0.93, 0.99 (then 1.05 > 1)
    assert checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]
    assert checkpoints(10) == [3, 5, 6, 7, 8, 9]


def test_window_fraction_schedule():
    assert window_fraction(0.8, 0, 10_000) == 0.8
    assert window_fraction(0.8, 10, 10_000) == 0.8
    assert window_fraction(0.8, 11, 10_000) == 0.4
    assert window_fraction(0.8, 501, 10_000) == 0.8 / 16
    assert window_fraction(0.8, 9_999, 10_000) == 0.8 / 512
    assert window_fraction(0.8, 100, 1_000) == window_fraction(0.8, 1_000, 10_000)


def test_losses():
    logits = torch.tensor([[4.0, 1.0, 0.0, -1.0], [0.0, 3.0, 1.0, 2.0]])
    labels = torch.tensor([0, 0])
    assert margin_loss(logits, labels).tolist() == [3.0, -3.0]
    # -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3)
    torch.testing.assert_close(dlr_loss(logits, labels), torch.tensor([-3 / 4, 3 / 2]))
    torch.testing.assert_close(dlr_loss(10 * logits, labels), dlr_loss(logits, labels))
    targets = torch.tensor([3, 2])  # -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)
    expected = torch.tensor([-5 / 4.5, 1 / 2.5])
    torch.testing.assert_close(targeted_dlr_loss(logits, labels, targets), expected)


@pytest.mark.parametrize("name", sorted(NEW))
def test_seeds_reproduce_and_differ(name):
    model, x, y = ToyAV(24), make_inputs(6, 24, 7), labels_for(6)
    eps = {"audio": 0.05, "visual": 0.05}
    first, again = NEW[name](model, eps, 1)(x, y), NEW[name](model, eps, 1)(x, y)
    other = NEW[name](model, eps, 2)(x, y)
    for k in x:
        assert torch.equal(bits(first[k]), bits(again[k]))
        assert_in_box(first[k], x[k], eps[k], RAW_BOUNDS[k])
    assert any(not torch.equal(first[k], other[k]) for k in x)


@pytest.mark.parametrize("name", sorted(NEW))
def test_budget_zero_input_bit_identical_and_single_input(name):
    x, y = make_inputs(4, 16, 6), labels_for(4)
    adv = NEW[name](ToyAV(16), {"audio": 0.0, "visual": 0.05})(x, y)
    assert torch.equal(bits(adv["audio"]), bits(x["audio"]))
    single = NEW[name](ToyVisual(), {"visual": 0.05})({"visual": x["visual"]}, y)
    assert set(single) == {"visual"}
    assert_in_box(single["visual"], x["visual"], 0.05, RAW_BOUNDS["visual"])


class Linear(nn.Module):
    """Logits ``W x``: its decision margins are known, so an attack's success is computable."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.weight = nn.Parameter(scale * torch.randn(CLASSES, 3 * 4 * 4))

    def forward(self, visual: Tensor) -> Tensor:
        return visual.flatten(1) @ self.weight.T


@pytest.mark.parametrize("name", sorted(NEW))
def test_attacks_fool_a_model_with_a_large_budget(name):
    """A linear model on images in the middle of [0, 1]: a budget of 0.5 reaches any image in
    [0, 1], so some class's logit can always be made the largest; each attack must find it for
    most examples, while a tiny budget fools none."""
    model = Linear()
    x = 0.25 + 0.5 * torch.rand(32, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    y = model(x).argmax(1)
    big = NEW[name](model, {"visual": 0.5})({"visual": x}, y)["visual"]
    assert (model(big).argmax(1) != y).float().mean() >= 0.9
    tiny = NEW[name](model, {"visual": 1e-6})({"visual": x}, y)["visual"]
    assert torch.equal(model(tiny).argmax(1), y)


def test_apgd_dlr_is_invariant_to_logit_scale():
    """DLR is a ratio of logit differences: scaling the logits changes nothing."""
    x = {"visual": 0.25 + 0.5 * torch.rand(8, 3, 4, 4, generator=torch.Generator().manual_seed(1))}
    y = Linear()(x["visual"]).argmax(1)
    one = APGD(Linear(1.0), {"visual": 0.02}, loss="dlr", steps=10)(x, y)["visual"]
    many = APGD(Linear(64.0), {"visual": 0.02}, loss="dlr", steps=10)(x, y)["visual"]
    torch.testing.assert_close(one, many)


class Counted(nn.Module):
    """Counts forward passes and the examples they see."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.calls, self.examples = model, 0, 0

    def forward(self, **inputs: Tensor) -> Tensor:
        self.calls += 1
        self.examples += next(iter(inputs.values())).shape[0]
        return self.model(**inputs)


def test_apgd_passes():
    """``steps`` forward + backward passes and one forward; targeted: that per target class."""
    model, x, y = Counted(ToyAV(16)), make_inputs(3, 16, 6), labels_for(3)
    APGD(model, {"visual": 0.05}, steps=7)(x, y)
    assert model.calls == 8
    model.calls = 0
    APGD(model, {"visual": 0.05}, targets=3, steps=7)(x, y)
    assert model.calls == 1 + 3 * 8


class NoGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        raise AssertionError("Square must not differentiate the model")


class GradientFree(Linear):
    def forward(self, visual: Tensor) -> Tensor:
        return super().forward(NoGradient.apply(visual))


def test_square_is_gradient_free_and_counts_queries():
    base = Linear()
    model = Counted(GradientFree())
    x = 0.25 + 0.5 * torch.rand(16, 3, 4, 4, generator=torch.Generator().manual_seed(2))
    y = base(x).argmax(1)
    adv = Square(model, {"visual": 0.5}, steps=50)({"visual": x}, y)["visual"]
    assert (base(adv).argmax(1) != y).float().mean() >= 0.9
    assert model.calls <= 51 and model.examples <= 16 * 51
    assert model.examples < 16 * model.calls  # fooled examples are not queried again


def test_dlr_needs_enough_classes():
    with pytest.raises(ValueError, match="DLR loss needs >= 3 classes"):
        dlr_loss(torch.zeros(2, 2), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="targeted DLR loss needs >= 4 classes"):
        targeted_dlr_loss(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), torch.ones(2))
