"""The audio-visual event recognition networks: encoders, ResNet trunk, fusions and the model with
its checkpoints.

- :mod:`.fusion`: Audio-visual fusion functions of Tian & Xu, CVPR 2021 (arXiv:2104.02000),
  appendix A.4.
- :mod:`.model`: Audio-visual event recognition models (Tian & Xu, CVPR 2021, arXiv:2104.02000).
- :mod:`.nets`: Audio and visual encoders of the audio-visual event recognition network.
- :mod:`.resnet`: ResNet18's convolutional trunk, without torchvision.

Public names are exported lazily: importing the package imports none of its
modules; ``from avmodels.<package> import name`` imports the one defining ``name``.
"""

from __future__ import annotations

from avmodels import lazy_exports

_SUBMODULES = (
    "fusion",
    "model",
    "nets",
    "resnet",
)
_EXPORTS = {  # public name -> the module defining it
    "AUDIO_CHANNELS": "nets",
    "AVModel": "model",
    "AudioNet": "nets",
    "BLOCKS_PER_STAGE": "resnet",
    "BasicBlock": "resnet",
    "CHECKPOINT_FORMAT": "model",
    "CLASSIFIER_INIT_STD": "model",
    "ConcatFusion": "fusion",
    "FEATURE_DIM": "nets",
    "FUSIONS": "fusion",
    "FiLMFusion": "fusion",
    "GatedConcatFusion": "fusion",
    "GatedSumFusion": "fusion",
    "IMAGENET_CLASSES": "resnet",
    "IMAGENET_MEAN": "model",
    "IMAGENET_STD": "model",
    "LocalizationModel": "model",
    "ModelConfig": "model",
    "OUTPUT_STRIDES": "nets",
    "ResNet18Trunk": "resnet",
    "STAGES": "resnet",
    "SumFusion": "fusion",
    "VARIANTS": "model",
    "VISUAL_POOLS": "nets",
    "VisualNet": "nets",
    "build_fusion": "fusion",
    "build_model": "model",
    "load_checkpoint": "model",
    "save_checkpoint": "model",
    "visual_eps": "model",
}
__all__ = [*_SUBMODULES, *_EXPORTS]


__getattr__, __dir__ = lazy_exports(__name__, _SUBMODULES, _EXPORTS, globals())
