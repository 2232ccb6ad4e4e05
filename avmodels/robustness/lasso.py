"""Batched Lasso solvers for ExFMem's sparse coding (Tian & Xu, CVPR 2021, Eq. 4).

``argmin_a 0.5 ||f - M a||^2 + lam ||a||_1`` for a batch of features ``f`` over one memory
``M``: ISTA / FISTA with step 1 / L (:func:`solve_lasso`), an exact active-set solver
(feature-sign search on a growing working set,
:func:`avmodels.robustness.active_set.active_set_lasso`), and
:func:`sparse_code`, differentiable in the features, which ExFMem calls.

Stop rules (:data:`STOP_RULES`) of ISTA / FISTA: ``"gap"`` (default) stops each sample on its
own once its relative duality gap (:func:`relative_gap`) is below ``tol``: scale-free, it bounds
the distance to the optimal objective, and no sample's result depends on the rest of the batch.
``"change"`` is the authors' rule: stop when the norm of the whole batch's change in one step is
below ``tol`` (8e-4 in their code), which depends on the features' scale and on the batch.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

logger = logging.getLogger(__name__)

#: Lasso solvers of :func:`solve_lasso` / :func:`sparse_code`.
LASSO_METHODS = ("ista", "fista", "active_set")
#: Stop rules of ISTA / FISTA (see the module docstring).
STOP_RULES = ("gap", "change")
#: Default ``tol`` of each stop rule: relative duality gap, or the authors' change norm.
DEFAULT_TOL = {"gap": 1e-4, "change": 8e-4}
_GAP_EVERY = 5  # iterations between two duality-gap checks


def lipschitz_constant(memory: Tensor) -> float:
    """Largest eigenvalue of ``M^T M`` (d, K): the Lipschitz constant of the Lasso gradient."""
    m = memory.detach().double()
    gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m  # the smaller Gram, same spectrum
    return float(torch.linalg.eigvalsh(gram)[-1])


def lasso_objective(features: Tensor, memory: Tensor, codes: Tensor, lam: float) -> Tensor:
    """``0.5 ||f - M a||^2 + lam ||a||_1`` per sample: (B, d), (d, K), (B, K) -> (B,)."""
    residual = features - codes @ memory.T
    return 0.5 * residual.pow(2).sum(1) + lam * codes.abs().sum(1)


def relative_gap(features: Tensor, memory: Tensor, codes: Tensor, lam: float) -> Tensor:
    """Relative duality gap ``(P(a) - D(theta)) / P(a)`` per sample, in float64: (B,).

    ``P`` is the Lasso objective, ``theta = r min(1, lam / ||M^T r||_inf)`` the residual
    ``r = f - M a`` scaled to be dual-feasible and ``D(theta) = f . theta - 0.5 ||theta||^2``.
    It is >= 0, 0 exactly at the optimum, and bounds ``(P(a) - P*) / P(a)``; it does not change
    when f and M are scaled together with ``lam`` scaled by the square of the factor.
    """
    f, m, a = features.detach().double(), memory.detach().double(), codes.detach().double()
    residual = f - a @ m.T
    dual_norm = (residual @ m).abs().amax(1)
    theta = residual * (lam / dual_norm.clamp(min=1e-300)).clamp(max=1.0).unsqueeze(1)
    primal = 0.5 * residual.pow(2).sum(1) + lam * a.abs().sum(1)
    dual = (f * theta).sum(1) - 0.5 * theta.pow(2).sum(1)
    return ((primal - dual).clamp(min=0.0) / primal.clamp(min=1e-300)).where(primal > 0, 0.0)


def proximal_steps(
    features: Tensor,
    memory: Tensor,
    lam: float,
    step: float,
    method: str = "fista",
    supports: bool = True,
    init: Tensor | None = None,
) -> Iterator[tuple[Tensor, Tensor | None, float]]:
    """Endless proximal-gradient iterations for the batched Lasso, starting from 0 (or ``init``).

    Yields ``(codes, support, beta)`` after each step: codes (B, K), the soft-threshold support
    ``|z| > lam * step`` (B, K) bool (None unless ``supports``), and the momentum ``beta``
    applied after the step (0 for ISTA; Beck & Teboulle's ``(t_k - 1) / t_{k+1}`` for FISTA).
    """
    if method not in ("ista", "fista"):
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(LASSO_METHODS)}")
    gram = memory.T @ memory  # (K, K)
    transition = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device) - step * gram
    drive = step * (features @ memory)  # (B, K)
    threshold = lam * step
    codes = torch.zeros_like(drive) if init is None else init.to(drive.dtype)
    point, t = codes, 1.0
    while True:
        z = torch.addmm(drive, point, transition)  # point - step * grad
        new = z - z.clamp(-threshold, threshold)  # soft threshold: sign(z) max(|z| - thr, 0)
        beta = 0.0
        if method == "fista":
            t_next = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
            beta, t = (t - 1.0) / t_next, t_next
        point = torch.lerp(codes, new, 1.0 + beta) if beta else new  # new + beta (new - codes)
        codes = new
        yield codes, (z.abs() > threshold) if supports else None, beta


@dataclass
class LassoSolution:
    """What :func:`solve_lasso` found: codes (B, K), iterations run (the most of any sample),
    step, whether every sample met ``tol``, per-step supports and momenta (unrolled backward),
    and the final relative duality gap of each sample (B,) (:func:`relative_gap`)."""

    codes: Tensor
    iterations: int
    step: float
    converged: bool
    supports: list[Tensor]
    betas: list[float]
    gap: Tensor | None = None


def _check_settings(method: str, stop: str, tol: float, max_iter: int) -> None:
    if method not in LASSO_METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(LASSO_METHODS)}")
    if stop not in STOP_RULES:
        raise ValueError(f"unknown stop rule {stop!r}; valid: {', '.join(STOP_RULES)}")
    if stop == "change" and method == "active_set":
        raise ValueError("stop 'change' is a rule of ista / fista; active_set solves exactly")
    if not (tol >= 0 and max_iter >= 1):
        raise ValueError(f"the Lasso needs tol >= 0 and max_iter >= 1, got {tol}, {max_iter}")


def solve_lasso(
    features: Tensor,
    memory: Tensor,
    lam: float,
    max_iter: int = 2000,
    tol: float | None = None,
    method: str = "fista",
    step: float | None = None,
    lipschitz: float | None = None,
    keep_supports: bool = False,
    init: Tensor | None = None,
    stop: str = "gap",
) -> LassoSolution:
    """Proximal gradient (no autograd) until the ``stop`` rule meets ``tol``, or ``max_iter`` steps.

    ``stop="gap"``: each sample stops on its own, at the first check (every 5 steps) where its
    relative duality gap is <= ``tol`` (default 1e-4); its codes then stay fixed, so a sample's
    result does not depend on the batch. ``stop="change"`` (the authors'): all samples stop when
    the Frobenius norm of the batch's change in one step is < ``tol`` (default 8e-4).
    ``keep_supports`` (per-step supports for the unrolled backward) needs ``stop="change"``.

    ``step`` defaults to 1 / L (``lipschitz`` or :func:`lipschitz_constant`). A sample whose
    codes become non-finite (a fixed step above 2 / L diverges) stops, not converged. ``init``
    (B, K) warm-starts the iterations (default 0).

    ``method="active_set"`` runs :func:`active_set_lasso` instead: ``tol`` is then its relative
    KKT tolerance, ``iterations`` its working-set rounds, ``step`` 0 and ``max_iter`` caps the
    FISTA fallback; ``step``, ``lipschitz``, ``keep_supports`` and ``init`` are not used.
    """
    tol = DEFAULT_TOL[stop] if tol is None and stop in DEFAULT_TOL else tol
    _check_settings(method, stop, tol, max_iter)
    if method == "active_set":
        from avmodels.robustness.active_set import active_set_lasso  # it imports this module

        return active_set_lasso(features, memory, lam, tol=tol, max_iter=max_iter)
    if keep_supports and stop != "change":
        raise ValueError("keep_supports (the unrolled backward) needs stop='change'")
    if step is None:
        step = 1.0 / (lipschitz if lipschitz is not None else lipschitz_constant(memory))
    with torch.no_grad():
        f, m = features.detach(), memory.detach()
        if stop == "gap":
            return _solve_to_gap(f, m, lam, max_iter, tol, method, step, init)
        return _solve_to_change(f, m, lam, max_iter, tol, method, step, keep_supports, init)


def _solve_to_change(
    f: Tensor,
    m: Tensor,
    lam: float,
    max_iter: int,
    tol: float,
    method: str,
    step: float,
    keep_supports: bool,
    init: Tensor | None,
) -> LassoSolution:
    """The authors' rule: stop when ``||A_k - A_{k-1}||_F`` over the whole batch is < ``tol``."""
    supports: list[Tensor] = []
    betas: list[float] = []
    codes = f.new_zeros(f.shape[0], m.shape[1]) if init is None else init
    previous, converged, it = codes, False, 0
    steps = proximal_steps(f, m, lam, step, method, keep_supports, init)
    for it, (codes, support, beta) in enumerate(steps, start=1):
        if keep_supports:
            supports.append(support)
            betas.append(beta)
        change = float(torch.linalg.vector_norm(codes - previous))
        if not math.isfinite(change):
            break
        if change < tol:
            converged = True
            break
        if it >= max_iter:
            break
        previous = codes
    if not converged:
        logger.debug("Lasso stopped after %d steps without reaching tol %g", it, tol)
    gap = relative_gap(f, m, codes, lam)
    return LassoSolution(codes, it, step, converged, supports, betas, gap)


def _solve_to_gap(
    f: Tensor,
    m: Tensor,
    lam: float,
    max_iter: int,
    tol: float,
    method: str,
    step: float,
    init: Tensor | None,
) -> LassoSolution:
    """Per-sample duality-gap stop: a sample leaves the batch once its gap is <= ``tol``."""
    batch = f.shape[0]
    out = f.new_zeros(batch, m.shape[1]) if init is None else init.to(f.dtype).clone()
    gap = torch.full((batch,), math.inf, dtype=torch.float64, device=f.device)
    rows = torch.arange(batch, device=f.device)
    gram = m.T @ m
    transition = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device) - step * gram
    drive, threshold = step * (f @ m), lam * step
    codes = out.clone()
    point, t, it, ran = codes, 1.0, 0, 0
    while len(rows) and it < max_iter:
        it += 1
        z = torch.addmm(drive, point, transition)
        new = z - z.clamp(-threshold, threshold)
        beta = 0.0
        if method == "fista":
            t_next = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
            beta, t = (t - 1.0) / t_next, t_next
        point = torch.lerp(codes, new, 1.0 + beta) if beta else new
        codes = new
        if it % _GAP_EVERY and it < max_iter:
            continue
        now = relative_gap(f[rows], m, codes, lam)
        bad = ~torch.isfinite(codes).all(1)
        done = (now <= tol) | bad | (it >= max_iter)
        if bool(done.any()):
            out[rows[done]] = codes[done]
            gap[rows[done]] = torch.where(bad, math.nan, now)[done]
            ran = it
            keep = ~done
            rows, codes, point, drive = rows[keep], codes[keep], point[keep], drive[keep]
    converged = bool((gap <= tol).all())
    if not converged:
        open_ = int((~(gap <= tol)).sum())
        logger.debug("Lasso: %d samples above tol %g after %d steps", open_, tol, it)
    return LassoSolution(out, ran, step, converged, [], [], gap)


def check_shapes(features: Tensor, memory: Tensor) -> None:
    """Raise ValueError unless features are (B, d) and the memory (d, K)."""
    if features.ndim != 2 or memory.ndim != 2 or features.shape[1] != memory.shape[0]:
        raise ValueError(
            f"features (B, d) and memory (d, K) expected, got "
            f"{tuple(features.shape)} and {tuple(memory.shape)}"
        )


def masked_solve(gram: Tensor, on: Tensor, rhs: Tensor) -> Tensor:
    """``x_S = G_SS^{-1} rhs_S``, 0 off ``S = on`` (b, w); Cholesky of G padded by the identity.

    A singular ``G_SS`` (collinear atoms, ``|S| > d``) gets a ridge of 1e-9 of its largest
    diagonal entry. Shape: gram (b, w, w), on (b, w), rhs (b, w) -> (b, w).
    """
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
    system = torch.where(on.unsqueeze(1) & on.unsqueeze(2), gram, eye)
    factor, info = torch.linalg.cholesky_ex(system)
    if bool((info > 0).any()):
        bad = info > 0
        ridge = 1e-9 * gram[bad].diagonal(dim1=1, dim2=2).amax(1).clamp(min=1e-30)
        factor[bad] = torch.linalg.cholesky(system[bad] + ridge[:, None, None] * eye)
    rhs = torch.where(on, rhs, 0.0).unsqueeze(-1)
    return torch.cholesky_solve(rhs, factor).squeeze(-1) * on


class _ExactCode(torch.autograd.Function):
    """A converged Lasso solution (:func:`solve_lasso`, stop "gap") with its exact derivative.

    With the support S and signs s fixed (they are, locally, for a generic f), the solution is
    ``a_S = (M_S^T M_S)^{-1} (M_S^T f - lam s_S)`` and 0 off S, so ``d a_S / d f =
    (M_S^T M_S)^{-1} M_S^T``: the backward maps the codes' gradient g to ``M_S G_SS^{-1} g_S``.
    """

    @staticmethod
    def forward(ctx: Any, features: Tensor, memory: Tensor, lam: float, settings: dict) -> Tensor:
        record = settings.pop("record", None)
        sol = solve_lasso(features, memory, lam, **settings)
        if record is not None:
            record.append(sol)
        ctx.save_for_backward(memory, sol.codes)
        return sol.codes

    @staticmethod
    def backward(ctx: Any, grad_codes: Tensor) -> tuple[Tensor | None, ...]:
        memory, codes = ctx.saved_tensors
        on = codes != 0
        size = max(int(on.sum(1).max()), 1)
        index = torch.argsort((~on).to(torch.int8), dim=1, stable=True)[:, :size]  # S first
        mask = on.gather(1, index)
        atoms = memory.T.to(grad_codes.dtype)[index] * mask.unsqueeze(-1)  # (B, s, d)
        gram = torch.bmm(atoms, atoms.transpose(1, 2))
        v = masked_solve(gram, mask, grad_codes.gather(1, index))
        return torch.bmm(v.unsqueeze(1), atoms).squeeze(1), None, None, None


class _SparseCode(torch.autograd.Function):
    """Proximal-gradient Lasso with an exact backward through the iterations actually run.

    Every step is ``a' = S(y W + P)`` with ``W = I - G / L``, ``P = f M / L`` and a soft
    threshold ``S`` whose derivative is the 0/1 support; FISTA adds ``y' = a' + beta (a' - a)``.
    The backward replays these linear maps in reverse from the stored supports (one bool per
    code and step), so it equals autograd through the unrolled loop without keeping its
    float intermediates.
    """

    @staticmethod
    def forward(ctx: Any, features: Tensor, memory: Tensor, lam: float, settings: dict) -> Tensor:
        record = settings.pop("record", None)
        sol = solve_lasso(features, memory, lam, keep_supports=True, **settings)
        if record is not None:
            record.append(sol)
        ctx.save_for_backward(memory)
        ctx.supports, ctx.betas, ctx.step = sol.supports, sol.betas, sol.step
        return sol.codes

    @staticmethod
    def backward(ctx: Any, grad_codes: Tensor) -> tuple[Tensor | None, ...]:
        (memory,) = ctx.saved_tensors
        transition = torch.eye(memory.shape[1], dtype=memory.dtype, device=memory.device)
        transition = transition - ctx.step * (memory.T @ memory)
        supports, betas = ctx.supports, ctx.betas
        g_drive = torch.zeros_like(grad_codes)
        g_codes, carry = grad_codes, 0.0
        for j in range(len(supports) - 1, -1, -1):  # step j: a_{j+1} = S(y_j W + P)
            u = g_codes * supports[j]
            g_drive += u
            g_point = u @ transition  # W is symmetric
            if j >= 1:  # y_j = (1 + beta_{j-1}) a_j - beta_{j-1} a_{j-1}; y_0 = 0
                beta = betas[j - 1]
                g_codes = (1.0 + beta) * g_point + carry
                carry = -beta * g_point
        g_features = (ctx.step * g_drive) @ memory.T
        return g_features, None, None, None


def sparse_code(
    features: Tensor,
    memory: Tensor,
    lam: float,
    max_iter: int = 2000,
    tol: float | None = None,
    method: str = "active_set",
    lipschitz: float | None = None,
    stop: str = "gap",
    record: list[LassoSolution] | None = None,
) -> Tensor:
    """Sparse codes ``argmin_a 0.5 ||f - M a||^2 + lam ||a||_1`` for a batch, differentiable in f.

    The objective has the factor 1/2 of the authors' ISTA (threshold ``lam * step``); the paper's
    Eq. 4 omits it, i.e. its lambda is 2x this one. scikit-learn's ``Lasso(alpha=lam / d,
    fit_intercept=False)`` fitted on (M, f) solves the same problem.

    Default: the exact solution (``method="active_set"``, :func:`active_set_lasso`, ``tol`` its
    relative KKT tolerance, default 1e-4; ``max_iter`` caps its FISTA fallback). ``"fista"``
    (Beck & Teboulle 2009) or ``"ista"`` (Daubechies et al. 2004) run proximal gradient with
    step 1 / L (L the largest eigenvalue of ``M^T M``, or ``lipschitz``) from a = 0, stopped by
    ``stop`` (:func:`solve_lasso`): ``"gap"``, each sample on its relative duality gap <= ``tol``
    (default 1e-4), or ``"change"``, the authors' rule, the norm of the batch's change in one
    step < ``tol`` (default 8e-4; it depends on the features' scale and on the batch).

    Gradients flow to ``features`` (the memory is a constant: it must not require grad). With
    ``stop="gap"`` the backward is the derivative of the exact solution on its support S,
    ``M_S (M_S^T M_S)^{-1}``; with ``stop="change"`` it is autograd through the iterations
    actually run, replayed from one bool per code and step (B * K * steps bytes).

    ``record`` (a list) receives the :class:`LassoSolution` of the call (iterations, gap).
    Shape: features (B, d), memory (d, K) -> codes (B, K).
    """
    if memory.requires_grad:
        raise ValueError("sparse_code differentiates w.r.t. the features only; detach the memory")
    check_shapes(features, memory)
    tol = DEFAULT_TOL[stop] if tol is None and stop in DEFAULT_TOL else tol
    _check_settings(method, stop, tol, max_iter)
    settings = {"max_iter": max_iter, "tol": tol, "method": method, "stop": stop}
    settings["lipschitz"] = lipschitz
    if features.requires_grad and torch.is_grad_enabled():
        fn = _SparseCode if stop == "change" else _ExactCode
        return fn.apply(features, memory, lam, {**settings, "record": record})
    sol = solve_lasso(features, memory, lam, **settings)
    if record is not None:
        record.append(sol)
    return sol.codes
