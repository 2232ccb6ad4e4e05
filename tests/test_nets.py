"""AudioNet and VisualNet: shapes, strides, gradients, local pretrained weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models import resnet18

from avmodels.models.nets import AUDIO_CHANNELS, AudioNet, VisualNet
from avmodels.models.resnet import ResNet18Trunk


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("length", [4096, 8192])
def test_audio_net_shape_and_gradient(length: int) -> None:
    net = AudioNet()
    wave = (torch.rand(2, length) * 2 - 1).requires_grad_()
    out = net(wave)
    assert out.shape == (2, 512)
    out.sum().backward()
    assert wave.grad is not None and wave.grad.abs().sum() > 0


def test_audio_net_architecture() -> None:
    convs = [m for m in AudioNet().modules() if isinstance(m, nn.Conv1d)]
    assert len(convs) == 8
    assert [c.out_channels for c in convs[1::2]] == list(AUDIO_CHANNELS)
    assert all(c.kernel_size == (3,) and c.stride == (2,) and c.padding == (1,) for c in convs)
    assert sum(isinstance(m, nn.MaxPool1d) for m in AudioNet().modules()) == 4


@pytest.mark.parametrize("length", [1000, 4096, 65535])
def test_audio_net_accepts_channel_axis_and_any_length(length: int) -> None:
    net = AudioNet().eval()
    wave = torch.rand(2, length) * 2 - 1
    with torch.no_grad():
        flat, with_channel = net(wave), net(wave.unsqueeze(1))
    assert flat.shape == (2, 512)
    torch.testing.assert_close(flat, with_channel)


@pytest.mark.parametrize(("stride", "side"), [(32, 2), (16, 4), (8, 8)])
def test_visual_net_output_stride(stride: int, side: int) -> None:
    net = VisualNet(output_stride=stride).eval()
    img = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        fmap, pooled = net.feature_map(img), net(img)
    assert fmap.shape == (2, 512, side, side)
    torch.testing.assert_close(pooled, fmap.amax(dim=(2, 3)))


def test_visual_net_strides_share_weight_shapes() -> None:
    VisualNet(output_stride=8).load_state_dict(VisualNet(output_stride=32).state_dict())


def test_visual_net_rejects_unknown_stride() -> None:
    with pytest.raises(ValueError, match="output_stride"):
        VisualNet(output_stride=4)


def test_visual_net_gradient_reaches_image() -> None:
    img = torch.randn(2, 3, 32, 32, requires_grad=True)
    VisualNet()(img).sum().backward()
    assert img.grad is not None and img.grad.abs().sum() > 0


def test_visual_net_loads_local_torchvision_weights(tmp_path) -> None:
    reference = resnet18(weights=None).eval()
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)  # includes fc.*, which is ignored
    net = VisualNet(pretrained=str(path)).eval()
    for key, value in net.resnet.state_dict().items():
        torch.testing.assert_close(value, reference.state_dict()[key])
    reference.avgpool, reference.fc = nn.Identity(), nn.Identity()
    img = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(net.feature_map(img).flatten(1), reference(img))


def test_visual_net_rejects_incomplete_weights(tmp_path) -> None:
    state = resnet18(weights=None).state_dict()
    del state["layer4.1.conv2.weight"]
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    with pytest.raises(RuntimeError, match="layer4.1.conv2.weight"):
        VisualNet(pretrained=path)


def test_trunk_draws_torchvision_resnet18_weights_from_a_seed() -> None:
    torch.manual_seed(7)
    ours = ResNet18Trunk().state_dict()
    torch.manual_seed(7)
    reference = {k: v for k, v in resnet18(weights=None).state_dict().items() if "fc." not in k}
    assert list(ours) == list(reference)
    for key, value in reference.items():
        torch.testing.assert_close(ours[key], value, rtol=0, atol=0, msg=key)


def test_trunk_computes_what_torchvision_resnet18_computes() -> None:
    reference = resnet18(weights=None).eval()
    trunk = ResNet18Trunk().eval()
    trunk.load_state_dict({k: v for k, v in reference.state_dict().items() if "fc." not in k})
    reference.avgpool, reference.fc = nn.Identity(), nn.Identity()
    img = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(trunk(img).flatten(1), reference(img))
