"""The exact active-set Lasso solver (``method="active_set"``) and its derivative."""

from __future__ import annotations

import importlib.util
from functools import partial
from pathlib import Path
from types import ModuleType

import pytest
import torch
from sklearn.linear_model import Lasso
from torch import Tensor

from avmodels.robustness import active_set
from avmodels.robustness.active_set import active_set_lasso
from avmodels.robustness.lasso import lasso_objective, solve_lasso, sparse_code

REPO = Path(__file__).resolve().parents[1]


def _bench_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: Unit-norm, non-negative, class-structured queries (B, d) and memory (d, K), float64: the
#: benchmark's problem generator, with 5 classes.
class_problem = partial(_bench_module("sparse_code").make_problem, classes=5)


def best_objective(queries: Tensor, memory: Tensor, lam: float) -> Tensor:
    """Lower of a tight FISTA and a tight scikit-learn objective per query."""
    fista = solve_lasso(queries, memory, lam, max_iter=200_000, tol=1e-12).codes
    best = lasso_objective(queries, memory, fista, lam)
    for i, q in enumerate(queries):
        fit = Lasso(alpha=lam / len(q), fit_intercept=False, tol=1e-12, max_iter=1_000_000)
        coef = torch.from_numpy(fit.fit(memory.numpy(), q.numpy()).coef_)[None]
        best[i] = torch.minimum(best[i], lasso_objective(q[None], memory, coef, lam)[0])
    return best


@pytest.mark.parametrize(
    ("d", "k", "lam", "seed"), [(24, 48, 0.1, 0), (32, 160, 0.05, 1), (16, 64, 0.02, 2)]
)
def test_active_set_reaches_the_optimum(d: int, k: int, lam: float, seed: int) -> None:
    queries, memory = class_problem(d, k, batch=6, seed=seed)
    sol = active_set_lasso(queries, memory, lam, tol=1e-9)
    assert sol.converged and sol.codes.dtype == torch.float64
    ours = lasso_objective(queries, memory, sol.codes, lam)
    assert torch.all((ours - best_objective(queries, memory, lam)).abs() <= 1e-6 * ours)
    assert torch.equal(
        solve_lasso(queries, memory, lam, tol=1e-9, method="active_set").codes, sol.codes
    )


def test_active_set_grows_the_working_set() -> None:
    """The support needs atoms outside the first working set (the largest |M^T f|)."""
    queries, memory = class_problem(32, 160, batch=6, seed=1)
    sol = active_set_lasso(queries, memory, 0.05, tol=1e-9)
    first = (queries @ memory).abs().topk(active_set._START_ATOMS, dim=1).indices
    outside = torch.ones_like(sol.codes, dtype=torch.bool).scatter(1, first, False)
    assert sol.iterations >= 2 and bool(((sol.codes != 0) & outside).any())


def test_active_set_batch_equals_one_at_a_time() -> None:
    queries, memory = class_problem(24, 96, batch=5, seed=3)
    batch = active_set_lasso(queries, memory, 0.05, tol=1e-10).codes
    single = torch.cat([active_set_lasso(q[None], memory, 0.05, tol=1e-10).codes for q in queries])
    assert torch.allclose(batch, single, atol=1e-10)
    assert (batch == 0).any() and (batch != 0).any()


def test_active_set_float32_and_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """float32 in, float32 out; with one round allowed, FISTA finishes the open queries."""
    queries, memory = class_problem(32, 160, batch=4, seed=1)
    best = best_objective(queries, memory, 0.05)
    codes = active_set_lasso(queries.float(), memory.float(), 0.05, tol=1e-5).codes
    assert codes.dtype == torch.float32
    ours = lasso_objective(queries, memory, codes.double(), 0.05)
    assert torch.all(ours - best <= 1e-5 * best)
    monkeypatch.setattr(active_set, "_MAX_ROUNDS", 1)
    sol = active_set_lasso(queries, memory, 0.05, tol=1e-6, max_iter=100_000)
    assert not sol.converged
    ours = lasso_objective(queries, memory, sol.codes, 0.05)
    assert torch.all(ours - best <= 1e-6 * best)


def test_active_set_gradient() -> None:
    """The exact solution's derivative M_S (M_S^T M_S)^{-1} on the support, by gradcheck."""
    queries, memory = class_problem(10, 30, batch=3, seed=4)
    queries.requires_grad_(True)

    def fn(f: Tensor) -> Tensor:
        return sparse_code(f, memory, 0.02, tol=1e-12, method="active_set")

    assert torch.autograd.gradcheck(fn, (queries,))
    codes = fn(queries)
    (grad,) = torch.autograd.grad(codes.sum(), queries)
    assert grad.abs().sum() > 0 and ((codes == 0) & (codes != 0).any(0)).any()


def test_active_set_rejects_bad_inputs() -> None:
    queries, memory = class_problem(8, 16, batch=2, seed=5)
    with pytest.raises(ValueError, match="expected"):
        active_set_lasso(queries, memory.T, 0.1)
    with pytest.raises(ValueError, match="lam > 0"):
        active_set_lasso(queries, memory, 0.0)
    with pytest.raises(ValueError, match="tol >= 0"):
        sparse_code(queries, memory, 0.1, tol=-1.0, method="active_set")
    with pytest.raises(ValueError, match="detach"):
        sparse_code(queries, memory.clone().requires_grad_(True), 0.1, method="active_set")
    with pytest.raises(ValueError, match="active_set"):
        solve_lasso(queries, memory, 0.1, method="lars")
