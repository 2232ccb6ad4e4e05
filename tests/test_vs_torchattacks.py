"""Our APGD and Square against torchattacks' APGD, APGDT and Square on a single-input image model.

The model is a tiny CNN trained on a separable synthetic task (five classes, each a fixed random
+-0.15 pattern on a grey 3 x 9 x 9 image, plus noise), so it classifies every training image.
The budget is the median over examples of the first-order distance to the decision boundary,
``margin / ||d margin / dx||_1``, which puts the robust accuracy of a strong attack near one half
by construction. torchattacks' Square draws window positions in ``[0, side - s)``, so its
windows never cover the last row and column of an image; the model reads the image without
them, so both random searches explore the same pixels.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchattacks
from torch import Tensor, nn

from avmodels.robustness.apgd import APGD
from avmodels.robustness.square import Square, margin_loss

CLASSES, EXAMPLES, SIDE = 5, 256, 9
APGD_STEPS, SQUARE_QUERIES = 20, 1000


class TinyCNN(nn.Module):
    """Conv 3x3 (8), ReLU, average pool 2, linear; reads the image without its last row/column."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.head = nn.Linear(8 * ((SIDE - 1) // 2) ** 2, CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        feats = F.avg_pool2d(self.conv(x[:, :, :-1, :-1]).relu(), 2)  # (B, 8, 4, 4)
        return self.head(feats.flatten(1))


class Named(nn.Module):
    """``model(visual=x)``: our calling convention over torchattacks' ``model(x)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, visual: Tensor) -> Tensor:
        return self.model(visual)


@pytest.fixture(scope="module")
def task() -> tuple[nn.Module, Tensor, Tensor, float]:
    """The trained model, images, labels and the budget."""
    gen = torch.Generator().manual_seed(0)
    patterns = torch.randint(0, 2, (CLASSES, 3, SIDE, SIDE), generator=gen).float() * 2 - 1
    labels = torch.arange(EXAMPLES) % CLASSES
    noise = torch.randn(EXAMPLES, 3, SIDE, SIDE, generator=gen)
    images = (0.5 + 0.15 * patterns[labels] + 0.25 * noise).clamp(0, 1)
    model = TinyCNN()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(100):
        optimiser.zero_grad()
        F.cross_entropy(model(images), labels).backward()
        optimiser.step()
    model.eval().requires_grad_(False)
    x = images.clone().requires_grad_(True)
    margin = margin_loss(model(x), labels)
    (grad,) = torch.autograd.grad(margin.sum(), x)
    distance = margin.detach() / grad.abs().flatten(1).sum(1)
    return model, images, labels, float(distance.median())


def accuracy(model: nn.Module, images: Tensor, labels: Tensor) -> float:
    with torch.no_grad():
        return float((model(images).argmax(1) == labels).float().mean())


def ours_and_theirs(name: str, model: nn.Module, eps: float) -> tuple[object, object]:
    named = Named(model)
    if name == "apgd-ce":
        return APGD(named, {"visual": eps}, steps=APGD_STEPS), torchattacks.APGD(
            model, eps=eps, steps=APGD_STEPS, loss="ce"
        )
    if name == "apgd-dlr":
        return APGD(named, {"visual": eps}, loss="dlr", steps=APGD_STEPS), torchattacks.APGD(
            model, eps=eps, steps=APGD_STEPS, loss="dlr"
        )
    if name == "apgd-t":
        return APGD(named, {"visual": eps}, targets=CLASSES - 1, steps=APGD_STEPS), (
            torchattacks.APGDT(model, eps=eps, steps=APGD_STEPS, n_classes=CLASSES)
        )
    return Square(named, {"visual": eps}, steps=SQUARE_QUERIES), torchattacks.Square(
        model, eps=eps, n_queries=SQUARE_QUERIES
    )


@pytest.mark.parametrize(
    ("name", "tolerance"),
    [("apgd-ce", 0.03), ("apgd-dlr", 0.03), ("apgd-t", 0.03), ("square", 0.05)],
)
def test_robust_accuracy_matches_torchattacks(task, name, tolerance):
    model, images, labels, eps = task
    assert accuracy(model, images, labels) == 1.0
    ours, theirs = ours_and_theirs(name, model, eps)
    ours_acc = accuracy(model, ours({"visual": images}, labels)["visual"], labels)
    theirs_acc = accuracy(model, theirs(images, labels), labels)
    print(
        f"{name}: eps {eps:.4f}, robust accuracy ours {ours_acc:.3f}, torchattacks {theirs_acc:.3f}"
    )
    assert 0.2 < theirs_acc < 0.9, "the budget must leave a robust accuracy to compare"
    assert abs(ours_acc - theirs_acc) <= tolerance
