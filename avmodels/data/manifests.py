"""Per-split manifests and the exclusion list, merged from the workflow's shards."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from avmodels import atomic
from avmodels.data.lists import FAILURE_COLUMNS
from avmodels.data.records import EXCLUSION_COLUMNS

MANIFEST_COLUMNS = [
    "clip_id",
    "dataset",
    "label",
    "label_index",
    "split",
    "clip_dir",
    "duration",
    "num_samples",
    "num_frames",
]


def _read(paths: Sequence[str | Path], columns: Sequence[str]) -> pd.DataFrame:
    frames = [pd.read_csv(p, dtype=str, keep_default_na=False) for p in paths]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=list(columns))
    return pd.concat(frames, ignore_index=True)


def merge_manifests(
    manifests: Sequence[str | Path],
    exclusions: Sequence[str | Path],
    failures: Sequence[str | Path],
    outputs: Mapping[str, str | Path],
    exclusions_out: str | Path,
) -> dict[str, int]:
    """Write one manifest per split and one exclusion list; return clips per split.

    Clip directories are written relative to each manifest's own folder, so the
    results tree can move. Download failures join the exclusions with their reason.
    """
    clips = _read(manifests, MANIFEST_COLUMNS).sort_values("clip_id", kind="stable")
    counts = {}
    for split, out in outputs.items():
        part = clips[clips["split"] == split].copy()
        base = Path(out).resolve().parent
        part["clip_dir"] = [os.path.relpath(Path(d).resolve(), base) for d in part["clip_dir"]]
        atomic.write_csv(part, out, index=False, columns=MANIFEST_COLUMNS)
        counts[split] = len(part)
    dropped = _read(exclusions, EXCLUSION_COLUMNS)
    failed = _read(failures, FAILURE_COLUMNS)
    if len(failed):
        # dataset and split come from preprocessing's "not downloaded" row of the clip
        known = dropped.drop_duplicates("clip_id").set_index("clip_id")
        failed = failed.assign(
            dataset=failed["clip_id"].map(known["dataset"]).fillna(""),
            split=failed["clip_id"].map(known["split"]).fillna(""),
            reason="download: " + failed["reason"].astype(str),
        )
        # a failed download is also excluded by preprocessing ("not downloaded"): keep the cause
        dropped = dropped[~dropped["clip_id"].isin(failed["clip_id"])]
        dropped = pd.concat([dropped, failed[EXCLUSION_COLUMNS]], ignore_index=True)
    dropped = dropped.sort_values("clip_id", kind="stable")
    atomic.write_csv(dropped, exclusions_out, index=False, columns=EXCLUSION_COLUMNS)
    return counts
