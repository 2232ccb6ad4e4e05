"""Preprocessing of generated videos: containers, rates, layouts, sizes, errors, layout on disk."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from avmodels.data import clips, media, preprocess, probing
from avmodels.data.classes import CLASSES
from avmodels.data.manifests import MANIFEST_COLUMNS
from avmodels.data.records import EXCLUSION_COLUMNS, ClipRecord

REPO = Path(__file__).resolve().parents[1]


def _ffmpeg(*args: str) -> None:
    subprocess.run([probing.ensure_ffmpeg(), "-v", "error", "-y", *args], check=True)


def _make(
    path: Path,
    seconds: float = 2.0,
    size: str = "64x48",
    rate: str = "25",
    sample_rate: int = 22050,
    channels: int = 1,
    vcodec: tuple[str, ...] = ("libx264", "-preset", "ultrafast"),
    acodec: tuple[str, ...] = ("aac",),
    video: bool = True,
    audio: bool = True,
    extra: tuple[str, ...] = (),
) -> Path:
    """A test pattern + 440 Hz tone; any container/codec/rate/layout ffmpeg writes."""
    inputs, outputs = [], ["-t", str(seconds), *extra]
    if video:
        inputs += ["-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate}"]
        outputs += ["-pix_fmt", "yuv420p", "-c:v", *vcodec]
    if audio:
        inputs += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={sample_rate}"]
        outputs += ["-ac", str(channels), "-c:a", *acodec]
    _ffmpeg(*inputs, *outputs, str(path))
    return path


SOURCES = {  # name -> (make kwargs, expected stored (H, W), source fps, source sample rate)
    "mp4_2997fps_51": (
        {"rate": "30000/1001", "size": "320x240", "sample_rate": 48000, "channels": 6},
        (240, 320),
        29.97,
        48000,
    ),
    "mkv_anamorphic_71_flac": (
        {
            "size": "352x288",
            "sample_rate": 96000,
            "channels": 8,
            "acodec": ("flac",),
            "extra": ("-vf", "setsar=16/11"),
        },
        (256, 455),  # 352*16/11 = 512 x 288 displayed -> short side 256
        25.0,
        96000,
    ),
    "webm_portrait_opus": (
        {
            "size": "360x640",
            "rate": "30",
            "sample_rate": 48000,
            "vcodec": ("libvpx", "-deadline", "realtime", "-cpu-used", "8"),
            "acodec": ("libopus",),
        },
        (455, 256),
        30.0,
        48000,
    ),
    "avi_tiny_odd_mp3": (
        {
            "size": "33x17",
            "rate": "15",
            "channels": 2,
            "vcodec": ("mpeg4",),
            "acodec": ("libmp3lame",),
        },
        (17, 33),
        15.0,
        22050,
    ),
}
EXT = {"mp4": ".mp4", "mkv": ".mkv", "webm": ".webm", "avi": ".avi"}


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sources")
    made = {n: _make(root / f"{n}{EXT[n.split('_')[0]]}", **kw) for n, (kw, *_) in SOURCES.items()}
    made["noaudio"] = _make(root / "noaudio.mp4", audio=False)
    made["audioonly"] = _make(root / "audioonly.m4a", video=False)
    made["short"] = _make(root / "short.mp4", seconds=0.5)
    made["corrupt"] = root / "corrupt.mp4"
    made["corrupt"].write_bytes(np.random.default_rng(0).bytes(5000))
    made["empty"] = root / "empty.mp4"
    made["empty"].write_bytes(b"")
    made["nomoov"] = root / "nomoov.mp4"  # moov atom at the end, cut off
    made["nomoov"].write_bytes(made["mp4_2997fps_51"].read_bytes()[:3000])
    colors = root / "colors.mp4"  # red for 1.5 s, then blue for 1.5 s
    _ffmpeg(
        *("-f", "lavfi", "-i", "color=c=red:s=64x48:r=25:d=1.5"),
        *("-f", "lavfi", "-i", "color=c=blue:s=64x48:r=25:d=1.5"),
        *("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000:duration=3"),
        *("-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0,format=yuv420p[v]"),
        *("-map", "[v]", "-map", "2:a", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"),
        str(colors),
    )
    made["colors"] = colors
    return made


def _peak_hz(audio: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
    return float(np.fft.rfftfreq(audio.size, 1 / sr)[spectrum.argmax()])


def _no_leftovers(parent: Path, keep: set[str]) -> None:
    assert {p.name for p in parent.iterdir()} == keep


@pytest.mark.parametrize("name", list(SOURCES))
def test_any_container_rate_layout_and_size(
    name: str, sources: dict[str, Path], tmp_path: Path
) -> None:
    _, (height, width), fps, sample_rate = SOURCES[name]
    out = tmp_path / "clip"
    info = media.preprocess_clip(sources[name], out)
    assert info.duration == pytest.approx(2.0, abs=0.1)
    assert info.num_samples == round(info.duration * clips.SAMPLE_RATE)
    assert abs(info.num_frames - info.duration * clips.FPS) <= 1

    audio, sr = clips.load_audio(out)
    assert sr == clips.SAMPLE_RATE == 11025 and audio.dtype == np.float32 and audio.ndim == 1
    assert audio.size == info.num_samples and np.abs(audio).max() <= 1.0
    assert _peak_hz(audio, sr) == pytest.approx(440, abs=3), "tone survives downmix + resample"
    assert np.sqrt(np.mean(audio**2)) > 0.01

    frames = clips.load_frames(out)
    assert frames.dtype == np.uint8 and frames.shape == (info.num_frames, height, width, 3)
    assert clips.frame_count(out) == info.num_frames
    for i in (0, info.num_frames // 2, -1):
        np.testing.assert_array_equal(clips.load_frame(out, i), frames[i])

    meta = json.loads((out / clips.INFO_FILE).read_text())
    assert meta["num_frames"] == info.num_frames and meta["num_samples"] == info.num_samples
    assert (meta["height"], meta["width"]) == (height, width)
    assert meta["source"]["fps"] == pytest.approx(fps, abs=0.01)
    assert meta["source"]["sample_rate"] == sample_rate
    assert sf.info(out / clips.AUDIO_FILE).subtype == "PCM_16"
    _no_leftovers(tmp_path, {"clip"})


def test_frames_and_trim_follow_time(sources: dict[str, Path], tmp_path: Path) -> None:
    red, blue = np.array([255, 0, 0]), np.array([0, 0, 255])
    full = media.preprocess_clip(sources["colors"], tmp_path / "full")
    frames = clips.load_frames(tmp_path / "full").astype(int)
    assert full.num_frames == 24
    assert np.abs(frames[:12].mean(axis=(1, 2)) - red).max() < 12, "RGB order, frames 0-11"
    assert np.abs(frames[12:].mean(axis=(1, 2)) - blue).max() < 12

    cut = media.preprocess_clip(sources["colors"], tmp_path / "cut", start=1.0, end=2.5)
    assert cut.duration == pytest.approx(1.5, abs=0.02) and cut.num_frames == 12
    assert cut.num_samples == pytest.approx(1.5 * clips.SAMPLE_RATE, abs=30)
    frames = clips.load_frames(tmp_path / "cut").astype(int)
    assert np.abs(frames[:4].mean(axis=(1, 2)) - red).max() < 12
    assert np.abs(frames[4:].mean(axis=(1, 2)) - blue).max() < 12
    assert json.loads((tmp_path / "cut" / clips.INFO_FILE).read_text())["start"] == 1.0


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("noaudio", "no audio"),
        ("audioonly", "no video"),
        ("short", "too short"),
        ("corrupt", "undecodable"),
        ("empty", "undecodable"),
        ("nomoov", "undecodable"),
    ],
)
def test_errors_leave_nothing(
    name: str, reason: str, sources: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(probing.MediaError) as err:
        media.preprocess_clip(sources[name], tmp_path / "clip")
    assert str(err.value) == err.value.reason == reason
    _no_leftovers(tmp_path, set())


def test_options_and_argument_errors(sources: dict[str, Path], tmp_path: Path) -> None:
    info = media.preprocess_clip(sources["short"], tmp_path / "a", min_duration=0.25)
    assert info.num_frames == 4
    with pytest.raises(probing.MediaError, match="too short"):
        media.preprocess_clip(sources["colors"], tmp_path / "b", start=5.0)
    info = media.preprocess_clip(sources["mp4_2997fps_51"], tmp_path / "c", max_short_side=96)
    assert clips.load_frame(tmp_path / "c", 0).shape == (96, 128, 3)
    with pytest.raises(ValueError):
        media.preprocess_clip(sources["colors"], tmp_path / "d", start=2.0, end=1.0)
    with pytest.raises(FileNotFoundError):
        media.preprocess_clip(tmp_path / "missing.mp4", tmp_path / "e")
    with pytest.raises(IndexError):
        clips.load_frame(tmp_path / "a", 4)
    with pytest.raises(FileNotFoundError):
        clips.read_info(tmp_path / "d")


def test_write_is_atomic(
    sources: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "clip"
    first = media.preprocess_clip(sources["colors"], out)

    def crash(*args: object) -> None:
        raise RuntimeError("disk full")

    with monkeypatch.context() as m:
        m.setattr(media, "_pack_frames", crash)
        with pytest.raises(RuntimeError):
            media.preprocess_clip(sources["mp4_2997fps_51"], out)
    assert clips.read_info(out)["num_frames"] == first.num_frames, "old clip intact"
    _no_leftovers(tmp_path, {"clip"})

    second = media.preprocess_clip(sources["mp4_2997fps_51"], out)  # replaces the old clip
    assert clips.read_info(out)["num_frames"] == second.num_frames != first.num_frames
    _no_leftovers(tmp_path, {"clip"})


def test_load_audio_window(sources: dict[str, Path], tmp_path: Path) -> None:
    media.preprocess_clip(sources["colors"], tmp_path / "clip")
    audio, _ = clips.load_audio(tmp_path / "clip")
    window, sr = clips.load_audio(tmp_path / "clip", start=1000, stop=5000)
    np.testing.assert_array_equal(window, audio[1000:5000])
    assert sr == clips.SAMPLE_RATE


def test_cli(sources: dict[str, Path], tmp_path: Path) -> None:
    def run(*args: Path) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "avmodels.workflow.cli", "preprocess", *map(str, args)]
        return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)

    ok = run(sources["colors"], tmp_path / "clip")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count("\n") == 1 and "24 frames" in ok.stdout and "33075 samples" in ok.stdout
    bad = run(sources["noaudio"], tmp_path / "bad")
    assert bad.returncode != 0 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [f"{sources['noaudio']}: no audio"]


def test_ensure_ffmpeg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = probing.ensure_ffmpeg()
    assert Path(path) == tmp_path / "cache" / "avmodels" / "bin" / "ffmpeg"
    assert shutil.which("ffmpeg") == path
    assert probing.ensure_ffmpeg() == path, "second call finds it on PATH"
    version = subprocess.run([path, "-version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("ffmpeg version")


def test_ensure_ffmpeg_never_uses_a_shared_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache folder others can write to is refused: a private temporary folder is used."""
    shared = tmp_path / "shared"
    (shared / "avmodels" / "bin").mkdir(parents=True)
    for folder in (shared / "avmodels", shared / "avmodels" / "bin"):
        folder.chmod(0o777)
    planted = shared / "avmodels" / "bin" / "node"
    planted.write_text("#!/bin/sh\n")
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(shared))
    path = Path(probing.ensure_ffmpeg())
    assert shared not in path.parents
    first = os.environ["PATH"].split(os.pathsep)[0]
    assert Path(first) == path.parent and (path.parent.stat().st_mode & 0o077) == 0
    assert path.parent.stat().st_uid == os.getuid()

    blocked = tmp_path / "a-file"  # a cache folder that cannot be made
    blocked.write_text("")
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    path = Path(probing.ensure_ffmpeg())
    assert (path.parent.stat().st_mode & 0o077) == 0 and path.parent.stat().st_uid == os.getuid()
    assert os.environ["PATH"].split(os.pathsep)[0] == str(path.parent)


def test_parse_probe() -> None:
    text = """Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'x.m4a':
  Duration: 00:01:02.50, start: 0.000000, bitrate: 128 kb/s
  Stream #0:0[0x1](und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, 5.1(side), fltp
  Stream #0:1[0x0]: Video: mjpeg (Baseline), yuvj420p, 600x600, 90k tbr, 90k tbn (attached pic)
  Stream #0:2[0x2](eng): Video: h264 (avc1 / 0x31637661), yuv420p, 1920x1080 [SAR 1:1], 23.98 fps
"""
    info = probing.parse_probe(text)
    assert info.duration == pytest.approx(62.5) and info.audio_index == 0
    assert (info.video_index, info.width, info.height, info.fps) == (2, 1920, 1080, 23.98)
    assert (info.sample_rate, info.channel_layout) == (44100, "5.1(side)")
    cover_only = probing.parse_probe(text.rsplit("\n", 2)[0])
    assert cover_only.video_index is None, "cover art is not video"
    with pytest.raises(probing.MediaError, match="undecodable"):
        probing.parse_probe("x.mp4: Invalid data found when processing input\n")


@pytest.mark.parametrize("workers", [1, 3])
def test_preprocess_many(
    sources: dict[str, Path], tmp_path: Path, monkeypatch, workers: int
) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    recs = [
        ClipRecord("music", "violin", "aaaaaaaaaaa", 0.0, 3.0, "train"),
        ClipRecord("music", "flute", "bbbbbbbbbbb", None, None, "test"),
        ClipRecord("music", "flute", "ccccccccccc", None, None, "val"),
    ]
    shutil.copy(sources["colors"], videos / f"{recs[0].clip_id}.mp4")
    shutil.copy(sources["noaudio"], videos / f"{recs[1].clip_id}.mkv")
    items = [*recs, sources["mp4_2997fps_51"]]
    # label_index: the paper's class order; with several workers the rows keep the items' order
    kw = {"video_dir": videos, "progress": False, "workers": workers}
    rows, excluded = preprocess.preprocess_many(items, tmp_path / "clips", **kw)
    assert [list(r) for r in rows] == [MANIFEST_COLUMNS] * 2
    assert [list(e) for e in excluded] == [EXCLUSION_COLUMNS] * 2
    assert rows[0]["label_index"] == CLASSES["music"].index("violin")
    assert (rows[0]["clip_id"], rows[0]["split"], rows[0]["num_frames"]) == (
        recs[0].clip_id,
        "train",
        24,
    )
    assert rows[1]["clip_id"] == "mp4_2997fps_51" and rows[1]["label_index"] == -1
    assert clips.frame_count(rows[0]["clip_dir"]) == rows[0]["num_frames"]
    assert [(e["clip_id"], e["reason"]) for e in excluded] == [
        (recs[1].clip_id, "no audio"),
        (recs[2].clip_id, preprocess.NOT_DOWNLOADED),
    ]

    synthetic = ClipRecord("toy", "b", "ddddddddddd", None, None, "test")
    shutil.copy(sources["colors"], videos / f"{synthetic.clip_id}.webm")
    other = preprocess.preprocess_many([synthetic], tmp_path / "clips", **kw, classes=["a", "b"])
    assert other[0][0]["label_index"] == 1

    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("finished clips are reused")

    monkeypatch.setattr(media, "preprocess_clip", must_not_run)
    again = preprocess.preprocess_many(items[:1] + items[3:], tmp_path / "clips", **kw)
    assert again == (rows, [])


def test_frame_format_bench_runs() -> None:
    spec = importlib.util.spec_from_file_location("frame_formats", REPO / "bench/frame_formats.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = bench.run(quick=True)
    assert all(set(r) == {"benchmark", "figure", "value", "target", "met"} for r in rows)
    chosen = [r for r in rows if r["figure"].startswith("jpeg_packed")]
    assert chosen and all(r["met"] for r in chosen if "read" not in r["figure"])
    rejected = [r for r in rows if r["figure"].startswith(("png_files", "audio flac"))]
    assert rejected and all(r["met"] is None and "limit" in r["figure"] for r in rejected)
