"""Public dataset lists: checksummed download and parsers (clip records: :mod:`.records`).

Datasets (Tian & Xu, CVPR 2021, arXiv:2104.02000, Sec. 4.1) and their lists:

- MUSIC (Zhao et al., ECCV 2018, arXiv:1804.03160): ``MUSIC_solo_videos.json``.
- AVE (Tian et al., ECCV 2018, arXiv:1803.08842): ``Annotations.txt``, one
  ``Category&VideoID&Quality&StartTime&EndTime`` row per annotated event.
- Kinetics-Sounds (Arandjelovic & Zisserman, ICCV 2017, arXiv:1705.08168): 27 classes of
  Kinetics-400 (Kay et al., arXiv:1705.06950), whose annotation CSVs give the 10 s segments.
- The paper's splits: ``/class/ID.wav,/class/ID.mp4,NUM_FRAMES`` rows, no header.

Malformed rows: the pinned lists must parse completely (any bad row stops with
:class:`ListFormatError`); in the unpinned ones (Kinetics annotations, AudioSet segments) a row
with a bad time is skipped with a warning, and an ID whose only rows are bad is excluded with
that reason.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import re
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from avmodels.data.fetch import download_verified, sha256_file
from avmodels.registry import SPLITS

logger = logging.getLogger(__name__)


# AVE ``Annotations.txt`` category -> class name used by the split CSVs.
AVE_CATEGORIES: dict[str, str] = {
    "Church bell": "Church_bell", "Male speech, man speaking": "Male_speech", "Bark": "Bark",
    "Fixed-wing aircraft, airplane": "airplane", "Race car, auto racing": "Race_car",
    "Female speech, woman speaking": "Female_speech", "Helicopter": "Helicopter",
    "Violin, fiddle": "Violin", "Flute": "Flute", "Ukulele": "Ukulele", "Frying (food)": "Frying",
    "Truck": "Truck", "Shofar": "Shofar", "Motorcycle": "Motorcycle", "Chainsaw": "Chainsaw",
    "Acoustic guitar": "Acoustic_guitar", "Train horn": "Train_horn", "Clock": "Clock",
    "Banjo": "Banjo", "Goat": "Goat", "Baby cry, infant cry": "Baby_cry", "Bus": "Bus",
    "Cat": "Cat", "Horse": "Horse", "Toilet flush": "Toilet_flush",
    "Rodents, rats, mice": "Rodents", "Accordion": "Accordion", "Mandolin": "Mandolin",
}  # fmt: skip

FAILURE_COLUMNS = ["clip_id", "youtube_id", "reason", "message"]  # clips a download gave up on
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
_SHA256 = re.compile(r"[0-9a-f]{64}")


# The lists each dataset reads, by name (their URLs and digests are the config's:
# ``datasets.<name>.lists``); Kinetics-Sounds also takes any ``annotations*`` file and AVE
# any ``segments*`` file.
LIST_NAMES: dict[str, tuple[str, ...]] = {
    "music": ("videos", *SPLITS),
    "ave": ("annotations", *SPLITS),
    "kinetics_sounds": SPLITS,
}


class ListChecksumError(ValueError):
    """A list file's sha256 differs from the pinned digest."""

    def __init__(self, name: str, actual: str, expected: str) -> None:
        self.name, self.actual, self.expected = name, actual, expected
        super().__init__(f"{name}: sha256 {actual} != expected {expected}")


class ListFormatError(ValueError):
    """A list file does not follow its published format."""


# ---------------------------------------------------------------- checksums and download


def _check_digest(name: str, actual: str, expected: str | None) -> None:
    if expected is None:
        logger.warning("%s: no sha256 pinned, not verified (sha256 %s)", name, actual)
        return
    if not _SHA256.fullmatch(expected.lower()):
        raise ValueError(f"{name}: expected sha256 is not 64 hex digits: {expected!r}")
    if actual != expected.lower():
        raise ListChecksumError(name, actual, expected.lower())


def verify_sha256(path: str | Path, expected: str | None) -> None:
    """Raise :class:`ListChecksumError` unless ``path`` has the sha256 ``expected``.

    ``expected=None`` means "not pinned": the file is accepted with a logged warning.
    """
    _check_digest(str(path), sha256_file(path), expected)


def fetch_list(url: str, dest: str | Path, sha256: str | None, timeout: float = 60.0) -> Path:
    """Download ``url`` (http, https or file) to ``dest``, verifying ``sha256`` first
    (:func:`download_verified`)."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https", "file"):
        raise ValueError(f"{url}: unsupported URL scheme {scheme!r} (http, https, file)")
    download_verified(
        url, dest, lambda actual: _check_digest(f"{url} -> {dest}", actual, sha256), timeout
    )
    logger.info("fetched %s -> %s", url, dest)
    return Path(dest)


# ---------------------------------------------------------------- parsers (raw rows)


@dataclass(frozen=True)
class SplitRow:
    """One row of a paper split CSV: ``/label/youtube_id.wav,/label/youtube_id.mp4,frames``."""

    label: str
    youtube_id: str
    num_frames: int


@dataclass(frozen=True)
class AveAnnotation:
    """One ``Annotations.txt`` row; times in seconds within the 10 s AVE video."""

    category: str
    youtube_id: str
    quality: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class KineticsAnnotation:
    """One Kinetics annotation row; ``label`` is None in files without a label column."""

    label: str | None
    youtube_id: str
    start: float
    end: float
    split: str


def _split_path(text: str, suffix: str, where: str) -> tuple[str, str]:
    path = PurePosixPath(text.strip())
    if path.suffix != suffix or len(path.parts) < 2 or not ID_PATTERN.fullmatch(path.stem):
        raise ListFormatError(f"{where}: expected /class/ID{suffix}, got {text!r}")
    return path.parent.name, path.stem


def read_split_csv(path: str | Path) -> list[SplitRow]:
    """Rows of a paper split CSV in file order (duplicates kept)."""
    rows = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        for n, fields_ in enumerate(csv.reader(f), start=1):
            if not fields_:
                continue
            where = f"{path}:{n}"
            if len(fields_) != 3 or not fields_[2].strip().isdigit():
                raise ListFormatError(f"{where}: expected wav,mp4,num_frames, got {fields_}")
            wav = _split_path(fields_[0], ".wav", where)
            if _split_path(fields_[1], ".mp4", where) != wav:
                raise ListFormatError(f"{where}: wav and mp4 name different clips")
            rows.append(SplitRow(wav[0], wav[1], int(fields_[2])))
    return rows


def read_music_videos(path: str | Path) -> dict[str, list[str]]:
    """``{class: [youtube_id, ...]}`` from ``MUSIC_solo_videos.json``."""
    with open(path, encoding="utf-8") as f:
        videos = json.load(f).get("videos")
    if not isinstance(videos, dict):
        raise ListFormatError(f"{path}: no 'videos' object")
    return {str(k): [str(i) for i in v] for k, v in videos.items()}


def read_ave_annotations(path: str | Path) -> list[AveAnnotation]:
    """Rows of AVE ``Annotations.txt`` in file order; skips a ``Category&VideoID&...`` header."""
    rows = []
    with open(path, encoding="utf-8-sig") as f:
        for n, line in enumerate(f, start=1):
            parts = line.rstrip("\r\n").split("&")
            if not line.strip() or (n == 1 and parts[:2] == ["Category", "VideoID"]):
                continue
            if len(parts) != 5:
                raise ListFormatError(f"{path}:{n}: expected 5 '&'-separated fields: {line!r}")
            try:
                start, end = float(parts[3]), float(parts[4])
            except ValueError as err:
                raise ListFormatError(f"{path}:{n}: bad time in {line!r}") from err
            rows.append(AveAnnotation(parts[0], parts[1], parts[2], start, end))
    return rows


BadRow = Callable[[str, str], None]  # (youtube_id, "file:line: what") of a skipped row


def valid_times(start: float | None, end: float | None) -> bool:
    """Whether ``[start, end)`` seconds is a usable clip range: ``0 <= start < end``, ``end``
    finite; a side given as None is open (the start or the end of the video)."""
    low = 0.0 if start is None else start
    if end is None:
        return math.isfinite(low) and low >= 0
    return math.isfinite(end) and 0 <= low < end


def clip_id_of(youtube_id: str, start: float | None, end: float | None) -> str:
    """``ID_SSSSSSS_EEEEEEE`` (start/end in ms) for a time range, ``ID`` for a whole video."""
    if start is None or end is None:
        return youtube_id
    return f"{youtube_id}_{round(start * 1000):07d}_{round(end * 1000):07d}"


def _times(start: str | None, end: str | None) -> tuple[float, float] | None:
    """(start, end) when both parse and :func:`valid_times` accepts them, else None."""
    try:
        a, b = float(start), float(end)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return (a, b) if valid_times(a, b) else None


def iter_kinetics_annotations(
    path: str | Path, on_bad: BadRow | None = None
) -> Iterator[KineticsAnnotation]:
    """Rows of a Kinetics CSV: header ``label,youtube_id,time_start,time_end,split[,is_cc]``.

    A row with a bad time raises :class:`ListFormatError`, or, with ``on_bad``, is skipped
    after ``on_bad(youtube_id, message)``.
    """
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = {"youtube_id", "time_start", "time_end"} - set(reader.fieldnames or ())
        if missing:
            raise ListFormatError(f"{path}: header lacks {sorted(missing)}")
        for row in reader:
            times = _times(row["time_start"], row["time_end"])
            if times is None:
                message = f"{path}:{reader.line_num}: bad time in {row}"
                if on_bad is None:
                    raise ListFormatError(message)
                on_bad(row["youtube_id"] or "", message)
                continue
            label = row.get("label")
            yield KineticsAnnotation(label, row["youtube_id"], *times, row.get("split") or "")


def read_audioset_segments(
    path: str | Path, wanted: set[str] | None = None, on_bad: BadRow | None = None
) -> dict[str, tuple[float, float]]:
    """``{youtube_id: (start, end)}`` from an AudioSet segment CSV (first row of an ID).

    Format: ``#`` comment lines, then ``YTID, start_seconds, end_seconds, "labels"``. Only IDs
    in ``wanted`` are kept when given; a row with a bad time raises :class:`ListFormatError`,
    or, with ``on_bad``, is skipped after ``on_bad(youtube_id, message)``.
    """
    out: dict[str, tuple[float, float]] = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f, skipinitialspace=True)
        for fields_ in reader:
            if not fields_ or fields_[0].lstrip().startswith("#"):
                continue
            yid = fields_[0].strip()
            if (wanted is not None and yid not in wanted) or yid in out:
                continue
            times = _times(*fields_[1:3]) if len(fields_) >= 3 else None
            if times is None:
                message = f"{path}:{reader.line_num}: bad time in {fields_}"
                if on_bad is None:
                    raise ListFormatError(message)
                on_bad(yid, message)
                continue
            out[yid] = times
    return out
