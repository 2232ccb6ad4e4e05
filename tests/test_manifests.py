"""Merging the shards' manifests, exclusions and download failures."""

from __future__ import annotations

import pandas as pd

from avmodels.data.manifests import FAILURE_COLUMNS, MANIFEST_COLUMNS, merge_manifests
from avmodels.data.records import EXCLUSION_COLUMNS


def _csv(path, columns, rows):
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    return path


def test_download_failures_keep_their_cause_dataset_and_split(tmp_path):
    clip = ["a1", "music", "cello", 0, "train", str(tmp_path / "a1"), 6.0, 66150, 48]
    manifest = _csv(tmp_path / "m.csv", MANIFEST_COLUMNS, [clip])
    exclusions = _csv(
        tmp_path / "e.csv",
        EXCLUSION_COLUMNS,
        [["b2", "music", "test", "not downloaded"], ["c3", "music", "val", "undecodable"]],
    )
    failures = _csv(tmp_path / "f.csv", FAILURE_COLUMNS, [["b2", "B2", "unavailable", "404"]])
    outputs = {split: tmp_path / f"{split}.csv" for split in ("train", "val", "test")}
    counts = merge_manifests([manifest], [exclusions], [failures], outputs, tmp_path / "x.csv")
    assert counts == {"train": 1, "val": 0, "test": 0}
    dropped = pd.read_csv(tmp_path / "x.csv", keep_default_na=False)
    assert dropped.values.tolist() == [
        ["b2", "music", "test", "download: unavailable"],
        ["c3", "music", "val", "undecodable"],
    ]
