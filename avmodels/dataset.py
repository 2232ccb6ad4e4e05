"""The Dataset over preprocessed clips: one audio window and one frame per item.

Inputs as in the reference implementation of Tian & Xu, "Can audio-visual integration
strengthen robustness under multimodal attacks?", CVPR 2021 (arXiv:2104.02000):

* audio: ``audio_samples`` samples (65535, about 5.94 s at 11025 Hz) centred on the chosen
  frame's time (frame ``i`` at ``i / 8`` s), zero-padded beyond the clip's edges, the clip
  tiled instead when it is shorter than the window; clipped to [-1, 1]; in training scaled
  by a random volume ``U(0.5, 1.5)`` (then clipped again).
* frame: at evaluation the middle one; in training a random one at least 3 s from either
  end (the middle one when the clip is too short for that).
* image: training ``Resize(resize_size, bicubic) -> RandomCrop(image_size) ->
  RandomHorizontalFlip``; evaluation ``Resize(image_size) -> CenterCrop(image_size)``
  (bilinear, torchvision's default, as in the reference). Values in [0, 1]; the models
  normalise inside.

Randomness is a pure function of ``(seed, epoch, index)``: every item draws from its own
generator, so results do not depend on DataLoader workers or the order items are read in.
Call :meth:`AVDataset.set_epoch` before each training epoch for fresh augmentations.
Per item only the window's audio samples (read straight from the PCM16 WAV, no decoder) and
the one frame (:func:`avmodels.media.load_frame`) are read.
"""

from __future__ import annotations

import math
import random
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torchvision.transforms.v2.functional as TF
from torch import Tensor
from torch.utils.data import Dataset

from avmodels import media

EDGE_SECONDS = 3.0  # training frames keep at least this far from both ends of the clip
VOLUME = (0.5, 1.5)  # training gain range
REQUIRED_COLUMNS = ("clip_dir", "label_index", "num_samples", "num_frames", "duration")


@dataclass(frozen=True)
class _Clip:
    clip_dir: Path
    label: int
    num_samples: int
    num_frames: int
    duration: float


def frame_choices(
    duration: float, num_frames: int, fps: int = media.FPS, edge: float = EDGE_SECONDS
) -> range:
    """Frames at least ``edge`` s from both ends (frame ``i`` at ``i / fps`` s); the middle
    frame alone when there is none."""
    first = math.ceil(edge * fps - 1e-9)
    last = min(num_frames - 1, math.floor((duration - edge) * fps + 1e-9))
    if first > last:
        return range(num_frames // 2, num_frames // 2 + 1)
    return range(first, last + 1)


def window_start(frame: int, length: int, fps: int = media.FPS, sr: int = media.SAMPLE_RATE) -> int:
    """First sample of the ``length``-sample window centred on frame ``frame``."""
    return round(frame * sr / fps) - length // 2


def cut(wave: np.ndarray, start: int, length: int) -> np.ndarray:
    """``wave[start : start + length]`` with zeros where the range leaves the array."""
    out = np.zeros(length, dtype=np.float32)
    lo, hi = max(start, 0), min(start + length, len(wave))
    if lo < hi:
        out[lo - start : hi - start] = wave[lo:hi]
    return out


def pcm16_layout(path: Path) -> tuple[int, int] | None:
    """(byte offset, samples) of the data of a mono PCM16 WAV file; None for anything else."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:] != b"WAVE":
            return None
        fmt = None
        while chunk := f.read(8):
            if len(chunk) < 8:
                return None
            kind, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if kind == b"fmt ":
                fmt = struct.unpack("<HHIIHH", f.read(16))
                f.seek(size - 16 + size % 2, 1)
            elif kind == b"data":
                if fmt is None or fmt[0] != 1 or fmt[1] != 1 or fmt[5] != 16:
                    return None
                return f.tell(), size // 2
            else:
                f.seek(size + size % 2, 1)
    return None


def read_window(
    clip_dir: Path, num_samples: int, start: int, length: int, layout: tuple[int, int] | None = None
) -> np.ndarray:
    """:func:`cut` of the clip's audio, reading only the samples inside the window: straight
    from the file for a PCM16 ``layout`` (:func:`pcm16_layout`), else through soundfile."""
    lo, hi = max(start, 0), min(start + length, num_samples)
    if lo >= hi:
        return np.zeros(length, dtype=np.float32)
    if layout is None:
        data, _ = media.load_audio(clip_dir, lo, hi)
    else:
        offset, total = layout
        hi = min(hi, total)
        pcm = np.fromfile(
            clip_dir / media.AUDIO_FILE, "<i2", max(hi - lo, 0), offset=offset + 2 * lo
        )
        data = pcm.astype(np.float32) * np.float32(1 / 32768)  # soundfile's scaling
    if len(data) == length:  # the window lies inside the clip
        return data
    return cut(data, start - lo, length)


def tile(wave: np.ndarray, length: int) -> np.ndarray:
    """``wave`` repeated from its start until it is ``length`` samples long."""
    return np.tile(wave, -(-length // max(len(wave), 1)))[:length]


def read_manifest(
    manifest: str | Path | pd.DataFrame, root: str | Path | None = None
) -> list[_Clip]:
    """Clips of a manifest; relative ``clip_dir`` paths are taken from ``root`` (default: the
    manifest file's directory, or the working directory for a DataFrame)."""
    if isinstance(manifest, pd.DataFrame):
        frame, base = manifest, Path(root) if root is not None else Path.cwd()
    else:
        frame = pd.read_csv(manifest)
        base = Path(root) if root is not None else Path(manifest).resolve().parent
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"manifest lacks column(s) {missing}")
    return [
        _Clip(base / str(r.clip_dir), int(r.label_index), int(r.num_samples), int(r.num_frames),
              float(r.duration))
        for r in frame.itertuples(index=False)
    ]  # fmt: skip


class AVDataset(Dataset):
    """Preprocessed clips of a manifest as model inputs.

    Arguments:
        manifest: CSV path or DataFrame with ``avmodels.data.MANIFEST_COLUMNS``.
        train: training augmentation (random frame, volume, crop, flip) or evaluation.
        audio_samples: window length in samples (65535 in the paper).
        image_size: side of the square crop (224 in the paper).
        resize_size: short side after the training resize (246 in the paper).
        seed: base of every item's random stream.
        root: directory relative ``clip_dir`` entries are resolved against.
        cache_audio: keep each clip's whole waveform in memory after its first read.

    Shape:
        item["audio"]: (audio_samples,) float32 in [-1, 1]; item["visual"]: (3, image_size,
        image_size) float32 in [0, 1]; item["label"]: int.

    >>> ds = AVDataset("manifest.csv", train=True, audio_samples=16384, image_size=64,
    ...                resize_size=72)  # doctest: +SKIP
    >>> ds.set_epoch(3); ds[0]["visual"].shape  # doctest: +SKIP
    torch.Size([3, 64, 64])
    """

    def __init__(
        self,
        manifest: str | Path | pd.DataFrame,
        train: bool,
        audio_samples: int = 65535,
        image_size: int = 224,
        resize_size: int = 246,
        seed: int = 1234,
        *,
        root: str | Path | None = None,
        cache_audio: bool = False,
    ) -> None:
        if resize_size < image_size:
            raise ValueError(f"resize_size {resize_size} < image_size {image_size}")
        self.clips = read_manifest(manifest, root)
        self.train = train
        self.audio_samples = audio_samples
        self.image_size, self.resize_size = image_size, resize_size
        self.seed, self.epoch = seed, 0
        self.cache_audio = cache_audio
        self._audio_cache: dict[int, np.ndarray] = {}
        self._layouts: dict[int, tuple[int, int] | None] = {}

    def __len__(self) -> int:
        return len(self.clips)

    @property
    def labels(self) -> np.ndarray:
        return np.array([c.label for c in self.clips], dtype=np.int64)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentations of training epoch ``epoch``."""
        self.epoch = int(epoch)

    def generator(self, index: int) -> random.Random:
        """The item's random stream, a function of (seed, epoch, index) only."""
        return random.Random(f"{self.seed}/{self.epoch}/{index}")

    def frame_index(self, index: int, rng: random.Random | None = None) -> int:
        """The frame item ``index`` shows: random (training, ``rng``) or the middle one."""
        clip = self.clips[index]
        if not self.train:
            return clip.num_frames // 2
        choices = frame_choices(clip.duration, clip.num_frames)
        return choices[rng.randrange(len(choices))]

    def audio(self, index: int, frame: int) -> np.ndarray:
        """The clip's ``audio_samples``-long window centred on ``frame`` (no volume change)."""
        clip, length = self.clips[index], self.audio_samples
        if clip.num_samples < length:
            return tile(self._whole_audio(index), length)
        start = window_start(frame, length)
        if self.cache_audio:
            return cut(self._whole_audio(index), start, length)
        if index not in self._layouts:
            self._layouts[index] = pcm16_layout(clip.clip_dir / media.AUDIO_FILE)
        return read_window(clip.clip_dir, clip.num_samples, start, length, self._layouts[index])

    def _whole_audio(self, index: int) -> np.ndarray:
        wave = self._audio_cache.get(index)
        if wave is None:
            wave, _ = media.load_audio(self.clips[index].clip_dir)
            if self.cache_audio:
                self._audio_cache[index] = wave
        return wave

    def image(self, index: int, frame: int, rng: random.Random | None = None) -> Tensor:
        """Frame ``frame`` of the clip, resized and cropped, (3, S, S) float in [0, 1]."""
        return self.transform(media.load_frame(self.clips[index].clip_dir, frame), rng)

    def transform(self, frame: np.ndarray, rng: random.Random | None = None) -> Tensor:
        """uint8 (H, W, 3) frame -> (3, S, S) float in [0, 1]: the training augmentation
        (``rng``) or the evaluation resize and centre crop."""
        img = torch.from_numpy(frame).permute(2, 0, 1)  # channels-last memory: fast resize
        size = self.image_size
        if self.train:
            img = TF.resize(img, [self.resize_size], TF.InterpolationMode.BICUBIC, antialias=True)
            h, w = img.shape[-2:]
            top, left = rng.randrange(h - size + 1), rng.randrange(w - size + 1)
            img = img[:, top : top + size, left : left + size]
            if rng.random() < 0.5:
                img = img.flip(-1)
        else:
            img = TF.resize(img, [size], TF.InterpolationMode.BILINEAR, antialias=True)
            h, w = img.shape[-2:]
            top, left = round((h - size) / 2), round((w - size) / 2)  # as TF.center_crop
            img = img[:, top : top + size, left : left + size]
        return img.to(torch.float32, memory_format=torch.contiguous_format).div_(255.0)

    def __getitem__(self, index: int) -> dict[str, Tensor | int]:
        rng = self.generator(index) if self.train else None
        frame = self.frame_index(index, rng)
        wave = self.audio(index, frame)
        if self.train:
            wave = wave * np.float32(rng.uniform(*VOLUME))
        np.clip(wave, -1.0, 1.0, out=wave)
        return {
            "audio": torch.from_numpy(wave),
            "visual": self.image(index, frame, rng),
            "label": self.clips[index].label,
        }
