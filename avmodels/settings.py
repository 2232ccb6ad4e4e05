"""Typed settings of the config sections the library reads, with their defaults.

The defaults here are the ones ``config/config.schema.yaml`` declares (a test keeps them
equal); the input sizes are the paper's (appendix A.2).

>>> settings = EvalSettings.from_config({"steps": 2, "attacks": ["fgsm"]}, {"image_size": 32})
>>> settings.steps, settings.batch_size, settings.inputs.image_size, settings.inputs.resize_size
(2, 32, 32, 246)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

AUDIO_SAMPLES = 65535  # samples of the audio window: about 5.94 s at 11025 Hz
IMAGE_SIZE = 224  # side of the square image crop
RESIZE_SIZE = 246  # short side a frame is resized to before the crop


def _known(cls: type, section: Mapping[str, Any] | None) -> dict[str, Any]:
    """The keys of ``section`` that are fields of ``cls`` (a section may hold others)."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in (section or {}).items() if k in names}


@dataclass(frozen=True)
class InputSettings:
    """Config section ``inputs``: the sizes a network reads."""

    audio_samples: int = AUDIO_SAMPLES
    image_size: int = IMAGE_SIZE
    resize_size: int = RESIZE_SIZE

    @classmethod
    def from_config(cls, inputs: Mapping[str, Any] | None) -> InputSettings:
        return cls(**_known(cls, inputs))


@dataclass(frozen=True)
class AttackSettings:
    """Config section ``evaluation``: the keys that shape an attack (not which budgets or
    models run)."""

    adaptive: bool = True  # attack a defended model through its defense's loss
    paper_budget: bool = True  # image budget in the ImageNet-normalised space
    steps: int = 10  # iterations of PGD and MIM
    batch_size: int = 32

    @classmethod
    def from_config(cls, evaluation: Mapping[str, Any] | None) -> AttackSettings:
        return cls(**_known(cls, evaluation))


@dataclass(frozen=True)
class EvalSettings:
    """What shapes one evaluation job's numbers besides the model, attack and budget."""

    paper_budget: bool = AttackSettings.paper_budget
    steps: int = AttackSettings.steps
    batch_size: int = AttackSettings.batch_size
    inputs: InputSettings = field(default_factory=InputSettings)

    @classmethod
    def from_config(
        cls, evaluation: Mapping[str, Any] | None, inputs: Mapping[str, Any] | None = None
    ) -> EvalSettings:
        """From the ``evaluation`` and ``inputs`` sections (absent keys: the defaults)."""
        known = _known(cls, evaluation)
        known.pop("inputs", None)
        return cls(**known, inputs=InputSettings.from_config(inputs))
