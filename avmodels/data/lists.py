"""Public dataset lists: checksummed download, parsers, and clip records.

Datasets (Tian & Xu, CVPR 2021, arXiv:2104.02000, Sec. 4.1) and their lists:

- MUSIC (Zhao et al., ECCV 2018, arXiv:1804.03160): ``MUSIC_solo_videos.json``.
- AVE (Tian et al., ECCV 2018, arXiv:1803.08842): ``Annotations.txt``, one
  ``Category&VideoID&Quality&StartTime&EndTime`` row per annotated event.
- Kinetics-Sounds (Arandjelovic & Zisserman, ICCV 2017, arXiv:1705.08168): 27 classes of
  Kinetics-400 (Kay et al., arXiv:1705.06950), whose annotation CSVs give the 10 s segments.
- The paper's splits: ``/class/ID.wav,/class/ID.mp4,NUM_FRAMES`` rows, no header.

Duplicate rule (:func:`records_with_exclusions`): the split files are read in the priority
order test > val > train and a YouTube ID is kept only at its first occurrence, so an ID that
is in several splits stays in the highest-priority one (a test clip never reaches training)
and an ID repeated within a split is kept once. Every dropped row becomes an
:class:`Exclusion` saying where the ID was kept.

Times: MUSIC records are whole videos (``start = end = None``). An AVE video is one 10 s
AudioSet segment (Gemmeke et al., ICASSP 2017); the event times of ``Annotations.txt`` are
seconds inside it, not inside the full YouTube upload. AVE records therefore take the segment's
``start_seconds``/``end_seconds`` from AudioSet's segment lists (``segments*``: balanced,
unbalanced and eval CSVs, searched in the order given); an ID in none of them is excluded.
Without segment lists (``whole_videos=True``: a local copy of the AVE archive, whose videos are
the segments) AVE records are whole videos. Kinetics-Sounds records take
``time_start``/``time_end`` of the ID's first annotation row with the split's label (else its
first row), searching every ``annotations*`` file in the order given.

Malformed rows: the pinned lists must parse completely (any bad row stops with
:class:`ListFormatError`); in the unpinned ones (Kinetics annotations, AudioSet segments) a row
with a bad time is skipped with a warning, and an ID whose only rows are bad is excluded with
that reason.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import re
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import astuple, dataclass, fields
from pathlib import Path, PurePosixPath

from avmodels import atomic
from avmodels.data.classes import CLASSES
from avmodels.data.fetch import download_verified, sha256_file
from avmodels.registry import SPLITS

logger = logging.getLogger(__name__)

SPLIT_PRIORITY = ("test", "val", "train")  # the duplicate rule keeps an ID in the first of these

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

NOT_IN_MUSIC = "not in MUSIC solo list"
NOT_IN_AVE = "not in AVE annotations"
EMPTY_AVE_EVENT = "empty event in AVE annotations (start >= end)"
NOT_IN_KINETICS = "not in Kinetics annotations"
NOT_IN_AUDIOSET = "not in AudioSet segment lists"
BAD_TIME = "bad time in"
RECORD_COLUMNS = ["clip_id", "dataset", "label", "youtube_id", "start", "end", "split"]
EXCLUSION_COLUMNS = ["clip_id", "dataset", "split", "reason"]
FAILURE_COLUMNS = ["clip_id", "youtube_id", "reason", "message"]  # clips a download gave up on
_ID = re.compile(r"[A-Za-z0-9_-]+")
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
    if path.suffix != suffix or len(path.parts) < 2 or not _ID.fullmatch(path.stem):
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


# ---------------------------------------------------------------- clip records


@dataclass(frozen=True)
class ClipRecord:
    """One clip of a dataset split; ``start``/``end`` in seconds, None for the whole video."""

    dataset: str
    label: str
    youtube_id: str
    start: float | None
    end: float | None
    split: str

    def __post_init__(self) -> None:
        if not self.dataset or not self.label:
            raise ValueError(f"dataset and label must be non-empty: {self}")
        if not _ID.fullmatch(self.youtube_id):
            raise ValueError(f"youtube_id must match {_ID.pattern}: {self.youtube_id!r}")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}: {self.split!r}")
        if (self.start is None) != (self.end is None):
            raise ValueError(f"start and end must both be set or both None: {self}")
        if not valid_times(self.start, self.end):
            raise ValueError(f"need 0 <= start < end: {self}")

    @property
    def clip_id(self) -> str:
        """``ID_SSSSSSS_EEEEEEE`` (start/end in ms) or just ``ID`` for a whole video."""
        return clip_id_of(self.youtube_id, self.start, self.end)


@dataclass(frozen=True)
class Exclusion:
    """A list row that did not become a record, and why."""

    clip_id: str
    dataset: str
    split: str
    reason: str


def _split_rows(dataset: str, lists: Mapping[str, Path]) -> dict[str, list[SplitRow]]:
    rows = {split: read_split_csv(lists[split]) for split in SPLITS}
    for split, split_rows in rows.items():
        unknown = {r.label for r in split_rows} - set(CLASSES[dataset])
        if unknown:
            raise ListFormatError(f"{lists[split]}: classes not in {dataset}: {sorted(unknown)}")
    return rows


Resolver = Callable[[SplitRow, str], ClipRecord | str]  # (row, split) -> record or reason


def _music_resolver(lists: Mapping[str, Path], wanted: set[str]) -> Resolver:
    """Whole videos; with a ``videos`` list, rows not listed under their class are excluded."""
    listed = None
    if "videos" in lists:
        videos = read_music_videos(lists["videos"])
        listed = {(label, i) for label, ids in videos.items() for i in ids}

    def resolve(row: SplitRow, split: str) -> ClipRecord | str:
        if listed is not None and (row.label, row.youtube_id) not in listed:
            return NOT_IN_MUSIC
        return ClipRecord("music", row.label, row.youtube_id, None, None, split)

    return resolve


class _BadRows:
    """Skipped rows of unpinned lists: warned once each, kept per ID for the exclusion reason."""

    def __init__(self, wanted: set[str]) -> None:
        self.wanted, self.by_id = wanted, {}

    def __call__(self, youtube_id: str, message: str) -> None:
        level = logging.WARNING if youtube_id in self.wanted else logging.DEBUG
        logger.log(level, "skipped: %s", message)
        if youtube_id in self.wanted:
            self.by_id.setdefault(youtube_id, f"{BAD_TIME} {message.split(': bad time', 1)[0]}")


def _ave_resolver(lists: Mapping[str, Path], wanted: set[str]) -> Resolver:
    """The ID's AudioSet segment (or the whole video without ``segments*`` lists); the label
    is the split's. An ID whose annotation rows all have an empty event is excluded."""
    index: dict[str, list[AveAnnotation]] = {}
    for a in read_ave_annotations(lists["annotations"]):
        index.setdefault(a.youtube_id, []).append(a)
    segment_lists = [name for name in lists if name.startswith("segments")]
    segments: dict[str, tuple[float, float]] = {}
    bad = _BadRows(wanted)
    for name in segment_lists:
        todo = wanted - set(segments)
        found = read_audioset_segments(lists[name], todo, bad)
        segments.update({k: v for k, v in found.items() if k not in segments})

    def resolve(row: SplitRow, split: str) -> ClipRecord | str:
        rows = index.get(row.youtube_id)
        if not rows:
            return NOT_IN_AVE
        if all(a.start >= a.end for a in rows):
            return EMPTY_AVE_EVENT
        if not segment_lists:
            return ClipRecord("ave", row.label, row.youtube_id, None, None, split)
        if row.youtube_id not in segments:
            return bad.by_id.get(row.youtube_id, NOT_IN_AUDIOSET)
        start, end = segments[row.youtube_id]
        return ClipRecord("ave", row.label, row.youtube_id, start, end, split)

    return resolve


def _kinetics_resolver(lists: Mapping[str, Path], wanted: set[str]) -> Resolver:
    """Times of the ID's first row with the split's label (``annotations*`` files searched in
    the given order; spaces in labels read as underscores), else of its first row."""
    index: dict[str, list[KineticsAnnotation]] = {}
    bad = _BadRows(wanted)
    for name in (k for k in lists if k.startswith("annotations")):
        for a in iter_kinetics_annotations(lists[name], bad):
            if a.youtube_id in wanted:
                index.setdefault(a.youtube_id, []).append(a)

    def resolve(row: SplitRow, split: str) -> ClipRecord | str:
        rows = index.get(row.youtube_id)
        if not rows:
            return bad.by_id.get(row.youtube_id, NOT_IN_KINETICS)
        same = (a for a in rows if (a.label or "").strip().replace(" ", "_") == row.label)
        a = next(same, rows[0])
        return ClipRecord("kinetics_sounds", row.label, row.youtube_id, a.start, a.end, split)

    return resolve


_RESOLVERS = {"music": _music_resolver, "ave": _ave_resolver, "kinetics_sounds": _kinetics_resolver}
_REQUIRED = {"music": {*SPLITS}, "ave": {"annotations", *SPLITS}, "kinetics_sounds": {*SPLITS}}


def _check_lists(dataset: str, lists: Mapping[str, Path], whole_videos: bool) -> None:
    if dataset not in _RESOLVERS:
        raise ValueError(f"unknown dataset {dataset!r}; known: {sorted(_RESOLVERS)}")
    missing = _REQUIRED[dataset] - set(lists)
    extra = set(lists) - set(LIST_NAMES[dataset])
    if dataset == "ave":
        extra = {k for k in extra if not k.startswith("segments")}
        if not whole_videos and not any(k.startswith("segments") for k in lists):
            missing.add("segments* (AudioSet segment lists)")
    if dataset == "kinetics_sounds":
        extra = {k for k in extra if not k.startswith("annotations")}
        if not any(k.startswith("annotations") for k in lists):
            missing.add("annotations*")
    if missing or extra:
        raise ValueError(
            f"{dataset} lists: missing {sorted(missing)}, unknown {sorted(extra)}; "
            f"names: {sorted(LIST_NAMES[dataset])}"
        )


def records_with_exclusions(
    dataset: str, lists: Mapping[str, str | Path], *, whole_videos: bool = False
) -> tuple[list[ClipRecord], list[Exclusion]]:
    """Records of the paper's splits for ``"music"``, ``"ave"`` or ``"kinetics_sounds"``.

    ``lists`` maps list names (:data:`LIST_NAMES` of the dataset) to local files; for
    Kinetics-Sounds every ``annotations*`` file given is searched, for AVE every ``segments*``
    file (required unless ``whole_videos``: AVE videos held locally are already the segments).
    Returns the records grouped
    by split (train, val, test; file order within a split) after the duplicate rule of this
    module's docstring, and one :class:`Exclusion` per dropped row.
    """
    lists = {k: Path(v) for k, v in lists.items()}
    _check_lists(dataset, lists, whole_videos)
    rows = _split_rows(dataset, lists)
    wanted = {r.youtube_id for split_rows in rows.values() for r in split_rows}
    resolve = _RESOLVERS[dataset](lists, wanted)
    kept: dict[str, list[ClipRecord]] = {split: [] for split in SPLITS}
    exclusions: list[Exclusion] = []
    seen: dict[str, str] = {}
    for split in SPLIT_PRIORITY:
        for row in rows[split]:
            rec = resolve(row, split)
            if isinstance(rec, str):
                exclusions.append(Exclusion(row.youtube_id, dataset, split, rec))
            elif rec.youtube_id in seen:
                reason = f"duplicate: kept in {seen[rec.youtube_id]}"
                exclusions.append(Exclusion(rec.clip_id, dataset, split, reason))
            else:
                seen[rec.youtube_id] = split
                kept[split].append(rec)
    records = [rec for split in SPLITS for rec in kept[split]]
    logger.info(
        "%s: %s records, %d excluded", dataset, {s: len(kept[s]) for s in SPLITS}, len(exclusions)
    )
    return records, exclusions


# ---------------------------------------------------------------- CSV round trip


def write_records(path: str | Path, records: Iterable[ClipRecord]) -> None:
    """Write records as CSV (``RECORD_COLUMNS``; times via ``repr``, empty for None)."""
    with atomic.writing(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(RECORD_COLUMNS)
        for r in records:
            times = ["" if t is None else repr(float(t)) for t in (r.start, r.end)]
            writer.writerow([r.clip_id, r.dataset, r.label, r.youtube_id, *times, r.split])


def read_records(path: str | Path) -> list[ClipRecord]:
    """Read records written by :func:`write_records` (exact round trip)."""
    records = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != RECORD_COLUMNS:
            raise ListFormatError(f"{path}: columns {reader.fieldnames} != {RECORD_COLUMNS}")
        for row in reader:
            times = [None if row[k] == "" else float(row[k]) for k in ("start", "end")]
            rec = ClipRecord(row["dataset"], row["label"], row["youtube_id"], *times, row["split"])
            if rec.clip_id != row["clip_id"]:
                raise ListFormatError(
                    f"{path}:{reader.line_num}: clip_id {row['clip_id']!r} "
                    f"does not match its fields ({rec.clip_id!r})"
                )
            records.append(rec)
    return records


def write_exclusions(path: str | Path, exclusions: Iterable[Exclusion]) -> None:
    """Write exclusions as CSV with ``EXCLUSION_COLUMNS``."""
    with atomic.writing(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(EXCLUSION_COLUMNS)
        writer.writerows(astuple(e) for e in exclusions)


def read_exclusions(path: str | Path) -> list[Exclusion]:
    """Read exclusions written by :func:`write_exclusions`."""
    with open(path, newline="", encoding="utf-8") as f:
        names = [f_.name for f_ in fields(Exclusion)]
        return [Exclusion(**{k: row[k] for k in names}) for row in csv.DictReader(f)]


def shard_of(clip_id: str, shards: int) -> int:
    """The download/preprocess shard of a clip: a stable hash of its id, modulo ``shards``."""
    digest = hashlib.sha256(clip_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards


def shard_records(records: Iterable[ClipRecord], shard: int, shards: int) -> list[ClipRecord]:
    """The records that belong to one shard (every record is in exactly one)."""
    return [r for r in records if shard_of(r.clip_id, shards) == shard]
