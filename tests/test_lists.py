"""Parsers, duplicate rule, records CSV, checksums and download, on the real published lists."""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import logging
import shutil
import threading
from collections import Counter
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from avmodels import data
from avmodels.data import synthetic
from avmodels.data.classes import CLASSES, class_names, label_index, num_classes
from avmodels.data.lists import (
    AVE_CATEGORIES,
    LIST_NAMES,
    SPLITS,
    ListChecksumError,
    ListFormatError,
    fetch_list,
    iter_kinetics_annotations,
    read_audioset_segments,
    read_ave_annotations,
    read_music_videos,
    read_split_csv,
    sha256_file,
    verify_sha256,
)
from avmodels.data.records import (
    EMPTY_AVE_EVENT,
    NOT_IN_AUDIOSET,
    NOT_IN_KINETICS,
    NOT_IN_MUSIC,
    RECORD_COLUMNS,
    ClipRecord,
    read_records,
    records_with_exclusions,
    write_records,
)

SPLIT_FILES = {
    "music": {s: f"{s}.csv" for s in SPLITS},
    "ave": {s: f"{s}_AVE.csv" for s in SPLITS},
    "kinetics_sounds": {s: f"{s}_kinetics.csv" for s in SPLITS},
}


@pytest.fixture(scope="module")
def lists_dir(shared_dir: Path) -> Path:
    return shared_dir / "data" / "lists"


def split_lists(lists_dir: Path, dataset: str) -> dict[str, Path]:
    return {s: lists_dir / "av_robustness_cvpr21" / f for s, f in SPLIT_FILES[dataset].items()}


def raw_split(path: Path) -> list[tuple[str, str]]:
    """(class, id) per row, parsed independently of the module."""
    with open(path, newline="") as f:
        paths = [row[0].split("/") for row in csv.reader(f)]
    return [(parts[1], parts[2].removesuffix(".wav")) for parts in paths]


def expected_after_rule(raw: dict[str, list[tuple[str, str]]]) -> dict[str, set[str]]:
    """IDs per split under the rule test > val > train, by set difference."""
    test = {i for _, i in raw["test"]}
    val = {i for _, i in raw["val"]} - test
    train = {i for _, i in raw["train"]} - test - val
    return {"train": train, "val": val, "test": test}


AUDIOSET_HEADER = (
    "# Segments csv created Sun Mar  5 10:54:31 2017\n"
    "# num_ytids=3, num_segs=3, num_unique_labels=527, num_positive_labels=7\n"
    "# YTID, start_seconds, end_seconds, positive_labels\n"
)


def segment_of(youtube_id: str) -> tuple[float, float]:
    """A made-up AudioSet segment per ID: start a multiple of 10 s from the ID's digest."""
    start = 10.0 * (hashlib.sha256(youtube_id.encode()).digest()[0] % 30)
    return start, start + 10.0


@pytest.fixture(scope="module")
def ave_lists(lists_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The real AVE lists plus AudioSet-format segment lists of their IDs, spread over the
    three files; the first two test IDs are in none, the third has only a malformed row."""
    lists = split_lists(lists_dir, "ave")
    lists["annotations"] = lists_dir / "ave" / "Annotations.txt"
    test_ids = [i for _, i in raw_split(lists["test"])]
    ids = sorted({i for s in SPLITS for _, i in raw_split(lists[s])} - set(test_ids[:3]))
    root = tmp_path_factory.mktemp("audioset")
    for k, name in enumerate(["balanced_train", "unbalanced_train", "eval"]):
        rows = [f'{i}, {segment_of(i)[0]:.3f}, {segment_of(i)[1]:.3f}, "/m/0x,/t/dd"' for i in ids]
        rows = rows[k::3]
        if name == "eval":
            rows.insert(0, f'{test_ids[2]}, 30.000, 20.000, "/m/0x"')
        path = root / f"{name}_segments.csv"
        path.write_text(AUDIOSET_HEADER + "\n".join(rows) + "\n")
        lists[f"segments_{name.split('_')[0]}"] = path
    return lists


def ids_by_split(records: list[ClipRecord]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {s: [] for s in SPLITS}
    for r in records:
        out[r.split].append(r.youtube_id)
    return out


# ---------------------------------------------------------------- raw formats and counts


def test_music_solo_json(lists_dir: Path) -> None:
    videos = read_music_videos(lists_dir / "music" / "MUSIC_solo_videos.json")
    assert len(videos) == 11
    assert sum(len(ids) for ids in videos.values()) == 536
    assert len({i for ids in videos.values() for i in ids}) == 536
    assert set(videos) == set(CLASSES["music"])


def test_ave_annotations(lists_dir: Path) -> None:
    rows = read_ave_annotations(lists_dir / "ave" / "Annotations.txt")
    assert len(rows) == 4143
    categories = {r.category for r in rows}
    assert len(categories) == 28
    assert sum(1 for n in Counter(r.youtube_id for r in rows).values() if n > 1) == 45
    assert all(0 <= r.start <= r.end <= 10 for r in rows)
    # the category names map one-to-one onto the split CSVs' class names
    assert set(AVE_CATEGORIES) == categories
    assert sorted(AVE_CATEGORIES.values()) == sorted(CLASSES["ave"])


def test_ave_header_line_is_skipped(lists_dir: Path, tmp_path: Path) -> None:
    lines = (lists_dir / "ave" / "Annotations.txt").read_text().splitlines(keepends=True)[:3]
    plain, headed = tmp_path / "plain.txt", tmp_path / "headed.txt"
    plain.write_text("".join(lines))
    headed.write_text("Category&VideoID&Quality&StartTime&EndTime\r\n" + "".join(lines))
    assert read_ave_annotations(headed) == read_ave_annotations(plain)
    assert len(read_ave_annotations(plain)) == 3


@pytest.mark.parametrize(
    ("dataset", "counts", "n_classes"),
    [
        ("music", (312, 104, 104), 11),
        ("ave", (3339, 402, 402), 28),
        ("kinetics_sounds", (9309, 3103, 3104), 27),
    ],
)
def test_paper_split_counts(lists_dir: Path, dataset: str, counts: tuple, n_classes: int) -> None:
    paths = split_lists(lists_dir, dataset)
    rows = {s: read_split_csv(paths[s]) for s in SPLITS}
    assert tuple(len(rows[s]) for s in SPLITS) == counts
    for s in SPLITS:
        assert [(r.label, r.youtube_id) for r in rows[s]] == raw_split(paths[s])
    labels = {r.label for split_rows in rows.values() for r in split_rows}
    assert len(CLASSES[dataset]) == n_classes
    assert labels == set(CLASSES[dataset])


def test_split_csv_rejects_mismatched_row(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("/tuba/abc.wav,/cello/abc.mp4,10\n")
    with pytest.raises(data.ListFormatError, match="bad.csv:1"):
        read_split_csv(bad)


# ---------------------------------------------------------------- records and duplicate rule


def test_music_records(lists_dir: Path) -> None:
    lists = split_lists(lists_dir, "music")
    lists["videos"] = lists_dir / "music" / "MUSIC_solo_videos.json"
    records, exclusions = records_with_exclusions("music", lists)
    raw = {s: raw_split(lists[s]) for s in SPLITS}
    expected = expected_after_rule(raw)
    got = ids_by_split(records)
    assert {s: len(got[s]) for s in SPLITS} == {s: len(expected[s]) for s in SPLITS}
    assert {s: set(got[s]) for s in SPLITS} == expected
    assert exclusions == []
    assert all(r.start is None and r.end is None and r.clip_id == r.youtube_id for r in records)
    labels = {i: c for s in SPLITS for c, i in raw[s]}
    assert all(r.label == labels[r.youtube_id] for r in records)


def test_music_records_outside_solo_list_are_excluded(lists_dir: Path, tmp_path: Path) -> None:
    lists = split_lists(lists_dir, "music")
    first_class, first_id = raw_split(lists["test"])[0]
    videos = read_music_videos(lists_dir / "music" / "MUSIC_solo_videos.json")
    videos[first_class].remove(first_id)
    lists["videos"] = tmp_path / "videos.json"
    lists["videos"].write_text(json.dumps({"videos": videos}))
    records, exclusions = records_with_exclusions("music", lists)
    assert [(e.clip_id, e.split, e.reason) for e in exclusions] == [
        (first_id, "test", NOT_IN_MUSIC)
    ]
    assert first_id not in {r.youtube_id for r in records}


def test_ave_records_duplicate_rule(ave_lists: dict[str, Path]) -> None:
    lists = ave_lists
    records, exclusions = records_with_exclusions("ave", lists)
    raw = {s: raw_split(lists[s]) for s in SPLITS}
    with open(lists["annotations"]) as f:
        ann = [line.rstrip("\n").split("&") for line in f]
    times = {}
    for a in ann:
        times.setdefault(a[1], set()).add((float(a[3]), float(a[4])))
    empty = {i for i, ranges in times.items() if all(s >= e for s, e in ranges)}
    missing = [i for _, i in raw["test"][:3]]
    expected = {s: ids - empty - set(missing) for s, ids in expected_after_rule(raw).items()}
    got = ids_by_split(records)
    # each ID once, in exactly the split the rule gives, and never in two splits
    assert {s: len(got[s]) for s in SPLITS} == {s: len(expected[s]) for s in SPLITS}
    assert {s: set(got[s]) for s in SPLITS} == expected
    assert len({r.youtube_id for r in records}) == len(records)
    assert len({r.clip_id for r in records}) == len(records)
    # the test split loses only the IDs without a segment; every dropped row is accounted for
    assert len(got["test"]) == len(raw["test"]) - 3
    assert len(records) + len(exclusions) == sum(len(rows) for rows in raw.values())
    kept_in = {r.youtube_id: r.split for r in records}
    reasons = {e.clip_id: e.reason for e in exclusions if e.split == "test"}
    assert [reasons[i] for i in missing[:2]] == [NOT_IN_AUDIOSET] * 2
    assert reasons[missing[2]].startswith(f"bad time in {lists['segments_eval']}:4")
    for e in exclusions:
        if e.clip_id in empty:
            assert e.reason == EMPTY_AVE_EVENT
        elif e.clip_id not in missing:
            assert e.reason == f"duplicate: kept in {kept_in[e.clip_id.rsplit('_', 2)[0]]}"
    # the range is the whole AudioSet segment, not the event inside it
    for r in records:
        assert (r.start, r.end) == segment_of(r.youtube_id)
        assert r.clip_id == f"{r.youtube_id}_{round(r.start * 1000):07d}_{round(r.end * 1000):07d}"


def test_ave_whole_videos_without_segment_lists(ave_lists: dict[str, Path]) -> None:
    lists = {k: v for k, v in ave_lists.items() if not k.startswith("segments")}
    with pytest.raises(ValueError, match="segments"):
        records_with_exclusions("ave", lists)
    records = records_with_exclusions("ave", lists, whole_videos=True)[0]
    assert records and all(r.start is None and r.clip_id == r.youtube_id for r in records)
    assert len(records) == len(records_with_exclusions("ave", ave_lists)[0]) + 3


def test_audioset_segments(ave_lists: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "seg.csv"
    path.write_text(AUDIOSET_HEADER + 'aaa, 1.5, 11.5, "/m/0x"\nbbb, x, 10.0, "/m/0y"\n')
    assert read_audioset_segments(path, {"aaa"}) == {"aaa": (1.5, 11.5)}
    with pytest.raises(ListFormatError, match=r"seg.csv:5: bad time"):
        read_audioset_segments(path)
    skipped: list[tuple[str, str]] = []
    got = read_audioset_segments(path, on_bad=lambda i, m: skipped.append((i, m)))
    assert got == {"aaa": (1.5, 11.5)} and [i for i, _ in skipped] == ["bbb"]


def test_records_need_their_lists(lists_dir: Path) -> None:
    lists = split_lists(lists_dir, "ave")
    with pytest.raises(ValueError, match="annotations"):
        records_with_exclusions("ave", lists)
    with pytest.raises(ValueError, match="unknown"):
        records_with_exclusions(
            "music", {**split_lists(lists_dir, "music"), "tran": lists["train"]}
        )
    with pytest.raises(ValueError, match="unknown dataset"):
        records_with_exclusions("vggsound", lists)


def write_kinetics_fixture(path: Path, header: list[str], rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def test_kinetics_join(lists_dir: Path, tmp_path: Path) -> None:
    lists = split_lists(lists_dir, "kinetics_sounds")
    raw = {s: raw_split(lists[s]) for s in SPLITS}
    (tr0, tr1, tr2), (va0, va1) = raw["train"][:3], raw["val"][:2]
    (te0, te1, te2) = raw["test"][:3]
    other = ("abseiling", "zzzzzzzzzzz")  # an ID in no split

    def row(label_id: tuple[str, str], start: int, label: str | None = None) -> dict:
        label = label_id[0].replace("_", " ") if label is None else label
        return {
            "label": label,
            "youtube_id": label_id[1],
            "time_start": start,
            "time_end": start + 10,
            "split": "train",
            "is_cc": 0,
        }

    k400 = ["label", "youtube_id", "time_start", "time_end", "split", "is_cc"]
    ann = {
        # Kinetics-400 style; te0 first appears with another label
        "annotations_train": (
            k400,
            [row(tr0, 3), row(tr1, 0), row(tr2, 17), row(te0, 1, "abseiling"), row(other, 5)],
        ),
        # without is_cc (Kinetics-600/700 style); te0 again, with its own label
        "annotations_val": (k400[:5], [row(va0, 12), row(va1, 30), row(te0, 40)]),
        # without a label column (the first Kinetics-400 test release)
        "annotations_test": (k400[1:5], [row(te1, 2), row(te2, 250)]),
    }
    for name, (header, rows) in ann.items():
        lists[name] = tmp_path / f"{name}.csv"
        write_kinetics_fixture(lists[name], header, rows)

    records, exclusions = records_with_exclusions("kinetics_sounds", lists)
    got = {(r.split, r.label, r.youtube_id): (r.start, r.end) for r in records}
    expected = {
        ("train", *tr0): (3.0, 13.0),
        ("train", *tr1): (0.0, 10.0),
        ("train", *tr2): (17.0, 27.0),
        ("val", *va0): (12.0, 22.0),
        ("val", *va1): (30.0, 40.0),
        ("test", *te0): (40.0, 50.0),
        ("test", *te1): (2.0, 12.0),
        ("test", *te2): (250.0, 260.0),
    }
    assert got == expected
    assert [r.split for r in records] == sorted((r.split for r in records), key=SPLITS.index)
    n_rows = sum(len(rows) for rows in raw.values())
    assert len(exclusions) == n_rows - len(expected)
    assert {e.reason for e in exclusions} == {NOT_IN_KINETICS}
    assert Counter(e.split for e in exclusions) == {
        s: len(raw[s]) - sum(1 for k in expected if k[0] == s) for s in SPLITS
    }


def test_kinetics_bad_time_row_is_excluded_not_fatal(
    lists_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lists = split_lists(lists_dir, "kinetics_sounds")
    (l0, i0), (l1, i1), (l2, i2) = raw_split(lists["test"])[:3]
    path = tmp_path / "k400.csv"
    path.write_text(
        "label,youtube_id,time_start,time_end,split,is_cc\n"
        f"{l0},{i0},12,22,test,0\n"
        f"{l1},{i1},abc,10,test,0\n"  # only a bad row: excluded with its reason
        f"{l2},{i2},,,test,0\n"  # a bad row, then a good one: the good one is used
        f"{l2},{i2},4,14,test,0\n"
    )
    with pytest.raises(ListFormatError, match="k400.csv:3: bad time"):
        list(iter_kinetics_annotations(path))
    lists["annotations_test"] = path
    with caplog.at_level(logging.WARNING):
        records, exclusions = records_with_exclusions("kinetics_sounds", lists)
    times = {r.youtube_id: (r.start, r.end) for r in records}
    assert times == {i0: (12.0, 22.0), i2: (4.0, 14.0)}
    reason = {e.clip_id: e.reason for e in exclusions}[i1]
    assert reason == f"bad time in {path}:3"
    assert "skipped" in caplog.text and "abc" in caplog.text


# ---------------------------------------------------------------- records: ids, CSV, CLI


def test_clip_record_validation() -> None:
    rec = ClipRecord("kinetics_sounds", "singing", "a-B_c9", 1.5, 11.5, "train")
    assert rec.clip_id == "a-B_c9_0001500_0011500"
    assert ClipRecord("music", "tuba", "a-B_c9", None, None, "val").clip_id == "a-B_c9"
    for bad in [
        dict(youtube_id="../etc"),
        dict(split="dev"),
        dict(start=None),
        dict(start=12.0),
        dict(start=-1.0),
        dict(label=""),
    ]:
        fields = dict(dataset="ave", label="Bark", youtube_id="x", start=0.0, end=10.0)
        with pytest.raises(ValueError):
            ClipRecord(**{**fields, "split": "test", **bad})


def test_records_csv_round_trip(ave_lists: dict[str, Path], tmp_path: Path) -> None:
    records = records_with_exclusions("ave", ave_lists)[0] + [
        ClipRecord("kinetics_sounds", "tickling", "q-_1", 0.1 + 0.2, 10.000000000000002, "val"),
        ClipRecord("music", "erhu, two strings", "q-_2", None, None, "train"),
    ]
    path = tmp_path / "records.csv"
    write_records(path, records)
    assert read_records(path) == records
    assert path.read_text().splitlines()[0] == ",".join(RECORD_COLUMNS)


def test_label_index_follows_class_order() -> None:
    for dataset, classes in CLASSES.items():
        assert [label_index(dataset, c) for c in classes] == list(range(len(classes)))
        assert num_classes(dataset) == len(set(classes))
    assert class_names(synthetic.DATASET) == synthetic.SYNTHETIC_CLASSES
    assert num_classes(synthetic.DATASET) == len(synthetic.SYNTHETIC_CLASSES)
    with pytest.raises(ValueError):
        label_index("music", "Violin")
    with pytest.raises(ValueError):
        label_index("vggsound", "dog")


# ---------------------------------------------------------------- checksums and download


PAPER_LISTS = {  # the paper study's lists, as its config pins them
    name: dataset["lists"]
    for name, dataset in yaml.safe_load(
        (Path(__file__).resolve().parents[1] / "config" / "paper.yaml").read_text()
    )["datasets"].items()
}


def test_paper_config_pins_the_published_files(lists_dir: Path) -> None:
    local = {p.name: p for p in lists_dir.rglob("*") if p.is_file()}
    assert set(PAPER_LISTS) == set(LIST_NAMES)
    for dataset, sources in PAPER_LISTS.items():
        assert set(LIST_NAMES[dataset]) <= set(sources)
        for name, source in sources.items():
            assert source["url"].startswith("https://")
            if source.get("sha256") is None:
                assert (dataset, name.split("_")[0]) in {
                    ("kinetics_sounds", "annotations"),
                    ("ave", "segments"),
                }
                continue
            path = local[source["url"].rsplit("/", 1)[1]]
            assert sha256_file(path) == source["sha256"]
            verify_sha256(path, source["sha256"].upper())


def test_verify_sha256(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "list.txt"
    path.write_bytes(b"abc\n")
    actual = hashlib.sha256(b"abc\n").hexdigest()
    verify_sha256(path, actual)
    wrong = hashlib.sha256(b"abd\n").hexdigest()
    with pytest.raises(ListChecksumError) as err:
        verify_sha256(path, wrong)
    message = str(err.value)
    assert "\n" not in message
    assert str(path) in message and actual in message and wrong in message
    with pytest.raises(ValueError, match="64 hex"):
        verify_sha256(path, "abc")
    with caplog.at_level(logging.WARNING, logger="avmodels.data.lists"):
        verify_sha256(path, None)
    assert "no sha256 pinned" in caplog.text


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_root(tmp_path: Path):
    """A static HTTP server on 127.0.0.1 serving a temporary folder."""
    root = tmp_path / "www"
    root.mkdir()
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_fetch_list_http(lists_dir: Path, http_root: tuple[Path, str], tmp_path: Path) -> None:
    root, base = http_root
    source = PAPER_LISTS["music"]["val"]
    original = lists_dir / "av_robustness_cvpr21" / "val.csv"
    shutil.copy(original, root / "val.csv")
    dest = tmp_path / "resources" / "lists" / "val.csv"
    assert fetch_list(f"{base}/val.csv", dest, source["sha256"], timeout=10) == dest
    assert dest.read_bytes() == original.read_bytes()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["val.csv"]


def test_fetch_list_mismatch_keeps_destination(
    lists_dir: Path, http_root: tuple[Path, str], tmp_path: Path
) -> None:
    root, base = http_root
    shutil.copy(lists_dir / "av_robustness_cvpr21" / "val.csv", root / "val.csv")
    dest = tmp_path / "out" / "val.csv"
    wrong = PAPER_LISTS["music"]["test"]["sha256"]
    with pytest.raises(ListChecksumError) as err:
        fetch_list(f"{base}/val.csv", dest, wrong, timeout=10)
    assert "\n" not in str(err.value) and wrong in str(err.value) and "val.csv" in str(err.value)
    assert list(dest.parent.iterdir()) == []
    dest.write_text("previous\n")
    with pytest.raises(ListChecksumError):
        fetch_list(f"{base}/val.csv", dest, wrong, timeout=10)
    assert dest.read_text() == "previous\n"
    assert [p.name for p in dest.parent.iterdir()] == ["val.csv"]


def test_fetch_list_errors_and_file_urls(
    lists_dir: Path, http_root: tuple[Path, str], tmp_path: Path
) -> None:
    _, base = http_root
    dest = tmp_path / "out" / "x.csv"
    with pytest.raises(OSError):  # urllib's HTTPError for the 404
        fetch_list(f"{base}/missing.csv", dest, None, timeout=10)
    assert list(dest.parent.iterdir()) == []
    with pytest.raises(ValueError, match="scheme"):
        fetch_list("ftp://127.0.0.1/x.csv", dest, None)
    original = lists_dir / "ave" / "Annotations.txt"
    fetch_list(original.as_uri(), dest, PAPER_LISTS["ave"]["annotations"]["sha256"])
    assert dest.read_bytes() == original.read_bytes()
