"""The embedded dataset ``synthetic_music``: procedural audio-visual clips rendered to mp4.

Eleven instrument-like classes. Each clip is a real mp4 file (H.264 video, AAC audio at
44.1 kHz, 25 fps) written by piping raw frames and PCM into ffmpeg, so it goes through the
same preprocessing as a downloaded video. Generation is deterministic: one seed gives the
same clips, byte for byte (single-threaded, bit-exact encoder and muxer settings).

Each modality alone is ambiguous, on different class pairs, so that fusing them pays off:

* audio: a note sequence whose pitch band names the pair ``{2k, 2k+1}`` (class 10 alone);
  timbre and envelope tell the two members apart only in a fraction of clips;
* visual: a moving shape whose hue and shape name the pair ``{2k-1, 2k}`` (class 0
  alone); a pale or a deep tone of that hue tells the members apart only in a fraction of
  clips (the others show a mid tone).

Audio and visual together always identify the class. On top: background noise, distractor
tones and shapes, per-clip jitter of pitch, tempo, loudness, size, path and colour, and a
fraction of clips whose audio or visual stream carries no class signal at all.

Calibration (``Difficulty`` defaults, ``DEFAULT_COUNTS``, seed 0, the default study's budget:
6 epochs of SGD at lr 1e-3 (x0.1 from epoch 5), batch 16, 32 px crops of frames stored at
48 px, 8192 samples, CPU), over training seeds 1234, 1 and 2: test accuracy of audio-only
53.6-58.2 %, visual-only 67.3-73.6 %, Concat 79.1-82.7 % (tests/test_synthetic_bands.py
checks the bands 45-70 %, 60-85 % and Concat >= the better unimodal model + 2 points).
``Difficulty`` is a config value (``datasets.<name>.synthetic.difficulty``): the tests'
tiny study gives every clip both cues, so that no model can fail to learn it.
Bytes are reproducible on one platform; numpy's floating point may differ across CPUs and
builds.
"""

from __future__ import annotations

import colorsys
import logging
import math
import os
import subprocess
import tempfile
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

from avmodels.data.classes import SYNTHETIC_CLASSES
from avmodels.data.classes import SYNTHETIC_DATASET as DATASET
from avmodels.data.records import ClipRecord, write_records
from avmodels.registry import SPLITS

log = logging.getLogger(__name__)

DEFAULT_COUNTS = {"train": 20, "val": 6, "test": 10}
DEFAULT_DURATION = (5.0, 7.0)  # seconds, uniform per clip
DEFAULT_SIZE = (96, 96)  # frame width, height
SAMPLE_RATE = 44100
FPS = 25
RECORDS_FILE = "records.csv"
TABLE_SIZE = 1024  # wavetable length of the note oscillator

# audio group k = label // 2 (pairs {0,1}, ..., {8,9}, {10}): fundamental band centres (Hz)
PITCH_CENTRES = (196.0, 294.0, 440.0, 659.0, 988.0, 1480.0)
# visual group k = (label + 1) // 2 (pairs {0}, {1,2}, ..., {9,10}): hue (degrees) and shape
GROUP_HUES = (0.0, 45.0, 120.0, 185.0, 235.0, 295.0)
GROUP_SHAPES = ("disc", "square", "diamond", "square", "disc", "diamond")
OBJECT_RADIUS = (0.18, 0.25)  # of the frame height


@dataclass(frozen=True)
class Difficulty:
    """How hard the clips are; each fraction is exact per split, spread evenly over classes."""

    audio_cue: float = 0.3  # clips whose audio tells the two members of its pair apart
    visual_cue: float = 0.85  # clips whose frames tell the two members of its pair apart
    audio_blank: float = 0.03  # clips whose audio holds no class signal (noise + distractors)
    visual_blank: float = 0.03  # clips whose frames show no class object
    snr_db: tuple[float, float] = (6.0, 18.0)  # notes vs background noise
    distractor_rate: float = 0.8  # distractor tone bursts per second
    distractor_shapes: tuple[int, int] = (2, 4)  # small moving shapes per clip (inclusive)

    @classmethod
    def from_settings(cls, settings: Mapping[str, object] | None) -> Difficulty:
        """The defaults with the given fields replaced (lists become tuples); an unknown
        field is an error naming it."""
        settings = dict(settings or {})
        unknown = set(settings) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown difficulty field(s): {', '.join(sorted(unknown))}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()})


@dataclass(frozen=True)
class ClipSpec:
    """Everything that decides one clip; rendering is a pure function of it."""

    clip_id: str
    label: int
    split: str
    entropy: tuple[int, ...]  # seeds the clip's random stream
    duration: float
    audio_cue: bool
    visual_cue: bool
    audio_blank: bool
    visual_blank: bool
    difficulty: Difficulty = field(default_factory=Difficulty)


def audio_group(label: int) -> int:
    """Classes with the same audio group differ only by the audio cue: {0, 1}, ..., {10}."""
    return label // 2


def visual_group(label: int) -> int:
    """Classes with the same visual group differ only by the visual cue: {0}, {1, 2}, ..."""
    return (label + 1) // 2


def _stratified(
    rng: np.random.Generator, n_classes: int, per_class: int, fraction: float
) -> np.ndarray:
    """(n_classes, per_class) booleans, ``round(fraction * n_classes * per_class)`` of them
    True, each class holding the floor or the ceiling of its share."""
    n_true = int(round(fraction * n_classes * per_class))
    counts = np.full(n_classes, n_true // n_classes)
    counts[rng.permutation(n_classes)[: n_true - counts.sum()]] += 1
    flags = np.zeros((n_classes, per_class), dtype=bool)
    for c, m in enumerate(counts):
        flags[c, rng.permutation(per_class)[:m]] = True
    return flags


def plan_clips(
    counts: Mapping[str, int],
    seed: int = 0,
    duration: tuple[float, float] = DEFAULT_DURATION,
    difficulty: Difficulty | None = None,
) -> list[ClipSpec]:
    """The clips of one dataset: ``counts[split]`` clips per class and split."""
    diff = difficulty or Difficulty()
    specs = []
    fractions = (diff.audio_cue, diff.visual_cue, diff.audio_blank, diff.visual_blank)
    for s, split in enumerate(SPLITS):
        n = int(counts.get(split, 0))
        rng = np.random.default_rng([seed, 1, s])
        flags = [_stratified(rng, len(SYNTHETIC_CLASSES), n, p) for p in fractions]
        for label, name in enumerate(SYNTHETIC_CLASSES):
            for k in range(n):
                entropy = (seed, 0, s, label, k)
                lo, hi = duration
                dur = round(np.random.default_rng(entropy).uniform(lo, hi) * FPS) / FPS
                specs.append(
                    ClipSpec(
                        f"synth{seed}-{split}-{name}-{k:03d}",
                        label,
                        split,
                        entropy,
                        dur,
                        *(bool(f[label, k]) for f in flags),
                        difficulty=diff,
                    )
                )
    return specs


# --- audio ---------------------------------------------------------------------------


def _note(f0: float, n: int, timbre: str, rng: np.random.Generator, sr: int) -> np.ndarray:
    """One harmonic note of ``n`` samples (before its envelope), peak 1; a wavetable oscillator."""
    ks = np.arange(1, max(2, int(5000 // f0)) + 1)
    if timbre == "bright":  # all harmonics, 1/k (sawtooth-like)
        amps = 1.0 / ks
    elif timbre == "hollow":  # odd harmonics only (clarinet-like)
        amps = np.where(ks % 2 == 1, 1.0 / ks, 0.0)
    else:  # near-sinusoidal
        amps = 0.35 ** (ks - 1.0)
    amps = amps * rng.uniform(0.8, 1.2, len(ks))
    table = np.sin(2 * np.pi * np.outer(np.arange(TABLE_SIZE) / TABLE_SIZE, ks)) @ amps
    table = np.append(table, table[0]) / np.abs(table).max()
    rate = np.full(n, f0 / sr)
    if timbre == "hollow":  # vibrato
        t = np.arange(n) / sr
        rate *= 1 + 0.006 * np.sin(2 * np.pi * rng.uniform(4.5, 6.5) * t)
    pos = (np.cumsum(rate) % 1.0) * TABLE_SIZE
    i = pos.astype(np.int64)
    return table[i] + (pos - i) * (table[i + 1] - table[i])


def _envelope(n: int, timbre: str, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    if timbre == "bright":  # plucked: instant attack, fast decay
        env = np.exp(-t / 0.12) * np.minimum(t / 0.004, 1.0)
    elif timbre == "hollow":  # bowed/blown: slow attack, sustained
        env = np.minimum(t / 0.06, 1.0)
    else:  # soft attack, medium decay
        env = np.exp(-t / 0.35) * np.minimum(t / 0.02, 1.0)
    release = np.minimum((n - np.arange(n)) / (0.03 * sr), 1.0)
    return env * release


def render_audio(spec: ClipSpec, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Mono float32 waveform of the clip, peak in [0.45, 0.9]."""
    diff = spec.difficulty
    n = int(round(spec.duration * sr))
    signal = np.zeros(n)
    if not spec.audio_blank:
        if spec.label == len(SYNTHETIC_CLASSES) - 1 or not spec.audio_cue:
            timbre = "neutral"
        else:
            timbre = ("bright", "hollow")[spec.label % 2]
        centre = PITCH_CENTRES[audio_group(spec.label)]
        onset = rng.uniform(0.0, 0.2)
        while onset < spec.duration - 0.1:
            length = rng.uniform(0.3, 0.7)
            start, stop = int(onset * sr), min(n, int((onset + length) * sr))
            f0 = centre * 2 ** (rng.uniform(-3, 3) / 12)
            note = _note(f0, stop - start, timbre, rng, sr) * _envelope(stop - start, timbre, sr)
            signal[start:stop] += rng.uniform(0.6, 1.0) * note
            onset += rng.uniform(0.25, 0.55)
        level = np.sqrt(np.mean(signal**2)) + 1e-9
    else:
        level = 0.25
    noise = lfilter([1.0], [1.0, -rng.uniform(0.5, 0.95)], rng.standard_normal(n))
    snr = rng.uniform(*diff.snr_db)
    noise *= level / np.sqrt(np.mean(noise**2)) * 10 ** (-snr / 20)
    distractors = np.zeros(n)
    for _ in range(rng.poisson(diff.distractor_rate * spec.duration)):
        start = int(rng.uniform(0, spec.duration - 0.1) * sr)
        m = min(n - start, int(rng.uniform(0.08, 0.3) * sr))
        f = math.exp(rng.uniform(math.log(150.0), math.log(2500.0)))
        burst = np.sin(2 * np.pi * f * np.arange(m) / sr) * np.hanning(m)
        distractors[start : start + m] += rng.uniform(0.5, 1.2) * level * burst
    wave = signal + noise + distractors
    wave *= rng.uniform(0.45, 0.9) / max(np.abs(wave).max(), 1e-9)
    return wave.astype(np.float32)


# --- video ---------------------------------------------------------------------------


def _rgb(hue_deg: float, sat: float, val: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb((hue_deg % 360) / 360, sat, val)) * 255


def _shape_mask(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    """Pixels inside a shape of radius ``r``; ``dx`` (T, 1, W) and ``dy`` (T, H, 1) broadcast."""
    if shape == "disc":
        return dx**2 + dy**2 <= r**2
    if shape == "square":
        return (np.abs(dx) <= 0.85 * r) & (np.abs(dy) <= 0.85 * r)
    return np.abs(dx) + np.abs(dy) <= 1.2 * r  # diamond


def _path(rng: np.random.Generator, t: np.ndarray, size: int, margin: float) -> np.ndarray:
    """Centre coordinate along one axis: a slow oscillation that stays inside the frame."""
    amp = max(0.0, size / 2 - margin) * rng.uniform(0.3, 1.0)
    return size / 2 + amp * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t + rng.uniform(0, 6.3))


def render_video(
    spec: ClipSpec, rng: np.random.Generator, size: tuple[int, int] = DEFAULT_SIZE
) -> np.ndarray:
    """Frames (T, H, W, 3) uint8 at ``FPS``; ``size`` is (width, height)."""
    diff = spec.difficulty
    w, h = size
    t = np.arange(int(round(spec.duration * FPS))) / FPS
    xs = np.arange(w, dtype=np.float32)[None, None, :]  # (1, 1, W)
    ys = np.arange(h, dtype=np.float32)[None, :, None]  # (1, H, 1)
    # background: a low-saturation colour with a smooth texture and fine grain, fixed over time
    grid = rng.uniform(-1, 1, (5, 5))
    tex = np.array([np.interp(np.linspace(0, 4, w), np.arange(5), row) for row in grid])
    tex = np.array([np.interp(np.linspace(0, 4, h), np.arange(5), col) for col in tex.T]).T
    base = _rgb(rng.uniform(0, 360), rng.uniform(0.05, 0.3), rng.uniform(0.35, 0.65))
    frame0 = base + 35 * tex[..., None] * rng.uniform(0.5, 1.0, 3)
    frame0 += rng.normal(0, 4.0, (h, w, 1))
    video = np.repeat(np.clip(frame0, 0, 255).astype(np.uint8)[None], len(t), axis=0)
    shapes = []  # (shape, cx(t), cy(t), radius, rgb)
    if not spec.visual_blank:
        g = visual_group(spec.label)
        r = rng.uniform(*OBJECT_RADIUS) * h
        hue = GROUP_HUES[g] + rng.uniform(-12, 12)
        if not spec.visual_cue or spec.label == 0:  # mid tone, the same for both members
            colour = _rgb(hue, rng.uniform(0.7, 0.85), rng.uniform(0.75, 0.85))
        elif spec.label % 2 == 1:  # light, pale tone
            colour = _rgb(hue, rng.uniform(0.3, 0.45), 1.0)
        else:  # deep, dark tone
            colour = _rgb(hue, 1.0, rng.uniform(0.35, 0.5))
        cx, cy = _path(rng, t, w, r + 2), _path(rng, t, h, r + 2)
        shapes.append((GROUP_SHAPES[g], cx, cy, r, colour))
    for _ in range(rng.integers(diff.distractor_shapes[0], diff.distractor_shapes[1] + 1)):
        r = rng.uniform(0.03, 0.075) * h
        colour = _rgb(rng.uniform(0, 360), rng.uniform(0.6, 1), rng.uniform(0.6, 1))
        kind = ("disc", "square", "diamond")[rng.integers(3)]
        shapes.append((kind, _path(rng, t, w, r), _path(rng, t, h, r), r, colour))
    for kind, cx, cy, r, colour in shapes:
        dx = xs - cx[:, None, None].astype(np.float32)  # (T, 1, W)
        dy = ys - cy[:, None, None].astype(np.float32)  # (T, H, 1)
        video[_shape_mask(kind, dx, dy, r)] = colour.astype(np.uint8)
    return video


# --- encoding ------------------------------------------------------------------------


def encode_mp4(
    frames: np.ndarray, audio: np.ndarray, path: Path, ffmpeg: str | None = None
) -> None:
    """Write H.264 (yuv420p) + AAC 44.1 kHz mono at 25 fps, deterministically; the file
    appears complete or not at all."""
    if ffmpeg is None:
        import imageio_ffmpeg

        ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    _, h, w, _ = frames.shape
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    partial = path.with_name(f".{path.stem}.partial.mp4")
    with tempfile.NamedTemporaryFile(suffix=".pcm", dir=path.parent) as tmp:
        tmp.write(pcm.tobytes())
        tmp.flush()
        cmd = [
            ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-threads", "1",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(FPS), "-i", "pipe:0",
            "-f", "s16le", "-ar", str(SAMPLE_RATE), "-ac", "1", "-i", tmp.name,
            "-map", "0:v", "-map", "1:a", "-map_metadata", "-1",
            "-c:v", "libx264", "-preset", "ultrafast", "-crf", "20", "-pix_fmt", "yuv420p",
            "-threads", "1", "-x264-params", "threads=1:lookahead-threads=1",
            "-c:a", "aac", "-aac_coder", "fast", "-cutoff", "5500", "-b:a", "64k",
            "-ar", str(SAMPLE_RATE),
            "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
            str(partial),
        ]  # fmt: skip
        proc = subprocess.run(
            cmd, input=frames.tobytes(), capture_output=True, check=False, timeout=600
        )
    if proc.returncode != 0:
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"ffmpeg failed on {path.name}: {proc.stderr.decode().strip()}")
    os.replace(partial, path)


def render_clip(spec: ClipSpec, video_dir: Path, size: tuple[int, int] = DEFAULT_SIZE) -> Path:
    """Render and encode one clip to ``video_dir/<clip_id>.mp4``."""
    audio_seq, video_seq = np.random.SeedSequence(spec.entropy).spawn(2)
    audio = render_audio(spec, np.random.default_rng(audio_seq))
    frames = render_video(spec, np.random.default_rng(video_seq), size)
    path = video_dir / f"{spec.clip_id}.mp4"
    encode_mp4(frames, audio, path)
    return path


def generate(
    out_dir: str | Path,
    counts: Mapping[str, int] | int | None = None,
    seed: int = 0,
    duration: tuple[float, float] = DEFAULT_DURATION,
    size: tuple[int, int] = DEFAULT_SIZE,
    difficulty: Difficulty | None = None,
    workers: int | None = None,
) -> list[ClipRecord]:
    """Render the dataset into ``out_dir/videos/<clip_id>.mp4`` and ``out_dir/records.csv``.

    Arguments:
        counts: clips per class for each split (an int: the same for every split);
            default ``DEFAULT_COUNTS`` (20 / 6 / 10, 396 clips).
        seed: the same seed gives the same files.
        duration: range of clip lengths in seconds (uniform, whole frames).
        size: frame (width, height) in pixels, both even.
        workers: parallel encoders (default: usable CPUs, at most 4); output does not
            depend on it.
    """
    if counts is None:
        counts = DEFAULT_COUNTS
    if isinstance(counts, int):
        counts = dict.fromkeys(SPLITS, counts)
    unknown = set(counts) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown split(s) {sorted(unknown)}; valid: {', '.join(SPLITS)}")
    if size[0] % 2 or size[1] % 2:
        raise ValueError(f"frame size must be even, got {size}")
    out = Path(out_dir)
    video_dir = out / "videos"
    video_dir.mkdir(parents=True, exist_ok=True)
    specs = plan_clips(counts, seed, duration, difficulty)
    workers = workers or min(4, len(os.sched_getaffinity(0)))
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda s: render_clip(s, video_dir, size), specs))
    log.info("rendered %d clips in %.1f s", len(specs), time.perf_counter() - start)
    records = [
        ClipRecord(DATASET, SYNTHETIC_CLASSES[s.label], s.clip_id, None, None, s.split)
        for s in specs
    ]
    write_records(out / RECORDS_FILE, records)
    return records
