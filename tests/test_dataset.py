"""AVDataset: window centring, padding and tiling, frame choice, reads, transforms, seeded
randomness."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF
from PIL import Image
from torch.utils.data import DataLoader

from avmodels.data import clips
from avmodels.data.dataset import (
    VOLUME,
    AVDataset,
    crop_to_float,
    cut,
    decode_frame,
    frame_choices,
    pcm16_layout,
    read_jpeg,
    read_window,
    resize_short_side,
    tile,
    window_start,
)

SR, FPS = clips.SAMPLE_RATE, clips.FPS
H, W = 24, 32  # frame size of the hand-made clips


def grey(i: int) -> int:
    """Grey level of frame ``i``: tells after decoding which frame an image came from."""
    return 2 + 4 * i


def samples(n: int, peak: int = 30000) -> np.ndarray:
    """PCM16 values 1..peak repeating: sample k is never 0, so padding is visible."""
    return (np.arange(n) % peak + 1).astype(np.int16)


def write_clip(
    clip_dir: Path, duration: float, pcm: np.ndarray | None = None, frames: np.ndarray | None = None
) -> dict:
    """A preprocessed clip in media's layout: PCM16 wav + packed JPEG frames (default: frame
    ``i`` a solid ``grey(i)``)."""
    num_samples, num_frames = round(duration * SR), round(duration * FPS)
    pcm = samples(num_samples) if pcm is None else pcm
    if frames is None:
        frames = np.array([np.full((H, W, 3), grey(i), np.uint8) for i in range(num_frames)])
    clip_dir.mkdir(parents=True)
    sf.write(clip_dir / clips.AUDIO_FILE, pcm, SR, subtype="PCM_16")
    offsets = [0]
    with open(clip_dir / clips.FRAMES_FILE, "wb") as f:
        for frame in frames:
            buf = io.BytesIO()
            Image.fromarray(frame).save(buf, format="JPEG", quality=95)
            offsets.append(offsets[-1] + f.write(buf.getvalue()))
    np.asarray(offsets, dtype="<i8").tofile(clip_dir / clips.INDEX_FILE)
    info = {"duration": duration, "num_samples": num_samples, "num_frames": num_frames}
    (clip_dir / clips.INFO_FILE).write_text(json.dumps(info))
    return {"clip_dir": clip_dir.name, **info}


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    """Clip 0: 8 s; clip 1: 2 s; clip 2: 8 s near full scale. Relative clip_dir entries."""
    root = tmp_path_factory.mktemp("clips")
    rows = [
        write_clip(root / "long", 8.0),
        write_clip(root / "short", 2.0),
        write_clip(root / "loud", 8.0, np.full(round(8.0 * SR), 32000, dtype=np.int16)),
    ]
    for k, row in enumerate(rows):
        row.update(clip_id=row["clip_dir"], dataset="toy", label=f"c{k}", label_index=k)
        row.update(split="test")
    path = root / "manifest.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def frame_of(visual: torch.Tensor) -> int:
    return round((float(visual.mean()) * 255 - 2) / 4)


def expected_window(num_samples: int, frame: int, length: int) -> np.ndarray:
    return cut(samples(num_samples) / 32768.0, window_start(frame, length), length)


def test_frame_choices():
    assert frame_choices(8.0, 64) == range(24, 41)  # 3 s .. 5 s at 8 fps
    assert frame_choices(6.0, 48) == range(24, 25)
    assert frame_choices(5.0, 40) == range(20, 21)  # too short: the middle frame
    assert frame_choices(8.0, 30) == range(24, 30)  # never past the last frame


def test_window_helpers():
    wave = np.arange(1, 11, dtype=np.float32)
    np.testing.assert_array_equal(cut(wave, -2, 5), [0, 0, 1, 2, 3])
    np.testing.assert_array_equal(cut(wave, 8, 4), [9, 10, 0, 0])
    np.testing.assert_array_equal(tile(wave[:3], 7), [1, 2, 3, 1, 2, 3, 1])
    assert window_start(8, 5) == SR - 2  # frame 8 is at 1 s


def test_direct_pcm16_reads_equal_soundfile_reads(manifest, tmp_path):
    clip_dir = manifest.parent / "long"
    layout = pcm16_layout(clip_dir / clips.AUDIO_FILE)
    assert layout is not None and layout[1] == 88200
    for start, length in ((-100, 500), (1000, 4001), (88000, 500), (90000, 10)):
        direct = read_window(clip_dir, 88200, start, length, layout)
        np.testing.assert_array_equal(direct, read_window(clip_dir, 88200, start, length))
    sf.write(tmp_path / "float.wav", np.zeros(10, np.float32), SR, subtype="FLOAT")
    sf.write(tmp_path / "stereo.wav", np.zeros((10, 2), np.int16), SR, subtype="PCM_16")
    assert pcm16_layout(tmp_path / "float.wav") is None
    assert pcm16_layout(tmp_path / "stereo.wav") is None
    (tmp_path / "junk.wav").write_bytes(b"RIFF0000")
    assert pcm16_layout(tmp_path / "junk.wav") is None


def test_windows_times_a_gain_equal_soundfile_reads_times_the_gain(manifest):
    clip_dir, gain = manifest.parent / "long", 1.2345
    layout = pcm16_layout(clip_dir / clips.AUDIO_FILE)
    for start, length in ((-100, 500), (1000, 4001), (88000, 500), (90000, 10)):
        expected = read_window(clip_dir, 88200, start, length) * np.float32(gain)
        for lay in (layout, None):
            got = read_window(clip_dir, 88200, start, length, lay, gain)
            assert got.dtype == np.float32 and got.flags.writeable
            np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("cache_audio", [False, True])
def test_audio_with_a_gain_is_the_window_times_the_gain(manifest, cache_audio):
    ds = AVDataset(manifest, train=True, audio_samples=30001, cache_audio=cache_audio)
    for index, frame in ((0, 0), (0, 32), (1, 8)):  # window at the start, inside, tiled
        expected = ds.audio(index, frame) * np.float32(0.75)
        np.testing.assert_array_equal(ds.audio(index, frame, 0.75), expected)


def test_frames_are_read_and_decoded_as_media_does(manifest, tmp_path):
    clip_dir = manifest.parent / "long"
    offsets = np.fromfile(clip_dir / clips.INDEX_FILE, "<i8")
    data = (clip_dir / clips.FRAMES_FILE).read_bytes()
    for i in (0, 17, 63):
        assert read_jpeg(clip_dir, i) == data[offsets[i] : offsets[i + 1]]
    for i in (-1, 64):
        with pytest.raises(IndexError):
            read_jpeg(clip_dir, i)
    frames = np.random.default_rng(1).integers(0, 256, (8, H, W, 3), dtype=np.uint8)
    write_clip(tmp_path / "noise", 1.0, frames=frames)
    for i in range(8):
        img = decode_frame(read_jpeg(tmp_path / "noise", i))
        assert img.dtype == torch.uint8 and img.shape == (3, H, W)
        np.testing.assert_array_equal(
            img.permute(1, 2, 0).numpy(), clips.load_frame(tmp_path / "noise", i)
        )


def test_crop_to_float_is_crop_flip_and_division():
    img = torch.from_numpy(np.random.default_rng(2).integers(0, 256, (20, 30, 3), dtype=np.uint8))
    img = img.permute(2, 0, 1)  # channels-last memory, as decoded and resized
    for flip in (False, True):
        crop = TF.crop(img, 3, 7, 16, 16)
        expected = (TF.horizontal_flip(crop) if flip else crop).float() / 255
        got = crop_to_float(img, 3, 7, 16, flip)
        assert got.is_contiguous() and got.dtype == torch.float32
        torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_eval_item_is_the_middle_frame_and_its_centred_window(manifest):
    ds = AVDataset(manifest, train=False, audio_samples=4001, image_size=16, resize_size=18)
    item = ds[0]
    assert item["label"] == 0 and isinstance(item["label"], int)
    assert item["audio"].dtype == torch.float32 and item["audio"].shape == (4001,)
    assert item["visual"].dtype == torch.float32 and item["visual"].shape == (3, 16, 16)
    assert frame_of(item["visual"]) == 32
    np.testing.assert_array_equal(item["audio"].numpy(), expected_window(88200, 32, 4001))
    assert float(item["visual"].min()) >= 0 and float(item["visual"].max()) <= 1


def test_windows_are_zero_padded_at_the_clip_edges(manifest):
    ds = AVDataset(manifest, train=False, audio_samples=4001)
    first = ds.audio(0, 0)  # centred on t = 0
    assert (first[:2000] == 0).all() and (first[2000:] > 0).all()
    np.testing.assert_array_equal(first[2000:], samples(2001) / 32768.0)
    last = ds.audio(0, 63)  # centred on 7.875 s, 623 samples past the end
    assert (last[-623:] == 0).all() and (last[:-623] > 0).all()
    np.testing.assert_array_equal(last, expected_window(88200, 63, 4001))


def test_clips_shorter_than_the_window_are_tiled(manifest):
    ds = AVDataset(manifest, train=False, audio_samples=30001)
    expected = tile(samples(22050) / 32768.0, 30001)
    for frame in (0, 8, 15):
        np.testing.assert_array_equal(ds.audio(1, frame), expected)


def test_training_frames_keep_three_seconds_from_the_ends(manifest):
    ds = AVDataset(manifest, train=True, audio_samples=4001, image_size=16, resize_size=18)
    seen, short = set(), set()
    for epoch in range(25):
        ds.set_epoch(epoch)
        seen.add(frame_of(ds[0]["visual"]))
        short.add(frame_of(ds[1]["visual"]))
    assert seen <= set(range(24, 41)) and len(seen) > 5
    assert short == {8}  # a 2 s clip falls back to its middle frame


def test_training_audio_is_the_frame_window_times_a_volume(manifest):
    ds = AVDataset(manifest, train=True, audio_samples=4001, image_size=16, resize_size=18)
    gains = []
    for epoch in range(10):
        ds.set_epoch(epoch)
        item = ds[0]
        expected = expected_window(88200, frame_of(item["visual"]), 4001)
        j = int(np.argmin(expected))  # never clipped
        gain = float(item["audio"][j]) / expected[j]
        scaled = np.clip(gain * expected, -1, 1)
        np.testing.assert_allclose(item["audio"].numpy(), scaled, rtol=1e-5, atol=1e-6)
        gains.append(gain)
    assert min(gains) >= 0.5 and max(gains) <= 1.5 and max(gains) - min(gains) > 0.1


def test_audio_stays_in_range_after_the_volume(manifest):
    ds = AVDataset(manifest, train=True, audio_samples=4001, image_size=16, resize_size=18)
    peaks = []
    for epoch in range(8):
        ds.set_epoch(epoch)
        peaks.append(float(ds[2]["audio"].abs().max()))
    assert max(peaks) == 1.0 and min(peaks) < 1.0  # loud clips clip, quieter ones do not


def test_float_wav_audio_beyond_full_scale_is_clipped(tmp_path):
    row = write_clip(tmp_path / "clip", 2.0)
    wave = np.full(round(2.0 * SR), 1.5, np.float32)
    sf.write(tmp_path / "clip" / clips.AUDIO_FILE, wave, SR, subtype="FLOAT")
    table = pd.DataFrame([{**row, "label_index": 0}])
    ds = AVDataset(table, train=False, audio_samples=4001, image_size=16, root=tmp_path)
    assert float(ds[0]["audio"].max()) == 1.0


def test_eval_image_matches_resize_then_centre_crop(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (8, H, W, 3), dtype=np.uint8)
    row = write_clip(tmp_path / "clip", 1.0, frames=frames)
    table = pd.DataFrame([{**row, "label_index": 0}])
    ds = AVDataset(table, train=False, audio_samples=100, image_size=16, root=tmp_path)
    middle = torch.from_numpy(clips.load_frame(tmp_path / "clip", 4)).permute(2, 0, 1)
    resize = T.Resize(16, T.InterpolationMode.BICUBIC, antialias=True)
    expected = T.Compose([resize, T.CenterCrop(16)])(middle).float() / 255
    torch.testing.assert_close(ds[0]["visual"], expected, rtol=0, atol=0)
    assert ds[0]["visual"].is_contiguous()


def test_training_image_is_torchvisions_pipeline_at_the_drawn_positions(tmp_path):
    frames = np.random.default_rng(3).integers(0, 256, (64, H, W, 3), dtype=np.uint8)
    row = write_clip(tmp_path / "clip", 8.0, frames=frames)
    table = pd.DataFrame([{**row, "label_index": 0}])
    ds = AVDataset(table, True, audio_samples=64, image_size=16, resize_size=20, root=tmp_path)
    flips = set()
    for epoch in range(8):
        ds.set_epoch(epoch)
        rng = ds.generator(0)  # draws: frame, volume, top, left, flip
        frame = frame_choices(8.0, 64)[rng.randrange(17)]
        rng.uniform(*VOLUME)
        img = torch.from_numpy(clips.load_frame(tmp_path / "clip", frame)).permute(2, 0, 1)
        img = TF.resize(img, [20], T.InterpolationMode.BICUBIC, antialias=True)  # (20, 26)
        img = TF.crop(img, rng.randrange(20 - 16 + 1), rng.randrange(26 - 16 + 1), 16, 16)
        flips.add(flip := rng.random() < 0.5)
        expected = (TF.horizontal_flip(img) if flip else img).float() / 255
        torch.testing.assert_close(ds[0]["visual"], expected, rtol=0, atol=0)
    assert flips == {True, False}


def test_training_images_are_random_crops_and_flips(tmp_path):
    ramp = np.linspace(0, 255, W).astype(np.uint8)  # brightness grows left to right
    frames = np.broadcast_to(ramp[None, None, :, None], (64, H, W, 3)).copy()
    row = write_clip(tmp_path / "clip", 8.0, frames=frames)
    table = pd.DataFrame([{**row, "label_index": 0}])
    ds = AVDataset(
        table, train=True, audio_samples=64, image_size=16, resize_size=20, root=tmp_path
    )
    lefts, flips = set(), set()
    for epoch in range(12):
        ds.set_epoch(epoch)
        img = ds[0]["visual"]
        assert img.shape == (3, 16, 16) and 0 <= float(img.min()) <= float(img.max()) <= 1
        left, right = float(img[..., 0].mean()), float(img[..., -1].mean())
        flips.add(left > right)
        lefts.add(round(min(left, right), 2))
    assert flips == {True, False} and len(lefts) > 2


def _items(ds: AVDataset, order) -> dict[int, dict]:
    return {i: ds[i] for i in order}


def _same(a: dict, b: dict) -> bool:
    return torch.equal(a["audio"], b["audio"]) and torch.equal(a["visual"], b["visual"])


def test_evaluation_is_deterministic(manifest):
    a = AVDataset(manifest, train=False, audio_samples=4001, image_size=16, resize_size=18)
    b = AVDataset(manifest, train=False, audio_samples=4001, image_size=16, resize_size=18, seed=9)
    b.set_epoch(5)
    for i in range(len(a)):
        assert _same(a[i], a[i]) and _same(a[i], b[i])


def test_training_randomness_is_a_function_of_seed_epoch_index(manifest):
    kw = {"audio_samples": 4001, "image_size": 16, "resize_size": 18}
    a, b = AVDataset(manifest, True, **kw), AVDataset(manifest, True, **kw)
    forward, backward = _items(a, [0, 1, 2]), _items(b, [2, 1, 0])
    assert all(_same(forward[i], backward[i]) for i in range(3))
    b.set_epoch(1)
    assert not all(_same(forward[i], b[i]) for i in range(3))
    other = AVDataset(manifest, True, seed=7, **kw)
    assert not all(_same(forward[i], other[i]) for i in range(3))


def test_dataloader_workers_do_not_change_the_items(manifest):
    ds = AVDataset(manifest, train=True, audio_samples=4001, image_size=16, resize_size=18)
    ds.set_epoch(3)
    single = list(DataLoader(ds, batch_size=2, num_workers=0))
    multi = list(DataLoader(ds, batch_size=2, num_workers=2))
    for x, y in zip(single, multi, strict=True):
        assert torch.equal(x["audio"], y["audio"]) and torch.equal(x["visual"], y["visual"])
        assert torch.equal(x["label"], y["label"])


def test_audio_cache_gives_the_same_items(manifest):
    kw = {"audio_samples": 4001, "image_size": 16, "resize_size": 18}
    plain, cached = (
        AVDataset(manifest, True, **kw),
        AVDataset(manifest, True, cache_audio=True, **kw),
    )
    for i in range(3):
        assert _same(plain[i], cached[i])
    assert len(cached._audio_cache) == 3


def test_relative_and_absolute_clip_dirs(manifest, tmp_path):
    table = pd.read_csv(manifest)
    absolute = table.assign(clip_dir=[str(manifest.parent / d) for d in table["clip_dir"]])
    a = AVDataset(manifest, train=False, audio_samples=500, image_size=16)
    b = AVDataset(absolute, train=False, audio_samples=500, image_size=16, root=tmp_path)
    c = AVDataset(table, train=False, audio_samples=500, image_size=16, root=manifest.parent)
    assert list(a.labels) == [0, 1, 2]
    for i in range(3):
        assert _same(a[i], b[i]) and _same(a[i], c[i])


def test_bad_manifests_are_refused(manifest):
    with pytest.raises(ValueError, match="num_frames"):
        AVDataset(pd.read_csv(manifest).drop(columns="num_frames"), train=False)
    with pytest.raises(ValueError, match="resize_size"):
        AVDataset(manifest, train=True, image_size=64, resize_size=32)


@pytest.mark.parametrize("shape", [(30, 20), (20, 30), (16, 16), (97, 45)])
@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_resize_short_side_is_torchvisions_resize(shape, mode):
    hwc = np.random.default_rng(3).integers(0, 256, (*shape, 3), dtype=np.uint8)
    img = torch.from_numpy(hwc).permute(2, 0, 1)  # channels-last memory, as decoded
    got = resize_short_side(img, 12, mode)
    expected = TF.resize(img, [12], T.InterpolationMode(mode), antialias=True)
    assert got.shape == expected.shape
    # the same filter; uint8 rounding may differ by one grey level between torch's CPU
    # kernels (ATEN_CPU_CAPABILITY default vs avx2), so bit equality is not asked for
    diff = (got.int() - expected.int()).abs()
    assert int(diff.max()) <= 1 and float(diff.float().mean()) < 0.25, diff.max()


def test_workflow_steps_do_not_import_torchvision():
    """torchvision's import pulls in torch._dynamo (about 2 s), paid by every workflow job."""
    code = (
        "import sys, avmodels.study.train, avmodels.study.evaluate, avmodels.data.dataset,"
        " avmodels.models.model;"
        "print('torchvision' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
