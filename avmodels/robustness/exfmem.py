"""ExFMem, the external feature memory banks of Tian & Xu, CVPR 2021 (arXiv:2104.02000), Sec. 3.3.2.

Memory banks of training features (:func:`build_memory_banks`); at test time each feature is
sparse-coded over its bank (a Lasso, Eq. 4, solved in :mod:`avmodels.robustness.lasso`) and the
classifier sees ``blend * M a + (1 - blend) * f`` (:class:`ExFMemModel`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from avmodels import atomic
from avmodels.robustness.lasso import LassoSolution, lipschitz_constant, sparse_code
from avmodels.settings import ExfmemSettings


def build_memory_banks(
    features: Mapping[str, Tensor], size: int, seed: int, labels: Tensor | None = None
) -> dict[str, Tensor]:
    """Memory banks ``{modality: (d, K)}`` of K training clips, the same clips for all modalities.

    Rule: with N <= K clips, all of them in order (K = N). Otherwise K distinct clips drawn with
    a ``seed``-ed generator: uniformly without replacement, or, given ``labels`` (N,),
    class-balanced (classes take turns, each giving its clips in a random order, until K are
    picked). The chosen indices are sorted. Shape: features {m: (N, d)} -> {m: (d, K)}.
    """
    sizes = {m: f.shape[0] for m, f in features.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"modalities have different numbers of clips: {sizes}")
    n = next(iter(sizes.values()))
    gen = torch.Generator().manual_seed(seed)
    if n <= size:
        index = torch.arange(n)
    elif labels is None:
        index = torch.randperm(n, generator=gen)[:size]
    else:
        index = _balanced_sample(labels.cpu(), size, gen)
    index = index.sort().values
    return {m: f.detach()[index.to(f.device)].T.contiguous() for m, f in features.items()}


def _balanced_sample(labels: Tensor, size: int, gen: torch.Generator) -> Tensor:
    classes = labels.unique()
    queues = [(labels == c).nonzero().flatten() for c in classes]
    queues = [q[torch.randperm(len(q), generator=gen)].tolist() for q in queues]
    order = torch.randperm(len(queues), generator=gen).tolist()
    picked: list[int] = []
    while len(picked) < size:
        for c in order:
            if queues[c] and len(picked) < size:
                picked.append(queues[c].pop(0))
    return torch.tensor(picked)


class ExFMemModel(nn.Module):
    """External feature memory banks around an ``AVModel``-like ``base`` (Sec. 3.3.2).

    Each feature with a bank is sparse-coded over it (:func:`sparse_code`) and replaced by
    ``blend * M a + (1 - blend) * f`` (the authors average, blend 0.5, A.5); the base classifier
    then predicts. ``encode`` returns these denoised features, so ``forward = head(encode(...))``
    and an attacker differentiates through the sparse coding. It wraps a frozen model at test
    time, or is trained end to end with its banks fixed (the full defense,
    :mod:`avmodels.study.finetune`): the sparse codes pass the gradient on to the encoders.

    Arguments:
        base: model with ``encode(**inputs) -> {m: (B, d)}``, ``head(feats)`` and ``modalities``.
        banks: ``{modality: (d, K)}`` from :func:`build_memory_banks`; stored as buffers.
        lam: the Lasso's lambda, 0.1 as the paper (A.5).
        method, stop, tol, max_iter: the solver
            (:func:`~avmodels.robustness.lasso.sparse_code`). Default: the exact solution
            ("active_set", relative KKT tolerance 1e-4), so Eq. 4 is solved
            whatever the features' scale and whatever else is in the batch. "fista" / "ista"
            with ``stop="gap"`` stop each sample at a relative duality gap <= ``tol``; with
            ``stop="change"`` and ``tol=8e-4`` they follow the authors' rule (the norm of the
            batch's change), which on post-ReLU features stops far from the optimum.
            ``tol=None``: the stop rule's default.
        blend: weight of the reconstruction; 0 gives the base model back.

    ``solver_stats()`` summarises the solves since the last ``reset_stats()``: calls, samples,
    the most iterations any call ran and the largest and mean final relative duality gap.
    """

    def __init__(
        self,
        base: nn.Module,
        banks: Mapping[str, Tensor],
        lam: float = 0.1,
        blend: float = 0.5,
        max_iter: int = 2000,
        tol: float | None = None,
        method: str = "active_set",
        stop: str = "gap",
    ) -> None:
        super().__init__()
        self.base = base
        self.modalities: tuple[str, ...] = tuple(base.modalities)
        unknown = sorted(set(banks) - set(self.modalities))
        if unknown:
            raise ValueError(f"banks for {unknown} but the model reads {self.modalities}")
        self.banked = tuple(m for m in self.modalities if m in banks)
        for m in self.banked:
            bank = banks[m].detach().clone()
            self.register_buffer(f"bank_{m}", bank)
            self.register_buffer(f"lipschitz_{m}", torch.tensor(lipschitz_constant(bank)))
        self.lam, self.blend, self.max_iter, self.tol = lam, blend, max_iter, tol
        self.method, self.stop = method, stop
        self._solutions: list[LassoSolution] = []
        self.reset_stats()

    @property
    def config(self) -> Any:
        """The base model's ``ModelConfig``."""
        return self.base.config

    def bank(self, modality: str) -> Tensor:
        return getattr(self, f"bank_{modality}")

    def denoise(self, feats: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``{m: blend * M_m a_m + (1 - blend) * f_m}`` for modalities with a bank."""
        out = dict(feats)
        for m in self.banked:
            f, bank = feats[m], self.bank(m).to(feats[m].dtype)
            lip = float(getattr(self, f"lipschitz_{m}"))
            codes = sparse_code(
                f,
                bank,
                self.lam,
                self.max_iter,
                self.tol,
                self.method,
                lip,
                self.stop,
                self._solutions,
            )
            self._tally(self._solutions.pop())
            out[m] = self.blend * (codes @ bank.T) + (1.0 - self.blend) * f
        return out

    def reset_stats(self) -> None:
        """Forget the solves counted by :meth:`solver_stats`."""
        self._stats = {"calls": 0, "samples": 0, "max_iterations": 0, "gap_sum": 0.0}
        self._stats["max_gap"] = 0.0

    def _tally(self, sol: LassoSolution) -> None:
        st, gap = self._stats, sol.gap
        st["calls"] += 1
        st["samples"] += len(sol.codes)
        st["max_iterations"] = max(st["max_iterations"], sol.iterations)
        if gap is not None and len(gap):
            worst = torch.tensor([st["max_gap"], float(gap.max())])
            st["max_gap"] = float(worst.max())  # NaN (a diverged sample) propagates
            st["gap_sum"] += float(gap.sum())

    def solver_stats(self) -> dict[str, float]:
        """``calls``, ``samples``, ``max_iterations``, ``max_gap`` and ``mean_gap`` so far."""
        st = self._stats
        mean = st["gap_sum"] / st["samples"] if st["samples"] else 0.0
        return {k: v for k, v in st.items() if k != "gap_sum"} | {"mean_gap": mean}

    def encode(self, **inputs: Tensor) -> dict[str, Tensor]:
        return self.denoise(self.base.encode(**inputs))

    def head(self, feats: Mapping[str, Tensor]) -> Tensor:
        return self.base.head(feats)

    def forward(self, **inputs: Tensor) -> Tensor:
        return self.head(self.encode(**inputs))

    def extra_repr(self) -> str:
        return (
            f"banks={ {m: tuple(self.bank(m).shape) for m in self.banked} }, lam={self.lam}, "
            f"blend={self.blend}, max_iter={self.max_iter}, tol={self.tol}, method={self.method}, "
            f"stop={self.stop}"
        )


def load_banks(path: str | Path) -> dict[str, Tensor]:
    """The memory banks ``{modality: (d, K)}`` written by the ``memory_bank`` step."""
    return atomic.torch_load(path, map_location="cpu", weights_only=True)


def exfmem_model(
    base: nn.Module, banks: Mapping[str, Tensor], exfmem: ExfmemSettings | None = None
) -> ExFMemModel:
    """``base`` inside ExFMem with the config's ``exfmem`` settings (the same for the
    evaluation and the full defense's fine-tuning; ``None``: the defaults). The bank
    ``size`` is used when the banks are built."""
    return ExFMemModel(base, banks, **(exfmem or ExfmemSettings()).model_kwargs())
