"""ExFMem's sparse coding with its default settings solves Eq. 4 on post-ReLU-scale features."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import yaml
from sklearn.linear_model import Lasso
from threadpoolctl import threadpool_limits

from avmodels.models.model import ModelConfig, build_model, save_checkpoint
from avmodels.robustness.defended import load_evaluated_model
from avmodels.robustness.exfmem import ExFMemModel
from avmodels.robustness.lasso import lasso_objective, relative_gap, solve_lasso, sparse_code
from avmodels.settings import ExfmemSettings

LAM = 0.1  # the paper's lambda


def _relu_problem():
    path = Path(__file__).resolve().parents[1] / "bench" / "sparse_code.py"
    spec = importlib.util.spec_from_file_location("bench_sparse_code", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.relu_problem


#: Non-negative, correlated queries (B, d) and memory (d, K), norm ~17, float64.
relu_problem = _relu_problem()


@pytest.fixture(scope="module")
def real_scale() -> tuple[torch.Tensor, torch.Tensor]:
    """A 512 x 1024 memory and 11 queries, in float32 as the networks' features."""
    queries, memory = relu_problem(512, 1024, batch=11, seed=0)
    return queries.float(), memory.float()


def test_default_reaches_sklearn_objective(real_scale) -> None:
    queries, memory = real_scale[0][:6], real_scale[1]
    assert (memory >= 0).all() and queries.norm(dim=1).min() > 10  # post-ReLU scale
    cosine = torch.nn.functional.normalize(memory, dim=0).T @ torch.nn.functional.normalize(
        memory, dim=0
    )
    assert float(cosine.mean()) > 0.5  # correlated columns
    codes = sparse_code(queries, memory, LAM)  # default settings
    ours = lasso_objective(queries.double(), memory.double(), codes.double(), LAM)
    x = memory.double().numpy()
    with threadpool_limits(limits=1):
        for i in range(2):
            fit = Lasso(alpha=LAM / x.shape[0], fit_intercept=False, tol=1e-5, max_iter=10**7)
            coef = torch.from_numpy(fit.fit(x, queries[i].double().numpy()).coef_)[None]
            ref = lasso_objective(queries[i : i + 1].double(), memory.double(), coef, LAM)[0]
            assert abs(float(ours[i] - ref)) <= 1e-3 * float(ref)
    # the authors' stop rule on the same problem stops far above the optimum
    authors = sparse_code(queries, memory, LAM, method="ista", stop="change", tol=8e-4)
    theirs = lasso_objective(queries.double(), memory.double(), authors.double(), LAM)
    assert bool((theirs > 1.2 * ours).all())


def test_default_ignores_batch_size_and_composition(real_scale) -> None:
    (queries, others), memory = real_scale[0].split([6, 5]), real_scale[1]
    record: list = []
    batch = sparse_code(queries, memory, LAM, record=record)
    assert record[0].converged and float(record[0].gap.max()) <= 1e-4
    single = torch.cat([sparse_code(q[None], memory, LAM) for q in queries])
    mixed = sparse_code(torch.cat([others[:3], queries[[4, 1]], others[3:]]), memory, LAM)[3:5]
    assert (batch != 0).sum(1).min() >= 10  # not a trivial solution
    assert float((single - batch).abs().max()) <= 1e-5
    assert float((mixed - batch[[4, 1]]).abs().max()) <= 1e-5


@pytest.mark.parametrize(("method", "tol"), [("fista", 1e-6), ("ista", 1e-4)])
def test_gap_stop_is_per_sample_and_bounds_the_objective(method: str, tol: float) -> None:
    queries, memory = relu_problem(24, 48, batch=5, seed=1, noise=0.3)
    sol = solve_lasso(queries, memory, LAM, max_iter=100_000, tol=tol, method=method)
    assert sol.converged and bool((sol.gap <= tol).all())
    exact = solve_lasso(queries, memory, LAM, tol=1e-10, method="active_set").codes
    best = lasso_objective(queries, memory, exact, LAM)
    ours = lasso_objective(queries, memory, sol.codes, LAM)
    assert bool(((ours - best) <= tol * ours).all())
    alone = solve_lasso(queries[2:3], memory, LAM, max_iter=100_000, tol=tol, method=method)
    assert torch.allclose(alone.codes[0], sol.codes[2], rtol=0, atol=1e-12)
    # the authors' rule depends on what else is in the batch
    change = [
        solve_lasso(q, memory, LAM, tol=8e-4, method=method, stop="change").codes[-1]
        for q in (queries, queries[-1:])
    ]
    assert not torch.allclose(change[0], change[1], rtol=0, atol=1e-9)


def test_relative_gap_is_scale_free_and_zero_at_the_optimum() -> None:
    queries, memory = relu_problem(16, 32, batch=3, seed=2, noise=0.3)
    exact = solve_lasso(queries, memory, LAM, tol=1e-12, method="active_set").codes
    assert float(relative_gap(queries, memory, exact, LAM).max()) < 1e-9
    rough = exact * 0.9
    gap = relative_gap(queries, memory, rough, LAM)
    assert bool((gap > 1e-4).all())
    scaled = relative_gap(10 * queries, 10 * memory, rough, 100 * LAM)
    assert torch.allclose(gap, scaled, rtol=1e-9)


def test_default_gradient_is_the_converged_solutions() -> None:
    """gradcheck of the default path: finite differences of the solved Lasso against the
    backward, the exact solution's derivative on its support."""
    queries, memory = relu_problem(10, 20, batch=2, seed=3, noise=0.3)
    queries.requires_grad_(True)

    def fn(f: torch.Tensor) -> torch.Tensor:
        return sparse_code(f, memory, LAM)  # default settings

    assert torch.autograd.gradcheck(fn, (queries,))
    codes = fn(queries)
    assert (codes != 0).any() and (codes == 0).any()


def test_default_and_fista_gradients_agree() -> None:
    """FISTA stopped on the gap backpropagates the same exact derivative."""
    queries, memory = relu_problem(10, 20, batch=3, seed=4, noise=0.3)
    upstream = torch.randn(3, 20, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    grads = []
    for method in ("active_set", "fista"):
        f = queries.clone().requires_grad_(True)
        codes = sparse_code(f, memory, LAM, max_iter=200_000, tol=1e-12, method=method)
        (codes * upstream).sum().backward()
        grads.append(f.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-6)
    assert grads[0].abs().sum() > 0


def test_exfmem_records_iterations_and_gap(real_scale) -> None:
    queries, memory = real_scale[0][:6], real_scale[1]

    class Base(torch.nn.Module):
        modalities = ("audio",)

        def encode(self, audio: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"audio": audio}

        def head(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
            return feats["audio"][:, :3]

    model = ExFMemModel(Base(), {"audio": memory})
    model(audio=queries[:3])
    model(audio=queries[3:])
    stats = model.solver_stats()
    assert stats["calls"] == 2 and stats["samples"] == 6
    assert stats["max_iterations"] >= 1 and 0 <= stats["mean_gap"] <= stats["max_gap"] <= 1e-4
    authors = ExFMemModel(Base(), {"audio": memory}, method="ista", stop="change", tol=8e-4)
    authors(audio=queries)
    assert authors.solver_stats()["max_gap"] > 1e-2  # far from the optimum, and it says so
    model.reset_stats()
    assert model.solver_stats()["calls"] == 0


def test_config_settings_reach_the_evaluated_model(tmp_path: Path) -> None:
    save_checkpoint(
        tmp_path / "model.pt", build_model(ModelConfig(variant="concat", num_classes=3))
    )
    torch.save({"audio": torch.rand(512, 8), "visual": torch.rand(512, 8)}, tmp_path / "bank.pt")
    root = Path(__file__).resolve().parents[1]
    for path in (
        root / "config.yaml",
        root / "config" / "paper.yaml",
        root / "config" / "tiny.yaml",
    ):
        section = yaml.safe_load(path.read_text())["exfmem"]
        settings = ExfmemSettings.from_config(section)
        model, _ = load_evaluated_model(tmp_path / "model.pt", tmp_path / "bank.pt", settings)
        got = {k: getattr(model, k) for k in ("lam", "blend", "max_iter", "tol", "method", "stop")}
        assert got == {k: section[k] for k in got}, path.name
        assert (model.method, model.stop) == ("active_set", "gap")
    authors = ExfmemSettings(method="ista", stop="change", tol=8e-4)
    model, _ = load_evaluated_model(tmp_path / "model.pt", tmp_path / "bank.pt", authors)
    assert (model.method, model.stop, model.tol) == ("ista", "change", 8e-4)
