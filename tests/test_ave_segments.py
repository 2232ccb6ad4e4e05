"""AVE through its lists served on 127.0.0.1: the download is the clip's whole AudioSet segment."""

from __future__ import annotations

import functools
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from avmodels.data import clips, download, preprocess, probing
from avmodels.data.lists import fetch_list, sha256_file
from avmodels.data.records import NOT_IN_AUDIOSET, records_with_exclusions

IDS = {"inside00000": "Bark", "elsewhere00": "Bark", "nosegment00": "Cat"}
COLORS = {"red": (0, 20), "lime": (20, 30), "blue": (30, 40)}  # seconds of the upload


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """Lists and 40 s uploads (red 0-20 s, lime 20-30 s, blue 30-40 s) on a loopback server."""
    root = tmp_path_factory.mktemp("host")
    cmd = [probing.ensure_ffmpeg(), "-v", "error", "-y"]
    for color, (a, b) in COLORS.items():
        cmd += ["-f", "lavfi", "-i", f"color=c={color}:s=64x48:r=8:d={b - a}"]
    cmd += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000:duration=40"]
    cmd += ["-filter_complex", "[0:v][1:v][2:v]concat=n=3:v=1:a=0,format=yuv420p[v]"]
    cmd += ["-map", "[v]", "-map", "3:a", "-c:v", "libx264", "-preset", "ultrafast", "-g", "8"]
    subprocess.run(
        [*cmd, "-c:a", "aac", "-movflags", "+faststart", str(root / "up.mp4")], check=True
    )
    for yid in IDS:
        (root / f"{yid}.mp4").write_bytes((root / "up.mp4").read_bytes())
    # the event times (2-6 s, 0-10 s) are inside the 10 s segment, not inside the upload
    (root / "Annotations.txt").write_text(
        "Bark&inside00000&good&2&6\nBark&elsewhere00&good&0&10\nCat&nosegment00&good&1&3\n"
    )
    (root / "test_AVE.csv").write_text(
        "".join(f"/{label}/{yid}.wav,/{label}/{yid}.mp4,82\n" for yid, label in IDS.items())
    )
    for split in ("train", "val"):
        (root / f"{split}_AVE.csv").write_text("")
    (root / "eval_segments.csv").write_text(
        "# YTID, start_seconds, end_seconds, positive_labels\n"
        'inside00000, 20.000, 30.000, "/m/0bt9lr"\n'
    )
    (root / "balanced_train_segments.csv").write_text(
        '# YTID, start_seconds, end_seconds, positive_labels\nelsewhere00, 30.000, 40.000, "/m/x"\n'
    )
    handler = functools.partial(_Quiet, directory=str(root))
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def _mean_rgb(clip_dir: Path) -> np.ndarray:
    return clips.load_frames(clip_dir).reshape(-1, 3).mean(axis=0)


def test_ave_downloads_the_whole_segment(
    served: tuple[Path, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root, url = served
    names = {
        "annotations": "Annotations.txt",
        "train": "train_AVE.csv",
        "val": "val_AVE.csv",
        "test": "test_AVE.csv",
        "segments_balanced": "balanced_train_segments.csv",
        "segments_eval": "eval_segments.csv",
    }
    lists = {}
    for name, file in names.items():
        pinned = None if name.startswith("segments") else sha256_file(root / file)
        lists[name] = fetch_list(f"{url}/{file}", tmp_path / "lists" / file, pinned)
    assert "no sha256 pinned" in caplog.text, "the unpinned segment lists are warned about"

    records, exclusions = records_with_exclusions("ave", lists)
    assert [(e.clip_id, e.reason) for e in exclusions] == [("nosegment00", NOT_IN_AUDIOSET)]
    assert {r.youtube_id: (r.start, r.end) for r in records} == {
        "inside00000": (20.0, 30.0),
        "elsewhere00": (30.0, 40.0),
    }

    videos = tmp_path / "videos"
    summary = download.download_shard(
        records, videos, tmp_path / "failures.csv", url + "/{id}.mp4", progress=False
    )
    assert summary.downloaded == 2, summary
    rows, excluded = preprocess.preprocess_many(
        records, tmp_path / "clips", video_dir=videos, progress=False
    )
    assert excluded == []
    colors = {"inside00000": (0, 255, 0), "elsewhere00": (0, 0, 255)}
    for row in rows:
        assert row["duration"] == pytest.approx(10.0, abs=0.3), "the whole 10 s segment"
        assert row["num_frames"] >= 79
        rgb = _mean_rgb(Path(row["clip_dir"]))
        want = colors[row["clip_id"].split("_")[0]]
        assert np.abs(rgb - want).max() < 40, f"{row['clip_id']}: {rgb} is not {want}"
