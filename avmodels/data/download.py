"""Download clips with yt-dlp, one at a time, recording every failure instead of stopping.

For each clip only its time range is fetched (``download_ranges``: yt-dlp hands the cut to
ffmpeg, which must be on PATH; :func:`avmodels.data.probing.ensure_ffmpeg` sees to it), in the
smallest format that has both streams. A clip is downloaded into ``out_dir/.incomplete/`` and
renamed to ``out_dir/<clip_id>.<ext>`` only after it decodes with audio and video for the
expected duration, so any file directly in ``out_dir`` is finished and is never fetched again.

Every failure gets a reason (:mod:`avmodels.data.failures`): permanent ones go to the failures
CSV and are skipped by later runs unless their reason is in ``retry_reasons``; transient ones
are never written there, so every later run retries them. Within a run only "network" is
retried (exponential backoff), and ``stop_after`` transient failures in a row stop the shard
with :class:`DownloadStopped` (YouTube is throttling this machine).

YouTube needs a JavaScript runtime: :func:`deno_path` finds the ``deno`` the project
installs (the ``deno`` wheel) and the shard selects it explicitly (``js_runtimes``).

YouTube IDs are checked against a strict pattern (11 characters of ``[A-Za-z0-9_-]``)
before they reach a URL or a file name; clip IDs must be ``[A-Za-z0-9_-]`` only.
"""

from __future__ import annotations

import csv
import logging
import os
import re
import shutil
import time
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from avmodels import atomic
from avmodels.data import preprocess, probing
from avmodels.data.failures import (
    RETRIED,
    TRANSIENT,
    classify_error,
    one_line,
    read_failures,
    write_failures,
)
from avmodels.data.lists import FAILURE_COLUMNS, valid_times
from avmodels.settings import YOUTUBE_URL, DownloadSettings

logger = logging.getLogger(__name__)

# yt-dlp's "worst" already means worst format with both audio and video; prefer >= 240p so
# the 256 px frames are not upscaled from 144p, and merge separate streams as a last resort.
DEFAULT_FORMAT = "worst[height>=240]/worst/worstvideo[height>=240]+worstaudio/worstvideo+worstaudio"
DENO_MIN_VERSION = (2, 3, 0)  # what yt-dlp accepts
YOUTUBE_ID = re.compile(r"[A-Za-z0-9_-]{11}")
CLIP_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
INCOMPLETE = ".incomplete"
TRUNCATION_TOLERANCE = 0.5  # s (or 5 %) a download may fall short of its range


class DownloadStopped(RuntimeError):
    """A shard met too many transient failures in a row (one-line message: what to set)."""


class RuntimeMissing(RuntimeError):
    """No usable JavaScript runtime (one-line message: what to do)."""


def deno_path(path: str | None = None) -> str:
    """The ``deno`` yt-dlp must use: ``path`` if given, else the one the ``deno`` wheel
    installed. Raises :class:`RuntimeMissing` unless it runs and is recent enough."""
    import subprocess

    if not path:
        try:
            from deno import find_deno_bin

            path = find_deno_bin()
        except (ImportError, FileNotFoundError):
            raise RuntimeMissing(
                "no JavaScript runtime: deno is not installed; run `pip install -e .` (the "
                "project pins the deno wheel) or set download.js_runtime to a deno binary"
            ) from None
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=60, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as err:
        raise RuntimeMissing(
            f"JavaScript runtime {path} does not run ({one_line(err, 120)}); reinstall the "
            "deno wheel (`pip install -e .`) or set download.js_runtime"
        ) from None
    found = re.match(r"deno (\d+)\.(\d+)\.(\d+)", out)
    version = tuple(int(v) for v in found.groups()) if found else ()
    if version < DENO_MIN_VERSION:
        raise RuntimeMissing(
            f"JavaScript runtime {path} is {out.splitlines()[0] if out else 'unknown'}; yt-dlp "
            f"needs deno >= {'.'.join(map(str, DENO_MIN_VERSION))}: `pip install -e .`"
        )
    return str(path)


class ClipSource(Protocol):
    """What a shard entry needs (``avmodels.data.records.ClipRecord`` fits)."""

    youtube_id: str
    start: float | None
    end: float | None

    @property
    def clip_id(self) -> str: ...


@dataclass
class DownloadSummary:
    """Counts of one :func:`download_shard` run."""

    requested: int = 0
    downloaded: int = 0
    already_done: int = 0
    previously_failed: int = 0
    failed: Counter = field(default_factory=Counter)  # reason -> clips failed in this run

    def __str__(self) -> str:
        failed = ", ".join(f"{r} {n}" for r, n in sorted(self.failed.items())) or "none"
        return (
            f"{self.requested} clips: {self.downloaded} downloaded, {self.already_done} "
            f"already done, {self.previously_failed} failed before; failed now: {failed}"
        )


class _Failure(Exception):
    def __init__(self, reason: str, message: str) -> None:
        self.reason, self.message = reason, message
        super().__init__(f"{reason}: {message}")


# ---------------------------------------------------------------- validation


def _check(clip: ClipSource) -> _Failure | None:
    """Why ``clip`` must not be requested (None: it may)."""
    if not isinstance(clip.youtube_id, str) or not YOUTUBE_ID.fullmatch(clip.youtube_id):
        return _Failure("invalid id", f"not a YouTube ID: {clip.youtube_id!r}")
    if not CLIP_ID.fullmatch(clip.clip_id):
        return _Failure("invalid id", f"unsafe clip id: {clip.clip_id!r}")
    start, end = clip.start, clip.end
    if (start is None) != (end is None) or not valid_times(start, end):
        return _Failure("malformed", f"bad time range start={start} end={end}")
    return None


# ---------------------------------------------------------------- one clip


class _YdlLogger:
    """Route yt-dlp's messages to :mod:`logging` (errors are recorded by the shard)."""

    def debug(self, msg: str) -> None:
        logger.debug("yt-dlp: %s", msg)

    def info(self, msg: str) -> None:
        logger.debug("yt-dlp: %s", msg)

    def warning(self, msg: str) -> None:
        logger.info("yt-dlp: %s", msg)

    def error(self, msg: str) -> None:
        logger.debug("yt-dlp: %s", msg)


def _expected_duration(clip: ClipSource, source_duration: Any) -> float | None:
    known = isinstance(source_duration, int | float) and source_duration > 0
    if clip.start is None:
        return float(source_duration) if known else None
    end = min(clip.end, float(source_duration)) if known else clip.end
    return end - clip.start


def _verify(path: Path, clip: ClipSource, info: Mapping[str, Any]) -> None:
    """Raise :class:`_Failure` unless ``path`` decodes with both streams, long enough."""
    try:
        src = probing.probe(path)
        got = probing.decoded_duration(path)
    except probing.MediaError as err:
        raise _Failure("corrupt", err.detail or err.reason) from None
    if src.video_index is None and src.audio_index is None:
        raise _Failure("corrupt", "no audio or video stream")
    if src.video_index is None:
        raise _Failure("no video", f"streams of {src.container} file: audio only")
    if src.audio_index is None:
        raise _Failure("no audio", f"streams of {src.container} file: video only")
    expected = _expected_duration(clip, info.get("duration"))
    if expected is not None and got < expected - max(TRUNCATION_TOLERANCE, 0.05 * expected):
        raise _Failure("network", f"truncated: {got:.2f} s decoded of {expected:.2f} s")


def _fetch(url: str, clip: ClipSource, work: Path, params: Mapping[str, Any]) -> Path:
    """One yt-dlp attempt into the empty directory ``work``; returns the verified file."""
    from yt_dlp import YoutubeDL
    from yt_dlp.utils import download_range_func

    opts = {**params, "paths": {"home": str(work)}, "outtmpl": f"{clip.clip_id}.%(ext)s"}
    if clip.start is not None:
        opts["download_ranges"] = download_range_func(None, [(clip.start, clip.end)])
    with YoutubeDL(opts) as ydl:
        info = ydl.extract_info(url, download=True)
    done = [p for p in work.iterdir() if p.stem == clip.clip_id and p.is_file()]
    if len(done) != 1:
        raise _Failure("other", f"yt-dlp finished but left {sorted(p.name for p in done)}")
    _verify(done[0], clip, info or {})
    return done[0]


def _download_clip(
    clip: ClipSource,
    url: str,
    out_dir: Path,
    params: Mapping[str, Any],
    retries: int,
    backoff: float,
) -> Path:
    """Download with retries on network failures; raises :class:`_Failure`."""
    work = out_dir / INCOMPLETE / clip.clip_id
    try:
        for attempt in range(retries + 1):
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            try:
                path = _fetch(url, clip, work, params)
            except _Failure as err:
                failure = err
            except Exception as err:  # every yt-dlp error becomes a failure row
                failure = _Failure(classify_error(err), one_line(err))
            else:
                final = out_dir / path.name
                os.replace(path, final)
                return final
            if failure.reason != "network" or attempt == retries:
                raise failure
            delay = backoff * 2**attempt
            logger.info("%s: %s; retry %d in %.1f s", clip.clip_id, failure, attempt + 1, delay)
            time.sleep(delay)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    raise AssertionError("unreachable")


# ---------------------------------------------------------------- shard


def _stopped(count: int, failure: _Failure) -> DownloadStopped:
    return DownloadStopped(
        f"download stopped: {count} clips in a row failed with {failure.reason} (last: "
        f"{one_line(failure.message, 120)}); YouTube is throttling this machine: set "
        "download.cookies to a cookies.txt of a signed-in browser and/or raise "
        "download.sleep_requests / download.sleep_downloads, lower download.rate_limit, "
        "then run again (finished clips are kept)"
    )


def download_shard(
    records: Iterable[ClipSource],
    out_dir: str | Path,
    failures_csv: str | Path,
    url_template: str = YOUTUBE_URL,
    retries: int = 3,
    backoff: float = 5.0,
    *,
    format: str = DEFAULT_FORMAT,
    force_keyframes_at_cuts: bool = False,
    retry_reasons: Collection[str] = RETRIED,
    stop_after: int = 10,
    js_runtime: str | None = None,
    socket_timeout: float = 30.0,
    ydl_options: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> DownloadSummary:
    """Download every clip of ``records`` into ``out_dir/<clip_id>.<ext>``, one at a time.

    ``url_template`` gets the YouTube ID as ``{id}``. Network failures are retried
    ``retries`` times after ``backoff * 2**k`` s. Every failure but a transient one is a
    row of ``failures_csv`` (:data:`FAILURE_COLUMNS`); finished files and clips recorded
    there (unless their reason is in ``retry_reasons``) are skipped, so a re-run makes no
    requests for them. ``stop_after`` transient failures in a row (0: never) raise
    :class:`DownloadStopped` after saving what was done. ``js_runtime`` is the deno binary
    yt-dlp uses (None: yt-dlp looks for ``deno`` itself). ``force_keyframes_at_cuts``
    re-encodes for frame-exact cuts (slow). ``ydl_options`` are extra/overriding yt-dlp
    parameters (e.g. ``cookiefile``, ``sleep_interval_requests``, ``ratelimit``).
    """
    from tqdm import tqdm

    out_dir, failures_csv = Path(out_dir), Path(failures_csv)
    out_dir.mkdir(parents=True, exist_ok=True)
    failures_csv.parent.mkdir(parents=True, exist_ok=True)
    params = {
        "format": format,
        "quiet": True,
        "noprogress": True,
        "logger": _YdlLogger(),
        "noplaylist": True,
        "overwrites": True,
        "cachedir": False,
        "retries": 3,
        "fragment_retries": 3,
        "extractor_retries": 1,
        "socket_timeout": socket_timeout,
        "ffmpeg_location": probing.ensure_ffmpeg(),
        "force_keyframes_at_cuts": force_keyframes_at_cuts,
        "external_downloader_args": {"ffmpeg_i": ["-rw_timeout", str(int(socket_timeout * 1e6))]},
        "js_runtimes": {"deno": {"path": js_runtime} if js_runtime else {}},
        **(ydl_options or {}),
    }
    retried = set(retry_reasons) | TRANSIENT
    old = {k: v for k, v in read_failures(failures_csv).items() if v["reason"] not in TRANSIENT}
    new: dict[str, dict[str, str]] = {}
    done: set[str] = set()
    summary = DownloadSummary()
    clips: dict[str, ClipSource] = {}
    for clip in records:
        clips.setdefault(str(clip.clip_id), clip)
    in_a_row = 0
    bar = tqdm(clips.items(), desc="download", unit="clip", disable=not progress)
    try:
        with open(failures_csv, "a", newline="", encoding="utf-8") as log:  # crash-safe log
            writer = csv.DictWriter(log, FAILURE_COLUMNS, lineterminator="\n")
            if log.tell() == 0:
                writer.writeheader()
            for key, clip in bar:
                summary.requested += 1
                failure = _check(clip)
                if failure is None and preprocess.find_video(out_dir, key) is not None:
                    summary.already_done += 1
                    done.add(key)
                    continue
                if failure is None and key in old and old[key]["reason"] not in retried:
                    summary.previously_failed += 1
                    continue
                if failure is None:
                    url = url_template.format(id=clip.youtube_id)
                    try:
                        _download_clip(clip, url, out_dir, params, retries, backoff)
                        summary.downloaded += 1
                        done.add(key)
                        in_a_row = 0
                        continue
                    except _Failure as err:
                        failure = err
                summary.failed[failure.reason] += 1
                logger.info("%s failed: %s", key, failure)
                if failure.reason in TRANSIENT:
                    in_a_row += 1
                    if stop_after and in_a_row >= stop_after:
                        raise _stopped(in_a_row, failure)
                    continue
                in_a_row = 0
                new[key] = {
                    "clip_id": key,
                    "youtube_id": str(clip.youtube_id),
                    "reason": failure.reason,
                    "message": one_line(failure.message),
                }
                writer.writerow(new[key])
                log.flush()
    finally:
        kept = {k: v for k, v in old.items() if k not in done and k not in new}
        write_failures(failures_csv, {**kept, **new}.values())
        incomplete = out_dir / INCOMPLETE
        if incomplete.is_dir() and not any(incomplete.iterdir()):
            incomplete.rmdir()
    logger.info("%s: %s", out_dir, summary)
    return summary


# ---------------------------------------------------------------- workflow helpers


def shard_options(settings: DownloadSettings) -> dict[str, Any]:
    """Keyword arguments of :func:`download_shard` for the ``download:`` config section;
    checks the JavaScript runtime (:class:`RuntimeMissing`) and the cookies file."""
    ydl: dict[str, Any] = {}
    if settings.cookies:
        cookies = Path(settings.cookies).expanduser()
        if not cookies.is_file():
            raise FileNotFoundError(f"download.cookies: no such file {cookies}")
        ydl["cookiefile"] = str(cookies)
    if settings.sleep_requests:
        ydl["sleep_interval_requests"] = float(settings.sleep_requests)
    if settings.sleep_downloads:
        ydl["sleep_interval"] = float(settings.sleep_downloads)
    if settings.rate_limit:
        ydl["ratelimit"] = int(settings.rate_limit)
    return {
        "retries": int(settings.retries),
        "retry_reasons": tuple(settings.retry),
        "stop_after": int(settings.stop_after),
        "js_runtime": deno_path(settings.js_runtime),
        "ydl_options": ydl,
    }


def write_done_list(store: str | Path, clip_ids: Iterable[str], path: str | Path) -> int:
    """Write ``clip_id,file`` of the clips of ``clip_ids`` finished in ``store`` to ``path``
    (atomically); returns how many."""
    rows = []
    for key in dict.fromkeys(clip_ids):
        found = preprocess.find_video(store, key) if CLIP_ID.fullmatch(key) else None
        if found is not None:
            rows.append((key, found.name))
    with atomic.writing(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["clip_id", "file"])
        writer.writerows(rows)
    return len(rows)
