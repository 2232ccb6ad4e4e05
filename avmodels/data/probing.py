"""ffmpeg for the data steps: the program itself, and what a media file holds (no ffprobe).

The imageio-ffmpeg wheel ships a static ffmpeg under another name; :func:`ensure_ffmpeg` puts
it on ``PATH`` as ``ffmpeg`` for yt-dlp and ffmpeg-python. :func:`probe` reads a file's streams
from ``ffmpeg -i``; :func:`decoded_duration` decodes it to find how much really plays. Both
raise :class:`MediaError` for a file that cannot become a clip, and both have a timeout.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

REASONS = ("no audio", "no video", "too short", "undecodable")
PROBE_TIMEOUT = 300.0  # seconds for ``ffmpeg -i``


class MediaError(Exception):
    """A video that cannot become a clip; ``str(e)`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason, self.detail = reason, detail
        super().__init__(reason)


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


def input_url(path: Path) -> str:
    """``file:`` + the absolute path: a name like "-x" or "http:y" is never read by ffmpeg as an
    option or a protocol."""
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
    cmd = [ensure_ffmpeg(), "-hide_banner", "-nostdin", "-i", input_url(path)]
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
    cmd += ["-i", input_url(Path(path)), "-progress", "pipe:1", "-f", "null", "-"]
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
