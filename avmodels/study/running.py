"""What training, evaluation and the analyses share to run a model over a manifest: the
device, seeds, torch's thread and determinism settings, the data loaders and batches, clean
accuracy and features."""

from __future__ import annotations

import contextlib
import os
import random
import sys
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler
from tqdm import tqdm

from avmodels import devices
from avmodels.data.dataset import AVDataset
from avmodels.settings import AUDIO_SAMPLES, IMAGE_SIZE, RESIZE_SIZE, InputSettings

if TYPE_CHECKING:
    import pandas as pd

Manifest: TypeAlias = "str | Path | pd.DataFrame"  # a manifest CSV or its rows


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``: the device the job chose (``AVMODELS_DEVICE``), else CUDA when available,
    else CPU."""
    if device is None:
        chosen = os.environ.get(devices.ENV)
        if chosen:
            return torch.device(chosen)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@contextlib.contextmanager
def run_settings(threads: int, deterministic: bool, device: torch.device) -> Iterator[None]:
    """Set torch threads and determinism for a block and restore them afterwards."""
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    old_bench = torch.backends.cudnn.benchmark
    torch.set_num_threads(threads)
    if deterministic:
        if device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=device.type != "cpu")
        torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)
        torch.backends.cudnn.benchmark = old_bench


def make_loader(
    manifest: Manifest,
    *,
    train: bool,
    batch_size: int,
    audio_samples: int = AUDIO_SAMPLES,
    image_size: int = IMAGE_SIZE,
    resize_size: int = RESIZE_SIZE,
    seed: int = 1234,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader over ``AVDataset``; shuffled by an :class:`EpochSampler` when ``train``.

    Workers (``num_workers`` > 0) persist across epochs; an item's augmentation depends only
    on (seed, epoch, index), so the batches do not depend on the number of workers.
    """
    dataset = AVDataset(
        manifest,
        train=train,
        audio_samples=audio_samples,
        image_size=image_size,
        resize_size=resize_size,
        seed=seed,
    )
    return DataLoader(
        EpochItems(dataset) if train else dataset,
        batch_size=batch_size,
        sampler=EpochSampler(dataset, seed) if train else None,
        # BatchNorm cannot train on a last batch of one clip; drop such a remainder
        drop_last=train and len(dataset) % batch_size == 1,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
        generator=torch.Generator().manual_seed(seed),
        worker_init_fn=_seed_worker,
    )


class EpochSampler(Sampler):
    """Shuffled ``(epoch, index)`` pairs of ``dataset`` from the sampler's own seeded
    generator: workers that persist across epochs learn each item's epoch from the pair
    (their copy of the dataset never sees :meth:`AVDataset.set_epoch`)."""

    def __init__(self, dataset: AVDataset, seed: int) -> None:
        self.dataset = dataset
        self.generator = torch.Generator().manual_seed(seed)
        self.order = RandomSampler(dataset, generator=self.generator)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.dataset.epoch
        # one draw before the permutation, as a DataLoader sharing the generator makes for its
        # workers' base seed: the orders are those of a plain shuffled loader without workers
        torch.empty((), dtype=torch.int64).random_(generator=self.generator)
        for index in self.order:
            yield epoch, int(index)

    def __len__(self) -> int:
        return len(self.order)


class EpochItems(Dataset):
    """``dataset`` indexed by ``(epoch, index)`` pairs of an :class:`EpochSampler`."""

    def __init__(self, dataset: AVDataset) -> None:
        self.items = dataset

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        epoch, index = key
        if self.items.epoch != epoch:
            self.items.set_epoch(epoch)
        return self.items[index]


def loader_workers(threads: int, device: torch.device) -> int:
    """DataLoader workers for a job with ``threads`` CPUs: all but one when a GPU computes
    (the workers decode while it runs), none on the CPU (the threads compute)."""
    return max(0, threads - 1) if device.type == "cuda" else 0


def _seed_worker(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def split_batch(
    batch: Mapping[str, Tensor], modalities: tuple[str, ...], device: torch.device
) -> tuple[dict[str, Tensor], Tensor]:
    """Model inputs (only the model's modalities) and labels, on ``device``."""
    inputs = {m: batch[m].to(device) for m in modalities}
    return inputs, batch["label"].to(device)


def model_modalities(model: nn.Module) -> tuple[str, ...]:
    """Input names a model reads (defended wrappers expose their base's)."""
    if hasattr(model, "modalities"):
        return tuple(model.modalities)
    return tuple(model.base.modalities)


@torch.no_grad()
def accuracy_on(
    model: nn.Module, loader: DataLoader, device: torch.device
) -> tuple[float, int, int]:
    """Clean accuracy in percent, number correct, number of samples."""
    model.eval()
    modalities = model_modalities(model)
    correct = total = 0
    for batch in loader:
        inputs, labels = split_batch(batch, modalities, device)
        correct += int((model(**inputs).argmax(1) == labels).sum())
        total += len(labels)
    return 100.0 * correct / max(total, 1), correct, total


@torch.no_grad()
def extract_features(
    model: nn.Module,
    manifest: Manifest,
    *,
    batch_size: int = 32,
    inputs: InputSettings | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> tuple[dict[str, Tensor], Tensor]:
    """Per-modality embeddings (N, d) of every clip (evaluation transforms) and labels (N,).

    The model is moved (in place) to ``device``, default CUDA if available; outputs are on the CPU.
    """
    dev = resolve_device(device)
    model.to(dev).eval()
    loader = make_loader(
        manifest, train=False, batch_size=batch_size, **asdict(inputs or InputSettings())
    )
    modalities = model_modalities(model)
    feats: dict[str, list[Tensor]] = {m: [] for m in modalities}
    labels: list[Tensor] = []
    for batch in tqdm(loader, file=sys.stderr, disable=not progress, desc="features"):
        inputs, y = split_batch(batch, modalities, dev)
        for m, f in model.encode(**inputs).items():
            feats[m].append(f.cpu())
        labels.append(y.cpu())
    return {m: torch.cat(v) for m, v in feats.items()}, torch.cat(labels)
