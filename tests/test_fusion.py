"""Fusion registry and the five fusion formulas of appendix A.4."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from avmodels.models.fusion import FUSIONS, build_fusion

DIM = 16


@pytest.fixture
def feats() -> dict[str, Tensor]:
    torch.manual_seed(0)
    return {
        "audio": torch.randn(2, DIM, requires_grad=True),
        "visual": torch.randn(2, DIM, requires_grad=True),
    }


def test_registry_names() -> None:
    assert tuple(FUSIONS) == ("sum", "concat", "film", "gated_sum", "gated_concat")


@pytest.mark.parametrize("name", list(FUSIONS))
def test_shape_and_gradient(name: str, feats: dict[str, Tensor]) -> None:
    fusion = build_fusion(name, dim=DIM)
    out = fusion(feats)
    assert out.shape == (2, fusion.out_dim)
    out.square().sum().backward()
    for key, value in feats.items():
        assert value.grad is not None and value.grad.abs().sum() > 0, key
    for pname, param in fusion.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, pname


def test_formulas(feats: dict[str, Tensor]) -> None:
    f_a, f_v = feats["audio"], feats["visual"]
    gate_v, gate_a = torch.sigmoid(f_a) * f_v, torch.sigmoid(f_v) * f_a
    torch.testing.assert_close(build_fusion("sum", DIM)(feats), f_a + f_v)
    torch.testing.assert_close(build_fusion("concat", DIM)(feats), torch.cat([f_a, f_v], 1))
    torch.testing.assert_close(build_fusion("gated_sum", DIM)(feats), gate_v + gate_a)
    gated_concat = build_fusion("gated_concat", DIM)(feats)
    torch.testing.assert_close(gated_concat, torch.cat([gate_v, gate_a], 1))
    film = build_fusion("film", DIM)
    torch.testing.assert_close(film(feats), film.alpha(f_a) * f_v + f_a)


def test_film_modulates_visual_by_audio(feats: dict[str, Tensor]) -> None:
    film = build_fusion("film", DIM)
    with torch.no_grad():
        film.alpha.weight.zero_()
        film.alpha.bias.fill_(2.0)
    torch.testing.assert_close(film(feats), 2 * feats["visual"] + feats["audio"])


def test_out_dims() -> None:
    dims = {name: build_fusion(name, dim=8).out_dim for name in FUSIONS}
    assert dims == {"sum": 8, "concat": 16, "film": 8, "gated_sum": 8, "gated_concat": 16}


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="bilinear") as err:
        build_fusion("bilinear")
    assert all(name in str(err.value) for name in FUSIONS)
