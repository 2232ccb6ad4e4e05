"""Audio and visual encoders of the audio-visual event recognition network.

Tian & Xu, "Can audio-visual integration strengthen robustness under multimodal
attacks?", CVPR 2021 (arXiv:2104.02000), Sec. 3.2 and appendix A.3: a 1-D
convolutional audio network over the raw waveform and a ResNet18 visual network,
each giving a 512-d feature by global max pooling.

Visual pooling is an option (:data:`VISUAL_POOLS`, default ``"max"``, the paper's text): the
authors' public code keeps torchvision's average pool inside its ResNet and then takes a max
over the resulting 1x1 map, so their visual feature is in effect global *average* pooled;
``"avg"`` reproduces that.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

from torch import Tensor, nn

from avmodels import atomic
from avmodels.models.resnet import ResNet18Trunk

logger = logging.getLogger(__name__)

FEATURE_DIM = 512
AUDIO_CHANNELS = (64, 128, 256, 512)
OUTPUT_STRIDES = {32: 0, 16: 1, 8: 2}  # how many of the last stages lose their stride
VISUAL_POOLS = ("max", "avg")  # global pooling of the visual map: paper's text / authors' code


def _set_dilation(conv: nn.Conv2d, dilation: int) -> None:
    conv.dilation, conv.padding = (dilation, dilation), (dilation, dilation)


def _dilate_stage(stage: nn.Sequential, previous: int) -> int:
    """Replace a ResNet stage's stride 2 by dilation, as torchvision's
    ``replace_stride_with_dilation`` does for Bottleneck (its BasicBlock refuses): the first
    3x3 conv keeps the incoming dilation, the later ones double it. Weight shapes are kept.
    """
    first, dilation = stage[0], 2 * previous
    first.conv1.stride = first.downsample[0].stride = (1, 1)
    _set_dilation(first.conv1, previous)
    for conv in [first.conv2] + [c for block in stage[1:] for c in (block.conv1, block.conv2)]:
        _set_dilation(conv, dilation)
    return dilation


def _audio_block(in_ch: int, out_ch: int) -> nn.Sequential:
    """Two [Conv1d(k=3, s=2, p=1) -> BatchNorm1d -> ReLU] layers, then MaxPool1d(2, 2)."""
    layers: list[nn.Module] = []
    for c_in in (in_ch, out_ch):
        conv = nn.Conv1d(c_in, out_ch, kernel_size=3, stride=2, padding=1)
        layers += [conv, nn.BatchNorm1d(out_ch), nn.ReLU(inplace=True)]
    # ceil_mode keeps one step for length-1 inputs (short audio); same as floor on even lengths
    layers.append(nn.MaxPool1d(2, 2, ceil_mode=True))
    return nn.Sequential(*layers)


class AudioNet(nn.Module):
    """1-D convolutional audio network: 8 conv layers in 4 blocks, global max pool (A.3).

    Each block downsamples by 8, so the 65535-sample paper window (about 5.94 s at
    11025 Hz) ends at 16 time steps and 4096 samples at one; shorter audio still works.

    Shape:
        wave: (B, T) or (B, 1, T), float in [-1, 1]. Output: (B, 512).

    >>> AudioNet().eval()(torch.zeros(2, 4096)).shape
    torch.Size([2, 512])
    """

    def __init__(self) -> None:
        super().__init__()
        chans = (1, *AUDIO_CHANNELS)
        self.blocks = nn.Sequential(*(_audio_block(a, b) for a, b in itertools.pairwise(chans)))
        self.out_dim = AUDIO_CHANNELS[-1]

    def forward(self, wave: Tensor) -> Tensor:
        if wave.dim() == 2:
            wave = wave.unsqueeze(1)  # (B, 1, T)
        assert wave.dim() == 3 and wave.shape[1] == 1, f"expected (B, T), got {tuple(wave.shape)}"
        return self.blocks(wave).amax(dim=-1)  # (B, 512, t) -> (B, 512)


class VisualNet(nn.Module):
    """ResNet18 without its average pool and fc layer, then global max (A.3) or average pool.

    He et al., "Deep residual learning for image recognition", CVPR 2016 (arXiv:1512.03385).

    Arguments:
        output_stride: 32 (the plain ResNet18), 16 or 8; the smaller strides dilate the
            last stages (stride replaced by dilation) so small frames keep a usable
            spatial map for sound source localization.
        pretrained: path of a local state-dict file with torchvision resnet18 keys
            (``fc.*`` ignored); never downloaded.
        pool: "max" (the paper's text, default) or "avg" (what the authors' code computes).

    Shape:
        img: (B, 3, H, W), ImageNet-normalised. ``forward``: (B, 512);
        ``feature_map``: (B, 512, ceil(H / output_stride), ceil(W / output_stride)).

    >>> VisualNet(output_stride=16).feature_map(torch.zeros(1, 3, 64, 64)).shape
    torch.Size([1, 512, 4, 4])
    """

    def __init__(
        self, output_stride: int = 32, pretrained: str | Path | None = None, pool: str = "max"
    ) -> None:
        super().__init__()
        if output_stride not in OUTPUT_STRIDES:
            raise ValueError(f"output_stride must be one of {sorted(OUTPUT_STRIDES)}")
        if pool not in VISUAL_POOLS:
            raise ValueError(f"visual pool must be one of {', '.join(VISUAL_POOLS)}, got {pool!r}")
        self.output_stride, self.pool = output_stride, pool
        self.resnet = ResNet18Trunk()
        num_dilated, dilation = OUTPUT_STRIDES[output_stride], 1
        for stage in (self.resnet.layer3, self.resnet.layer4)[2 - num_dilated :]:
            dilation = _dilate_stage(stage, dilation)
        self.out_dim = FEATURE_DIM
        if pretrained is not None:
            self.load_pretrained(pretrained)

    def load_pretrained(self, path: str | Path) -> None:
        """Load torchvision resnet18 weights from a local file, dropping ``fc.*``."""
        state = atomic.torch_load(path, map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        self.resnet.load_state_dict(state, strict=True)
        logger.info("loaded visual weights from %s", path)

    def feature_map(self, img: Tensor) -> Tensor:
        return self.resnet(img)  # (B, 512, h, w)

    def forward(self, img: Tensor) -> Tensor:
        fmap = self.feature_map(img)  # (B, 512, h, w)
        return fmap.amax(dim=(2, 3)) if self.pool == "max" else fmap.mean(dim=(2, 3))
