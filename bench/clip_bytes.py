"""Disk taken by preprocessed clips at the paper's settings, per 10 s clip and per dataset.

Three synthetic 10 s sources (640x360 at 30 fps H.264, 44.1 kHz stereo AAC), from little to
much image detail: ffmpeg's ``testsrc2`` pattern, a ``mandelbrot`` zoom, and ``testsrc2``
under strong per-frame noise (a worst case for JPEG). Each is preprocessed by
:func:`avmodels.data.media.preprocess_clip` as the paper's study does (8 fps JPEG frames, short
side 256; 11025 Hz mono PCM16 audio), and the clip folder's bytes are summed.

With ``--lists DIR`` (the folder of the authors' split CSVs) the bytes per second are scaled
to each dataset: its distinct IDs and their seconds (``num_frames / 8``, as the lists give).

    python bench/clip_bytes.py [--lists ../shared/data/lists/av_robustness_cvpr21]
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import tempfile
from pathlib import Path

from avmodels.data import clips, media, probing

SECONDS = 10
SOURCES = {
    "pattern": "testsrc2=size=640x360:rate=30:duration=10",
    "detail": "mandelbrot=size=640x360:rate=30,trim=duration=10",
    "noise": "testsrc2=size=640x360:rate=30:duration=10,noise=alls=40:allf=t",
}
SPLIT_FILES = {"music": "{}.csv", "kinetics_sounds": "{}_kinetics.csv", "ave": "{}_AVE.csv"}


def clip_bytes(source: str, work: Path) -> int:
    """Bytes of the clip folder preprocessed from a 10 s video of the lavfi ``source``."""
    video = work / "video.mp4"
    tone = f"sine=frequency=440:sample_rate=44100:duration={SECONDS}"
    cmd = [probing.ensure_ffmpeg(), "-v", "error", "-y", "-f", "lavfi", "-i", source]
    cmd += ["-f", "lavfi", "-i", tone, "-ac", "2", "-pix_fmt", "yuv420p", "-c:v", "libx264"]
    cmd += ["-preset", "ultrafast", "-crf", "23", "-c:a", "aac", "-shortest", str(video)]
    subprocess.run(cmd, check=True)
    out = work / "clip"
    media.preprocess_clip(video, out, max_short_side=256)
    return sum(p.stat().st_size for p in out.iterdir())


def list_seconds(lists: Path) -> dict[str, tuple[int, float]]:
    """Dataset -> (distinct IDs, their seconds) from the authors' split CSVs."""
    out = {}
    for dataset, pattern in SPLIT_FILES.items():
        frames: dict[str, int] = {}
        for split in ("test", "val", "train"):
            with open(lists / pattern.format(split), newline="") as f:
                for row in csv.reader(f):
                    if row:
                        frames.setdefault(row[0].split("/")[2], int(row[2]))
        out[dataset] = (len(frames), sum(frames.values()) / clips.FPS)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lists", type=Path, help="folder of the authors' split CSVs")
    args = parser.parse_args()
    per_second = {}
    for name, source in SOURCES.items():
        with tempfile.TemporaryDirectory() as tmp:
            size = clip_bytes(source, Path(tmp))
        per_second[name] = size / SECONDS
        print(f"{name:8s} {size / 1e6:6.2f} MB per {SECONDS} s clip")
    if args.lists:
        for dataset, (count, seconds) in list_seconds(args.lists).items():
            sizes = ", ".join(f"{k} {v * seconds / 1e9:.1f} GB" for k, v in per_second.items())
            print(f"{dataset:16s} {count:6d} clips, {seconds / 3600:5.1f} h: {sizes}")


if __name__ == "__main__":
    main()
