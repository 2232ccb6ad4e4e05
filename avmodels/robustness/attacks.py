"""L-inf attacks over a dict of named inputs: FGSM, PGD and MIM (Tian & Xu, CVPR 2021, Sec. 4.2).

Every input (``"audio"`` (B, T), ``"visual"`` (B, 3, H, W), ...) has its own budget ``eps[name]``:
a float, or a tensor broadcastable to the input (e.g. a per-channel (1, 3, 1, 1) budget). Inputs
whose budget is absent or zero are returned as given (detached, same values, no arithmetic on
them). Attacked inputs stay in the L-inf ball around the clean input and inside ``bounds[name]``.
The model is called as ``model(**inputs)`` in eval mode with its parameters out of autograd; its
modes and ``requires_grad`` flags are restored afterwards and its parameters' ``.grad`` are never
touched (gradients are taken w.r.t. the attacked inputs only).

>>> attack = PGD(model, eps={"audio": 0.006, "visual": 0.006})
>>> adv = attack({"audio": wave, "visual": image}, labels)   # same keys and shapes as the input
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avmodels import registry

Budget = float | Tensor
LossFn = Callable[[nn.Module, dict[str, Tensor], Tensor], Tensor]

#: Valid ranges of the raw inputs (waveform in [-1, 1], image in [0, 1]); used when bounds=None.
RAW_BOUNDS: dict[str, tuple[float, float]] = {"audio": (-1.0, 1.0), "visual": (0.0, 1.0)}


def cross_entropy_loss(model: nn.Module, inputs: dict[str, Tensor], labels: Tensor) -> Tensor:
    """Mean cross-entropy of ``model(**inputs)``: the default loss every attack maximises."""
    return F.cross_entropy(model(**inputs), labels)


@contextmanager
def eval_mode(model: nn.Module, freeze: bool = False) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode (and, with ``freeze``, its parameters out of autograd).

    On exit every submodule gets its own ``training`` flag back and every frozen parameter its
    ``requires_grad``. Freezing spares autograd the parameters' part of the graph, which the
    input gradients never need (about a fifth of a ResNet18 forward + backward on a GPU).
    """
    modes = [(module, module.training) for module in model.modules()]
    frozen = [p for p in model.parameters() if p.requires_grad] if freeze else []
    model.eval()
    for param in frozen:
        param.requires_grad_(False)
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training
        for param in frozen:
            param.requires_grad_(True)


def _reduce_dims(x: Tensor) -> tuple[int, ...]:
    """All but the batch dimension: audio (B, T) and images (B, 3, H, W) differ in rank."""
    return tuple(range(1, x.ndim))


def _is_zero(value: Budget) -> bool:
    return not bool(torch.as_tensor(value).any())


def _detached(x: Tensor) -> Tensor:
    """``x`` cut from any graph; inference-mode tensors are copied (autograd cannot use them)."""
    return x.clone() if x.is_inference() else x.detach()


def _checked(eps: Mapping[str, Budget]) -> dict[str, Budget]:
    negative = [name for name, value in eps.items() if bool((torch.as_tensor(value) < 0).any())]
    if negative:
        raise ValueError(f"negative budget for {negative}")
    return dict(eps)


def _fmt(value: Budget) -> str:
    if isinstance(value, Tensor):
        return repr([round(v, 8) for v in value.flatten().tolist()])
    return repr(value)


def _fmt_map(values: Mapping[str, Budget]) -> str:
    return "{" + ", ".join(f"{k!r}: {_fmt(v)}" for k, v in values.items()) + "}"


class Attack:
    """Base of the L-inf attacks: owns input handling, model mode, gradients and projection.

    Arguments:
        model: any ``nn.Module`` called as ``model(**inputs)``.
        eps: L-inf budget per input name (float or tensor broadcastable to that input).
        bounds: valid (low, high) range per input name; ``None`` means :data:`RAW_BOUNDS`,
            ``{}`` means no clamping. Names without bounds are not clamped.
        loss: ``loss(model, inputs, labels) -> scalar`` to maximise (default cross-entropy).
    Shape:
        inputs: dict of (B, ...) tensors; labels: (B,); output: dict with the same keys/shapes.
    """

    def __init__(
        self,
        model: nn.Module,
        eps: Mapping[str, Budget],
        bounds: Mapping[str, tuple[float, float]] | None = None,
        loss: LossFn | None = None,
    ) -> None:
        self.model = model
        self.eps = _checked(eps)
        self.bounds = dict(RAW_BOUNDS if bounds is None else bounds)
        self.loss = cross_entropy_loss if loss is None else loss

    def __call__(self, inputs: Mapping[str, Tensor], labels: Tensor) -> dict[str, Tensor]:
        clean = {name: _detached(x) for name, x in inputs.items()}
        keys = self._attacked(self.eps, clean)
        if not keys:
            return clean
        with eval_mode(self.model, freeze=True):
            return self.forward(clean, _detached(labels), keys)

    def forward(
        self, clean: dict[str, Tensor], labels: Tensor, keys: tuple[str, ...]
    ) -> dict[str, Tensor]:
        """The algorithm: adversarial copies of ``clean[k]`` for ``k in keys``."""
        raise NotImplementedError

    def _hyper(self) -> dict[str, str]:
        return {}

    def __repr__(self) -> str:
        loss = getattr(self.loss, "__name__", repr(self.loss))
        extra = "".join(f", {k}={v}" for k, v in self._hyper().items())
        return (
            f"{type(self).__name__}(eps={_fmt_map(self.eps)}{extra}, "
            f"bounds={self.bounds!r}, loss={loss})"
        )

    # -- shared machinery ---------------------------------------------------------------------
    @staticmethod
    def _attacked(eps: Mapping[str, Budget], inputs: Mapping[str, Tensor]) -> tuple[str, ...]:
        """Names with a non-zero budget, checked against the inputs."""
        keys = tuple(name for name, value in eps.items() if not _is_zero(value))
        missing = [name for name in keys if name not in inputs]
        if missing:
            raise KeyError(f"budget for {missing} but inputs are {sorted(inputs)}")
        return keys

    @staticmethod
    def _as_budget(value: Budget, x: Tensor) -> Budget:
        if isinstance(value, Tensor):
            return value.to(device=x.device, dtype=x.dtype)
        return float(value)

    def _gradients(
        self, inputs: dict[str, Tensor], labels: Tensor, keys: tuple[str, ...]
    ) -> dict[str, Tensor]:
        """One forward + backward: d loss / d inputs[k] for ``k in keys`` (and nothing else)."""
        leaves = [inputs[k].requires_grad_(True) for k in keys]
        try:
            with torch.enable_grad():
                loss = self.loss(self.model, inputs, labels)
                grads = torch.autograd.grad(loss, leaves, materialize_grads=True)
        finally:
            for leaf in leaves:
                leaf.requires_grad_(False)
        return dict(zip(keys, grads, strict=True))

    def _box(self, name: str, clean: Tensor, eps: Budget) -> tuple[Tensor, Tensor]:
        """Intersection of the eps-ball around the clean input and the valid range."""
        low, high = clean - eps, clean + eps
        if name in self.bounds:
            lower, upper = self.bounds[name]
            low.clamp_(min=lower)
            high.clamp_(max=upper)
        return low, high

    def _clip(self, name: str, x: Tensor) -> Tensor:
        """Clamp ``x`` in place to the valid range of input ``name``."""
        if name in self.bounds:
            x.clamp_(*self.bounds[name])
        return x


class FGSM(Attack):
    """Fast gradient sign method (Goodfellow et al., ICLR 2015, arXiv:1412.6572), L-inf.

    ``x_adv = clip(x + eps * sign(grad_x L(x, y)))`` for each attacked input.

    >>> adv = FGSM(model, eps={"audio": 0.012})(inputs, labels)
    >>> sets = FGSM(model, eps={}).sweep(inputs, labels, [{"audio": e} for e in (0.002, 0.004)])
    """

    def forward(
        self, clean: dict[str, Tensor], labels: Tensor, keys: tuple[str, ...]
    ) -> dict[str, Tensor]:
        signs = {k: g.sign_() for k, g in self._gradients(dict(clean), labels, keys).items()}
        return self._build(clean, signs, self.eps, {})

    def sweep(
        self,
        inputs: Mapping[str, Tensor],
        labels: Tensor,
        budgets: Sequence[Mapping[str, Budget]],
    ) -> list[dict[str, Tensor]]:
        """FGSM for every budget dict from ONE forward + backward at the clean point.

        The gradient at the clean input w.r.t. one input does not depend on which other inputs are
        attacked, so single-input and joint attacks at all strengths share it: e.g. budgets
        ``[{"audio": e}, {"visual": e}, {"audio": e, "visual": e}]`` for each ``e``. Results equal
        ``FGSM(model, budget)(inputs, labels)`` per budget; identical (name, budget) pairs return
        the same tensor object, so :func:`predict_sets` can reuse its features.
        """
        clean = {name: _detached(x) for name, x in inputs.items()}
        budgets = [_checked(b) for b in budgets]
        keys = tuple(dict.fromkeys(k for b in budgets for k in self._attacked(b, clean)))
        if not keys:
            return [dict(clean) for _ in budgets]
        with eval_mode(self.model, freeze=True):
            grads = self._gradients(dict(clean), _detached(labels), keys)
        signs = {k: g.sign_() for k, g in grads.items()}
        memo: dict[tuple[str, object], Tensor] = {}
        return [self._build(clean, signs, budget, memo) for budget in budgets]

    def _build(
        self,
        clean: dict[str, Tensor],
        signs: dict[str, Tensor],
        budget: Mapping[str, Budget],
        memo: dict[tuple[str, object], Tensor],
    ) -> dict[str, Tensor]:
        adv = dict(clean)
        for name in self._attacked(budget, clean):
            value = budget[name]
            key = (name, id(value) if isinstance(value, Tensor) else float(value))
            if key not in memo:
                step = signs[name] * self._as_budget(value, clean[name])
                memo[key] = self._clip(name, step.add_(clean[name]))
            adv[name] = memo[key]
        return adv


class _Iterative(Attack):
    """Shared set-up of the iterative sign attacks: step sizes, projection boxes, start point."""

    def __init__(
        self,
        model: nn.Module,
        eps: Mapping[str, Budget],
        bounds: Mapping[str, tuple[float, float]] | None = None,
        loss: LossFn | None = None,
        steps: int = 10,
        alpha: Budget | Mapping[str, Budget] | None = None,
    ) -> None:
        super().__init__(model, eps, bounds, loss)
        assert steps >= 1, f"steps must be >= 1, got {steps}"
        self.steps = steps
        if alpha is not None:
            _checked(alpha if isinstance(alpha, Mapping) else {"alpha": alpha})
        self.alpha = dict(alpha) if isinstance(alpha, Mapping) else alpha

    def _step_size(self, name: str) -> Budget | None:
        """The given step size of input ``name``: the plain ``alpha``, its entry, or None."""
        if isinstance(self.alpha, dict):
            return self.alpha.get(name)
        return self.alpha

    def _hyper(self) -> dict[str, str]:
        if self.alpha is None:
            alpha = "eps/8"
        else:
            alpha = _fmt_map(self.alpha) if isinstance(self.alpha, dict) else _fmt(self.alpha)
        return {"steps": str(self.steps), "alpha": alpha}

    def _setup(
        self, clean: dict[str, Tensor], keys: tuple[str, ...], random_start: bool = False
    ) -> tuple[dict[str, Tensor], dict[str, tuple[Tensor, Tensor]], dict[str, Budget]]:
        """Adversarial start points, projection boxes and step sizes of the attacked inputs."""
        adv, boxes, alphas = dict(clean), {}, {}
        for k in keys:
            x, eps = clean[k], self._as_budget(self.eps[k], clean[k])
            given = self._step_size(k)
            alphas[k] = eps / 8 if given is None else self._as_budget(given, x)
            boxes[k] = self._box(k, x, eps)
            start = x.clone()
            if random_start:
                start.add_(torch.empty_like(x).uniform_(-1.0, 1.0).mul_(eps))
            adv[k] = start.clamp_(*boxes[k])
        return adv, boxes, alphas

    @staticmethod
    def _step(x: Tensor, sign: Tensor, alpha: Budget, box: tuple[Tensor, Tensor]) -> None:
        """In place: ``x <- project(x + alpha * sign)`` onto the box (two fused kernels)."""
        if isinstance(alpha, Tensor):
            x.addcmul_(sign, alpha)
        else:
            x.add_(sign, alpha=alpha)
        x.clamp_(*box)


class PGD(_Iterative):
    """Projected gradient descent (Madry et al., ICLR 2018, arXiv:1706.06083), L-inf.

    ``x <- Proj_{B(x0, eps) and bounds}(x + alpha * sign(grad_x L))``, ``steps`` times, starting at
    the clean input (or uniformly in the ball with ``random_start``). ``alpha`` (one float or
    tensor for every attacked input, or a dict per input name) defaults to eps/8.

    >>> adv = PGD(model, eps={"visual": 0.012}, steps=10)(inputs, labels)
    """

    def __init__(
        self,
        model: nn.Module,
        eps: Mapping[str, Budget],
        bounds: Mapping[str, tuple[float, float]] | None = None,
        loss: LossFn | None = None,
        steps: int = 10,
        alpha: Budget | Mapping[str, Budget] | None = None,
        random_start: bool = False,
    ) -> None:
        super().__init__(model, eps, bounds, loss, steps, alpha)
        self.random_start = random_start

    def _hyper(self) -> dict[str, str]:
        return {**super()._hyper(), "random_start": str(self.random_start)}

    def forward(
        self, clean: dict[str, Tensor], labels: Tensor, keys: tuple[str, ...]
    ) -> dict[str, Tensor]:
        adv, boxes, alphas = self._setup(clean, keys, self.random_start)
        for _ in range(self.steps):
            grads = self._gradients(adv, labels, keys)
            for k in keys:
                self._step(adv[k], grads[k].sign_(), alphas[k], boxes[k])
        return adv


class MIM(_Iterative):
    """Momentum iterative method (Dong et al., CVPR 2018, arXiv:1710.06081), L-inf.

    ``g <- decay * g + grad / ||grad||_1`` (L1 norm per sample, per input), then
    ``x <- Proj_{B(x0, eps) and bounds}(x + alpha * sign(g))``; ``alpha`` (as in :class:`PGD`)
    defaults to eps/8.

    >>> adv = MIM(model, eps={"audio": 0.006, "visual": 0.006}, decay=1.0)(inputs, labels)
    """

    def __init__(
        self,
        model: nn.Module,
        eps: Mapping[str, Budget],
        bounds: Mapping[str, tuple[float, float]] | None = None,
        loss: LossFn | None = None,
        steps: int = 10,
        alpha: Budget | Mapping[str, Budget] | None = None,
        decay: float = 1.0,
    ) -> None:
        super().__init__(model, eps, bounds, loss, steps, alpha)
        self.decay = decay

    def _hyper(self) -> dict[str, str]:
        return {**super()._hyper(), "decay": repr(self.decay)}

    def forward(
        self, clean: dict[str, Tensor], labels: Tensor, keys: tuple[str, ...]
    ) -> dict[str, Tensor]:
        adv, boxes, alphas = self._setup(clean, keys)
        momentum: dict[str, Tensor] = {}
        for _ in range(self.steps):
            grads = self._gradients(adv, labels, keys)
            for k, g in grads.items():
                momentum[k] = self._accumulate(momentum.get(k), g)
                self._step(adv[k], momentum[k].sign(), alphas[k], boxes[k])
        return adv

    def _accumulate(self, momentum: Tensor | None, grad: Tensor) -> Tensor:
        """``decay * momentum + grad / ||grad||_1`` with the L1 norm per sample; reuses buffers."""
        l1 = torch.linalg.vector_norm(grad, 1, dim=_reduce_dims(grad), keepdim=True)  # (B, 1, ...)
        l1.clamp_min_(torch.finfo(grad.dtype).tiny)  # an all-zero gradient adds nothing
        if momentum is None:
            return grad.div_(l1)
        if self.decay != 1.0:
            momentum.mul_(self.decay)
        return momentum.addcdiv_(grad, l1)


#: Attack name -> class: the paper's attacks here; APGD and Square (``registry.AUTOATTACK``)
#: live in their own modules, which add themselves (both importable from this module too).
ATTACKS: dict[str, type[Attack]] = dict(zip(registry.ATTACKS, (FGSM, PGD, MIM), strict=True))


def build_attack(name: str, model: nn.Module, **kwargs) -> Attack:
    """``ATTACKS[name](model, **kwargs)``; ValueError listing the valid names otherwise."""
    if name not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}; valid: {', '.join(ATTACKS)}")
    return ATTACKS[name](model, **kwargs)


@torch.no_grad()
def predict_sets(
    model: nn.Module, sets: Sequence[Mapping[str, Tensor]], share_features: bool = False
) -> list[Tensor]:
    """Logits of ``model`` (eval mode, no gradients) for each input dict in ``sets``.

    With ``share_features`` the model must provide ``encode(**inputs) -> {name: features}``
    computing each input's features independently of the other inputs, and ``head(features)``
    with ``model(**x) == head(encode(**x))`` (AVModel does; LocalizationModel does not). Each
    distinct tensor object is then encoded in as few ``encode`` calls as a greedy cover finds:
    the 24 sets of an 8-budget x (A, V, AV) :meth:`FGSM.sweep` take 9 calls instead of 24.
    """
    with eval_mode(model):
        if not share_features:
            return [model(**inputs) for inputs in sets]
        cache: dict[tuple[str, int], Tensor] = {}
        unused: set[str] = set()  # inputs the model ignores

        def missing(i: int) -> int:
            return sum(k not in unused and (k, id(x)) not in cache for k, x in sets[i].items())

        todo = set(range(len(sets)))
        while todo and missing(best := max(sorted(todo), key=missing)):
            feats = model.encode(**sets[best])  # greedy cover: the set with most new inputs
            cache.update({(k, id(sets[best][k])): f for k, f in feats.items()})
            unused.update(set(sets[best]) - set(feats))
            todo.discard(best)
        return [
            model.head({k: cache[k, id(x)] for k, x in inputs.items() if k not in unused})
            for inputs in sets
        ]


from avmodels.robustness import apgd, square  # noqa: E402  (they subclass Attack and register here)


def __getattr__(name: str) -> type[Attack]:
    """``APGD`` and ``Square`` from their modules."""
    if name in ("APGD", "Square"):
        return getattr(apgd if name == "APGD" else square, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
