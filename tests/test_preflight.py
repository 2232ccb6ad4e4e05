"""Pre-flight checks: runtime, ffmpeg, writable clip store, free disk."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import pytest

from avmodels.settings import DownloadSettings
from avmodels.workflow import preflight


def test_preflight_finds_what_it_needs(tmp_path: Path) -> None:
    found = preflight.check([tmp_path / "store"], 0)
    assert found[0].startswith("JavaScript runtime") and "deno" in found[0]
    assert found[1].startswith("ffmpeg") and (tmp_path / "store").is_dir()


def test_preflight_stops_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(preflight.PreflightError, match="download.js_runtime") as err:
        preflight.check([tmp_path], 0, js_runtime=str(tmp_path / "no-deno"))
    assert "\n" not in str(err.value)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root writes anyway
            pytest.skip("this user can write to any folder")
        with pytest.raises(preflight.PreflightError, match="not writable"):
            preflight.check([locked / "store"], 0)
    finally:
        locked.chmod(0o700)


def test_free_disk_against_the_estimate(tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free
    with pytest.raises(preflight.PreflightError, match="GB free") as err:
        preflight.check([tmp_path], free * 2)
    assert "\n" not in str(err.value)
    records = tmp_path / "records.csv"
    with open(records, "w", newline="") as f:
        csv.writer(f).writerows([["clip_id"], ["a"], ["b"], ["c"]])
    store = tmp_path / "videos"
    store.mkdir()
    (store / "b.mp4").write_bytes(b"x")
    assert preflight.clips_to_fetch(records, [store]) == 2
    assert preflight.clips_to_fetch(tmp_path / "none.csv", [store]) is None
    settings = DownloadSettings.from_config({"min_free_gb": 1, "mb_per_clip": 1000})
    assert preflight.estimate_bytes(settings, [None]) == 1e9
    assert preflight.estimate_bytes(settings, [2, None, 3]) == 5e9
    assert preflight.estimate_bytes(settings, [0, None]) == 1e9, "a list still unknown"
    assert preflight.estimate_bytes(settings, [0, 0]) == 0, "every clip on disk"
