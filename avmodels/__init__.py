"""avmodels: audio-visual event recognition under multimodal adversarial attacks.

A library re-implementing the models, attacks, defenses and metrics of
Tian & Xu, "Can audio-visual integration strengthen robustness under
multimodal attacks?", CVPR 2021 (arXiv:2104.02000).

Packages by concern: :mod:`avmodels.models` (networks), :mod:`avmodels.robustness`
(attacks, defenses, sparse coding, metrics), :mod:`avmodels.data` (lists, downloads,
media, datasets), :mod:`avmodels.study` (training, evaluation, tables, findings,
figures) and, apart, :mod:`avmodels.workflow` (the workflow machinery, which the
others never import). The modules at this level are used by both sides and import
neither (atomic writes, devices, provenance record paths).
"""

__version__ = "0.1.0"
