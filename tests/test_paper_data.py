"""The paper's data path end to end: config/paper.yaml's three YouTube datasets through a
real Snakemake, with a server on 127.0.0.1 standing in for the list hosts and for YouTube.

The configuration is derived from config/paper.yaml: the same datasets, list kinds and
pins, each URL moved to the local server (a served list that is a subset of the real one
gets its digest recomputed; the unpinned ones stay unpinned), and the model, variants and
attacks cut to the tiny study's size. The lists are real rows of the published files
(beside the repository in ``shared/data``) for two classes per dataset; the Kinetics-400
annotations and AudioSet segment lists, not kept there, are written for those rows. Each
dataset has three broken clips: one the server does not have (404), one corrupt, one
without audio.
"""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path

import pandas as pd
import pytest
import studies
import yaml
from served import FileServer, render, serving

from avmodels.data.records import NOT_IN_AUDIOSET, read_records

PAPER_LISTS = "data/lists/av_robustness_cvpr21"
CLASSES = {"music": ("flute", "violin"), "kinetics_sounds": ("playing_drums", "tap_dancing")}
CLASSES["ave"] = ("Church_bell", "Bark")
SPLIT_FILES = {  # dataset -> split -> file of the authors' lists
    "music": {s: f"{s}.csv" for s in ("train", "val", "test")},
    "kinetics_sounds": {s: f"{s}_kinetics.csv" for s in ("train", "val", "test")},
    "ave": {s: f"{s}_AVE.csv" for s in ("train", "val", "test")},
}
PER_SPLIT = {"train": 5, "val": 1, "test": 1}  # rows per class and split
BROKEN = {"missing": "unavailable", "corrupt": "corrupt", "silent": "no audio"}
UPLOAD_S = 4.0  # length of each served upload; Kinetics and AVE cut 2 s of it
SEGMENT = (1.0, 3.0)
_RANGE = re.compile(r"_\d{7}_\d{7}$")  # a clip ID's cut, after its YouTube ID


def _pick_rows(shared: Path, dataset: str) -> dict[str, list[list[str]]]:
    """The first rows of each split of the authors' list for the dataset's two classes."""
    picked = {}
    for split, name in SPLIT_FILES[dataset].items():
        with open(shared / PAPER_LISTS / name, newline="") as f:
            rows = [r for r in csv.reader(f) if r]
        picked[split] = [
            row
            for label in CLASSES[dataset]
            for row in [r for r in rows if r[0].split("/")[1] == label][: PER_SPLIT[split]]
        ]
    return picked


def _youtube_id(row: list[str]) -> str:
    return row[0].split("/")[2].removesuffix(".wav")


def _csv_bytes(rows: list[list[str]]) -> bytes:
    return "".join(",".join(r) + "\n" for r in rows).encode()


def _serve_lists(shared: Path, ds: str, rows: dict[str, list[list[str]]]) -> dict[str, bytes]:
    """What the list hosts serve for one dataset: list name -> bytes."""
    files = {split: _csv_bytes(r) for split, r in rows.items()}
    ids = [_youtube_id(r) for split_rows in rows.values() for r in split_rows]
    if ds == "music":
        files["videos"] = (shared / "data/lists/music/MUSIC_solo_videos.json").read_bytes()
    elif ds == "ave":
        files["annotations"] = (shared / "data/lists/ave/Annotations.txt").read_bytes()
        head = "# YTID, start_seconds, end_seconds, positive_labels\n"
        seg = [f'{y}, {SEGMENT[0]:.3f}, {SEGMENT[1]:.3f}, "/m/0"\n' for y in ids[1:]]
        files["segments_balanced"] = (head + "".join(seg[0::3])).encode()
        files["segments_unbalanced"] = (head + "".join(seg[1::3])).encode()
        files["segments_eval"] = (head + "".join(seg[2::3])).encode()
    else:
        for split in ("train", "val", "test"):
            lines = ["label,youtube_id,time_start,time_end,split,is_cc"]
            for r in rows[split]:
                label = r[0].split("/")[1].replace("_", " ")
                lines.append(f"{label},{_youtube_id(r)},{SEGMENT[0]:g},{SEGMENT[1]:g},{split},0")
            files[f"annotations_{split}"] = ("\n".join(lines) + "\n").encode()
    return files


def _clips(tmp: Path, ids: list[str], broken: dict[str, str]) -> dict[str, bytes]:
    """Served uploads by URL path: a good clip per ID, except the broken ones."""
    good = render(tmp / "good.mp4", k=1, seconds=UPLOAD_S).read_bytes()
    silent = render(tmp / "silent.mp4", k=2, seconds=UPLOAD_S, audio=False).read_bytes()
    bodies = {"corrupt": b"\x00not a video" * 400, "silent": silent}
    out = {}
    for yid in ids:
        kind = broken.get(yid)
        if kind != "missing":
            out[f"watch/{yid}.mp4"] = bodies.get(kind, good)
    return out


def _paper_config(repo: Path, base: str, served: dict[str, dict[str, bytes]]) -> dict:
    """config/paper.yaml with its URLs on ``base`` and the tiny study's sizes."""
    paper = yaml.safe_load((repo / "config" / "paper.yaml").read_text())
    tiny = yaml.safe_load((repo / "config" / "tiny.yaml").read_text())
    config = {k: tiny[k] for k in tiny if k != "datasets"}
    config["datasets"] = {}
    for ds, spec in paper["datasets"].items():
        lists = {}
        for name, source in spec["lists"].items():
            body = served[ds][name]
            digest = hashlib.sha256(body).hexdigest()
            if source["sha256"] is not None and source["sha256"] != digest:
                source = {**source, "sha256": digest}  # a subset of the published list
            lists[name] = {"url": f"{base}/lists/{ds}/{name}", "sha256": source["sha256"]}
        config["datasets"][ds] = {
            "source": spec["source"],
            "lists": lists,
            "url_template": f"{base}/watch/{{id}}.mp4",
        }
    config["download"] = {
        **paper["download"],
        "sleep_requests": 0,
        "sleep_downloads": 0,
        "retries": 0,
        "min_free_gb": 0,
    }
    config["train"]["epochs"] = 1
    config["variants"] = {"concat": {"arch": "concat"}}
    config["evaluation"].update(attacks=["fgsm"], sweep_models=["concat"], steps=1)
    config["evaluation"]["table_budgets"] = {"single": 0.006, "multi": 0.006}
    config["tables"] = {"table1": {"music": "music", "kinetics_sounds": "kinetics_sounds"}}
    config["tables"]["table1"]["ave"] = "music"
    return config


@pytest.mark.slow
def test_paper_lists_and_youtube_through_the_study(
    repo_dir: Path, shared_dir: Path, tmp_path: Path
) -> None:
    rows = {ds: _pick_rows(shared_dir, ds) for ds in SPLIT_FILES}
    lists = {ds: _serve_lists(shared_dir, ds, rows[ds]) for ds in rows}
    broken, good, files = {}, {}, {}
    for ds, split_rows in rows.items():
        ids = [_youtube_id(r) for r in split_rows["train"]]
        first = 1 if ds == "ave" else 0  # AVE's first train ID has no AudioSet segment
        broken[ds] = dict(zip(ids[first + 1 : first + 4], BROKEN, strict=True))
        all_ids = [_youtube_id(r) for s in split_rows.values() for r in s]
        good[ds] = {y for y in all_ids[first:] if y not in broken[ds]}
        files |= _clips(tmp_path, all_ids, broken[ds])
        files |= {f"lists/{ds}/{name}": body for name, body in lists[ds].items()}
    root = studies.copy_workflow(repo_dir, tmp_path / "wf")

    with serving(files) as srv:
        config = _paper_config(repo_dir, srv.base, lists)
        (root / "paper_local.yaml").write_text(yaml.safe_dump(config))
        seconds = studies.run_study(root, "paper_local.yaml")
        print(f"paper-shaped study of three datasets: {seconds:.0f} s")
        _check_requests(srv, lists, set().union(*good.values(), *broken.values()))

    datasets = config["datasets"]
    pinned = {d: [n for n, s in datasets[d]["lists"].items() if s["sha256"]] for d in rows}
    assert "videos" in pinned["music"] and "annotations" in pinned["ave"], "real lists, real pins"
    for ds in rows:
        records = read_records(root / f"resources/{ds}/records.csv")
        assert {r.label for r in records} == set(CLASSES[ds]), ds
        ids = {r.youtube_id for r in records}
        assert good[ds] | set(broken[ds]) == ids, f"{ds}: every listed clip is a record"
        if ds == "music":
            assert all(r.start is None for r in records), "MUSIC: whole videos"
        else:
            assert {(r.start, r.end) for r in records} == {SEGMENT}, f"{ds}: cut from the list"
        _check_failures(root, ds, broken[ds])
        _check_manifests(root, ds, good[ds])
    ave_out = pd.read_csv(root / "resources/ave/list_exclusions.csv")
    assert list(ave_out["reason"]) == [NOT_IN_AUDIOSET]

    table = pd.read_csv(root / "results" / "tables" / "table1.csv")
    assert set(rows) <= set(table.astype(str).stack()), "all three datasets in Table 1"
    trace = studies.avrobust(root, "trace", "results/tables/table1.csv")
    assert trace.returncode == 0, studies.tail(trace.stdout)
    for ds in rows:
        assert f"resources/{ds}/downloads/shard0.csv" in trace.stdout, studies.tail(trace.stdout)
        assert f"resources/lists/{ds}/train" in trace.stdout


def _check_requests(srv: FileServer, lists: dict, wanted: set[str]) -> None:
    """Every list fetched once; an upload asked for exactly when its clip has a record."""
    counts = srv.counts()
    for ds, names in lists.items():
        for name in names:
            assert counts[f"lists/{ds}/{name}"] == 1, (ds, name)
    asked = {p.removeprefix("watch/").removesuffix(".mp4") for p in counts if "watch/" in p}
    assert asked == wanted, sorted(asked ^ wanted)


def _check_failures(root: Path, ds: str, broken: dict[str, str]) -> None:
    failures = pd.read_csv(root / f"resources/{ds}/failures/shard0.csv")
    got = dict(zip(failures["youtube_id"], failures["reason"], strict=True))
    assert got == {yid: BROKEN[kind] for yid, kind in broken.items()}, f"{ds}: {got}"
    assert failures["message"].astype(str).str.len().min() > 0
    excluded = pd.read_csv(root / f"results/{ds}/data/exclusions.csv")
    reasons = dict(zip(excluded["clip_id"], excluded["reason"], strict=True))
    for yid, kind in broken.items():
        assert any(k.startswith(yid) and BROKEN[kind] in r for k, r in reasons.items()), reasons


def _check_manifests(root: Path, ds: str, good: set[str]) -> None:
    store = root / f"resources/{ds}/videos/shard0"
    assert {_RANGE.sub("", p.name.split(".")[0]) for p in store.iterdir()} >= good
    manifests = [pd.read_csv(root / f"results/{ds}/data/manifest_{s}.csv") for s in PER_SPLIT]
    clips = pd.concat(manifests)
    assert {_RANGE.sub("", c) for c in clips["clip_id"]} == good, ds
    clip_root = (root / f"resources/{ds}/clips").resolve()
    for clip_dir in clips["clip_dir"]:  # relative to the manifest
        path = (root / f"results/{ds}/data" / clip_dir).resolve()
        assert path.parent.parent == clip_root and (path / "audio.wav").is_file(), clip_dir
