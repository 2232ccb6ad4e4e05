"""ResNet18's convolutional trunk, without torchvision.

He et al., "Deep residual learning for image recognition", CVPR 2016 (arXiv:1512.03385).
Parameter names, shapes and the initialisation (Kaiming-normal convolutions, fan-out; unit
BatchNorm; modules created in the same order, so one seed gives the same weights) follow
torchvision's ``resnet18(weights=None)``, so its state dicts load here unchanged. Importing
torchvision pulls in ``torch._dynamo``, a start-up cost per process (``bench/RESULTS.md``);
every workflow job builds this network, so the trunk is kept here.
"""

from __future__ import annotations

from torch import Tensor, nn

STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))  # (channels, stride) of layer1..layer4
BLOCKS_PER_STAGE = 2
IMAGENET_CLASSES = 1000  # torchvision's fc, created only to keep its place in the seed's stream


def _conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 conv-BN ``downsample``) shortcut."""

    def __init__(
        self, c_in: int, c_out: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = _conv3x3(c_in, c_out, stride)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(c_out, c_out)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


def _stage(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    downsample = None
    if stride != 1 or c_in != c_out:  # created before the blocks, as torchvision does
        downsample = nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
        )
    blocks = [BasicBlock(c_in, c_out, stride, downsample)]
    blocks += [BasicBlock(c_out, c_out) for _ in range(BLOCKS_PER_STAGE - 1)]
    return nn.Sequential(*blocks)


class ResNet18Trunk(nn.Module):
    """Stem (7x7 conv, BN, ReLU, 3x3 max pool) and the four stages; no pooling, no classifier.

    Shape: (B, 3, H, W) -> (B, 512, ceil(H / 32), ceil(W / 32)).

    >>> ResNet18Trunk()(torch.zeros(1, 3, 64, 64)).shape  # doctest: +SKIP
    torch.Size([1, 512, 2, 2])
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        c_in = 64
        for i, (c_out, stride) in enumerate(STAGES, start=1):
            setattr(self, f"layer{i}", _stage(c_in, c_out, stride))
            c_in = c_out
        nn.Linear(c_in, IMAGENET_CLASSES)  # draws its default init from the seed's stream
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, img: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(img))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))
