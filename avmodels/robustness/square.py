"""Square attack (Andriushchenko et al., ECCV 2020, arXiv:1912.00049), L-inf, gradient-free.

A random search on the margin loss ``z_y - max_{i != y} z_i``. The perturbation starts as
vertical stripes (one random sign ``+-eps`` per column and channel, the same down each column;
for audio (B, T), one sign per sample); each step redraws, in every attacked input, one random
window (a square of side ``round(sqrt(p * H * W))`` for an image (B, C, H, W), a segment of
``round(p * T)`` samples for audio) to ``+-eps`` with one random sign per channel (drawn again
where that would leave the window as it was), and keeps the change for the examples whose
margin it lowers. The fraction ``p`` starts at ``p_init`` and is halved at
iterations 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000 of a 10,000-query run, rescaled
to ``steps`` queries. Examples stop once misclassified; each step costs one forward pass of the
examples still standing. Inputs, budgets and bounds follow
:class:`avmodels.robustness.attacks.Attack`.

>>> adv = Square(model, eps={"visual": 0.012}, steps=1000, seed=0)(inputs, labels)
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from avmodels.robustness.attacks import ATTACKS, Attack, Budget

#: Iterations (of 10,000) after which the window fraction p is halved.
HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def window_fraction(p_init: float, step: int, steps: int) -> float:
    """Fraction of the input a window covers at ``step`` (of ``steps``), the paper's schedule."""
    at = int(step / steps * 10_000)
    return p_init / 2 ** sum(at > h for h in HALVINGS)


def margin_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """``z_y - max_{i != y} z_i`` per example, (B,): negative once the example is fooled."""
    true = logits.gather(1, labels[:, None]).squeeze(1)
    other = logits.scatter(1, labels[:, None], float("-inf")).amax(dim=1)
    return true - other


def _spatial(x: Tensor) -> tuple[int, ...]:
    """The dimensions a window spans: (T,) of audio (B, T), (H, W) of an image (B, C, H, W)."""
    return tuple(x.shape[2:]) if x.ndim > 2 else tuple(x.shape[1:])


def _window(x: Tensor, p: float, gen: torch.Generator) -> Tensor:
    """Boolean mask (B, 1, ...) (or (B, T)) of one random window per example."""
    dims = _spatial(x)
    side = max(1, min(min(dims), round((p * math.prod(dims)) ** (1 / len(dims)))))
    mask = torch.ones(x.shape[0], *([1] * len(dims)), dtype=torch.bool, device=x.device)
    for axis, size in enumerate(dims):
        start = torch.randint(0, size - side + 1, (x.shape[0],), generator=gen, device=x.device)
        pos = torch.arange(size, device=x.device)
        inside = (pos >= start[:, None]) & (pos < start[:, None] + side)  # (B, size)
        shape = [x.shape[0]] + [1] * len(dims)
        shape[axis + 1] = size
        mask = mask & inside.view(shape)
    return mask if x.ndim == 2 else mask.unsqueeze(1)


def _signs(shape: tuple[int, ...], gen: torch.Generator, x: Tensor) -> Tensor:
    return torch.randint(0, 2, shape, generator=gen, device=x.device).to(x.dtype).mul_(2).sub_(1)


class Square(Attack):
    """The L-inf Square attack; see the module docstring.

    Arguments:
        model, eps, bounds: as :class:`avmodels.robustness.attacks.Attack`.
        steps: queries after the initial one (one forward pass each).
        seed: seed of the random stripes, windows and signs.
        p_init: initial fraction of the input a window covers.
    Shape:
        inputs: dict of (B, ...) tensors; labels: (B,); output: dict with the same keys/shapes.
    """

    def __init__(
        self,
        model: nn.Module,
        eps: Mapping[str, Budget],
        bounds: Mapping[str, tuple[float, float]] | None = None,
        loss: None = None,
        steps: int = 1000,
        seed: int = 0,
        p_init: float = 0.8,
    ) -> None:
        if loss is not None:
            raise ValueError("Square minimises the margin loss; it takes no loss argument")
        assert steps >= 0, f"steps must be >= 0, got {steps}"
        assert 0 < p_init <= 1, f"p_init must be in (0, 1], got {p_init}"
        super().__init__(model, eps, bounds)
        self.loss = margin_loss
        self.steps, self.seed, self.p_init = steps, seed, p_init

    def _hyper(self) -> dict[str, str]:
        return {"steps": str(self.steps), "seed": str(self.seed), "p_init": repr(self.p_init)}

    @torch.no_grad()
    def forward(
        self, clean: dict[str, Tensor], labels: Tensor, keys: tuple[str, ...]
    ) -> dict[str, Tensor]:
        gen = torch.Generator(device=labels.device).manual_seed(self.seed)
        eps = {k: self._as_budget(self.eps[k], clean[k]) for k in keys}
        adv, boxes = dict(clean), {k: self._box(k, clean[k], eps[k]) for k in keys}
        for k in keys:
            x = clean[k]
            stripes = (*x.shape[:-2], 1, x.shape[-1]) if x.ndim > 3 else x.shape
            adv[k] = (x + _signs(stripes, gen, x) * eps[k]).clamp_(*boxes[k])
        margin = margin_loss(self.model(**adv), labels)
        for step in range(self.steps):
            live = (margin > 0).nonzero().squeeze(1)
            if not len(live):
                break
            p = window_fraction(self.p_init, step, self.steps)
            trial = {k: v[live] for k, v in adv.items()}
            for k in keys:
                box = (boxes[k][0][live], boxes[k][1][live])
                trial[k] = self._redraw(clean[k][live], trial[k], eps[k], box, p, gen)
            new_margin = margin_loss(self.model(**trial), labels[live])
            better = new_margin < margin[live]
            idx = live[better]
            margin[idx] = new_margin[better]
            for k in keys:
                adv[k][idx] = trial[k][better]
        return adv

    @staticmethod
    def _redraw(
        x: Tensor, current: Tensor, eps: Budget, box: tuple[Tensor, Tensor], p: float, gen
    ) -> Tensor:
        """``current`` with one random window per example set to ``x +- eps`` (one sign per
        channel), redrawn (up to 10 times) where that would leave the window unchanged."""
        mask = _window(x, p, gen)
        shape = (*x.shape[:2], *([1] * (x.ndim - 2))) if x.ndim > 2 else (x.shape[0], 1)
        trial = torch.where(mask, x + _signs(shape, gen, x) * eps, current).clamp_(*box)
        for _ in range(10):
            same = (trial == current).flatten(1).all(dim=1)
            if not same.any():
                break
            redo = torch.where(mask, x + _signs(shape, gen, x) * eps, current).clamp_(*box)
            trial = torch.where(same.view(-1, *([1] * (x.ndim - 1))), redo, trial)
        return trial


ATTACKS["square"] = Square
