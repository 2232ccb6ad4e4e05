"""Preprocessing never loses a user's file: refused targets, full disks, truncated sources."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from avmodels.data import clips, media, preprocess, probing
from avmodels.data.records import ClipRecord

REPO = Path(__file__).resolve().parents[1]


def _ffmpeg(*args: str) -> None:
    subprocess.run([probing.ensure_ffmpeg(), "-v", "error", "-y", *args], check=True)


def _video(path: Path, seconds: float = 2.0, size: str = "64x48") -> Path:
    _ffmpeg(
        *("-f", "lavfi", "-i", f"testsrc=size={size}:rate=25"),
        *("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=22050"),
        *("-t", str(seconds), "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast"),
        *("-c:a", "aac", str(path)),
    )
    return path


def _snapshot(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``root`` (folders as "dir")."""
    out = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        out[key] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _cli(video: Path, out_dir: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "avmodels.workflow.cli", "preprocess", str(video), str(out_dir)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, check=False)


@pytest.fixture
def user_folder(tmp_path: Path) -> Path:
    """A folder of the user's: two videos, a text file, a subfolder with a file."""
    folder = tmp_path / "my videos"
    folder.mkdir()
    _video(folder / "a.mp4")
    shutil.copy(folder / "a.mp4", folder / "b.mkv")
    (folder / "notes.txt").write_text("do not lose me\n")
    (folder / "sub").mkdir()
    (folder / "sub" / "info.json").write_text("{}")  # a clip file name, but not a clip
    return folder


@pytest.mark.parametrize("target", ["own folder", "dot", "foreign folder", "clip name clash"])
def test_cli_refuses_a_folder_it_did_not_write(
    user_folder: Path, tmp_path: Path, target: str
) -> None:
    foreign = tmp_path / "elsewhere"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("\\section{x}\n")
    out, cwd = {
        "own folder": (user_folder, tmp_path),
        "dot": (".", user_folder),
        "foreign folder": (foreign, tmp_path),
        "clip name clash": (user_folder / "sub", tmp_path),
    }[target]
    before = _snapshot(tmp_path)
    proc = _cli(user_folder / "a.mp4", out, cwd)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == "" and len(proc.stderr.strip().splitlines()) == 1
    assert "not empty and not a clip folder; refused" in proc.stderr
    assert _snapshot(tmp_path) == before, "every file byte-identical, nothing added"


def test_cli_writes_into_an_empty_folder_and_replaces_only_its_own_clip(
    user_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "clip"
    out.mkdir()
    assert _cli(user_folder / "a.mp4", out, tmp_path).returncode == 0
    assert media.is_own_clip_dir(out)
    assert _cli(user_folder / "b.mkv", out, tmp_path).returncode == 0, "own clip is replaced"
    assert clips.read_info(out)["source"]["path"].endswith("b.mkv")
    (out / "mine.txt").write_text("added by the user")
    before = _snapshot(tmp_path)
    proc = _cli(user_folder / "a.mp4", out, tmp_path)
    assert proc.returncode == 2 and _snapshot(tmp_path) == before


def test_the_current_folder_is_refused_even_when_empty(
    user_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    for target in (".", empty, tmp_path):
        with pytest.raises(media.ClipDirError):
            media.preprocess_clip(user_folder / "a.mp4", target)
    assert empty.is_dir() and not any(empty.iterdir())


def test_a_video_path_as_target_is_refused(user_folder: Path) -> None:
    before = _snapshot(user_folder)
    with pytest.raises(media.ClipDirError, match="not a folder"):
        media.preprocess_clip(user_folder / "a.mp4", user_folder / "b.mkv")
    with pytest.raises(media.ClipDirError):
        media.preprocess_clip(user_folder / "a.mp4", user_folder)
    assert _snapshot(user_folder) == before


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 600 kB tmpfs (needs root; skipped where mounting is not allowed)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {proc.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_full_disk_stops_with_one_line_and_marks_no_clip_bad(
    small_disk: Path, tmp_path: Path
) -> None:
    big = _video(tmp_path / "big.mp4", seconds=6.0, size="640x480")
    (small_disk / "keep.bin").write_bytes(os.urandom(100_000))
    before = _snapshot(small_disk)

    proc = _cli(big, small_disk / "clip", tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"{small_disk / 'clip'}: no space left on device; nothing written"
    ]
    assert _snapshot(small_disk) == before, "no partial clip, user's file intact"

    videos = tmp_path / "videos"
    videos.mkdir()
    recs = [ClipRecord("music", "flute", f"{c * 11}", None, None, "train") for c in "abc"]
    for rec in recs:
        shutil.copy(big, videos / f"{rec.clip_id}.mp4")
    with pytest.raises(media.DiskFullError):
        preprocess.preprocess_many(
            recs, small_disk / "clips", video_dir=videos, progress=False, workers=2
        )
    leftovers = {p.name for p in (small_disk / "clips").iterdir()}
    assert not leftovers, f"no clip and no exclusion written: {leftovers}"
    assert _snapshot(small_disk) == {**before, "clips": "dir"}


def test_truncated_source_is_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    whole = _video(tmp_path / "whole.mkv", seconds=8.0, size="320x240")
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # header keeps 8 s
    info = media.preprocess_clip(cut, tmp_path / "clip")
    assert info.declared == pytest.approx(8.0, abs=0.1)
    assert info.duration < info.declared - 1
    assert clips.read_info(tmp_path / "clip")["declared_duration"] == info.declared
    assert "s declared" in caplog.text
    full = media.preprocess_clip(whole, tmp_path / "full")
    assert full.declared is None
    proc = _cli(cut, tmp_path / "clip2", tmp_path)
    assert proc.returncode == 0 and "source declares 8.0" in proc.stdout


def test_decode_has_a_timeout(tmp_path: Path) -> None:
    video = _video(tmp_path / "v.mp4", seconds=4.0, size="640x480")
    with pytest.raises(probing.MediaError, match="undecodable") as err:
        media.preprocess_clip(video, tmp_path / "clip", timeout=0.01)
    assert "timed out" in err.value.detail
    assert not (tmp_path / "clip").exists()
