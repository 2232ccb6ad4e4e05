"""avmodels: audio-visual event recognition under multimodal adversarial attacks.

A library re-implementing the models, attacks, defenses and metrics of
Tian & Xu, "Can audio-visual integration strengthen robustness under
multimodal attacks?", CVPR 2021 (arXiv:2104.02000).
"""

__version__ = "0.1.0"
