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
  RandomHorizontalFlip``; evaluation ``Resize(image_size, bicubic) -> CenterCrop(image_size)``
  (the reference resizes its PIL frames with ``Image.BICUBIC`` in both). Values in [0, 1];
  the models normalise inside.

Randomness is a pure function of ``(seed, epoch, index)``: every item draws from its own
generator, so results do not depend on DataLoader workers or the order items are read in.
Call :meth:`AVDataset.set_epoch` before each training epoch for fresh augmentations.

Per item only the window's audio samples and the one frame's JPEG bytes are read, each with
positioned reads (``os.pread``) of the clip files :mod:`avmodels.data.media` writes: the PCM16
samples are scaled (volume included) straight into the float32 window, no decoder; the JPEG
is decoded by simplejpeg (libjpeg-turbo with almost no per-call overhead: the pixels of
Pillow's decode in :func:`avmodels.data.clips.load_frame`, faster; ``bench/RESULTS.md``). The
resize is torch's uint8 antialiased bicubic kernel on the channels-last image (the one
torchvision's ``Resize`` calls on tensors, which follows PIL's bicubic resampling to within
one grey level), so items equal those of the torchvision transforms above without importing
torchvision, whose start-up every workflow job would pay (``bench/RESULTS.md``); crop, flip
and the conversion to float32 are one strided uint8 copy and one division.
"""

from __future__ import annotations

import csv
import math
import os
import random
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import simplejpeg
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from avmodels.atomic import InputError
from avmodels.data import clips
from avmodels.settings import AUDIO_SAMPLES, IMAGE_SIZE, RESIZE_SIZE

if TYPE_CHECKING:
    import pandas as pd

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
    duration: float, num_frames: int, fps: int = clips.FPS, edge: float = EDGE_SECONDS
) -> range:
    """Frames at least ``edge`` s from both ends (frame ``i`` at ``i / fps`` s); the middle
    frame alone when there is none."""
    first = math.ceil(edge * fps - 1e-9)
    last = min(num_frames - 1, math.floor((duration - edge) * fps + 1e-9))
    if first > last:
        return range(num_frames // 2, num_frames // 2 + 1)
    return range(first, last + 1)


def window_start(frame: int, length: int, fps: int = clips.FPS, sr: int = clips.SAMPLE_RATE) -> int:
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


def pread(path: str | Path, size: int, offset: int) -> bytes:
    """Up to ``size`` bytes of the file ``path`` from byte ``offset`` (one positioned read)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, size, offset)
    finally:
        os.close(fd)


def read_window(
    clip_dir: Path,
    num_samples: int,
    start: int,
    length: int,
    layout: tuple[int, int] | None = None,
    gain: float = 1.0,
) -> np.ndarray:
    """:func:`cut` of the clip's audio times ``gain``, reading only the samples inside the
    window: straight from the file for a PCM16 ``layout`` (:func:`pcm16_layout`), else through
    soundfile. Both give the same floats (soundfile's exact 1/32768 scaling, then the gain)."""
    lo, hi = max(start, 0), min(start + length, num_samples)
    if layout is not None:
        hi = min(hi, layout[1])
    if lo >= hi:
        return np.zeros(length, dtype=np.float32)
    if layout is None:
        data, scale = clips.load_audio(clip_dir, lo, hi)[0], np.float32(gain)
    else:
        raw = pread(os.path.join(clip_dir, clips.AUDIO_FILE), 2 * (hi - lo), layout[0] + 2 * lo)
        data = np.frombuffer(raw, "<i2", len(raw) // 2)
        scale = np.float32(gain) * np.float32(1 / 32768)  # a power of two: exact
    if len(data) == length:  # the window lies inside the clip
        return np.multiply(data, scale, dtype=np.float32)
    out = np.zeros(length, dtype=np.float32)
    np.multiply(data, scale, out=out[lo - start : lo - start + len(data)])
    return out


def read_jpeg(clip_dir: Path, frame: int) -> bytes:
    """The JPEG bytes of frame ``frame`` (>= 0) of a clip, undecoded."""
    entry = pread(os.path.join(clip_dir, clips.INDEX_FILE), 16, 8 * frame) if frame >= 0 else b""
    if len(entry) < 16:
        raise IndexError(f"frame {frame} out of range in {clip_dir}")
    start, stop = struct.unpack("<qq", entry)
    return pread(os.path.join(clip_dir, clips.FRAMES_FILE), stop - start, start)


def decode_frame(data: bytes) -> Tensor:
    """JPEG bytes -> uint8 (3, H, W) RGB with channels-last memory (the pixels of
    :func:`avmodels.data.clips.load_frame`)."""
    return torch.from_numpy(simplejpeg.decode_jpeg(data, colorspace="RGB")).permute(2, 0, 1)


def resize_short_side(img: Tensor, size: int, mode: str) -> Tensor:
    """uint8 (3, H, W) image with its short side resized to ``size`` (the long side scaled
    and truncated, as torchvision's ``Resize(size)``), ``mode`` "bilinear" or "bicubic",
    antialiased; channels-last memory in and out."""
    h, w = img.shape[-2:]
    short, long = (h, w) if h <= w else (w, h)
    if short == size:
        return img
    new_long = int(size * long / short)
    out_hw = [size, new_long] if h <= w else [new_long, size]
    # a (1, 3, H, W) view with channels-last strides, so the output keeps that memory format
    batch = img.as_strided((1, *img.shape), (img.numel(), *img.stride()))
    out = F.interpolate(batch, size=out_hw, mode=mode, align_corners=False, antialias=True)
    return out[0]


def crop_to_float(img: Tensor, top: int, left: int, size: int, flip: bool) -> Tensor:
    """The ``size`` x ``size`` crop at (``top``, ``left``) of a uint8 (3, H, W) image, mirrored
    left-right if ``flip``, as a contiguous float32 (3, size, size) tensor in [0, 1]."""
    hwc = img.permute(1, 2, 0).numpy()[top : top + size, left : left + size]
    if flip:
        hwc = hwc[:, ::-1]
    chw = np.ascontiguousarray(hwc.transpose(2, 0, 1))  # one uint8 copy does all the moving
    return torch.from_numpy(np.divide(chw, np.float32(255), dtype=np.float32))


def tile(wave: np.ndarray, length: int) -> np.ndarray:
    """``wave`` repeated from its start until it is ``length`` samples long."""
    return np.tile(wave, -(-length // max(len(wave), 1)))[:length]


class EmptySplit(InputError):
    """A split that must hold clips (training, validation, test) lists none."""


def manifest_rows(manifest: str | Path | pd.DataFrame) -> tuple[list[str], list[dict[str, Any]]]:
    """A manifest's column names and rows, from its CSV file (values as text; read with the
    ``csv`` module: the jobs that read manifests do not import pandas) or a DataFrame."""
    if not isinstance(manifest, str | os.PathLike):
        return [str(c) for c in manifest.columns], manifest.to_dict("records")
    with open(manifest, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def require_clips(manifest: str | Path | pd.DataFrame, split: str, dataset: str = "") -> int:
    """The number of clips of ``manifest``; :class:`EmptySplit` naming ``dataset`` and ``split``
    when there are none (a validation split without clips would make epoch 1 the "best" one,
    a test split without clips a 0 % accuracy)."""
    count = len(manifest_rows(manifest)[1])
    if count == 0:
        name = f"dataset {dataset}: " if dataset else ""
        source = f" ({manifest})" if isinstance(manifest, str | os.PathLike) else ""
        raise EmptySplit(f"{name}the {split} split has no clips{source}")
    return count


def read_manifest(
    manifest: str | Path | pd.DataFrame, root: str | Path | None = None
) -> list[_Clip]:
    """Clips of a manifest; relative ``clip_dir`` paths are taken from ``root`` (default: the
    manifest file's directory, or the working directory for a DataFrame)."""
    columns, rows = manifest_rows(manifest)
    if isinstance(manifest, str | os.PathLike):
        base = Path(root) if root is not None else Path(manifest).resolve().parent
    else:
        base = Path(root) if root is not None else Path.cwd()
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ValueError(f"manifest lacks column(s) {missing}")
    return [
        _Clip(
            base / str(r["clip_dir"]),
            _integer(r["label_index"]),
            _integer(r["num_samples"]),
            _integer(r["num_frames"]),
            float(r["duration"]),
        )
        for r in rows
    ]


def _integer(value: Any) -> int:
    """An integer cell, written as an integer ("12") or a float ("12.0")."""
    return int(value) if isinstance(value, int) else int(float(value))


class AVDataset(Dataset):
    """Preprocessed clips of a manifest as model inputs.

    Arguments:
        manifest: CSV path or DataFrame with ``avmodels.data.manifests.MANIFEST_COLUMNS``.
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
        audio_samples: int = AUDIO_SAMPLES,
        image_size: int = IMAGE_SIZE,
        resize_size: int = RESIZE_SIZE,
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

    def audio(self, index: int, frame: int, gain: float = 1.0) -> np.ndarray:
        """The clip's ``audio_samples``-long window centred on ``frame`` (the whole clip tiled
        when it is shorter), times ``gain``."""
        clip, length = self.clips[index], self.audio_samples
        if clip.num_samples < length:
            return tile(self._samples(index, 0, clip.num_samples, gain), length)
        return self._samples(index, window_start(frame, length), length, gain)

    def _samples(self, index: int, start: int, length: int, gain: float) -> np.ndarray:
        """:func:`read_window` of clip ``index``, or a cut of its cached waveform."""
        clip = self.clips[index]
        if self.cache_audio:
            if index not in self._audio_cache:
                self._audio_cache[index] = clips.load_audio(clip.clip_dir)[0]
            wave = cut(self._audio_cache[index], start, length)
            wave *= np.float32(gain)
            return wave
        if index not in self._layouts:
            self._layouts[index] = pcm16_layout(clip.clip_dir / clips.AUDIO_FILE)
        layout = self._layouts[index]
        return read_window(clip.clip_dir, clip.num_samples, start, length, layout, gain)

    def read_frame(self, index: int, frame: int) -> Tensor:
        """Frame ``frame`` of the clip as decoded, uint8 (3, H, W)."""
        return decode_frame(read_jpeg(self.clips[index].clip_dir, frame))

    def image(self, index: int, frame: int, rng: random.Random | None = None) -> Tensor:
        """Frame ``frame`` of the clip, resized and cropped, (3, S, S) float in [0, 1]."""
        return self.transform(self.read_frame(index, frame), rng)

    def transform(self, frame: np.ndarray | Tensor, rng: random.Random | None = None) -> Tensor:
        """uint8 frame, (H, W, 3) array or (3, H, W) tensor -> (3, S, S) float in [0, 1]: the
        training augmentation (``rng``) or the evaluation resize and centre crop."""
        img = torch.from_numpy(frame).permute(2, 0, 1) if isinstance(frame, np.ndarray) else frame
        size = self.image_size
        if self.train:
            img = resize_short_side(img, self.resize_size, "bicubic")
            h, w = img.shape[-2:]
            top, left = rng.randrange(h - size + 1), rng.randrange(w - size + 1)
            flip = rng.random() < 0.5
        else:
            img = resize_short_side(img, size, "bicubic")
            h, w = img.shape[-2:]
            top, left, flip = round((h - size) / 2), round((w - size) / 2), False  # centre crop
        return crop_to_float(img, top, left, size, flip)

    def __getitem__(self, index: int) -> dict[str, Tensor | int]:
        rng = self.generator(index) if self.train else None
        frame = self.frame_index(index, rng)
        gain = rng.uniform(*VOLUME) if self.train else 1.0
        wave = self.audio(index, frame, gain)
        if gain > 1.0 or self._layouts.get(index) is None:  # PCM16 / 32768 * gain <= 1: in range
            np.clip(wave, -1.0, 1.0, out=wave)
        return {
            "audio": torch.from_numpy(wave),
            "visual": self.image(index, frame, rng),
            "label": self.clips[index].label,
        }
