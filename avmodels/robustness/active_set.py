"""The exact Lasso solver of ExFMem's sparse coding: feature-sign search on a growing working set.

:func:`active_set_lasso` solves ``argmin_a 0.5 ||f - M a||^2 + lam ||a||_1`` for a batch of
features over one memory to a relative KKT tolerance, without a K x K Gram matrix; it is the
default of :func:`avmodels.robustness.lasso.sparse_code` (``method="active_set"``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from avmodels.robustness.lasso import (
    LassoSolution,
    check_shapes,
    masked_solve,
    relative_gap,
    solve_lasso,
)

logger = logging.getLogger(__name__)

_START_ATOMS = 16  # first working set: the atoms most correlated with f
_GROW_ATOMS = 16  # atoms added per round (at least; half the working set once it is larger)
_MAX_ROUNDS = 30  # then FISTA, warm-started, finishes a query


def _quadratic_part(codes: Tensor, gram: Tensor, corr: Tensor, lam: float) -> Tensor:
    """``0.5 a^T G a - c^T a + lam ||a||_1``: the Lasso objective less ``0.5 ||f||^2``.

    Shape: codes (b, P, w) (P points per query), gram (b, w, w), corr (b, w) -> (b, P).
    """
    quad = (torch.bmm(codes, gram) * codes).sum(-1)
    return 0.5 * quad - (codes * corr.unsqueeze(1)).sum(-1) + lam * codes.abs().sum(-1)


def _sign_solve(gram: Tensor, corr: Tensor, lam: float, signs: Tensor) -> Tensor:
    """Minimiser over ``S = {signs != 0}`` (zero elsewhere) of the objective with ``|a|``
    replaced by ``signs * a``: ``a_S = (M_S^T M_S)^{-1} (M_S^T f - lam signs_S)``, the Lasso's
    optimality condition on a sign pattern."""
    return masked_solve(gram, signs != 0, corr - lam * signs)


def _line_search(gram: Tensor, corr: Tensor, lam: float, codes: Tensor, target: Tensor) -> Tensor:
    """Feature-sign's discrete line search from ``codes`` to ``target`` (b, w): the point of lowest
    objective among ``target`` and the points where a nonzero code reaches 0 (set exactly to 0).
    """
    cross = (codes != 0) & (torch.sign(target) != torch.sign(codes))
    count = int(cross.sum(1).max())
    if count == 0:
        return target
    at = torch.where(cross, codes / (codes - target).where(cross, 1.0), math.inf)
    at, which = at.topk(count, dim=1, largest=False)  # (b, count): earliest crossings first
    valid = torch.isfinite(at)
    points = codes.unsqueeze(1) + at.where(valid, 1.0).unsqueeze(2) * (target - codes).unsqueeze(1)
    hit = F.one_hot(which, codes.shape[1]).bool() & valid.unsqueeze(2)
    points = torch.cat([points.masked_fill(hit, 0.0), target.unsqueeze(1)], dim=1)
    best = _quadratic_part(points, gram, corr, lam).argmin(1)
    return points[torch.arange(len(best), device=best.device), best]


@dataclass
class _SignState:
    """Feature-sign iterate of the open queries: codes (b, w), sign pattern (b, w), flags (b,).

    ``optimal``: codes minimise the objective on their sign pattern (KKT on it holds);
    ``single``: the last batch of entering atoms all came out with the wrong sign, so add only
    the worst violator next (from an optimal point this one always enters with its sign).
    """

    codes: Tensor
    signs: Tensor
    optimal: Tensor
    single: Tensor

    def take(self, rows: Tensor) -> _SignState:
        """The queries ``rows`` (long indices)."""
        fields = (self.codes, self.signs, self.optimal, self.single)
        return _SignState(*(x.index_select(0, rows) for x in fields))


def _enter(st: _SignState, gram: Tensor, corr: Tensor, lam: float, tol: float) -> Tensor:
    """Give optimal queries' KKT violators (``|c_j - G_j a| > lam (1 + tol)``, a_j = 0) the sign
    of ``c_j - G_j a`` (in place); returns which queries are optimal with no violator: done."""
    grad = corr - torch.bmm(gram, st.codes.unsqueeze(-1)).squeeze(-1)
    excess = torch.where(st.signs == 0, grad.abs() - lam * (1.0 + tol), -math.inf)
    enter = (excess > 0) & st.optimal.unsqueeze(1)
    if bool(st.single.any()):
        worst = F.one_hot(excess.argmax(1), excess.shape[1]).bool()
        enter = torch.where(st.single.unsqueeze(1), enter & worst, enter)
    opening = enter.any(1)
    st.signs = torch.where(enter, torch.sign(grad), st.signs)
    st.single = st.single & ~opening
    done = st.optimal & ~opening
    st.optimal = st.optimal & ~opening
    return done


def _sign_step(st: _SignState, gram: Tensor, corr: Tensor, lam: float) -> None:
    """One feature-sign step (in place): solve on the sign pattern, dropping entering atoms whose
    solution has the wrong sign (and solving again), then line-search to the solution."""
    entering = (st.signs != 0) & (st.codes == 0)
    target = _sign_solve(gram, corr, lam, st.signs)
    wrong = entering & (torch.sign(target) != st.signs)
    while bool(wrong.any()):
        st.signs = st.signs.masked_fill(wrong, 0.0)
        redo = wrong.any(1).nonzero().squeeze(1)
        target[redo] = _sign_solve(gram[redo], corr[redo], lam, st.signs[redo])
        wrong = entering & (torch.sign(target) != st.signs)
    none_left = entering.any(1) & ~(entering & (st.signs != 0)).any(1)
    cross = ((st.codes != 0) & (torch.sign(target) != torch.sign(st.codes))).any(1)
    st.codes = _line_search(gram, corr, lam, st.codes, target)
    st.signs, st.optimal, st.single = torch.sign(st.codes), ~cross, none_left


def _feature_sign(
    gram: Tensor, corr: Tensor, lam: float, codes: Tensor, tol: float, max_steps: int
) -> tuple[Tensor, Tensor]:
    """Lasso restricted to a working set, ``min_a 0.5 a^T G a - c^T a + lam ||a||_1``, batched.

    Feature-sign search (Lee, Battle, Raina & Ng, NIPS 2007) from ``codes`` (b, w): activate
    KKT violators, solve on the sign pattern in closed form, line-search to the first sign
    changes; the objective decreases at every move. Returns codes and settled (b,) bool.
    """
    flag = torch.ones_like(codes[:, 0], dtype=torch.bool)
    st = _SignState(codes.clone(), torch.sign(codes), flag, ~flag)
    out, settled = st.codes, torch.zeros_like(flag)
    rows = torch.arange(len(codes), device=codes.device)
    for _ in range(max_steps):
        done = _enter(st, gram, corr, lam, tol)
        if bool(done.any()):
            out[rows[done]], settled[rows[done]] = st.codes[done], True
            keep = (~done).nonzero().squeeze(1)
            rows, st = rows.index_select(0, keep), st.take(keep)
            gram, corr = gram.index_select(0, keep), corr.index_select(0, keep)
            if len(rows) == 0:
                break
        _sign_step(st, gram, corr, lam)
    out[rows] = st.codes
    return out, settled


class _WorkingSet:
    """Per query the first ``size`` slots: atom indices (b, w), memory columns (b, w, d), Gram
    ``M_W^T M_W`` (b, w, w), correlations ``M_W^T f`` (b, w) and codes (b, w).

    Buffers are preallocated (doubled when full), and a new atom's Gram row is its product with
    the current working set only. Atoms are added for a subset of ``rows``; the other queries
    (finished) keep stale slots beyond their size, which nothing reads.
    """

    def __init__(self, corr_full: Tensor, memory_t: Tensor, capacity: int) -> None:
        b, d = len(corr_full), memory_t.shape[1]
        self.corr_full, self.memory_t, self.size = corr_full, memory_t, 0
        self.index = torch.zeros(b, capacity, dtype=torch.long, device=corr_full.device)
        self.atoms = corr_full.new_empty(b, capacity, d)
        self.gram = corr_full.new_zeros(b, capacity, capacity)
        self.corr, self.codes = corr_full.new_zeros(b, capacity), corr_full.new_zeros(b, capacity)

    def _reserve(self, need: int) -> None:
        cap = self.index.shape[1]
        if need <= cap:
            return
        new_cap, n = max(need, 2 * cap), self.size
        for name in ("index", "atoms", "corr", "codes"):
            old = getattr(self, name)
            grown = old.new_zeros(old.shape[0], new_cap, *old.shape[2:])
            grown[:, :n] = old[:, :n]
            setattr(self, name, grown)
        gram = self.gram.new_zeros(len(self.gram), new_cap, new_cap)
        gram[:, :n, :n] = self.gram[:, :n, :n]
        self.gram = gram

    def view(self, name: str, rows: Tensor | None) -> Tensor:
        """Buffer ``name`` cut to ``size``, of all queries (``rows`` None) or of ``rows``."""
        t = getattr(self, name)
        t = t[:, : self.size, : self.size] if name == "gram" else t[:, : self.size]
        return t if rows is None else t[rows]

    def add(self, index: Tensor, rows: Tensor | None) -> None:
        """Append atoms ``index`` (b, p) to the working sets of ``rows`` (None: all queries)."""
        b, p = index.shape
        w = self.size
        self._reserve(w + p)
        atoms = self.memory_t.index_select(0, index.reshape(-1)).view(b, p, -1)
        across = torch.bmm(atoms, self.view("atoms", rows).transpose(1, 2))  # (b, p, w)
        inner = torch.bmm(atoms, atoms.transpose(1, 2))  # (b, p, p)
        corr = (
            self.corr_full.gather(1, index)
            if rows is None
            else self.corr_full[rows].gather(1, index)
        )
        sel = slice(None) if rows is None else rows
        self.gram[sel, w : w + p, :w] = across
        self.gram[sel, :w, w : w + p] = across.transpose(1, 2)
        self.gram[sel, w : w + p, w : w + p] = inner
        self.atoms[sel, w : w + p] = atoms
        self.index[sel, w : w + p] = index
        self.corr[sel, w : w + p] = corr
        self.codes[sel, w : w + p] = 0.0
        self.size = w + p

    def dense(self, rows: Tensor, k: int) -> Tensor:
        """Codes of ``rows`` as dense (b, K) codes."""
        codes = self.codes.new_zeros(len(rows), k)
        return codes.scatter_(1, self.view("index", rows), self.view("codes", rows))

    def kkt_excess(
        self, features: Tensor, memory: Tensor, rows: Tensor | None, lam: float, tol: float
    ) -> Tensor:
        """``|M_j^T (f - M a)| - lam (1 + tol)`` (b, K) of ``rows``' queries, -inf inside W."""
        codes, atoms = self.view("codes", rows), self.view("atoms", rows)
        fit = torch.bmm(codes.unsqueeze(1), atoms).squeeze(1)
        excess = ((features - fit) @ memory).abs() - lam * (1.0 + tol)
        return excess.scatter_(1, self.view("index", rows), -math.inf)


def active_set_lasso(
    features: Tensor, memory: Tensor, lam: float, tol: float = 1e-4, max_iter: int = 2000
) -> LassoSolution:
    """Batched Lasso ``argmin_a 0.5 ||f - M a||^2 + lam ||a||_1``, working-set active-set method.

    Each query keeps a small working set W (first the 16 atoms of largest ``|M^T f|``), solved
    exactly by feature-sign search (:func:`_feature_sign`, closed form on sign patterns, Gram
    ``M_W^T M_W`` built incrementally, no K x K Gram). The Lasso's optimality (KKT) conditions
    ``M_S^T (f - M a) = lam sign(a_S)`` on the support and ``|M_j^T (f - M a)| <= lam``
    elsewhere then hold on W; the atoms violating them most outside W (``> lam (1 + tol)``;
    16, or half the working set once it holds more than 32) join it, until none does. A query
    still open after 30 rounds is finished by FISTA (step 1/L, warm-started, at most
    ``max_iter`` steps, stop on a relative duality gap <= ``tol``).

    The codes are exact up to ``tol``: the relative KKT violation bounds the duality gap
    (``r / (1 + tol)`` is dual-feasible), about ``tol`` relative; ``gap`` of the result holds
    each query's relative duality gap. Each query's working set grows with its own violations
    only, so its codes do not depend on the rest of the batch. Computed in float64 (post-ReLU
    features make ill-conditioned problems); returned in the features' dtype.
    Shape: features (B, d), memory (d, K) -> codes (B, K).
    """
    check_shapes(features, memory)
    if not (lam > 0 and tol >= 0 and max_iter >= 1):
        raise ValueError(
            f"active_set_lasso needs lam > 0, tol >= 0, max_iter >= 1; got {lam}, {tol}, {max_iter}"
        )
    dtype = torch.promote_types(features.dtype, torch.float64)
    with torch.no_grad():
        f, m = features.detach().to(dtype), memory.detach().to(dtype)
        k = m.shape[1]
        memory_t, corr_full = m.T.contiguous(), f @ m
        codes = torch.zeros_like(corr_full)
        ws = _WorkingSet(corr_full, memory_t, min(k, _START_ATOMS + 4 * _GROW_ATOMS))
        ws.add(corr_full.abs().topk(min(_START_ATOMS, k), dim=1).indices, None)
        rows, sub, rounds = torch.arange(len(f), device=f.device), None, 0
        for rounds in range(1, _MAX_ROUNDS + 1):
            gram, corr, start = (ws.view(name, sub) for name in ("gram", "corr", "codes"))
            solved, settled = _feature_sign(gram, corr, lam, start, tol, 4 * ws.size + 20)
            ws.codes[rows, : ws.size] = solved
            excess = ws.kkt_excess(f[rows], m, sub, lam, tol)
            grow = min(max(_GROW_ATOMS, ws.size // 2), k - ws.size)
            more = ~settled | ((excess > 0).any(1) & (grow > 0))
            if not bool(more.all()):
                codes[rows[~more]] = ws.dense(rows[~more], k)
                rows, sub, excess = rows[more], rows[more], excess[more]
            if len(rows) == 0 or rounds == _MAX_ROUNDS:
                break
            if grow > 0:
                ws.add(excess.topk(grow, dim=1).indices, sub)
        if len(rows):  # not settled: FISTA from the current codes
            logger.debug("active_set_lasso: %d queries left to FISTA", len(rows))
            start = ws.dense(rows, k)
            codes[rows] = solve_lasso(f[rows], m, lam, max_iter, tol, "fista", init=start).codes
        gap = relative_gap(f, m, codes, lam)
    return LassoSolution(codes.to(features.dtype), rounds, 0.0, len(rows) == 0, [], [], gap)
