"""The preprocessed clip folder: its files, and reading them without decoding more than asked.

Tian & Xu (CVPR 2021, arXiv:2104.02000, supplementary Sec. A.2) sample sound at 11025 Hz and
frames at 8 fps (``ffmpeg -r 8`` in their code). One preprocessed clip is a directory::

    audio.wav        11025 Hz mono PCM16 (soundfile reads any window without decoding the rest)
    frames.mjpeg     the 8 fps frames as concatenated baseline JPEGs (a valid MJPEG stream)
    frames.idx       T + 1 little-endian int64 byte offsets: frame i is bytes [idx[i], idx[i+1])
    info.json        duration, samples, frames, frame size, source fps / sample rate / layout

:func:`avmodels.data.media.preprocess_clip` writes it. Storage was chosen by measurement
(``bench/frame_formats.py``; the figures are in ``bench/RESULTS.md``): the packed JPEG stream
reads a random frame as fast as one JPEG file per frame, with the same bytes, in 4 files per
clip instead of one per frame; raw ``.npy``, PNG and H.264 cost more bytes or more read time.
PCM16 WAV reads a window faster than FLAC for little more disk; its quantisation step (3e-5) is
far below the attack budgets (6e-3).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

SAMPLE_RATE = 11025
FPS = 8
AUDIO_FILE = "audio.wav"
FRAMES_FILE = "frames.mjpeg"
INDEX_FILE = "frames.idx"
INFO_FILE = "info.json"
FORMAT_VERSION = 1
CLIP_FILES = frozenset({AUDIO_FILE, FRAMES_FILE, INDEX_FILE, INFO_FILE})


def is_clip_dir(out_dir: str | Path) -> bool:
    """True when ``out_dir`` holds a finished clip."""
    return (Path(out_dir) / INFO_FILE).is_file()


def read_info(out_dir: str | Path) -> dict[str, Any]:
    """The ``info.json`` of a finished clip."""
    path = Path(out_dir) / INFO_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{out_dir}: not a finished clip ({INFO_FILE} missing)")
    return json.loads(path.read_text())


def load_audio(
    out_dir: str | Path, start: int = 0, stop: int | None = None
) -> tuple[np.ndarray, int]:
    """Mono float32 waveform in [-1, 1] (samples ``start:stop``) and its sample rate."""
    data, sr = sf.read(Path(out_dir) / AUDIO_FILE, start=start, stop=stop, dtype="float32")
    return data, sr


def frame_count(out_dir: str | Path) -> int:
    """Number of frames of a clip."""
    return os.path.getsize(Path(out_dir) / INDEX_FILE) // 8 - 1


def _decode_jpeg(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return np.array(img if img.mode == "RGB" else img.convert("RGB"))


def load_frame(out_dir: str | Path, index: int) -> np.ndarray:
    """Frame ``index`` (negative counts from the end) as uint8 (H, W, 3); decodes only it."""
    n = frame_count(out_dir)
    if not -n <= index < n:
        raise IndexError(f"frame {index} out of range for {n} frames in {out_dir}")
    with open(Path(out_dir) / INDEX_FILE, "rb") as f:
        f.seek(8 * (index % n))
        start, stop = np.frombuffer(f.read(16), dtype="<i8")
    with open(Path(out_dir) / FRAMES_FILE, "rb") as f:
        f.seek(int(start))
        return _decode_jpeg(f.read(int(stop - start)))


def load_frames(out_dir: str | Path) -> np.ndarray:
    """All frames as uint8 (T, H, W, 3)."""
    offsets = np.fromfile(Path(out_dir) / INDEX_FILE, dtype="<i8")
    data = (Path(out_dir) / FRAMES_FILE).read_bytes()
    spans = zip(offsets[:-1], offsets[1:], strict=True)
    return np.stack([_decode_jpeg(data[a:b]) for a, b in spans])
