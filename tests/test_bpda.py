"""BPDA through ExFMem: same logits, the coder's backward replaced by the identity."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_defenses import tiny_setup

from avmodels.robustness.apgd import APGD
from avmodels.robustness.bpda import BPDA
from avmodels.robustness.exfmem import ExFMemModel
from avmodels.robustness.worstcase import worst_case


def input_gradients(model, inputs, labels) -> dict[str, torch.Tensor]:
    leaves = {m: x.clone().requires_grad_(True) for m, x in inputs.items()}
    loss = F.cross_entropy(model(**leaves), labels)
    return dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values())), strict=True))


def test_same_logits_identity_backward():
    base, inputs, labels, banks = tiny_setup()
    defended = ExFMemModel(base, banks, lam=0.05, blend=0.5).eval()
    wrapped = BPDA(defended)
    assert torch.equal(wrapped(**inputs), defended(**inputs))
    assert wrapped.modalities == defended.modalities
    # expected: the head's gradient at the denoised features, chained through the encoders only
    with torch.no_grad():
        denoised = defended.encode(**inputs)
    feats = {m: f.clone().requires_grad_(True) for m, f in denoised.items()}
    head_grads = torch.autograd.grad(
        F.cross_entropy(base.head(feats), labels), list(feats.values())
    )
    leaves = {m: x.clone().requires_grad_(True) for m, x in inputs.items()}
    encoded = base.encode(**leaves)
    expected = torch.autograd.grad(
        list(encoded.values()), list(leaves.values()), grad_outputs=list(head_grads)
    )
    got = input_gradients(wrapped, inputs, labels)
    through = input_gradients(defended, inputs, labels)
    for m, g in zip(leaves, expected, strict=True):
        torch.testing.assert_close(got[m], g)
    assert any(not torch.allclose(got[m], through[m]) for m in got)


def test_attacks_run_through_bpda_and_score_on_exfmem():
    base, inputs, labels, banks = tiny_setup()
    defended = ExFMemModel(base, banks).eval()
    adv = APGD(BPDA(defended), {"audio": 0.5, "visual": 0.5}, bounds={}, steps=5)(inputs, labels)
    assert all((adv[m] - inputs[m]).abs().max() <= 0.5 + 1e-9 for m in inputs)
    with torch.no_grad():
        loss = F.cross_entropy(defended(**adv), labels)
        assert loss > F.cross_entropy(defended(**inputs), labels)


def test_only_exfmem():
    base, *_ = tiny_setup()
    with pytest.raises(TypeError, match="ExFMemModel"):
        BPDA(base)


def test_worst_case_attacks_through_bpda():
    base, inputs, labels, banks = tiny_setup()
    defended = ExFMemModel(base, banks).eval()
    specs = {"pgd": ("pgd", {"steps": 3})}
    eps = {"audio": 0.3, "visual": 0.3}
    coder_grad_modes = []
    denoise = defended.denoise

    def recorded(feats):
        coder_grad_modes.append(torch.is_grad_enabled())
        return denoise(feats)

    with torch.no_grad():
        clean = defended(**inputs).argmax(1) == labels
    defended.denoise = recorded
    hits = worst_case(defended, inputs, labels, specs, eps, cascade=False, attacked=BPDA(defended))
    assert torch.equal(hits["clean"], clean)
    # clean scoring, 3 PGD steps, adversarial scoring; none differentiates the coder
    assert len(coder_grad_modes) == 5 and not any(coder_grad_modes)
    coder_grad_modes.clear()
    worst_case(defended, inputs, labels, specs, eps, cascade=False)  # through the coder
    assert coder_grad_modes.count(True) == 3
