"""Worst case over a list of attacks, per clip and per attack mode."""

from __future__ import annotations

import pytest
import torch
from test_attacks import CLASSES, ToyAV, labels_for, make_inputs
from torch import Tensor, nn

from avmodels.robustness.worstcase import accuracies, worst_case, worst_case_by_mode
from avmodels.study.evaluate import mode_budgets

DETERMINISTIC = {"fgsm": ("fgsm", {}), "pgd": ("pgd", {"steps": 5})}


def predicted(model: nn.Module, inputs: dict[str, Tensor]) -> Tensor:
    with torch.no_grad():
        return model.eval()(**inputs).argmax(1)


class Masked(torch.autograd.Function):
    """Identity forward, zero backward: a model whose gradients say nothing."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return torch.zeros_like(grad)


class MaskedLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.weight = nn.Parameter(torch.randn(CLASSES, 3 * 4 * 4))

    def forward(self, visual: Tensor) -> Tensor:
        return Masked.apply(visual).flatten(1) @ self.weight.T


def test_masked_gradients_show_as_square_beating_the_gradient_attacks():
    """Gradient attacks cannot move a model with zero gradients; Square can, and the worst
    case takes its verdict."""
    model = MaskedLinear()
    x = {"visual": 0.25 + 0.5 * torch.rand(16, 3, 4, 4, generator=torch.Generator().manual_seed(0))}
    y = predicted(model, x)
    specs = {"pgd": ("pgd", {"steps": 5}), "square": ("square", {"steps": 200})}
    hits = worst_case(model, x, y, specs, {"visual": 0.5}, cascade=False)
    assert hits["clean"].all() and hits["pgd"].all()
    assert hits["square"].float().mean() <= 0.1
    assert torch.equal(hits["worst"], hits["square"])


def test_worst_is_every_attack_failing_and_cascade_agrees():
    model, x = ToyAV(16), make_inputs(12, 16, 6)
    y = labels_for(12)  # some clips are already misclassified
    eps = {"audio": 0.05, "visual": 0.05}
    full = worst_case(model, x, y, DETERMINISTIC, eps, cascade=False)
    assert torch.equal(full["worst"], full["clean"] & full["fgsm"] & full["pgd"])
    assert not (full["fgsm"] & ~full["clean"]).any()  # a misclassified clip is never robust
    cascaded = worst_case(model, x, y, DETERMINISTIC, eps)
    assert torch.equal(cascaded["worst"], full["worst"])
    assert int(full["clean"].sum()) > 0 and int(full["worst"].sum()) < int(full["clean"].sum())


class Counting(ToyAV):
    def __init__(self, samples: int) -> None:
        super().__init__(samples)
        self.sizes: list[int] = []

    def forward(self, audio: Tensor, visual: Tensor) -> Tensor:
        self.sizes.append(audio.shape[0])
        return super().forward(audio, visual)


def test_cascade_attacks_only_the_clips_still_standing():
    model, x = Counting(16), make_inputs(10, 16, 6)
    y = predicted(model, x)
    model.sizes.clear()
    hits = worst_case(model, x, y, DETERMINISTIC, {"audio": 0.1})
    standing = int(hits["fgsm"].sum())
    assert 0 < standing < 10
    # clean (10), FGSM: gradient + scoring (10, 10), PGD: 5 steps + scoring on the rest
    assert model.sizes == [10, 10, 10] + [standing] * 6


def test_modes_perturb_their_inputs_only():
    model, x = ToyAV(16), make_inputs(6, 16, 6)
    y = predicted(model, x)
    budgets = mode_budgets(["a", "v", "av"], 0.05, paper_budget=False)
    hits = worst_case_by_mode(model, x, y, DETERMINISTIC, budgets, cascade=False)
    assert list(hits) == ["a", "v", "av"]
    assert all(set(h) == {"clean", "fgsm", "pgd", "worst"} for h in hits.values())
    rows = accuracies(hits)
    assert len(rows) == 12 and {r["n"] for r in rows} == {6}
    worst_av = next(r for r in rows if r["mode"] == "av" and r["attack"] == "worst")
    assert worst_av["n_correct"] == int(hits["av"]["worst"].sum())
    assert worst_av["accuracy"] == pytest.approx(worst_av["n_correct"] / 6)


def test_bad_requests_raise():
    model, x, y = ToyAV(16), make_inputs(2, 16, 6), labels_for(2)
    with pytest.raises(ValueError, match="no attacks"):
        worst_case(model, x, y, {}, {"audio": 0.1})
    with pytest.raises(ValueError, match="reserved"):
        worst_case(model, x, y, {"worst": ("fgsm", {})}, {"audio": 0.1})
    with pytest.raises(ValueError, match="perturbs \\['visual'\\]"):
        worst_case_by_mode(model, {"audio": x["audio"]}, y, DETERMINISTIC, {"v": {"visual": 0.1}})
