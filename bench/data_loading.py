"""Data loading: AVDataset items/s against decoding the same audio and frame, nothing else.

The baseline reads exactly what an item needs with the public clip readers of
:mod:`avmodels.data.media` (soundfile for the in-clip part of the audio window, or the whole
waveform when the clip is tiled; Pillow's full decode of the one frame) and stops there. The
Dataset adds everything else: manifest lookup, frame choice, the per-item generator,
padding/tiling, volume, resize, crop, flip, float tensors. It reads the same bytes its own
way (positioned reads; PCM16 samples scaled straight to float32; simplejpeg's JPEG
decoder, same pixels as Pillow), which is cheaper than the baseline's readers and pays for
part of the transforms: the profile line splits the Dataset's time into its reads, its image
transforms and the rest (generator, clipping, Python), so the saving stays visible.

Clips: the embedded synthetic_music dataset (96x96 frames, 5-7 s), rendered and
preprocessed into a temporary directory first. Settings: the default study's inputs
(32 px crops, 8192 samples) and the paper's (224 px, 65535 samples); evaluation and
training transforms. Times are this process's CPU time (one torch thread; other jobs on a
shared machine do not inflate them), repetitions interleaved, ratio = median of per-repetition
ratios. Target: ratio <= 1.10. Run as a script, it then prints the figures of the storage
formats behind these readers (bench/frame_formats.py).

    python bench/data_loading.py [--quick] [--reps 5] [--no-frame-formats]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import frame_formats
import pandas as pd
import torch
from _timing import interleaved

from avmodels.data import clips, preprocess, synthetic
from avmodels.data.dataset import AVDataset, window_start

TARGET = 1.10
SETTINGS = {"study": (8192, 32, 36), "paper": (65535, 224, 246)}  # samples, crop, resize


def make_manifest(root: Path, per_class: int) -> Path:
    """Render and preprocess ``per_class`` synthetic clips per class; the manifest path."""
    records = synthetic.generate(root / "raw", {"train": per_class})
    rows, _ = preprocess.preprocess_many(
        records, root / "clips", video_dir=root / "raw" / "videos", progress=False
    )
    path = root / "manifest.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def decode_only(ds: AVDataset) -> Callable[[], None]:
    """Read every item's audio and frame (the same ones the Dataset uses), no transforms."""
    plan = []
    for i, clip in enumerate(ds.clips):
        frame = ds.frame_index(i, ds.generator(i) if ds.train else None)
        if clip.num_samples < ds.audio_samples:
            span = (0, None)
        else:
            start = window_start(frame, ds.audio_samples)
            span = (max(start, 0), min(start + ds.audio_samples, clip.num_samples))
        plan.append((clip.clip_dir, span, frame))

    def run() -> None:
        for clip_dir, (lo, hi), frame in plan:
            clips.load_audio(clip_dir, lo, hi)
            clips.load_frame(clip_dir, frame)

    return run


def dataset_items(ds: AVDataset) -> Callable[[], None]:
    def run() -> None:
        for i in range(len(ds)):
            ds[i]

    return run


def dataset_reads(ds: AVDataset) -> Callable[[], None]:
    """The Dataset's own reads alone: every item's audio window and decoded frame."""
    frames = [ds.frame_index(i, ds.generator(i) if ds.train else None) for i in range(len(ds))]

    def run() -> None:
        for i, frame in enumerate(frames):
            ds.audio(i, frame)
            ds.read_frame(i, frame)

    return run


def image_transforms(ds: AVDataset) -> Callable[[], None]:
    """The Dataset's image transforms alone, on frames it decoded beforehand."""
    frames = []
    for i in range(len(ds)):
        frame = ds.frame_index(i, ds.generator(i) if ds.train else None)
        frames.append(ds.read_frame(i, frame))

    def run() -> None:
        for i, frame in enumerate(frames):
            ds.transform(frame, random.Random(i) if ds.train else None)

    return run


def profile(us: dict[str, float]) -> str:
    """The per-item breakdown printed under each figure."""
    rest = us["dataset"] - us["reads"] - us["transforms"]
    return (
        f"per item: decode {us['decode']:.0f} us (clips.load_audio + clips.load_frame);"
        f" Dataset {us['dataset']:.0f} us = its reads {us['reads']:.0f} us (pread PCM16 window"
        f" + simplejpeg JPEG decode) + image resize/crop/flip/to-float {us['transforms']:.0f}"
        f" us + rest {rest:.0f} us"
    )


def run(quick: bool = False, reps: int = 5) -> list[dict]:
    """Rows {benchmark, figure, value, target, met} plus items/s and a per-item breakdown."""
    torch.set_num_threads(1)
    per_class, reps = (1, 3) if quick else (4, reps)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        manifest = make_manifest(Path(tmp), per_class)
        for setting, (samples, size, resize) in SETTINGS.items():
            for train in (False, True):
                ds = AVDataset(manifest, train, samples, size, resize)
                fns = {
                    "decode": decode_only(ds),
                    "dataset": dataset_items(ds),
                    "reads": dataset_reads(ds),
                    "transforms": image_transforms(ds),
                }
                times = interleaved(fns, reps)
                per_item = {k: 1e6 * statistics.median(v) / len(ds) for k, v in times.items()}
                ratio = statistics.median(
                    a / b for a, b in zip(times["dataset"], times["decode"], strict=True)
                )
                mode = "train" if train else "eval"
                rows.append(
                    {
                        "benchmark": "data_loading",
                        "figure": f"AVDataset / decode-only time, {mode}, {setting} inputs "
                        f"({size} px, {samples} samples)",
                        "value": round(ratio, 3),
                        "target": f"<= {TARGET}",
                        "met": ratio <= TARGET,
                        "dataset_items_per_s": round(1e6 / per_item["dataset"]),
                        "decode_items_per_s": round(1e6 / per_item["decode"]),
                        "decode_us": round(per_item["decode"]),
                        "dataset_reads_us": round(per_item["reads"]),
                        "image_transforms_us": round(per_item["transforms"]),
                        "profile": profile(per_item),
                    }
                )
                own = statistics.median(
                    a / b for a, b in zip(times["dataset"], times["reads"], strict=True)
                )
                rows.append(
                    {
                        "benchmark": "data_loading",
                        "figure": f"  the same against the Dataset's own reads only (pread +"
                        f" simplejpeg), {mode}, {setting} inputs",
                        "value": round(own, 3),
                        "target": None,
                        "met": None,
                    }
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="11 clips, 3 repetitions")
    parser.add_argument("--no-frame-formats", action="store_true", help="skip those figures")
    args = parser.parse_args()
    for r in run(args.quick, args.reps):
        if r["met"] is None:
            print(f"{r['figure']:<72} ratio {r['value']:.3f} (informative)")
            continue
        verdict = "PASS" if r["met"] else "MISS"
        print(
            f"{r['figure']:<72} {r['dataset_items_per_s']:>6} vs {r['decode_items_per_s']:>6} "
            f"items/s  ratio {r['value']:.3f} (target {r['target']})  {verdict}"
        )
        print(f"    {r['profile']}")
    if not args.no_frame_formats:  # the storage layout behind these loading figures
        print("\nframe and audio storage formats (bench/frame_formats.py):")
        frame_formats.print_rows(frame_formats.run(quick=args.quick))


if __name__ == "__main__":
    main()
