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

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__version__ = "0.1.0"


def lazy_exports(
    package: str, submodules: Iterable[str], exports: Mapping[str, str], namespace: dict
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package`` (``namespace``: its globals)."""
    submodules = tuple(submodules)

    def __getattr__(name: str) -> Any:
        if name in submodules:
            return importlib.import_module(f"{package}.{name}")
        if name in exports:
            value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted([*submodules, *exports])

    return __getattr__, __dir__
