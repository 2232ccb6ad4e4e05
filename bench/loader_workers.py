"""Training DataLoader throughput: samples/s with 1 and N workers at the paper's input size.

What a GPU training job's DataLoader can feed (224 px crops, 65535 audio samples, training
transforms, batch 12, persistent workers, as :func:`avmodels.study.running.make_loader` builds it
for ``threads`` = N + 1). Clips: the embedded synthetic_music dataset (96x96 frames),
rendered and preprocessed into a temporary directory first. Wall-clock time over whole
epochs after one warm-up epoch (which starts the workers); the figure scales with the
cores actually free, so run it on an otherwise idle machine. ``--manifest`` measures the clips
of a manifest made elsewhere (``avrobust preprocess`` output), so a machine without ffmpeg can
run it.

    python bench/loader_workers.py [--workers N] [--epochs 3] [--per-class 4] [--manifest CSV]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from avmodels.study.running import make_loader

PAPER = {"audio_samples": 65535, "image_size": 224, "resize_size": 246}


def samples_per_second(manifest: Path, workers: int, epochs: int, batch_size: int = 12) -> float:
    """Mean samples/s of the training loader over ``epochs`` epochs after a warm-up one."""
    loader = make_loader(manifest, train=True, batch_size=batch_size, num_workers=workers, **PAPER)
    dataset = loader.sampler.dataset
    count = 0
    for epoch in range(epochs + 1):
        dataset.set_epoch(epoch + 1)
        if epoch == 1:
            start, count = time.perf_counter(), 0
        for batch in loader:
            count += len(batch["label"])
    return count / (time.perf_counter() - start)


def run(quick: bool = False, workers: int | None = None) -> list[dict]:
    """Rows {benchmark, figure, value, target, met}: samples/s with 1 and N workers (N: all
    cores but one, at least 2)."""
    workers = workers or max(2, (os.cpu_count() or 2) - 1)
    epochs, per_class = (1, 2) if quick else (3, 4)
    torch.set_num_threads(1)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        manifest = rendered(Path(tmp), per_class)
        rates = {n: samples_per_second(manifest, n, epochs) for n in (1, workers)}
    shape = f"{PAPER['image_size']} px crops, {PAPER['audio_samples']} audio samples, batch 12"
    return [
        {"benchmark": "loader_workers", "figure": f"training loader, {n} worker{'s' * (n > 1)}, "
         f"samples/s ({shape}; {os.cpu_count()} cores)", "value": round(rate, 1),
         "target": None, "met": None}
        for n, rate in rates.items()
    ] + [
        {"benchmark": "loader_workers", "figure": f"{workers} workers / 1 worker",
         "value": round(rates[workers] / rates[1], 2), "target": None, "met": None,
         "section": {"title": "Training DataLoader workers", "body": _note(rates, load)}}
    ]  # fmt: skip


def rendered(root: Path, per_class: int) -> Path:
    """Render and preprocess embedded clips under ``root``; their manifest."""
    from data_loading import make_manifest  # ffmpeg: only where clips are rendered

    return make_manifest(root, per_class)


def _note(rates: dict[int, float], load: tuple[float, ...]) -> str:
    """What the worker figure means on the machine it was measured on."""
    cores, (one, many) = os.cpu_count() or 1, rates.values()
    n = max(rates)
    return (
        f"The training DataLoader at the paper's input size fed {one:.0f} samples/s with one "
        f"worker and {many:.0f} with {n} ({many / one:.2f}x), on {cores} cores with a load "
        f"average of {', '.join(f'{x:.1f}' for x in load)} when it started. Each worker is a "
        "process decoding clips on a core of its own, and the main process, which takes the "
        f"batches, needs one too: with {cores} cores the {n} workers share them with the main "
        "process and with whatever else runs, so this figure measures that contention, not "
        "what workers add when each has a free core, as on a GPU node whose job holds 8 CPUs "
        "(7 workers). The clips are the embedded set's (96 px frames, resized to 246 and "
        "cropped to 224), whose JPEGs decode faster than the paper datasets' 256 px frames."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--per-class", type=int, default=4)
    parser.add_argument("--manifest", type=Path, help="measure these clips; none rendered")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        manifest = args.manifest or rendered(Path(tmp), args.per_class)
        one = samples_per_second(manifest, 1, args.epochs)
        many = samples_per_second(manifest, args.workers, args.epochs)
    print(f"workers=1: {one:.1f} samples/s")
    print(f"workers={args.workers}: {many:.1f} samples/s ({many / one:.2f}x)")


if __name__ == "__main__":
    main()
