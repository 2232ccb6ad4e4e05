"""Auto-PGD (Croce & Hein, ICML 2020, arXiv:2003.01690), L-inf, over a dict of named inputs.

Step-size-free PGD: the step starts at ``2 * eps`` for every attacked input and is halved, per
example, at checkpoints ``w_j = ceil(p_j * steps)`` with ``p_0 = 0``, ``p_1 = 0.22`` and
``p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)`` when either

1. the loss grew in fewer than ``rho * (w_j - w_{j-1})`` of the steps since the last checkpoint,
2. or the step was not halved at the last checkpoint and the best loss has not grown since;

on a halving the example restarts from its best point. Each step moves with momentum 0.75:
``z = P(x_k + eta * sign(grad))``, ``x_{k+1} = P(x_k + 0.75 (z - x_k) + 0.25 (x_k - x_{k-1}))``.
Losses: cross-entropy (``"ce"``) or the difference of logits ratio (``"dlr"``,
``-(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3)``); with ``targets=n`` the targeted DLR
``-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)`` is run once for each of the ``n`` classes
ranked 2nd to (n+1)th on the clean input. An example counts as fooled when the model stops
predicting its label; the result is the last fooling point found, else the highest-loss point.
Inputs, budgets and bounds follow :class:`avmodels.robustness.attacks.Attack`.

>>> adv = APGD(model, eps={"audio": 0.006, "visual": 0.006}, loss="dlr", steps=100)(x, y)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avmodels.robustness.attacks import ATTACKS, Attack, Budget

#: Momentum of the update (``alpha`` in the paper) and the default halving threshold.
MOMENTUM, RHO = 0.75, 0.75
PerSampleLoss = Callable[[Tensor, Tensor], Tensor]


def ce_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy per example, (B,)."""
    return F.cross_entropy(logits, labels, reduction="none")


def _need_classes(logits: Tensor, n: int, what: str) -> None:
    if logits.shape[1] < n:
        raise ValueError(f"the {what} loss needs >= {n} classes, the model has {logits.shape[1]}")


def dlr_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Difference of logits ratio per example, (B,), to maximise (needs >= 3 classes)."""
    _need_classes(logits, 3, "DLR")
    ranked = logits.sort(dim=1, descending=True).values
    true = logits.gather(1, labels[:, None]).squeeze(1)
    other = torch.where(ranked[:, 0] == true, ranked[:, 1], ranked[:, 0])
    return -(true - other) / (ranked[:, 0] - ranked[:, 2] + 1e-12)


def targeted_dlr_loss(logits: Tensor, labels: Tensor, targets: Tensor) -> Tensor:
    """Targeted difference of logits ratio per example, (B,), to maximise (>= 4 classes)."""
    _need_classes(logits, 4, "targeted DLR")
    ranked = logits.sort(dim=1, descending=True).values
    true = logits.gather(1, labels[:, None]).squeeze(1)
    target = logits.gather(1, targets[:, None]).squeeze(1)
    return -(true - target) / (ranked[:, 0] - (ranked[:, 2] + ranked[:, 3]) / 2 + 1e-12)


LOSSES: dict[str, PerSampleLoss] = {"ce": ce_loss, "dlr": dlr_loss}


def checkpoints(steps: int) -> list[int]:
    """The iterations ``w_j = ceil(p_j * steps)`` (j >= 1) at which the step may be halved."""
    p, out = [0.0, 0.22], []
    while p[-1] <= 1.0:
        out.append(math.ceil(round(p[-1] * steps, 9)))  # 0.57 * 100 is 57, not 58
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    return sorted(set(w for w in out if 0 < w < steps))


def _per_example(flags: Tensor, x: Tensor) -> Tensor:
    """(B,) -> (B, 1, ...) broadcastable to ``x``."""
    return flags.view(-1, *([1] * (x.ndim - 1)))


class APGD(Attack):
    """Auto-PGD with CE or (targeted) DLR loss; see the module docstring.

    Arguments:
        model, eps, bounds: as :class:`avmodels.robustness.attacks.Attack`.
        loss: ``"ce"`` or ``"dlr"`` (``None``: ``"ce"``); ignored when ``targets`` > 0.
        steps: iterations (``steps`` forward + backward passes and one forward).
        seed: seed of the uniform random start in the eps-ball.
        targets: 0 for the untargeted attack, else the number of target classes (targeted DLR).
        rho: halving threshold of condition 1.
    Shape:
        inputs: dict of (B, ...) tensors; labels: (B,); output: dict with the same keys/shapes.
    """

    def __init__(
        self,
        model: nn.Module,
        eps: Mapping[str, Budget],
        bounds: Mapping[str, tuple[float, float]] | None = None,
        loss: str | None = None,
        steps: int = 100,
        seed: int = 0,
        targets: int = 0,
        rho: float = RHO,
    ) -> None:
        name = "dlr-targeted" if targets else (loss or "ce")
        if not targets and name not in LOSSES:
            raise ValueError(f"unknown APGD loss {loss!r}; valid: {', '.join(LOSSES)}")
        assert steps >= 1, f"steps must be >= 1, got {steps}"
        assert targets >= 0, f"targets must be >= 0, got {targets}"
        super().__init__(model, eps, bounds)
        self.loss = targeted_dlr_loss if targets else LOSSES[name]
        self.steps, self.seed, self.targets, self.rho = steps, seed, targets, rho

    def _hyper(self) -> dict[str, str]:
        return {"steps": str(self.steps), "seed": str(self.seed), "targets": str(self.targets)}

    def forward(
        self, clean: dict[str, Tensor], labels: Tensor, keys: tuple[str, ...]
    ) -> dict[str, Tensor]:
        gen = torch.Generator(device=labels.device).manual_seed(self.seed)
        if not self.targets:
            return self._run(clean, labels, keys, gen, self.loss)[0]
        with torch.no_grad():
            order = self.model(**clean).argsort(dim=1, descending=True)  # (B, classes)
        adv, fooled = dict(clean), torch.zeros_like(labels, dtype=torch.bool)
        for rank in range(1, min(self.targets, order.shape[1] - 1) + 1):
            t = order[:, rank]
            run, hit = self._run(clean, labels, keys, gen, lambda z, y, t=t: self.loss(z, y, t))
            take = hit & ~fooled if rank > 1 else torch.ones_like(hit)
            for k in keys:
                adv[k] = torch.where(_per_example(take, run[k]), run[k], adv[k])
            fooled |= hit
        return adv

    def _evaluate(
        self, x: dict[str, Tensor], labels: Tensor, keys: tuple[str, ...], loss_fn, grad: bool
    ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """Per-example loss (B,), fooled flags (B,) and, with ``grad``, d loss / d x[k]."""
        if not grad:
            with torch.no_grad():
                logits = self.model(**x)
                return loss_fn(logits, labels), logits.argmax(1) != labels, {}
        leaves = [x[k].requires_grad_(True) for k in keys]
        try:
            with torch.enable_grad():
                logits = self.model(**x)
                loss = loss_fn(logits, labels)
                grads = torch.autograd.grad(loss.sum(), leaves, materialize_grads=True)
        finally:
            for leaf in leaves:
                leaf.requires_grad_(False)
        fooled = logits.detach().argmax(1) != labels
        return loss.detach(), fooled, dict(zip(keys, grads, strict=True))

    def _run(self, clean, labels, keys, gen, loss_fn) -> tuple[dict[str, Tensor], Tensor]:
        """One APGD run: adversarial inputs and whether each example was fooled."""
        x, boxes, etas = dict(clean), {}, {}
        for k in keys:
            eps = self._as_budget(self.eps[k], clean[k])
            boxes[k] = self._box(k, clean[k], eps)
            noise = torch.rand(clean[k].shape, generator=gen, device=clean[k].device)
            x[k] = (clean[k] + (2 * noise.to(clean[k].dtype) - 1) * eps).clamp_(*boxes[k])
            etas[k] = 2 * eps
        state = _State(x, keys, *self._evaluate(x, labels, keys, loss_fn, True))
        marks, last = set(checkpoints(self.steps)), 0
        halved_last, best_at_mark = torch.zeros_like(state.hit), state.best_loss.clone()
        for i in range(1, self.steps + 1):
            state.step(boxes, etas, 1.0 if i == 1 else MOMENTUM)
            state.record(*self._evaluate(state.x, labels, keys, loss_fn, i < self.steps))
            if i in marks:
                stalled = ~halved_last & (best_at_mark >= state.best_loss)
                halved_last = (state.grown < self.rho * (i - last)) | stalled
                state.restart(halved_last)
                best_at_mark, last = state.best_loss.clone(), i
        return state.result(clean), state.hit


class _State:
    """The iterates of one APGD run (dicts over the attacked inputs; per-example tensors (B,))."""

    def __init__(
        self, x: dict[str, Tensor], keys: tuple[str, ...], loss: Tensor, fooled: Tensor, grad
    ) -> None:
        self.keys, self.x, self.loss, self.grad = keys, x, loss, grad
        self.prev = {k: x[k].clone() for k in keys}
        self.best_x, self.best_loss = {k: x[k].clone() for k in keys}, loss.clone()
        self.best_grad = dict(grad)
        self.out, self.hit = {k: x[k].clone() for k in keys}, fooled.clone()
        self.factor = torch.ones_like(loss)  # step = factor * 2 * eps
        self.grown = torch.zeros_like(loss)  # steps that raised the loss since the checkpoint

    def step(self, boxes, etas, momentum: float) -> None:
        """``z = P(x + eta sign(g))``, ``x <- P(x + m (z - x) + (1 - m) (x - x_prev))``."""
        for k in self.keys:
            x = self.x[k]
            z = (x + etas[k] * _per_example(self.factor, x) * self.grad[k].sign()).clamp_(*boxes[k])
            new = x + momentum * (z - x) + (1 - momentum) * (x - self.prev[k])
            self.prev[k], self.x[k] = x, new.clamp_(*boxes[k])

    def record(self, loss: Tensor, fooled: Tensor, grad: dict[str, Tensor]) -> None:
        """Take the new point's loss: count a rise, keep fooling and best points."""
        self.grown += (loss > self.loss).to(loss.dtype)
        self.loss, self.grad, better = loss, grad, loss > self.best_loss
        self.hit |= fooled
        self.best_loss = torch.where(better, loss, self.best_loss)
        for k in self.keys:
            x = self.x[k]
            self.out[k] = torch.where(_per_example(fooled, x), x, self.out[k])
            self.best_x[k] = torch.where(_per_example(better, x), x, self.best_x[k])
            if grad:
                self.best_grad[k] = torch.where(_per_example(better, x), grad[k], self.best_grad[k])

    def restart(self, halve: Tensor) -> None:
        """At a checkpoint: halve the step of ``halve`` examples and move them to their best."""
        self.factor = torch.where(halve, self.factor / 2, self.factor)
        for k in self.keys:
            mask = _per_example(halve, self.x[k])
            self.x[k] = torch.where(mask, self.best_x[k], self.x[k])
            self.prev[k] = torch.where(mask, self.best_x[k], self.prev[k])
            self.grad[k] = torch.where(mask, self.best_grad[k], self.grad[k])
        self.loss = torch.where(halve, self.best_loss, self.loss)
        self.grown.zero_()

    def result(self, clean: dict[str, Tensor]) -> dict[str, Tensor]:
        """The last fooling point of each fooled example, else its highest-loss point."""
        adv = dict(clean)
        for k in self.keys:
            adv[k] = torch.where(_per_example(self.hit, self.out[k]), self.out[k], self.best_x[k])
        return adv


ATTACKS["apgd"] = APGD
