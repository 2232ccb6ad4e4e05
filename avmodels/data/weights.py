"""Pretrained visual weights: torchvision's ImageNet ResNet18, fetched once and verified.

``pretrained.visual`` in the config is ``imagenet`` (the file torchvision publishes for
``ResNet18_Weights.IMAGENET1K_V1``, fetched by the workflow), ``none`` (random weights) or
the path of a local state-dict file with torchvision's resnet18 keys.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from avmodels.data.fetch import download_verified
from avmodels.settings import IMAGENET_SHA256, IMAGENET_URL, PretrainedSettings

logger = logging.getLogger(__name__)

__all__ = [
    "IMAGENET_FILE",
    "IMAGENET_SHA256",  # torchvision's file and its published digest prefix (settings.py)
    "IMAGENET_URL",
    "WeightsDigestError",
    "fetch_weights",
    "settings",
    "visual_weights_file",
]
#: Where the workflow keeps the fetched ImageNet weights.
IMAGENET_FILE = "resources/weights/resnet18_imagenet1k_v1.pth"
_DIGEST = re.compile(r"[0-9a-f]{8,64}")


class WeightsDigestError(ValueError):
    """A fetched weights file does not have the configured sha256 (or its prefix)."""


def settings(config: dict[str, Any]) -> PretrainedSettings:
    """The ``pretrained`` section of a config, defaults filled in."""
    return PretrainedSettings.from_config(config.get("pretrained"))


def visual_weights_file(config: dict[str, Any]) -> str | None:
    """The file the visual network starts from: the fetched ImageNet one, a path, or None."""
    visual = settings(config).visual
    if visual == "none":
        return None
    return IMAGENET_FILE if visual == "imagenet" else visual


def fetch_weights(url: str, dest: str | Path, sha256: str, timeout: float = 600.0) -> Path:
    """Download ``url`` to ``dest`` unless its sha256 differs from ``sha256`` (64 hex digits,
    or a prefix of at least 8); ``dest`` only ever holds a complete, verified file."""
    expected = sha256.lower()
    if not _DIGEST.fullmatch(expected):
        raise ValueError(f"pretrained.sha256 must be 8 to 64 hex digits, got {sha256!r}")

    def verify(actual: str) -> None:
        if not actual.startswith(expected):
            raise WeightsDigestError(
                f"{url}: sha256 {actual} does not match the configured {expected}"
            )

    actual = download_verified(url, dest, verify, timeout)
    if len(expected) < 64:
        logger.warning("%s: verified the published sha256 prefix %s only", dest, expected)
    logger.info("visual weights %s verified (sha256 %s)", dest, actual)
    return Path(dest)
