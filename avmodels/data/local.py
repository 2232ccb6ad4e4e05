"""Clips the user already has: a folder of a listed dataset's videos, or an own-dataset CSV.

- ``source: local``: the records of a listed dataset (MUSIC, AVE, Kinetics-Sounds) are matched
  by ID to the videos of a folder (searched at any depth, any container of
  ``avmodels.data.preprocess.VIDEO_EXTENSIONS``). A file matches a record when its name without the
  extension is the record's clip ID, its YouTube ID, or the YouTube ID followed by ``_`` and
  anything (the dataset archives' ``ID_000030_000040.mp4``). The videos are used as they are:
  the archives' AVE and Kinetics videos are already the clips.
- ``source: csv``: a CSV with a header and the columns ``video,label,split`` (more columns are
  ignored); ``video`` is a path, relative to the CSV's folder unless absolute; ``split`` is
  train, val or test; labels are any names. A clip's ID is its file name without extension
  (characters outside ``[A-Za-z0-9_-]`` become ``_``; a repeated ID gets ``-2``, ``-3`` ...).

Either way the result is a sources table (``SOURCE_COLUMNS``): one row per clip with the
video it is read from. User files are only read, never written.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path

from avmodels import atomic
from avmodels.data.lists import SPLITS, ListFormatError
from avmodels.data.preprocess import VIDEO_EXTENSIONS
from avmodels.data.records import ClipRecord, Exclusion

NOT_IN_FOLDER = "not in local folder"
NO_SUCH_FILE = "no such file"
SOURCE_COLUMNS = ["clip_id", "dataset", "label", "split", "video"]
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class LocalClip:
    """One clip read from a file the user holds (what ``preprocess_many`` takes)."""

    clip_id: str
    dataset: str
    label: str
    split: str
    video: Path


def index_videos(folder: str | Path) -> dict[str, Path]:
    """``{name without extension: path}`` of the videos under ``folder`` (first by path)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder of videos")
    index: dict[str, Path] = {}
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            if path.suffix.lower() in VIDEO_EXTENSIONS and not name.startswith("."):
                index.setdefault(path.stem, path)
    return index


def match_records(
    records: Iterable[ClipRecord], folder: str | Path
) -> tuple[list[LocalClip], list[Exclusion]]:
    """The records whose video is in ``folder`` (module docstring), and the others."""
    index = index_videos(folder)
    by_id: dict[str, Path] = {}
    for stem, path in index.items():
        if len(stem) > 11 and stem[11] == "_":
            by_id.setdefault(stem[:11], path)
    clips, missing = [], []
    for rec in records:
        video = index.get(rec.clip_id) or index.get(rec.youtube_id) or by_id.get(rec.youtube_id)
        if video is None:
            missing.append(Exclusion(rec.clip_id, rec.dataset, rec.split, NOT_IN_FOLDER))
        else:
            clips.append(LocalClip(rec.clip_id, rec.dataset, rec.label, rec.split, video))
    return clips, missing


def read_own_csv(path: str | Path, dataset: str) -> tuple[list[LocalClip], list[Exclusion]]:
    """Clips of an own-dataset CSV (module docstring); a listed file that is missing is excluded.

    A missing column, an empty label or an unknown split raises :class:`ListFormatError`.
    """
    path = Path(path)
    clips, missing, seen = [], [], set()
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        lacking = {"video", "label", "split"} - set(reader.fieldnames or ())
        if lacking:
            raise ListFormatError(f"{path}: header lacks {sorted(lacking)} (video,label,split)")
        for row in reader:
            where = f"{path}:{reader.line_num}"
            video, label, split = (row[k].strip() for k in ("video", "label", "split"))
            if split not in SPLITS:
                raise ListFormatError(f"{where}: split {split!r} is not one of {SPLITS}")
            if not video or not label:
                raise ListFormatError(f"{where}: empty video or label")
            file = Path(video) if Path(video).is_absolute() else path.parent / video
            base = _UNSAFE.sub("_", file.stem)[:100] or "clip"
            clip_id, n = base, 1
            while clip_id in seen:
                n += 1
                clip_id = f"{base}-{n}"
            seen.add(clip_id)
            if not file.is_file():
                missing.append(Exclusion(clip_id, dataset, split, f"{NO_SUCH_FILE}: {video}"))
                continue
            clips.append(LocalClip(clip_id, dataset, label, split, file.resolve()))
    if not clips:
        raise ListFormatError(f"{path}: no video of the list exists")
    return clips, missing


def csv_classes(path: str | Path) -> tuple[str, ...]:
    """The sorted labels of an own-dataset CSV (every row, the missing files' too)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        labels = {(row.get("label") or "").strip() for row in csv.DictReader(f)}
    return tuple(sorted(labels - {""}))


def write_sources(path: str | Path, clips: Iterable[LocalClip]) -> None:
    """Write the sources table (``SOURCE_COLUMNS``); atomic."""
    with atomic.writing(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(SOURCE_COLUMNS)
        writer.writerows((*astuple(c)[:4], str(c.video)) for c in clips)


def read_sources(path: str | Path) -> list[LocalClip]:
    """Read a sources table written by :func:`write_sources`."""
    names: Sequence[str] = [f.name for f in fields(LocalClip)]
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [LocalClip(**{**{k: r[k] for k in names}, "video": Path(r["video"])}) for r in rows]
