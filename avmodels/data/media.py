"""Decode videos into the clip layout the models read: 11025 Hz mono audio + 8 fps frames.

Tian & Xu (CVPR 2021, arXiv:2104.02000, supplementary Sec. A.2) sample sound at 11025 Hz and
frames at 8 fps (``ffmpeg -r 8`` in their code). One preprocessed clip is a directory::

    audio.wav        11025 Hz mono PCM16 (soundfile reads any window without decoding the rest)
    frames.mjpeg     the 8 fps frames as concatenated baseline JPEGs (a valid MJPEG stream)
    frames.idx       T + 1 little-endian int64 byte offsets: frame i is bytes [idx[i], idx[i+1])
    info.json        duration, samples, frames, frame size, source fps / sample rate / layout

Frames are scaled so that the short side is at most ``max_short_side`` (default 256, aspect
kept, non-square pixels made square; smaller sources are kept as they are): the models crop
224 px after a 246 px resize, so 256 px loses nothing and keeps storage small.

Storage was chosen by measurement (``bench/frame_formats.py``; the figures are in
``bench/RESULTS.md``): the packed JPEG stream reads a random frame as fast as one JPEG file
per frame, with the same bytes, in 4 files per clip instead of one per frame; raw ``.npy``,
PNG and H.264 cost more bytes or more read time. PCM16 WAV reads a window faster than FLAC
for little more disk; its quantisation step (3e-5) is far below the attack budgets (6e-3).

Both streams are aligned to t = 0 (audio padded/trimmed by ``aresample``, frames by
``fps:start_time``) and cut to their common duration. A clip directory is built in a temporary
directory beside it and renamed into place at the end, so an existing directory with
``info.json`` is always complete.

Nothing that preprocessing did not write is ever deleted or overwritten: the target must be
absent, empty, or a clip folder (only the four files above); any other folder is refused with
:class:`ClipDirError`. A full disk raises :class:`DiskFullError` (an ``OSError``), never a
:class:`MediaError`, so no clip is recorded as bad for it. Every ffmpeg run has a timeout.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import json
import logging
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import ffmpeg
import numpy as np
import soundfile as sf

from avmodels.data.classes import CLASSES
from avmodels.data.lists import valid_times
from avmodels.settings import FRAME_SHORT_SIDE

logger = logging.getLogger(__name__)

SAMPLE_RATE = 11025
FPS = 8
MAX_SHORT_SIDE = FRAME_SHORT_SIDE
MIN_DURATION = 1.0
JPEG_QUALITY = 3  # ffmpeg -q:v, 2 (best) .. 31; 3 is visually lossless
AUDIO_FILE = "audio.wav"
FRAMES_FILE = "frames.mjpeg"
INDEX_FILE = "frames.idx"
INFO_FILE = "info.json"
FORMAT_VERSION = 1
REASONS = ("no audio", "no video", "too short", "undecodable")
NOT_DOWNLOADED = "not downloaded"
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".3gp", ".mov", ".m4v", ".avi", ".flv", ".ogv")
CLIP_FILES = frozenset({AUDIO_FILE, FRAMES_FILE, INDEX_FILE, INFO_FILE})
PROBE_TIMEOUT = 300.0  # seconds for ``ffmpeg -i``
DECODE_TIMEOUT = 1800.0  # seconds for decoding one clip
SHORT_TOLERANCE = 0.5  # seconds a decode may fall short of the declared length unreported


class MediaError(Exception):
    """A video that cannot become a clip; ``str(e)`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason, self.detail = reason, detail
        super().__init__(reason)


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


@dataclass(frozen=True)
class SourceInfo:
    """Streams of a media file as ``ffmpeg -i`` reports them (None: not reported)."""

    container: str
    duration: float | None
    video_index: int | None
    audio_index: int | None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    sample_rate: int | None = None
    channel_layout: str | None = None


class ClipLike(Protocol):
    """What :func:`preprocess_many` reads from a record
    (e.g. ``avmodels.data.records.ClipRecord``)."""

    dataset: str
    label: str
    split: str

    @property
    def clip_id(self) -> str: ...


# ---------------------------------------------------------------- ffmpeg and probing


def _private_dir(path: Path) -> bool:
    """True if ``path`` is a folder of this user that no one else can write to."""
    st = path.lstat()
    return (
        path.is_dir()
        and not path.is_symlink()
        and st.st_uid == os.getuid()
        and not (st.st_mode & 0o022)
    )


_FFMPEG_DIR: list[Path] = []  # the private folder made by this process, if any


def ensure_ffmpeg() -> str:
    """Return a program named ``ffmpeg`` on PATH, linking imageio-ffmpeg's binary if needed.

    yt-dlp and ffmpeg-python look the program up by name; the imageio-ffmpeg wheel ships it
    under another name, so it is symlinked as ``<cache>/avmodels/bin/ffmpeg`` and that
    directory is prepended to ``PATH`` of this process (and its children). The folder must
    belong to this user and be writable by no one else; otherwise a fresh private temporary
    folder (mode 0700) is used, never a shared one.
    """
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    exe = imageio_ffmpeg.get_ffmpeg_exe()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    for bin_dir in (cache / "avmodels" / "bin", *_FFMPEG_DIR, None):
        try:
            if bin_dir is None:
                bin_dir = Path(tempfile.mkdtemp(prefix="avmodels-bin-"))
                _FFMPEG_DIR.append(bin_dir)
            bin_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            mine = bin_dir in _FFMPEG_DIR  # made by mkdtemp: the parent is sticky /tmp
            if not (_private_dir(bin_dir) and (mine or _private_dir(bin_dir.parent))):
                logger.debug("not using %s for ffmpeg: writable by others", bin_dir)
                continue
            link = bin_dir / "ffmpeg"
            if not (link.exists() and os.path.samefile(link, exe)):
                tmp = bin_dir / f".ffmpeg.{uuid.uuid4().hex}"
                os.symlink(exe, tmp)
                os.replace(tmp, link)  # atomic when several processes race
        except OSError as err:
            logger.debug("cannot link ffmpeg into %s: %s", bin_dir, err)
            continue
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
        return str(link)
    raise RuntimeError(f"cannot make {exe} available as 'ffmpeg'")


def _input_url(path: Path) -> str:
    # "file:" + absolute path: a name like "-x" or "http:y" is never an option or a protocol
    return "file:" + str(Path(path).resolve())


_STREAM = re.compile(r"^\s*Stream #0:(\d+)\S*: (Video|Audio|Subtitle|Data|Attachment): (.*)$")
_DURATION = re.compile(r"^\s*Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")


def parse_probe(stderr: str) -> SourceInfo:
    """Parse the stream listing of ``ffmpeg -i FILE``; MediaError("undecodable") if none."""
    container, duration = None, None
    video: dict[str, Any] = {}
    audio: dict[str, Any] = {}
    for line in stderr.splitlines():
        if container is None and (m := re.match(r"^Input #0, (.+?), from ", line)):
            container = m.group(1)
        elif m := _DURATION.match(line):
            h, mi, s = m.groups()
            duration = int(h) * 3600 + int(mi) * 60 + float(s)
        elif m := _STREAM.match(line):
            index, kind, desc = int(m.group(1)), m.group(2), m.group(3)
            if kind == "Video" and not video and "(attached pic)" not in desc:
                size = re.search(r", (\d{1,5})x(\d{1,5})\b", desc)
                fps = re.search(r", ([\d.]+)(k?) (?:fps|tbr)\b", desc)
                video = {
                    "video_index": index,
                    "width": int(size.group(1)) if size else None,
                    "height": int(size.group(2)) if size else None,
                    "fps": float(fps.group(1)) * (1000 if fps.group(2) else 1) if fps else None,
                }
            elif kind == "Audio" and not audio:
                rate = re.search(r", (\d+) Hz, ([^,]+)", desc)
                audio = {
                    "audio_index": index,
                    "sample_rate": int(rate.group(1)) if rate else None,
                    "channel_layout": rate.group(2).strip() if rate else None,
                }
    if container is None:
        lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
        raise MediaError("undecodable", lines[-1] if lines else "ffmpeg printed nothing")
    fields = {"video_index": None, "audio_index": None, **video, **audio}
    return SourceInfo(container=container, duration=duration, **fields)


def probe(path: str | Path) -> SourceInfo:
    """Streams of ``path`` from ``ffmpeg -i`` (no ffprobe needed); MediaError if not media."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(path)
    cmd = [ensure_ffmpeg(), "-hide_banner", "-nostdin", "-i", _input_url(path)]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, errors="replace", timeout=PROBE_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        detail = f"ffmpeg -i timed out after {PROBE_TIMEOUT:.0f} s"
        raise MediaError("undecodable", detail) from None
    return parse_probe(proc.stderr)


def decoded_duration(path: str | Path, timeout: float = 300) -> float:
    """Seconds of media that actually decode from ``path`` (catches truncated files)."""
    cmd = [ensure_ffmpeg(), "-hide_banner", "-nostdin", "-v", "error", "-nostats"]
    cmd += ["-i", _input_url(Path(path)), "-progress", "pipe:1", "-f", "null", "-"]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, errors="replace", timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise MediaError("undecodable", f"decoding timed out after {timeout:.0f} s") from None
    times = re.findall(r"^out_time_us=(\d+)$", proc.stdout, flags=re.M)
    if proc.returncode != 0 or not times:
        lines = proc.stderr.strip().splitlines()
        raise MediaError("undecodable", lines[-1] if lines else "nothing decoded")
    return int(times[-1]) / 1e6


# ---------------------------------------------------------------- preprocessing


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
    inp = ffmpeg.input(_input_url(video), **seek)
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


# ---------------------------------------------------------------- reading clips


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


# ---------------------------------------------------------------- many clips


def find_video(video_dir: str | Path, clip_id: str) -> Path | None:
    """The finished download ``video_dir/<clip_id>.<ext>``, or None."""
    for ext in VIDEO_EXTENSIONS:
        path = Path(video_dir) / f"{clip_id}{ext}"
        if path.is_file():
            return path
    return None


def _class_index(items: Sequence[Any], classes: Sequence[str] | None) -> dict[tuple, int]:
    """(dataset, label) -> index: ``classes`` if given, else the paper's order
    (``avmodels.data.classes.CLASSES``), else sorted labels of the dataset's items."""
    index = {}
    for dataset in {getattr(i, "dataset", "") for i in items}:
        names = classes or CLASSES.get(dataset)
        if names is None:
            same = [i for i in items if getattr(i, "dataset", "") == dataset]
            names = sorted({getattr(i, "label", "") for i in same} - {""})
        index.update({(dataset, c): k for k, c in enumerate(names)})
    return index


def _manifest_row(item: Any, clip_dir: Path, info: Mapping[str, Any], classes: Mapping) -> dict:
    dataset, label = getattr(item, "dataset", ""), getattr(item, "label", "")
    return {
        "clip_id": clip_dir.name,
        "dataset": dataset,
        "label": label,
        "label_index": classes.get((dataset, label), -1),
        "split": getattr(item, "split", ""),
        "clip_dir": str(clip_dir),
        "duration": info["duration"],
        "num_samples": info["num_samples"],
        "num_frames": info["num_frames"],
    }


def preprocess_many(
    items: Iterable[ClipLike | str | Path],
    out_root: str | Path,
    *,
    video_dir: str | Path | None = None,
    classes: Sequence[str] | None = None,
    trim: bool = False,
    progress: bool = True,
    workers: int = 1,
    **options: Any,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Preprocess clips into ``out_root/<clip_id>``; never stops on a bad clip.

    ``items`` are video paths (clip id = file stem) or records with ``clip_id``, ``dataset``,
    ``label``, ``split`` whose video is their ``video`` attribute if they have one
    (``avmodels.data.local.LocalClip``), else ``video_dir/<clip_id>.<ext>`` (as downloaded by
    :func:`avmodels.data.download.download_shard`). ``trim=True`` cuts each record's
    ``start``/``end`` from its video (for uncut sources; downloads are already cut).
    ``classes`` gives ``label_index`` (default: ``avmodels.data.classes.CLASSES[dataset]``, the
    paper's order, or the sorted labels of a dataset not listed there; -1 without a label).
    Finished clip directories are reused. Returns (manifest rows, exclusion rows) with the
    columns of ``avmodels.data.manifests.MANIFEST_COLUMNS`` and ``EXCLUSION_COLUMNS``;
    ``options`` go to :func:`preprocess_clip`. ``workers`` clips are processed at once
    (ffmpeg processes; the rows keep the order of ``items``). A progress bar goes to stderr.
    """
    from tqdm import tqdm

    items, out_root = list(items), Path(out_root)
    class_index = _class_index(items, classes)
    stop = threading.Event()  # set by a full disk: the clips still queued are not started

    def one(item: ClipLike | str | Path) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        if isinstance(item, str | Path):
            video, clip_id = Path(item), Path(item).stem
        else:
            clip_id = item.clip_id
            video = getattr(item, "video", None)
            if video is None and video_dir is not None:
                video = find_video(video_dir, clip_id)
        clip_dir = out_root / clip_id
        reason = None
        if stop.is_set():
            raise DiskFullError(out_root)
        if is_clip_dir(clip_dir):
            pass
        elif video is None or not video.is_file():
            reason = NOT_DOWNLOADED
        else:
            times = (getattr(item, "start", None), getattr(item, "end", None)) if trim else ()
            try:
                preprocess_clip(video, clip_dir, *times, **options)
            except DiskFullError:
                stop.set()
                raise
            except MediaError as err:
                reason = err.reason
                logger.info("%s excluded: %s %s", clip_id, err.reason, err.detail)
        if reason is None:
            return _manifest_row(item, clip_dir, read_info(clip_dir), class_index), None
        split = getattr(item, "split", "")
        return None, {
            "clip_id": clip_id,
            "dataset": getattr(item, "dataset", ""),
            "split": split,
            "reason": reason,
        }

    rows, excluded = [], []
    with ThreadPoolExecutor(max(1, workers)) as pool:  # ffmpeg runs outside the GIL
        done = pool.map(one, items)
        for row, exclusion in tqdm(
            done, total=len(items), desc="preprocess", unit="clip", disable=not progress
        ):
            if row is not None:
                rows.append(row)
            else:
                excluded.append(exclusion)
    return rows, excluded


# ---------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    """``avrobust preprocess VIDEO OUT_DIR [--start S --end E]``.

    Exit status 1: the video cannot become a clip; 2: OUT_DIR holds other files (refused,
    nothing changed); 3: the disk is full. Each prints one line to stderr.
    """
    parser = argparse.ArgumentParser(prog="avrobust")
    sub = parser.add_subparsers(dest="command", required=True)
    pre = sub.add_parser("preprocess", help="decode a video into a clip directory")
    pre.add_argument("video", type=Path, help="any container ffmpeg reads")
    pre.add_argument(
        "out_dir", type=Path, help="clip folder: absent, empty or one written here before"
    )
    pre.add_argument("--start", type=float, default=None, help="seconds into the video")
    pre.add_argument("--end", type=float, default=None, help="seconds into the video")
    pre.add_argument(
        "--max-short-side",
        type=int,
        default=MAX_SHORT_SIDE,
        help=f"frames larger than this are scaled down (pixels, {MAX_SHORT_SIDE})",
    )
    pre.add_argument(
        "--min-duration",
        type=float,
        default=MIN_DURATION,
        help=f"shorter clips are refused (seconds, {MIN_DURATION:g})",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        info = preprocess_clip(
            args.video,
            args.out_dir,
            args.start,
            args.end,
            max_short_side=args.max_short_side,
            min_duration=args.min_duration,
        )
    except (MediaError, FileNotFoundError) as err:
        reason = err.reason if isinstance(err, MediaError) else "no such file"
        print(f"{args.video}: {reason}", file=sys.stderr)
        return 1
    except ClipDirError as err:
        print(err, file=sys.stderr)
        return 2
    except OSError as err:
        if not is_disk_full(err):
            raise
        print(f"{args.out_dir}: no space left on device; nothing written", file=sys.stderr)
        return 3
    short = "" if info.declared is None else f" (source declares {info.declared:.3f} s)"
    print(
        f"{args.out_dir}: duration {info.duration:.3f} s, "
        f"{info.num_samples} samples, {info.num_frames} frames{short}"
    )
    return 0
