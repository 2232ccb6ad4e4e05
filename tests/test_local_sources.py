"""Clips the user holds: a listed dataset from a local folder, and an own-dataset CSV.

One real Snakemake run of a reduced tiny study (one fusion, one budget, Table 1) over two
datasets: MUSIC with ``source: local`` on a folder of mixed containers, and an own dataset
of three made-up classes from a CSV. Both reach the tables; the user's files stay untouched.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pandas as pd
import pytest
import studies
import yaml
from served import render

from avmodels.data.local import NOT_IN_FOLDER, csv_classes, match_records, read_own_csv
from avmodels.data.records import read_records, records_with_exclusions

MUSIC = {  # youtube id -> (class, split, file name under the folder or None)
    "flute000001": ("flute", "train", "flute000001.mp4"),
    "flute000002": ("flute", "train", "sub/flute000002.mkv"),
    "flute000003": ("flute", "val", "flute000003_000000_000010.webm"),
    "flute000004": ("flute", "test", "flute000004.avi"),
    "violin00001": ("violin", "train", "violin00001.webm"),
    "violin00002": ("violin", "train", "deeper/still/violin00002.avi"),
    "violin00003": ("violin", "val", "violin00003.mkv"),
    "violin00004": ("violin", "test", "violin00004.mp4"),
    "violin00005": ("violin", "test", None),  # listed, not in the folder
    "tuba0000001": ("tuba", "test", "tuba0000001.mp4"),  # corrupt file
}
OWN = [  # (path relative to the CSV, label, split)
    ("clips/a 1.mp4", "kettle", "train"),
    ("clips/a-2.mkv", "kettle", "train"),
    ("clips/b1.webm", "doorbell", "train"),
    ("clips/b2.avi", "doorbell", "train"),
    ("other/c1.mp4", "rain on roof", "train"),
    ("other/c2.mp4", "rain on roof", "train"),
    ("clips/a3.mkv", "kettle", "val"),
    ("clips/b3.mp4", "doorbell", "test"),
    ("other/c3.webm", "rain on roof", "test"),
    ("other/gone.mp4", "kettle", "test"),  # listed, missing
]


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _make_user_data(home: Path) -> dict[str, Path]:
    """A folder of MUSIC videos with its split lists, and an own dataset with its CSV."""
    folder, lists = home / "music videos", home / "lists"
    lists.mkdir(parents=True)
    for k, (yid, (_, _, name)) in enumerate(MUSIC.items()):
        if name is None:
            continue
        if yid.startswith("tuba"):
            (folder / name).write_bytes(b"\x00not a video" * 100)
        else:
            render(folder / name, k)
    for split in ("train", "val", "test"):
        rows = [
            f"/{lab}/{y}.wav,/{lab}/{y}.mp4,12" for y, (lab, s, _) in MUSIC.items() if s == split
        ]
        (lists / f"{split}.csv").write_text("\n".join(rows) + "\n")
    own = home / "my set"
    lines = ["video,label,split,note"]
    for k, (rel, label, split) in enumerate(OWN):
        if "gone" not in rel:
            render(own / rel, k)
        lines.append(f'"{rel}",{label},{split},x')
    (own / "clips.csv").write_text("\n".join(lines) + "\n")
    return {"folder": folder, "lists": lists, "own": own / "clips.csv"}


def _config(repo: Path, data: dict[str, Path]) -> dict:
    config = yaml.safe_load((repo / "config" / "tiny.yaml").read_text())
    music_lists = {
        split: {
            "url": (data["lists"] / f"{split}.csv").as_uri(),
            "sha256": hashlib.sha256((data["lists"] / f"{split}.csv").read_bytes()).hexdigest(),
        }
        for split in ("train", "val", "test")
    }
    config["datasets"] = {
        "music": {"source": "local", "lists": music_lists, "videos": str(data["folder"])},
        "my_sounds": {"source": "csv", "csv": str(data["own"])},
    }
    config["train"]["epochs"] = 1
    config["variants"] = {"concat": {"arch": "concat"}}
    config["evaluation"].update(attacks=["fgsm"], sweep_models=["concat"], steps=1)
    config["evaluation"]["table_budgets"] = {"single": 0.006, "multi": 0.006}  # one job per row
    config["tables"] = {"table1": {"music": "music", "my_sounds": "music"}}
    return config


def test_matching_and_csv_reading(tmp_path: Path) -> None:
    data = _make_user_data(tmp_path)
    lists = {s: data["lists"] / f"{s}.csv" for s in ("train", "val", "test")}
    records = records_with_exclusions("music", lists)[0]
    clips, missing = match_records(records, data["folder"])
    assert {c.clip_id: c.video.relative_to(data["folder"]).as_posix() for c in clips} == {
        y: name for y, (_, _, name) in MUSIC.items() if name
    }
    assert [(m.clip_id, m.reason) for m in missing] == [("violin00005", NOT_IN_FOLDER)]

    own, gone = read_own_csv(data["own"], "my_sounds")
    assert [c.clip_id for c in own][:3] == ["a_1", "a-2", "b1"]
    assert [(g.clip_id, g.reason) for g in gone] == [("gone", "no such file: other/gone.mp4")]
    assert csv_classes(data["own"]) == ("doorbell", "kettle", "rain on roof")


@pytest.mark.slow
def test_local_folder_and_own_csv_run_the_study_to_its_tables(
    repo_dir: Path, tmp_path: Path
) -> None:
    data = _make_user_data(tmp_path / "home")
    before = _tree(tmp_path / "home")
    root = studies.copy_workflow(repo_dir, tmp_path / "wf")
    (root / "local.yaml").write_text(yaml.safe_dump(_config(repo_dir, data)))
    seconds = studies.run_study(root, "local.yaml")
    print(f"study of two datasets: {seconds:.0f} s")

    table = pd.read_csv(root / "results" / "tables" / "table1.csv")
    assert {"music", "my_sounds"} <= set(table.astype(str).stack()), "both datasets in Table 1"

    music = {
        s: pd.read_csv(root / f"results/music/data/manifest_{s}.csv") for s in ("train", "test")
    }
    assert sorted(music["train"]["clip_id"]) == sorted(
        y for y, (_, s, _) in MUSIC.items() if s == "train"
    )
    assert set(music["test"]["clip_id"]) == {"flute000004", "violin00004"}
    excluded = pd.read_csv(root / "results/music/data/exclusions.csv")
    assert dict(zip(excluded["clip_id"], excluded["reason"], strict=True)) == {
        "violin00005": NOT_IN_FOLDER,
        "tuba0000001": "undecodable",
    }

    own = {
        s: pd.read_csv(root / f"results/my_sounds/data/manifest_{s}.csv") for s in ("train", "test")
    }
    assert sorted(set(own["train"]["label"])) == ["doorbell", "kettle", "rain on roof"]
    assert sorted(set(own["train"]["label_index"])) == [0, 1, 2]
    assert len(own["train"]) == 6 and len(own["test"]) == 2
    own_excluded = pd.read_csv(root / "results/my_sounds/data/exclusions.csv")
    assert list(own_excluded["clip_id"]) == ["gone"]

    assert _tree(tmp_path / "home") == before, "the user's files are byte-identical"
    records = read_records(root / "resources/music/records.csv")
    assert all(r.start is None for r in records)
    shutil.rmtree(root / ".snakemake", ignore_errors=True)
