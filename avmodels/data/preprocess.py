"""Preprocess many clips without stopping on a bad one, and ``avrobust preprocess`` for one.

:func:`preprocess_many` turns downloaded (or local) videos into clip folders
(:func:`avmodels.data.media.preprocess_clip`) and returns the manifest and exclusion rows; a
video that cannot become a clip is excluded with its reason, a full disk stops the run.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from avmodels.data import media
from avmodels.data.classes import CLASSES
from avmodels.data.clips import is_clip_dir, read_info
from avmodels.data.media import (
    MAX_SHORT_SIDE,
    MIN_DURATION,
    ClipDirError,
    DiskFullError,
    is_disk_full,
)
from avmodels.data.probing import MediaError

logger = logging.getLogger(__name__)

NOT_DOWNLOADED = "not downloaded"
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".3gp", ".mov", ".m4v", ".avi", ".flv", ".ogv")


class ClipLike(Protocol):
    """What :func:`preprocess_many` reads from a record
    (e.g. ``avmodels.data.records.ClipRecord``)."""

    dataset: str
    label: str
    split: str

    @property
    def clip_id(self) -> str: ...


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
                media.preprocess_clip(video, clip_dir, *times, **options)
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
        info = media.preprocess_clip(
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
