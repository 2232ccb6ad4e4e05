"""Behaviour of the multimodal L-inf attacks on tiny fixed models."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from avmodels.models.model import AVModel, ModelConfig
from avmodels.robustness.attacks import (
    ATTACKS,
    FGSM,
    MIM,
    PGD,
    RAW_BOUNDS,
    Attack,
    build_attack,
    cross_entropy_loss,
    eval_mode,
    predict_sets,
)

CLASSES = 5


class ToyAV(nn.Module):
    """Linear on the flattened waveform + conv/BN on the image, concatenated, dropout, linear."""

    def __init__(self, samples: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.audio = nn.Linear(samples, 8)
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.visual = nn.Linear(6, 8)
        self.drop = nn.Dropout(0.5)
        self.head = nn.Linear(16, CLASSES)

    def forward(self, audio: Tensor, visual: Tensor) -> Tensor:
        f_a = torch.tanh(self.audio(audio))  # (B, 8)
        f_v = torch.tanh(self.visual(self.bn(self.conv(visual)).relu().mean(dim=(2, 3))))
        return self.head(self.drop(torch.cat([f_a, f_v], dim=1)))


class ToyVisual(nn.Module):
    """A single-input model: conv, pooled, linear."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.head = nn.Linear(6, CLASSES)

    def forward(self, visual: Tensor) -> Tensor:
        return self.head(self.conv(visual).relu().mean(dim=(2, 3)))


def make_inputs(batch: int, samples: int, size: int, seed: int = 0) -> dict[str, Tensor]:
    """Inputs inside RAW_BOUNDS, with some values exactly on the bounds."""
    g = torch.Generator().manual_seed(seed)
    audio = torch.rand(batch, samples, generator=g) * 2 - 1
    visual = torch.rand(batch, 3, size, size, generator=g)
    audio[:, 0], audio[:, 1] = -1.0, 1.0
    visual[:, :, 0, 0], visual[:, :, 0, 1] = 0.0, 1.0
    return {"audio": audio, "visual": visual}


def labels_for(batch: int) -> Tensor:
    return torch.arange(batch) % CLASSES


def assert_in_box(adv: Tensor, clean: Tensor, eps: float | Tensor, bounds: tuple[float, float]):
    low, high = bounds
    assert (adv >= torch.clamp(clean - eps, min=low)).all()
    assert (adv <= torch.clamp(clean + eps, max=high)).all()
    assert ((adv - clean).abs() <= eps + 1e-6).all()
    assert adv.min() >= low and adv.max() <= high


def bits(x: Tensor) -> Tensor:
    return x.contiguous().view(torch.int32)


budget = st.sampled_from([0.0, 1e-3, 0.012, 0.05, 0.4])


@settings(max_examples=30, deadline=None)
@given(
    name=st.sampled_from(sorted(ATTACKS)),
    eps_a=budget,
    eps_v=budget,
    batch=st.integers(1, 3),
    samples=st.sampled_from([8, 24]),
    size=st.sampled_from([4, 7]),
    seed=st.integers(0, 2**16),
)
def test_result_within_budget_and_bounds(name, eps_a, eps_v, batch, samples, size, seed):
    model = ToyAV(samples)
    x = make_inputs(batch, samples, size, seed)
    eps = {"audio": eps_a, "visual": eps_v}
    adv = build_attack(name, model, eps=eps)(x, labels_for(batch))
    assert set(adv) == set(x)
    for k in x:
        assert adv[k].shape == x[k].shape and adv[k].dtype == x[k].dtype
        assert not adv[k].requires_grad
        assert_in_box(adv[k], x[k], eps[k], RAW_BOUNDS[k])


@pytest.mark.parametrize("name", sorted(ATTACKS))
@pytest.mark.parametrize(
    "eps",
    [{"visual": 0.03}, {"audio": 0.0, "visual": 0.03}, {"audio": torch.zeros(1), "visual": 0.03}],
)
def test_unattacked_input_is_bit_identical(name, eps):
    x = make_inputs(2, 16, 6)
    adv = build_attack(name, ToyAV(16), eps=eps)(x, labels_for(2))
    assert torch.equal(bits(adv["audio"]), bits(x["audio"]))
    assert not torch.equal(adv["visual"], x["visual"])


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_zero_budgets_return_inputs_without_calling_the_model(name):
    calls = []
    model = ToyAV(16)
    model.register_forward_hook(lambda *_: calls.append(1))
    x = make_inputs(2, 16, 6)
    adv = build_attack(name, model, eps={"audio": 0.0, "visual": 0.0})(x, labels_for(2))
    assert all(torch.equal(bits(adv[k]), bits(x[k])) for k in x)
    assert calls == []


@pytest.mark.parametrize("cls", [PGD, MIM])
@pytest.mark.parametrize(
    "eps", [{"audio": 0.01}, {"visual": 0.01}, {"audio": 0.05, "visual": 0.02}]
)
def test_iterative_attacks_increase_the_loss(cls, eps):
    model = ToyAV(32).eval()
    x, y = make_inputs(4, 32, 8), labels_for(4)
    adv = cls(model, eps=eps)(x, y)
    with torch.no_grad():
        assert cross_entropy_loss(model, adv, y) > cross_entropy_loss(model, x, y)


def test_fgsm_sweep_equals_fgsm_per_budget():
    model = ToyAV(16)
    x, y = make_inputs(3, 16, 6), labels_for(3)
    per_channel = torch.tensor([0.01, 0.0, 0.03]).view(1, 3, 1, 1)
    budgets = [b for e in (0.004, 0.02, 0.3) for b in ({"audio": e}, {"visual": e})]
    budgets += [{"audio": 0.01, "visual": 0.02}, {"visual": per_channel}, {"audio": 0.0}]
    swept = FGSM(model, eps={}).sweep(x, y, budgets)
    assert len(swept) == len(budgets)
    for b, adv in zip(budgets, swept, strict=True):
        single = FGSM(model, eps=b)(x, y)
        assert all(torch.equal(adv[k], single[k]) for k in x), b


def test_fgsm_sweep_shares_tensors_between_modes():
    x, y = make_inputs(2, 16, 6), labels_for(2)
    a, v, av = FGSM(ToyAV(16), eps={}).sweep(
        x, y, [{"audio": 0.01}, {"visual": 0.01}, {"audio": 0.01, "visual": 0.01}]
    )
    assert av["audio"] is a["audio"] and av["visual"] is v["visual"]
    assert torch.equal(bits(a["visual"]), bits(x["visual"]))


def test_sweep_calls_the_model_once():
    calls = []
    model = ToyAV(16)
    model.register_forward_hook(lambda *_: calls.append(1))
    x, y = make_inputs(2, 16, 6), labels_for(2)
    FGSM(model, eps={}).sweep(x, y, [{"audio": e, "visual": e} for e in (0.01, 0.02, 0.03)])
    assert len(calls) == 1


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_model_mode_and_parameters_untouched(name):
    model = ToyAV(16).train()
    model.drop.eval()  # a mixed state must come back as it was
    model.conv.bias.requires_grad_(False)  # frozen by the user: must stay frozen
    seen = []
    model.register_forward_hook(
        lambda m, *_: seen.append(m.training or m.bn.training or m.head.weight.requires_grad)
    )
    model.head.weight.grad = torch.full_like(model.head.weight, 7.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modes = {n: m.training for n, m in model.named_modules()}
    x = make_inputs(2, 16, 6)
    x["visual"].requires_grad_(True)
    build_attack(name, model, eps={"audio": 0.02, "visual": 0.02})(x, labels_for(2))
    assert seen and not any(seen), "attack must run the model in eval mode, parameters frozen"
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {"conv.bias"}
    assert {n: m.training for n, m in model.named_modules()} == modes
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(model.head.weight.grad, torch.full_like(model.head.weight, 7.0))
    assert all(p.grad is None for n, p in model.named_parameters() if n != "head.weight")
    assert x["visual"].grad is None and x["visual"].requires_grad


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_per_channel_tensor_budget(name):
    x, y = make_inputs(2, 16, 6), labels_for(2)
    eps_v = torch.tensor([0.02, 0.0, 0.05]).view(1, 3, 1, 1)
    adv = build_attack(name, ToyAV(16), eps={"visual": eps_v})(x, y)
    delta = (adv["visual"] - x["visual"]).abs().amax(dim=(0, 2, 3))  # per channel
    assert delta[0] <= 0.02 + 1e-6 and delta[2] <= 0.05 + 1e-6
    assert delta[2] > 0.02 + 1e-6  # the larger channel budget is used
    assert torch.equal(adv["visual"][:, 1], x["visual"][:, 1])
    assert_in_box(adv["visual"], x["visual"], eps_v, RAW_BOUNDS["visual"])


def negative_ce(model: nn.Module, inputs: dict[str, Tensor], labels: Tensor) -> Tensor:
    negative_ce.calls += 1
    return -F.cross_entropy(model(**inputs), labels)


negative_ce.calls = 0


@pytest.mark.parametrize("name", ["fgsm", "mim", "pgd"])  # APGD and Square fix their losses
def test_custom_loss_is_maximised(name):
    model = ToyAV(32).eval()
    x, y = make_inputs(4, 32, 8), labels_for(4)
    negative_ce.calls = 0
    attack = build_attack(name, model, eps={"audio": 0.01, "visual": 0.01}, loss=negative_ce)
    adv = attack(x, y)
    assert negative_ce.calls == getattr(attack, "steps", 1)
    assert "negative_ce" in repr(attack)
    with torch.no_grad():
        assert cross_entropy_loss(model, adv, y) < cross_entropy_loss(model, x, y)


def test_fgsm_with_negated_loss_steps_the_other_way():
    model = ToyAV(16)
    x, y = make_inputs(2, 16, 6), labels_for(2)
    x = {k: v.clamp(0.2, 0.8) for k, v in x.items()}  # away from the bounds
    up = FGSM(model, eps={"audio": 0.1, "visual": 0.1})(x, y)
    down = FGSM(model, eps={"audio": 0.1, "visual": 0.1}, loss=negative_ce)(x, y)
    for k in x:
        torch.testing.assert_close(up[k] - x[k], x[k] - down[k])


@pytest.mark.parametrize("name", sorted(ATTACKS))
@pytest.mark.parametrize("eps", [0.01, 0.1])
def test_single_input_model(name, eps):
    model = ToyVisual()
    x = {"visual": make_inputs(3, 8, 5)["visual"]}
    adv = build_attack(name, model, eps={"visual": eps})(x, labels_for(3))
    assert set(adv) == {"visual"}
    assert_in_box(adv["visual"], x["visual"], eps, RAW_BOUNDS["visual"])
    assert not torch.equal(adv["visual"], x["visual"])


def test_pgd_one_step_of_eps_is_fgsm():
    model = ToyAV(16)
    x, y = make_inputs(2, 16, 6), labels_for(2)
    eps = {"audio": 0.02, "visual": torch.tensor([0.01, 0.02, 0.03]).view(1, 3, 1, 1)}
    pgd = PGD(model, eps=eps, steps=1, alpha=eps)(x, y)
    fgsm = FGSM(model, eps=eps)(x, y)
    assert all(torch.equal(pgd[k], fgsm[k]) for k in x)


@pytest.mark.parametrize("cls", [PGD, MIM])
def test_plain_float_alpha_applies_to_every_attacked_input(cls):
    model = ToyAV(16)
    x, y = make_inputs(2, 16, 6), labels_for(2)
    eps = {"audio": 0.04, "visual": 0.04}
    plain = cls(model, eps=eps, steps=3, alpha=0.01)(x, y)
    per_input = cls(model, eps=eps, steps=3, alpha={"audio": 0.01, "visual": 0.01})(x, y)
    default = cls(model, eps=eps, steps=3)(x, y)  # eps / 8 = 0.005 differs from 0.01
    assert all(torch.equal(plain[k], per_input[k]) for k in x)
    assert any(not torch.equal(plain[k], default[k]) for k in x)
    assert "alpha=0.01" in repr(cls(model, eps=eps, alpha=0.01))


@pytest.mark.parametrize("alpha", [{"audio": -0.01}, -0.01])
def test_negative_alpha_is_refused(alpha):
    with pytest.raises(ValueError, match="negative budget"):
        PGD(ToyAV(16), eps={"audio": 0.1}, alpha=alpha)


def test_mim_without_momentum_is_pgd():
    model = ToyAV(16)
    x, y = make_inputs(2, 16, 6), labels_for(2)
    eps = {"audio": 0.02, "visual": 0.03}
    mim = MIM(model, eps=eps, steps=5, decay=0.0)(x, y)
    pgd = PGD(model, eps=eps, steps=5)(x, y)
    assert all(torch.equal(mim[k], pgd[k]) for k in x)


def test_mim_matches_the_published_update():
    """Dong et al. 2018, Alg. 1 with the L1 norm taken per sample, written out sample by sample."""
    model = ToyAV(16).eval()
    x, y = make_inputs(3, 16, 6), labels_for(3)
    x["audio"][1] *= 1e-3  # samples with very different gradient scales
    eps, decay, steps = 0.03, 0.7, 4
    adv = MIM(model, eps={"audio": eps, "visual": eps}, steps=steps, decay=decay)(x, y)
    ref = {k: v.clone() for k, v in x.items()}
    g = {k: torch.zeros_like(v) for k, v in x.items()}
    alpha = eps / 8
    for _ in range(steps):
        for k in ref:
            ref[k].requires_grad_(True)
        grads = torch.autograd.grad(F.cross_entropy(model(**ref), y), [ref["audio"], ref["visual"]])
        for k, grad in zip(("audio", "visual"), grads, strict=True):
            for i in range(3):
                g[k][i] = decay * g[k][i] + grad[i] / grad[i].abs().sum()
            step = ref[k].detach() + alpha * g[k].sign()
            ref[k] = torch.min(torch.max(step, x[k] - eps), x[k] + eps).clamp(*RAW_BOUNDS[k])
    for k in x:
        torch.testing.assert_close(adv[k], ref[k], rtol=0, atol=1e-6)


class Wavy(nn.Module):
    """Elementwise sin: its input gradient changes sign and size from step to step."""

    def forward(self, audio: Tensor) -> Tensor:
        return torch.sin(40 * audio)


def scaled_sum(model: nn.Module, inputs: dict[str, Tensor], labels: Tensor) -> Tensor:
    return (model(**inputs).sum(dim=1) * labels).sum()  # labels as per-sample weights


def test_mim_normalises_each_sample_separately():
    """With a per-sample L1 norm a sample's result does not depend on the rest of the batch."""
    x = torch.rand(3, 50, generator=torch.Generator().manual_seed(5)) * 2 - 1
    weights = torch.tensor([1.0, 300.0, 0.01])
    mim = MIM(Wavy(), eps={"audio": 0.3}, steps=10, decay=1.0, loss=scaled_sum)
    together = mim({"audio": x}, weights)["audio"]
    for i in range(3):
        alone = mim({"audio": x[i : i + 1]}, weights[i : i + 1])["audio"]
        torch.testing.assert_close(together[i : i + 1], alone, rtol=0, atol=1e-6)


def test_pgd_random_start_stays_in_the_ball():
    model = ToyAV(16)
    x, y = make_inputs(2, 16, 6), labels_for(2)
    torch.manual_seed(3)
    a = PGD(model, eps={"audio": 0.05}, steps=1, alpha={"audio": 0.0}, random_start=True)(x, y)
    assert not torch.equal(a["audio"], x["audio"])
    assert_in_box(a["audio"], x["audio"], 0.05, RAW_BOUNDS["audio"])


def test_attack_works_under_no_grad_and_keeps_inputs():
    model = ToyAV(16)
    x, y = make_inputs(2, 16, 6), labels_for(2)
    copy = {k: v.clone() for k, v in x.items()}
    with torch.no_grad():
        adv = PGD(model, eps={"audio": 0.05, "visual": 0.05}, steps=2)(x, y)
    assert not torch.equal(adv["audio"], x["audio"])
    assert all(torch.equal(x[k], copy[k]) for k in x)


def test_inputs_made_in_inference_mode():
    with torch.inference_mode():
        x, y = make_inputs(2, 16, 6), labels_for(2)
    for name in ATTACKS:
        adv = build_attack(name, ToyAV(16), eps={"visual": 0.05})(x, y)
        assert not torch.equal(adv["visual"], x["visual"])
        assert torch.equal(adv["audio"], x["audio"])
    assert FGSM(ToyAV(16), eps={}).sweep(x, y, [{"audio": 0.1}])[0]["audio"].ne(x["audio"]).any()


def test_bounds_none_empty_and_custom():
    model = ToyAV(16)
    x, y = make_inputs(2, 16, 6), labels_for(2)
    free = FGSM(model, eps={"audio": 0.5}, bounds={})(x, y)
    assert free["audio"].abs().max() > 1.0
    tight = FGSM(model, eps={"audio": 0.5}, bounds={"audio": (-0.1, 0.1)})(x, y)
    assert tight["audio"].abs().max() <= 0.1


def test_negative_budget_raises():
    with pytest.raises(ValueError, match="visual"):
        PGD(ToyVisual(), eps={"visual": torch.tensor([0.1, -0.1, 0.1])})


def test_budget_for_a_missing_input_raises():
    with pytest.raises(KeyError, match="video"):
        PGD(ToyVisual(), eps={"video": 0.01})({"visual": torch.rand(1, 3, 4, 4)}, labels_for(1))


def test_registry_and_repr():
    assert set(ATTACKS) == {"fgsm", "pgd", "mim", "apgd", "square"}
    assert all(issubclass(cls, Attack) for cls in ATTACKS.values())
    with pytest.raises(ValueError, match="fgsm, pgd, mim"):
        build_attack("cw", ToyVisual(), eps={})
    text = repr(MIM(ToyVisual(), eps={"visual": torch.tensor([0.5, 0.25])}, steps=3, decay=0.5))
    for part in ("MIM(", "[0.5, 0.25]", "steps=3", "alpha=eps/8", "decay=0.5", "cross_entropy"):
        assert part in text
    assert "random_start=True" in repr(PGD(ToyVisual(), eps={"visual": 0.1}, random_start=True))


def test_eval_mode_restores_flags_after_errors():
    model = ToyAV(8).train()
    model.bn.eval()
    model.head.bias.requires_grad_(False)
    with pytest.raises(RuntimeError), eval_mode(model, freeze=True):
        assert not model.training
        assert not any(p.requires_grad for p in model.parameters())
        raise RuntimeError
    assert model.training and not model.bn.training and model.conv.training
    assert [n for n, p in model.named_parameters() if not p.requires_grad] == ["head.bias"]


def test_real_concat_model():
    model = AVModel(ModelConfig(variant="concat", num_classes=CLASSES)).train()
    x, y = make_inputs(2, 4096, 32), labels_for(2)
    eps = {"audio": 0.006, "visual": 0.006}
    for name in ATTACKS:
        adv = build_attack(name, model, eps=eps, **({} if name == "fgsm" else {"steps": 2}))(x, y)
        for k in x:
            assert_in_box(adv[k], x[k], eps[k], RAW_BOUNDS[k])
    assert model.training and all(p.grad is None for p in model.parameters())

    modes = ({"audio": 1}, {"visual": 1}, {"audio": 1, "visual": 1})
    budgets = [{k: e for k in mode} for e in (0.004, 0.008) for mode in modes]
    sets = FGSM(model, eps={}).sweep(x, y, budgets)
    encodes = []
    model.audio_net.register_forward_hook(lambda *_: encodes.append(1))
    shared = predict_sets(model, sets, share_features=True)
    assert len(encodes) == 3  # 3 distinct audio tensors (clean, 2 budgets), as few as possible
    assert model.training
    for logits, plain in zip(shared, predict_sets(model, sets), strict=True):
        torch.testing.assert_close(logits, plain)
