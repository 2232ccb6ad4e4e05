"""Storage formats for preprocessed clips: random single-frame read time and bytes per clip.

One synthetic 10 s clip (640x360 at 29.97 fps, noisy test pattern, 5.1 pink noise) is
preprocessed by :func:`avmodels.data.media.preprocess_clip` (8 fps, short side 256), and the same
frames are stored in each candidate layout:

- ``jpeg_packed``: the layout :mod:`avmodels.data.media` writes (one JPEG stream + offset index)
- ``jpeg_files``: one JPEG file per frame (the reference code's layout), same bytes
- ``png_files``: one lossless PNG per frame
- ``npy_uint8``: one (T, H, W, 3) uint8 ``.npy``, memory-mapped
- ``mp4_h264``: one H.264 mp4 (CRF 18), a frame read by an ffmpeg seek

Audio candidates (a random 65535-sample window, as the Dataset reads): PCM16 wav, FLAC,
float32 ``.npy``. Reads are warm (page cache) and interleaved across formats (fair on a
loaded machine); the median is reported. Sizes are scaled to a 10 s clip. Absolute sizes
depend on the content (sensor-like noise is added so that JPEG does not flatter a clean test
pattern); the ratios between formats are the point.

    python bench/frame_formats.py [--quick]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

from avmodels.data import clips, media, probing

READ_MS_TARGET = 5.0  # one DataLoader worker then feeds >= 200 frames/s
CLIP_BYTES_TARGET = 2_000_000  # ~22k Kinetics-Sounds clips of 10 s in <= 44 GB
FILES_TARGET = 10  # files per clip directory (inode quotas of cluster file systems)
AUDIO_MS_TARGET = 1.0
AUDIO_BYTES_TARGET = 500_000  # a quarter of the frame budget
CHOSEN = ("jpeg_packed", "wav_pcm16")  # what avmodels.data.media writes; the limits are theirs


def _make_source(path: Path, seconds: float) -> None:
    video = f"testsrc2=size=640x360:rate=30000/1001:duration={seconds},noise=alls=12:allf=t"
    audio = f"anoisesrc=color=pink:amplitude=0.3:sample_rate=48000:duration={seconds}"
    cmd = [probing.ensure_ffmpeg(), "-v", "error", "-y", "-f", "lavfi", "-i", video, "-f", "lavfi"]
    cmd += ["-i", audio, "-ac", "6", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset"]
    cmd += ["veryfast", "-c:a", "aac", "-shortest", str(path)]
    subprocess.run(cmd, check=True)


def _disk(paths: list[Path]) -> tuple[int, int]:
    """(apparent bytes, allocated bytes) of files."""
    stats = [p.stat() for p in paths]
    return sum(s.st_size for s in stats), sum(s.st_blocks * 512 for s in stats)


def _time_reads(
    readers: dict[str, Callable[[int], object]], n: int, reads: dict[str, int]
) -> dict[str, float]:
    """Median ms of one random read per reader; readers interleaved in random order."""
    rng = np.random.default_rng(0)
    times: dict[str, list[float]] = {name: [] for name in readers}
    for read in readers.values():
        read(0)  # warm the page cache and imports
    names = list(readers)
    for k in range(max(reads.values())):
        i = int(rng.integers(0, n))
        for j in rng.permutation(len(names)):  # no format always runs first
            if k < reads[names[j]]:
                t0 = time.perf_counter()
                readers[names[j]](i)
                times[names[j]].append(time.perf_counter() - t0)
    return {name: float(np.median(t)) * 1e3 for name, t in times.items()}


def _png(frame: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="PNG")
    return buf.getvalue()


def _candidates(clip: Path, root: Path) -> dict[str, tuple[list[Path], Callable[[int], object]]]:
    frames = clips.load_frames(clip)  # (T, H, W, 3)
    t, h, w, _ = frames.shape
    data = (clip / clips.FRAMES_FILE).read_bytes()
    offsets = np.fromfile(clip / clips.INDEX_FILE, dtype="<i8")
    out: dict[str, tuple[list[Path], Callable[[int], object]]] = {}
    out["jpeg_packed"] = (
        [clip / clips.FRAMES_FILE, clip / clips.INDEX_FILE],
        lambda i: clips.load_frame(clip, i),
    )
    for name, encode in (("jpeg_files", None), ("png_files", _png)):
        d = root / name
        d.mkdir()
        for i in range(t):
            raw = data[offsets[i] : offsets[i + 1]] if encode is None else encode(frames[i])
            (d / f"{i:06d}.{name[:3]}").write_bytes(raw)
        files = sorted(d.iterdir())
        out[name] = (files, lambda i, files=files: np.array(Image.open(files[i]).convert("RGB")))
    np.save(root / "frames.npy", frames)
    out["npy_uint8"] = (
        [root / "frames.npy"],
        lambda i: np.array(np.load(root / "frames.npy", mmap_mode="r")[i]),
    )
    mp4 = root / "frames.mp4"
    enc = [probing.ensure_ffmpeg(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24"]
    enc += ["-s", f"{w}x{h}", "-r", str(clips.FPS), "-i", "pipe:", "-c:v", "libx264"]
    enc += ["-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv444p", str(mp4)]
    subprocess.run(enc, input=frames.tobytes(), check=True)

    def read_mp4(i: int) -> np.ndarray:
        cmd = [probing.ensure_ffmpeg(), "-v", "error", "-ss", f"{i / clips.FPS:.4f}", "-i"]
        cmd += [str(mp4), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:"]
        raw = subprocess.run(cmd, capture_output=True, check=True).stdout
        return np.frombuffer(raw, np.uint8).reshape(h, w, 3)

    out["mp4_h264"] = ([mp4], read_mp4)
    return out


def _audio_candidates(clip: Path, root: Path) -> dict[str, tuple[list[Path], Callable]]:
    audio, sr = clips.load_audio(clip)
    sf.write(root / "audio.flac", audio, sr, subtype="PCM_16")
    np.save(root / "audio.npy", audio)
    win = 65535

    def sf_read(path: Path) -> Callable[[int], np.ndarray]:
        return lambda s: sf.read(path, start=s, stop=s + win, dtype="float32")[0]

    return {
        "wav_pcm16": ([clip / clips.AUDIO_FILE], sf_read(clip / clips.AUDIO_FILE)),
        "flac": ([root / "audio.flac"], sf_read(root / "audio.flac")),
        "npy_float32": (
            [root / "audio.npy"],
            lambda s: np.array(np.load(root / "audio.npy", mmap_mode="r")[s : s + win]),
        ),
    }


def _row(figure: str, value: float, target: float, chosen: bool) -> dict:
    """A figure where lower is better. The limits are targets of the chosen layouts
    (:data:`CHOSEN`); the rejected candidates' rows are informative and name the limit."""
    if not chosen:
        verdict = "within" if value <= target else "over"
        figure = f"{figure} (rejected candidate; limit {target:,}: {verdict})"
    return {
        "benchmark": "frame_formats",
        "figure": figure,
        "value": round(float(value), 3),
        "target": target if chosen else None,
        "met": bool(value <= target) if chosen else None,
    }


def run(quick: bool = False) -> list[dict]:
    """Measure every candidate; rows {"benchmark", "figure", "value", "target", "met"}."""
    seconds, reads = (3.0, 10) if quick else (10.0, 200)
    scale = 10.0 / seconds
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _make_source(root / "source.mp4", seconds)
        info = media.preprocess_clip(root / "source.mp4", root / "clip")
        frames = _candidates(root / "clip", root)
        reads_of = {name: max(3, reads // 10) if name == "mp4_h264" else reads for name in frames}
        ms = _time_reads({k: v[1] for k, v in frames.items()}, info.num_frames, reads_of)
        for name, (files, _) in frames.items():
            size, alloc = _disk(files)
            n_files = len(files) + 2  # + audio.wav and info.json
            chosen = name in CHOSEN
            rows += [
                _row(f"{name} read ms/frame", ms[name], READ_MS_TARGET, chosen),
                _row(f"{name} bytes/clip", size * scale, CLIP_BYTES_TARGET, chosen),
                _row(f"{name} disk bytes/clip", alloc * scale, CLIP_BYTES_TARGET, chosen),
                _row(f"{name} files/clip", n_files, FILES_TARGET, chosen),
            ]
        audio = _audio_candidates(root / "clip", root)
        last = max(1, info.num_samples - 65535)
        ms = _time_reads({k: v[1] for k, v in audio.items()}, last, dict.fromkeys(audio, reads))
        for name, (files, _) in audio.items():
            size, _ = _disk(files)
            chosen = name in CHOSEN
            rows += [
                _row(f"audio {name} read ms/window", ms[name], AUDIO_MS_TARGET, chosen),
                _row(f"audio {name} bytes/clip", size * scale, AUDIO_BYTES_TARGET, chosen),
            ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s clip, few reads")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print_rows(run(quick=args.quick))


def print_rows(rows: list[dict]) -> None:
    """The figures as a plain-text table."""
    width = max(len(r["figure"]) for r in rows)
    print(f"{'figure':<{width}}  {'value':>12}  {'target':>12}  met")
    for r in rows:
        target = "" if r["target"] is None else f"{r['target']:,}"
        met = "info" if r["met"] is None else r["met"]
        print(f"{r['figure']:<{width}}  {r['value']:>12,.3f}  {target:>12}  {met}")


if __name__ == "__main__":
    main()
