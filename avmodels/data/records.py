"""Clip records of the paper's splits, built from the parsed lists (:mod:`.lists`), and their
CSV round trip and shards.

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
"""

from __future__ import annotations

import csv
import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import astuple, dataclass, fields
from pathlib import Path

from avmodels import atomic
from avmodels.data.classes import CLASSES
from avmodels.data.lists import (
    ID_PATTERN,
    LIST_NAMES,
    AveAnnotation,
    KineticsAnnotation,
    ListFormatError,
    SplitRow,
    clip_id_of,
    iter_kinetics_annotations,
    read_audioset_segments,
    read_ave_annotations,
    read_music_videos,
    read_split_csv,
    valid_times,
)
from avmodels.registry import SPLITS

logger = logging.getLogger(__name__)


SPLIT_PRIORITY = ("test", "val", "train")  # the duplicate rule keeps an ID in the first of these


NOT_IN_MUSIC = "not in MUSIC solo list"


NOT_IN_AVE = "not in AVE annotations"


EMPTY_AVE_EVENT = "empty event in AVE annotations (start >= end)"


NOT_IN_KINETICS = "not in Kinetics annotations"


NOT_IN_AUDIOSET = "not in AudioSet segment lists"


BAD_TIME = "bad time in"


RECORD_COLUMNS = ["clip_id", "dataset", "label", "youtube_id", "start", "end", "split"]


EXCLUSION_COLUMNS = ["clip_id", "dataset", "split", "reason"]


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
        if not ID_PATTERN.fullmatch(self.youtube_id):
            raise ValueError(f"youtube_id must match {ID_PATTERN.pattern}: {self.youtube_id!r}")
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
