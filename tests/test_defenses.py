"""Defenses: the training losses, the batched differentiable Lasso, memory banks and ExFMem."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import Lasso
from torch import Tensor, nn

from avmodels.models.model import ModelConfig, build_model
from avmodels.robustness import active_set, defenses, exfmem, lasso
from avmodels.robustness.attacks import FGSM
from avmodels.robustness.defenses import (
    TRAINING_LOSSES,
    PCLLoss,
    adaptive_attack_loss,
    cosine_similarity,
    fused_features,
    make_training_loss,
    prototype_conformity,
)
from avmodels.robustness.exfmem import ExFMemModel, build_memory_banks, exfmem_model
from avmodels.robustness.lasso import lasso_objective, lipschitz_constant, solve_lasso, sparse_code
from avmodels.settings import ExfmemSettings
from avmodels.workflow.config import load_schema

LAM = 0.1


def lasso_problem(d: int, k: int, batch: int, seed: int) -> tuple[Tensor, Tensor]:
    """Queries (B, d) and a memory (d, K) with roughly unit-norm columns, float64."""
    gen = torch.Generator().manual_seed(seed)
    memory = torch.randn(d, k, generator=gen, dtype=torch.float64) / math.sqrt(d)
    return torch.randn(batch, d, generator=gen, dtype=torch.float64), memory


class TinyAV(nn.Module):
    """An AVModel-like stand-in: linear encoders, concat fusion, linear classifier."""

    modalities = ("audio", "visual")

    def __init__(self, dim: int = 8, classes: int = 3) -> None:
        super().__init__()
        self.audio_net, self.visual_net = nn.Linear(16, dim), nn.Linear(12, dim)
        self.classifier = nn.Linear(2 * dim, classes)

    def encode(self, audio: Tensor, visual: Tensor) -> dict[str, Tensor]:
        return {"audio": torch.relu(self.audio_net(audio)), "visual": self.visual_net(visual)}

    def fusion(self, feats: dict[str, Tensor]) -> Tensor:
        return torch.cat([feats["audio"], feats["visual"]], dim=1)

    def head(self, feats: dict[str, Tensor]) -> Tensor:
        return self.classifier(self.fusion(feats))

    def forward(self, audio: Tensor, visual: Tensor) -> Tensor:
        return self.head(self.encode(audio, visual))


def tiny_setup(seed: int = 0) -> tuple[TinyAV, dict[str, Tensor], Tensor, dict[str, Tensor]]:
    """Model, inputs (batch 4), labels and banks of 10 training clips' features (float64)."""
    torch.manual_seed(seed)
    model = TinyAV().double().eval()
    inputs = {"audio": torch.randn(4, 16).double(), "visual": torch.randn(4, 12).double()}
    labels = torch.tensor([0, 1, 2, 0])
    with torch.no_grad():
        train = model.encode(torch.randn(10, 16).double(), torch.randn(10, 12).double())
    return model, inputs, labels, build_memory_banks(train, size=10, seed=0)


# -- cosine and the similarity losses -------------------------------------------------------------
def test_cosine_similarity_is_eq2_and_guards_zero_vectors() -> None:
    fa, fv = torch.randn(5, 7), torch.randn(5, 7)
    assert torch.allclose(cosine_similarity(fa, fv), F.cosine_similarity(fa, fv, dim=1), atol=1e-6)
    zero = cosine_similarity(torch.zeros(2, 7), torch.randn(2, 7))
    assert torch.equal(zero, torch.zeros(2))


def test_loss_registry_and_factory() -> None:
    assert set(TRAINING_LOSSES) == {"ce", "minsim", "maxsim", "pcl"}
    logits, labels = torch.randn(4, 3), torch.tensor([0, 1, 2, 1])
    feats = {"audio": torch.randn(4, 5), "visual": torch.randn(4, 5)}
    ce = F.cross_entropy(logits, labels)
    cos = cosine_similarity(feats["audio"], feats["visual"]).mean()
    expected = {"ce": ce, "minsim": ce + 0.5 * cos, "maxsim": ce + 0.5 * (1 - cos)}
    for name, value in expected.items():
        module = make_training_loss(name, num_classes=3, feature_dim=5, weight=0.5)
        assert torch.allclose(module(logits, labels, feats), value)
        assert list(module.parameters()) == []
    pcl = make_training_loss("pcl", num_classes=3, feature_dim=5, weight=0.5)
    assert isinstance(pcl, PCLLoss) and pcl.centres.shape == (3, 10)
    with pytest.raises(ValueError, match="valid"):
        make_training_loss("nope", num_classes=3)
    with pytest.raises(ValueError, match="audio and visual"):
        TRAINING_LOSSES["minsim"](logits, labels, {"audio": feats["audio"]})


@pytest.mark.parametrize(("name", "direction"), [("minsim", -1), ("maxsim", 1)])
def test_similarity_losses_move_the_cosine(name: str, direction: int) -> None:
    """Optimising MinSim lowers the audio-visual cosine, MaxSim raises it."""
    torch.manual_seed(0)
    fa = nn.Parameter(torch.rand(8, 6) + 0.5 * torch.randn(8, 6))
    fv = nn.Parameter(torch.rand(8, 6) + 0.5 * torch.randn(8, 6))
    classifier, labels = nn.Linear(12, 3), torch.randint(0, 3, (8,))
    loss_fn = make_training_loss(name, num_classes=3, feature_dim=6, weight=1.0)
    before = float(cosine_similarity(fa, fv).mean().detach())
    opt = torch.optim.SGD([fa, fv, *classifier.parameters()], lr=0.5)
    for _ in range(30):
        feats = {"audio": fa, "visual": fv}
        loss = loss_fn(classifier(torch.cat([fa, fv], 1)), labels, feats)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = float(cosine_similarity(fa, fv).mean().detach())
    assert direction * (after - before) > 0.1


# -- PCL -----------------------------------------------------------------------------------------
def test_prototype_conformity_matches_the_published_formula() -> None:
    torch.manual_seed(1)
    feats, centres, labels = torch.randn(5, 4), torch.randn(3, 4), torch.tensor([0, 2, 1, 1, 0])
    total = 0.0
    for f, y in zip(feats, labels.tolist(), strict=True):
        others = [j for j in range(3) if j != y]
        push = sum(
            float((f - centres[j]).norm() + (centres[y] - centres[j]).norm()) for j in others
        )
        total += float((f - centres[y]).norm()) - push / 2
    assert prototype_conformity(feats, labels, centres).item() == pytest.approx(total / 5, rel=1e-5)


def test_pcl_pulls_features_to_their_centres_and_spreads_the_centres() -> None:
    """A few SGD steps shrink the feature-to-own-centre distance and spread the centres.

    The centres get a 10x smaller learning rate (like the PCL reference code's pushed centres):
    the centre-separation term has a gradient of constant size, so at the features' rate the
    centres run away faster than the features follow.
    """
    torch.manual_seed(0)
    labels = torch.arange(4).repeat(3)  # 12 samples, 4 classes
    fa, fv = nn.Parameter(torch.randn(12, 5)), nn.Parameter(torch.randn(12, 5))
    loss_fn = make_training_loss("pcl", num_classes=4, feature_dim=5, weight=1.0)
    classifier = nn.Linear(10, 4)

    @torch.no_grad()
    def spread() -> tuple[float, float]:
        fused, centres = torch.cat([fa, fv], 1), loss_fn.centres
        intra = (fused - centres[labels]).norm(dim=1).mean()
        return float(intra), float(torch.pdist(centres).mean())

    intra, inter = spread()
    opt = torch.optim.SGD(
        [
            {"params": [fa, fv, *classifier.parameters()], "lr": 2.0},
            {"params": list(loss_fn.parameters()), "lr": 0.2},
        ]
    )
    for _ in range(30):
        loss = loss_fn(classifier(torch.cat([fa, fv], 1)), labels, {"audio": fa, "visual": fv})
        opt.zero_grad()
        loss.backward()
        opt.step()
    intra_after, inter_after = spread()
    assert intra_after < 0.5 * intra
    assert inter_after > inter


def test_pcl_uses_the_fused_feature_when_given() -> None:
    model = build_model(ModelConfig(variant="sum", num_classes=3))
    feats = {"audio": torch.randn(2, 512), "visual": torch.randn(2, 512)}
    fused = fused_features(model, feats)
    assert torch.equal(fused, feats["audio"] + feats["visual"])
    loss = PCLLoss(num_classes=3, fused_dim=512)
    assert torch.equal(loss.features({**feats, "fused": fused}), fused)
    concat = PCLLoss(num_classes=3, feature_dim=512)  # Concat network: no "fused" needed
    assert torch.equal(concat.features(feats), torch.cat([feats["audio"], feats["visual"]], 1))
    with pytest.raises(ValueError, match="dims"):
        concat(torch.randn(2, 3), torch.tensor([0, 1]), {**feats, "fused": fused})


# -- the Lasso solver ----------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["ista", "fista"])
@pytest.mark.parametrize(("d", "k", "seed"), [(12, 24, 0), (20, 10, 1), (16, 40, 2)])
def test_sparse_code_matches_sklearn_lasso(method: str, d: int, k: int, seed: int) -> None:
    """Same objective as scikit-learn's Lasso(alpha=lam/d) per sample, to 1e-4 relative."""
    queries, memory = lasso_problem(d, k, batch=3, seed=seed)
    codes = sparse_code(queries, memory, LAM, max_iter=200_000, tol=1e-10, method=method)
    ours = lasso_objective(queries, memory, codes, LAM)
    for i in range(3):
        fit = Lasso(alpha=LAM / d, fit_intercept=False, tol=1e-10, max_iter=1_000_000)
        fit.fit(memory.numpy(), queries[i].numpy())
        ref = lasso_objective(queries[i : i + 1], memory, torch.from_numpy(fit.coef_)[None], LAM)
        assert abs(float(ours[i] - ref)) <= 1e-4 * float(ref)


@pytest.mark.parametrize("method", ["ista", "fista"])
def test_sparse_code_gradcheck(method: str) -> None:
    """The authors' stop rule differentiates through the steps run. A fixed number of steps
    (tol 0) is a piecewise-linear map of the features; on a random
    problem no pre-threshold value sits within gradcheck's 1e-6 of the threshold, so the support
    pattern, and with it the Jacobian, is the same for all perturbed inputs."""
    queries, memory = lasso_problem(6, 10, batch=2, seed=3)
    queries.requires_grad_(True)
    fn = lambda f: sparse_code(f, memory, LAM, 25, 0.0, method, stop="change")  # noqa: E731
    assert torch.autograd.gradcheck(fn, (queries,))


def unrolled(
    features: Tensor, memory: Tensor, lam: float, max_iter: int, tol: float, method: str, stop: str
):
    """Plain autograd through ISTA / FISTA, written out from the textbook updates."""
    step = 1.0 / lipschitz_constant(memory)
    a = torch.zeros(features.shape[0], memory.shape[1], dtype=features.dtype)
    y, t = a, 1.0
    for _ in range(max_iter):
        z = y - step * ((y @ memory.T - features) @ memory)
        new = torch.sign(z) * torch.relu(z.abs() - lam * step)
        t_next = (1 + math.sqrt(1 + 4 * t * t)) / 2
        y = new + ((t - 1) / t_next) * (new - a) if method == "fista" else new
        t, change, a = t_next, float((new - a).detach().norm()), new  # the batch's change
        if change < tol:
            break
    return a


@pytest.mark.parametrize("method", ["ista", "fista"])
def test_sparse_code_backward_equals_autograd_through_the_iterations(method: str) -> None:
    queries, memory = lasso_problem(10, 30, batch=4, seed=4)
    upstream = torch.randn(4, 30, dtype=torch.float64)
    grads = []
    for fn in (sparse_code, unrolled):
        f = queries.clone().requires_grad_(True)
        codes = fn(f, memory, LAM, 500, 1e-5, method, stop="change")
        (codes * upstream).sum().backward()
        grads.append((codes.detach(), f.grad))
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-12)
    assert torch.allclose(grads[0][1], grads[1][1], atol=1e-10)
    assert grads[0][1].abs().sum() > 0


def test_sparse_code_batch_equals_per_sample() -> None:
    queries, memory = lasso_problem(8, 16, batch=5, seed=5)
    batch = sparse_code(queries, memory, LAM, max_iter=300, tol=0.0)
    single = torch.cat([sparse_code(q[None], memory, LAM, max_iter=300, tol=0.0) for q in queries])
    assert torch.allclose(batch, single, atol=1e-12)
    assert (batch == 0).any() and (batch != 0).any()  # sparse but not trivial


def test_solver_stops_on_tol_and_flags_divergence() -> None:
    queries, memory = lasso_problem(8, 16, batch=2, seed=6)
    loose = solve_lasso(queries, memory, LAM, max_iter=2000, tol=1e-3)
    tight = solve_lasso(queries, memory, LAM, max_iter=2000, tol=1e-8)
    assert loose.converged and loose.iterations < tight.iterations
    capped = solve_lasso(queries, memory, LAM, max_iter=7, tol=0.0)
    assert capped.iterations == 7 and not capped.converged
    big = 3.0 / lipschitz_constant(memory)  # above 2 / L: ISTA diverges
    diverged = solve_lasso(queries, memory, LAM, max_iter=5000, tol=1e-8, method="ista", step=big)
    assert not diverged.converged
    with pytest.raises(ValueError, match="detach"):
        sparse_code(queries, memory.clone().requires_grad_(True), LAM)


# -- memory banks --------------------------------------------------------------------------------
def test_memory_banks_pick_the_same_clips_for_all_modalities() -> None:
    visual = torch.randn(50, 6)
    feats = {"audio": 2 * visual, "visual": visual}
    banks = build_memory_banks(feats, size=20, seed=3)
    assert banks["visual"].shape == (6, 20)
    assert torch.equal(banks["audio"], 2 * banks["visual"])
    again = build_memory_banks(feats, size=20, seed=3)
    other = build_memory_banks(feats, size=20, seed=4)
    assert torch.equal(again["visual"], banks["visual"])
    assert not torch.equal(other["visual"], banks["visual"])
    rows = {tuple(r.tolist()) for r in visual}
    assert all(tuple(c.tolist()) in rows for c in banks["visual"].T)  # real, distinct clips
    assert len({tuple(c.tolist()) for c in banks["visual"].T}) == 20
    small = build_memory_banks(feats, size=80, seed=0)
    assert torch.equal(small["visual"], visual.T)  # N <= K: every clip, in order


def test_memory_banks_class_balanced() -> None:
    labels = torch.tensor([0] * 30 + [1] * 15 + [2] * 5)
    feats = {"audio": torch.arange(50.0)[:, None], "visual": torch.arange(50.0)[:, None]}
    bank = build_memory_banks(feats, size=21, seed=0, labels=labels)["audio"]
    counts = torch.bincount(labels[bank[0].long()], minlength=3).tolist()
    assert counts == [8, 8, 5]  # class 2 runs out; the others share the rest evenly
    with pytest.raises(ValueError, match="different numbers"):
        build_memory_banks({"audio": torch.zeros(3, 2), "visual": torch.zeros(4, 2)}, 2, 0)


# -- ExFMem --------------------------------------------------------------------------------------
def test_exfmem_blend_zero_is_the_base_model() -> None:
    model, inputs, _, banks = tiny_setup()
    defended = ExFMemModel(model, banks, blend=0.0).eval()
    assert torch.equal(defended(**inputs), model(**inputs))
    assert defended.modalities == model.modalities
    assert {"bank_audio", "bank_visual"} <= set(defended.state_dict())


def test_exfmem_output_is_the_blended_reconstruction() -> None:
    model, inputs, _, banks = tiny_setup()
    defended = ExFMemModel(model, banks, lam=0.05, blend=0.3, max_iter=300, tol=1e-6).eval()
    feats = model.encode(**inputs)
    expected = {}
    for m, f in feats.items():
        codes = sparse_code(f, banks[m], 0.05, max_iter=300, tol=1e-6)
        expected[m] = 0.3 * codes @ banks[m].T + 0.7 * f
    assert torch.allclose(defended(**inputs), model.head(expected), atol=1e-10)
    assert not torch.allclose(defended(**inputs), model(**inputs))
    with pytest.raises(ValueError, match="reads"):
        ExFMemModel(model, {"depth": banks["audio"]})


def test_gradient_flows_from_exfmem_output_to_inputs() -> None:
    model, inputs, labels, banks = tiny_setup()
    defended = ExFMemModel(model, banks).eval()
    leaves = {m: x.clone().requires_grad_(True) for m, x in inputs.items()}
    loss = adaptive_attack_loss("minsim_exfmem")(defended, leaves, labels)
    grads = torch.autograd.grad(loss, list(leaves.values()))
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)


def test_fgsm_attacks_a_real_model_through_exfmem() -> None:
    torch.manual_seed(0)
    base = build_model(ModelConfig(variant="concat", num_classes=3)).eval()
    inputs = {"audio": 0.5 * torch.randn(2, 4096).clamp(-1, 1), "visual": torch.rand(2, 3, 32, 32)}
    with torch.no_grad():
        feats = base.encode(**inputs)
    defended = ExFMemModel(base, build_memory_banks(feats, size=8, seed=0), max_iter=50).eval()
    labels = torch.tensor([0, 1])
    attack = FGSM(defended, {"audio": 0.01, "visual": 0.01}, loss=adaptive_attack_loss("exfmem"))
    adv = attack(inputs, labels)
    for m in inputs:
        delta = (adv[m] - inputs[m]).abs()
        assert delta.max() <= 0.01 + 1e-6 and delta.max() > 0


# -- the attacker's loss -------------------------------------------------------------------------
def test_adaptive_attack_loss_terms() -> None:
    model, inputs, labels, _ = tiny_setup()
    feats = model.encode(**inputs)
    ce = F.cross_entropy(model.head(feats), labels)
    cos = cosine_similarity(feats["audio"], feats["visual"]).mean()
    for name in ("ce", "none", "pcl", "exfmem", "unimodal_audio"):
        assert torch.allclose(adaptive_attack_loss(name)(model, inputs, labels), ce)
    assert torch.allclose(
        adaptive_attack_loss("minsim", 0.8)(model, inputs, labels), ce + 0.8 * cos
    )
    assert torch.allclose(adaptive_attack_loss("maxsim")(model, inputs, labels), ce + 1 - cos)
    assert adaptive_attack_loss("minsim", 0.8).__name__ == "adaptive_minsim_w0.8"
    with pytest.raises(ValueError, match="unknown defense"):
        adaptive_attack_loss("minsin")


def test_module_doc_names_exist() -> None:
    for name in ("PCLLoss", "make_training_loss", "adaptive_attack_loss", "training_loss_attack"):
        assert getattr(defenses, name).__doc__
    for name in ("ExFMemModel", "build_memory_banks", "exfmem_model"):
        assert getattr(exfmem, name).__doc__


def test_each_solver_of_the_schema_is_reached_from_the_config(monkeypatch) -> None:
    """``exfmem.method`` picks the Lasso solver; every one solves Eq. 4 to the same codes."""
    schema = load_schema(Path(__file__).parents[1] / "config" / "config.schema.yaml")
    methods = schema["properties"]["exfmem"]["properties"]["method"]["enum"]
    assert sorted(methods) == sorted(lasso.LASSO_METHODS)
    ran: list[str] = []
    exact, proximal = active_set.active_set_lasso, lasso._solve_to_gap
    monkeypatch.setattr(
        active_set, "active_set_lasso", lambda *a, **k: ran.append("active_set") or exact(*a, **k)
    )
    monkeypatch.setattr(
        lasso, "_solve_to_gap", lambda *a, **k: ran.append(a[5]) or proximal(*a, **k)
    )
    model, inputs, _, banks = tiny_setup()
    outputs = {}
    for method in methods:
        ran.clear()
        settings = ExfmemSettings(size=10, lam=0.05, method=method, tol=1e-9, max_iter=100_000)
        with torch.no_grad():
            outputs[method] = exfmem_model(model, banks, settings)(**inputs)
        assert ran and set(ran) == {method}, (method, ran)
    for out in outputs.values():
        torch.testing.assert_close(out, outputs["active_set"], atol=1e-6, rtol=0)
