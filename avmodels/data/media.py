"""Decode one video into a clip folder (:mod:`avmodels.data.clips`): 11025 Hz mono + 8 fps.

Tian & Xu (CVPR 2021, arXiv:2104.02000, supplementary Sec. A.2) sample sound at 11025 Hz and
frames at 8 fps (``ffmpeg -r 8`` in their code). Frames are scaled so that the short side is at
most ``max_short_side`` (default 256, aspect kept, non-square pixels made square; smaller
sources are kept as they are): the models crop 224 px after a 246 px resize, so 256 px loses
nothing and keeps storage small.

Both streams are aligned to t = 0 (audio padded/trimmed by ``aresample``, frames by
``fps:start_time``) and cut to their common duration. A clip directory is built in a temporary
directory beside it and renamed into place at the end, so an existing directory with
``info.json`` is always complete.

Nothing that preprocessing did not write is ever deleted or overwritten: the target must be
absent, empty, or a clip folder (only the four clip files); any other folder is refused with
:class:`ClipDirError`. A full disk raises :class:`DiskFullError` (an ``OSError``), never a
:class:`~avmodels.data.probing.MediaError`, so no clip is recorded as bad for it. Every ffmpeg
run has a timeout.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import logging
import math
import os
import shutil
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import ffmpeg
import numpy as np
import soundfile as sf

from avmodels.data.clips import (
    AUDIO_FILE,
    CLIP_FILES,
    FORMAT_VERSION,
    FPS,
    FRAMES_FILE,
    INDEX_FILE,
    INFO_FILE,
    SAMPLE_RATE,
    load_frame,
)
from avmodels.data.lists import valid_times
from avmodels.data.probing import MediaError, SourceInfo, ensure_ffmpeg, input_url, probe
from avmodels.settings import FRAME_SHORT_SIDE

logger = logging.getLogger(__name__)

MAX_SHORT_SIDE = FRAME_SHORT_SIDE
MIN_DURATION = 1.0
JPEG_QUALITY = 3  # ffmpeg -q:v, 2 (best) .. 31; 3 is visually lossless
DECODE_TIMEOUT = 1800.0  # seconds for decoding one clip
SHORT_TOLERANCE = 0.5  # seconds a decode may fall short of the declared length unreported


@dataclass(frozen=True)
class ClipInfo:
    """What :func:`preprocess_clip` wrote: seconds, audio samples, frames.

    ``declared`` is the length the source's container declares for the decoded range when
    the decode fell short of it by more than ``SHORT_TOLERANCE`` s (a truncated file), else None.
    """

    duration: float
    num_samples: int
    num_frames: int
    declared: float | None = None


class ClipDirError(ValueError):
    """The output folder holds files preprocessing did not write; nothing was touched."""


class DiskFullError(OSError):
    """No space left for a clip; the clip is not bad and nothing is recorded for it."""

    def __init__(self, where: str | Path) -> None:
        super().__init__(errno.ENOSPC, "no space left on device", str(where))


def is_disk_full(err: BaseException) -> bool:
    """True for an error caused by a full disk (or an exhausted quota)."""
    return isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)


def _scale_expr(max_side: int) -> tuple[str, str]:
    """ffmpeg scale w/h: short side of the square-pixel picture at most ``max_side``."""
    dw, s = "(iw*sar)", max_side
    keep = f"lte(min({dw},ih),{s})"
    w = f"round(if({keep},{dw},if(lt({dw},ih),{s},{s}*{dw}/ih)))"
    h = f"round(if({keep},ih,if(lt({dw},ih),{s}*ih/{dw},{s})))"
    return w, h


def _decode(
    video: Path,
    jpg_dir: Path,
    src: SourceInfo,
    start: float | None,
    end: float | None,
    max_short_side: int,
    jpeg_quality: int,
    timeout: float,
) -> np.ndarray:
    """One ffmpeg run: frames to ``jpg_dir/%06d.jpg``, mono float32 audio returned."""
    seek: dict[str, float] = {}
    if start:
        seek["ss"] = start
    if end is not None:
        seek["t"] = end - (start or 0.0)
    inp = ffmpeg.input(input_url(video), **seek)
    audio = (
        inp[str(src.audio_index)]
        .filter("aresample", SAMPLE_RATE, **{"async": 1, "first_pts": 0})
        .output("pipe:", format="f32le", acodec="pcm_f32le", ac=1, ar=SAMPLE_RATE)
    )
    w, h = _scale_expr(max_short_side)
    # absolute (never read as an option), "%" escaped for the image2 file-name pattern
    pattern = str(jpg_dir.resolve()).replace("%", "%%") + "/%06d.jpg"
    frames = (
        inp[str(src.video_index)]
        .filter("fps", fps=FPS, start_time=0)
        .filter("scale", w=w, h=h)
        .filter("setsar", 1)
        .output(pattern, format="image2", start_number=0, **{"q:v": jpeg_quality})
    )
    graph = ffmpeg.merge_outputs(audio, frames).global_args("-nostdin", "-v", "error")
    cmd = graph.compile(cmd=ensure_ffmpeg())
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise MediaError("undecodable", f"decoding timed out after {timeout:.0f} s") from None
    if proc.returncode != 0:
        text = proc.stderr.decode(errors="replace")
        if "No space left on device" in text or "Disk quota exceeded" in text:
            raise DiskFullError(jpg_dir)
        lines = text.strip().splitlines()
        raise MediaError("undecodable", lines[-1] if lines else "ffmpeg failed")
    return np.frombuffer(proc.stdout, dtype="<f4")


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _pack_frames(jpgs: Sequence[Path], tmp: Path) -> None:
    offsets = np.zeros(len(jpgs) + 1, dtype=np.int64)
    with open(tmp / FRAMES_FILE, "wb") as f:
        for i, jpg in enumerate(jpgs):
            offsets[i + 1] = offsets[i] + f.write(jpg.read_bytes())
        f.flush()
        os.fsync(f.fileno())
    _write_synced(tmp / INDEX_FILE, offsets.astype("<i8").tobytes())


def is_own_clip_dir(path: str | Path) -> bool:
    """True when ``path`` holds only clip files and an ``info.json`` that this module wrote."""
    path = Path(path)
    if path.is_symlink() or not path.is_dir():
        return False
    names = {p.name for p in path.iterdir()}
    if INFO_FILE not in names or not names <= CLIP_FILES:
        return False
    try:
        meta = json.loads((path / INFO_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and {"format_version", "num_frames", "source"} <= set(meta)


def check_target(out_dir: str | Path) -> None:
    """Raise :class:`ClipDirError` unless ``out_dir`` is absent, empty or a clip folder."""
    out_dir = Path(out_dir)
    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        raise ClipDirError(f"{out_dir}: exists and is not a folder; refused")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not is_own_clip_dir(out_dir):
        raise ClipDirError(f"{out_dir}: not empty and not a clip folder; refused, nothing changed")


def _remove_clip(old: Path) -> None:
    """Delete a replaced clip folder file by file (only clip files; the folder if then empty)."""
    for name in CLIP_FILES:
        with contextlib.suppress(FileNotFoundError):
            (old / name).unlink()
    try:
        old.rmdir()
    except OSError as err:
        logger.warning("left %s in place: %s", old, err)


def _commit(tmp: Path, out_dir: Path) -> None:
    """Rename the finished ``tmp`` onto ``out_dir`` (absent or empty, or a clip it replaces)."""
    olds = []
    for _ in range(3):
        try:
            os.rename(tmp, out_dir)  # replaces an empty folder, fails on a non-empty one
            break
        except OSError:
            if not out_dir.exists():
                raise
        check_target(out_dir)  # something may have appeared since the first check
        old = out_dir.with_name(f".{out_dir.name}.{uuid.uuid4().hex}.old")
        with contextlib.suppress(FileNotFoundError):  # another process may have moved it
            os.rename(out_dir, old)
            olds.append(old)
    else:
        raise OSError(f"could not move {tmp} to {out_dir}")
    for old in olds:
        logger.info("replaced %s", out_dir)
        _remove_clip(old)


def preprocess_clip(
    video_path: str | Path,
    out_dir: str | Path,
    start: float | None = None,
    end: float | None = None,
    *,
    max_short_side: int = MAX_SHORT_SIDE,
    min_duration: float = MIN_DURATION,
    jpeg_quality: int = JPEG_QUALITY,
    timeout: float = DECODE_TIMEOUT,
) -> ClipInfo:
    """Decode ``video_path`` (optionally only [start, end) s) into the clip directory ``out_dir``.

    Any container, frame rate, channel layout, sample rate and size ffmpeg reads works.
    Raises :class:`MediaError` with reason "no audio", "no video", "too short" (common
    duration below ``min_duration`` s) or "undecodable" (also when ffmpeg runs past
    ``timeout`` s), :class:`DiskFullError` when the disk is full, and :class:`ClipDirError`
    when ``out_dir`` exists and is neither empty nor a clip folder; ``out_dir`` is then left
    untouched. A finished clip folder at ``out_dir`` is replaced; nothing else is deleted.
    A decode shorter than the container declares is logged and returned as ``declared``.
    """
    video = Path(video_path)
    out_dir = Path(os.path.abspath(out_dir))  # "." and ".." name real folders
    if not valid_times(start, end):
        raise ValueError(f"need 0 <= start < end, got start={start}, end={end}")
    check_target(out_dir)
    cwd = Path.cwd().resolve()
    if out_dir.resolve() in (cwd, *cwd.parents):
        raise ClipDirError(f"{out_dir}: the current folder or one above it; refused")
    src = probe(video)
    if src.video_index is None and src.audio_index is None:
        raise MediaError("undecodable", "no audio or video stream")
    if src.video_index is None:
        raise MediaError("no video")
    if src.audio_index is None:
        raise MediaError("no audio")
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DiskFullError(out_dir.parent) if is_disk_full(err) else err from err
    tmp = out_dir.with_name(f".{out_dir.name}.{uuid.uuid4().hex}.tmp")
    try:
        (tmp / "jpg").mkdir(parents=True)
        # the header's duration tells "too short" from "undecodable" when nothing decodes
        short = src.duration is not None and src.duration - (start or 0) < min_duration
        try:
            samples = _decode(
                video, tmp / "jpg", src, start, end, max_short_side, jpeg_quality, timeout
            )
        except MediaError as err:
            raise MediaError("too short" if short else err.reason, err.detail) from None
        jpgs = sorted((tmp / "jpg").iterdir())
        duration = min(samples.size / SAMPLE_RATE, len(jpgs) / FPS)
        if duration == 0 and not short:
            raise MediaError("undecodable", "no audio samples or no frames decoded")
        if duration < min_duration or duration == 0:
            raise MediaError("too short", f"{duration:.3f} s decoded, minimum {min_duration} s")
        declared = _declared_length(src, start, end)
        if declared is not None and duration < declared - SHORT_TOLERANCE:
            logger.warning("%s: decoded %.2f s of %.2f s declared", video, duration, declared)
        else:
            declared = None
        info = ClipInfo(
            duration=duration,
            num_samples=round(duration * SAMPLE_RATE),
            num_frames=min(len(jpgs), math.ceil(duration * FPS - 1e-6)),
            declared=declared,
        )
        wav = io.BytesIO()
        audio = np.clip(samples[: info.num_samples], -1.0, 1.0)
        sf.write(wav, audio, SAMPLE_RATE, subtype="PCM_16", format="WAV")
        _write_synced(tmp / AUDIO_FILE, wav.getvalue())
        _pack_frames(jpgs[: info.num_frames], tmp)
        shutil.rmtree(tmp / "jpg")
        height, width = load_frame(tmp, 0).shape[:2]
        meta = {
            **asdict(info),
            "sample_rate": SAMPLE_RATE,
            "fps": FPS,
            "height": height,
            "width": width,
            "start": start,
            "end": end,
            "declared_duration": declared,
            "source": {**asdict(src), "path": str(video)},
            "format_version": FORMAT_VERSION,
        }
        _write_synced(tmp / INFO_FILE, json.dumps(meta, indent=1).encode())
        _commit(tmp, out_dir)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if is_disk_full(err) and not isinstance(err, DiskFullError):
            raise DiskFullError(out_dir.parent) from err
        raise
    logger.debug("%s -> %s: %s", video, out_dir, info)
    return info


def _declared_length(src: SourceInfo, start: float | None, end: float | None) -> float | None:
    """Seconds the container declares for [start, end), None when it declares no length."""
    if src.duration is None:
        return None
    stop = src.duration if end is None else min(end, src.duration)
    return max(0.0, stop - (start or 0.0))


# ---------------------------------------------------------------- CLI
