"""The embedded dataset: real mp4 files, deterministic bytes, the designed ambiguity."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from avmodels.data import clips, media, probing, synthetic
from avmodels.data.records import read_records

SHORT = (2.0, 2.5)  # seconds: small clips keep the tests fast
ONE_PER_CLASS = {"train": 1}


def _generate(out: Path, seed: int = 0, workers: int = 2) -> list:
    return synthetic.generate(out, ONE_PER_CLASS, seed=seed, duration=SHORT, workers=workers)


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, list]:
    out = tmp_path_factory.mktemp("synthetic")
    return out, _generate(out)


def _preprocessed(root: Path, records) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    arrays = {}
    for rec in records:
        clip_dir = root / "clips" / rec.clip_id
        media.preprocess_clip(root / "videos" / f"{rec.clip_id}.mp4", clip_dir)
        arrays[rec.clip_id] = (clips.load_audio(clip_dir)[0], clips.load_frames(clip_dir))
    return arrays


def test_classes_are_eleven_distinct_names():
    assert len(synthetic.SYNTHETIC_CLASSES) == 11
    assert len(set(synthetic.SYNTHETIC_CLASSES)) == 11


def test_audio_and_visual_pairs_differ_and_together_name_the_class():
    labels = range(len(synthetic.SYNTHETIC_CLASSES))
    audio = [synthetic.audio_group(c) for c in labels]
    visual = [synthetic.visual_group(c) for c in labels]
    assert len(set(zip(audio, visual, strict=True))) == 11  # fusion can always tell
    for groups in (audio, visual):
        sizes = Counter(groups)
        assert sorted(sizes.values()) == [1] + [2] * 5  # five confusable pairs + one single
    audio_pairs = {frozenset(c for c in labels if audio[c] == g) for g in set(audio)}
    visual_pairs = {frozenset(c for c in labels if visual[c] == g) for g in set(visual)}
    assert not (audio_pairs & visual_pairs - {frozenset({c}) for c in labels})


def test_plan_fractions_are_exact_per_split_and_even_over_classes():
    diff = synthetic.Difficulty(audio_cue=0.35, visual_cue=0.85, audio_blank=0.05)
    specs = synthetic.plan_clips({"train": 20, "test": 10}, seed=3, difficulty=diff)
    for split, n in (("train", 20), ("test", 10)):
        part = [s for s in specs if s.split == split]
        assert len(part) == 11 * n
        for name, fraction in (("audio_cue", 0.35), ("visual_cue", 0.85), ("audio_blank", 0.05)):
            flagged = Counter(s.label for s in part if getattr(s, name))
            assert sum(flagged.values()) == round(fraction * 11 * n)
            per_class = [flagged.get(c, 0) for c in range(11)]
            assert max(per_class) - min(per_class) <= 1
    assert all(5.0 <= s.duration <= 7.0 for s in specs)
    assert len({s.clip_id for s in specs}) == len(specs)


def test_generate_writes_mp4s_and_records(generated):
    out, records = generated
    assert read_records(out / synthetic.RECORDS_FILE) == records
    assert {r.dataset for r in records} == {"synthetic_music"}
    assert Counter(r.label for r in records) == Counter(synthetic.SYNTHETIC_CLASSES)
    for rec in records:
        assert (out / "videos" / f"{rec.clip_id}.mp4").stat().st_size > 0


def test_mp4_is_h264_and_aac_44k_at_25_fps(generated):
    out, records = generated
    video = out / "videos" / f"{records[0].clip_id}.mp4"
    proc = subprocess.run(
        [probing.ensure_ffmpeg(), "-hide_banner", "-i", str(video)], capture_output=True, text=True
    )
    streams = [ln for ln in proc.stderr.splitlines() if re.search(r"Stream #0:\d", ln)]
    v = [s for s in streams if "Video:" in s]
    a = [s for s in streams if "Audio:" in s]
    assert len(v) == 1 and len(a) == 1
    assert "Video: h264" in v[0] and "yuv420p" in v[0] and re.search(r"\b25 fps\b", v[0])
    assert "Audio: aac" in a[0] and "44100 Hz" in a[0] and "mono" in a[0]
    assert re.search(r"\b96x96\b", v[0])


def test_same_seed_same_bytes_after_preprocessing(generated, tmp_path):
    out, records = generated
    again = _generate(tmp_path, workers=1)  # another worker count changes nothing
    assert again == records
    for rec in records:
        name = f"videos/{rec.clip_id}.mp4"
        assert (out / name).read_bytes() == (tmp_path / name).read_bytes()
    first, second = _preprocessed(out, records[:3]), _preprocessed(tmp_path, records[:3])
    for clip_id, (audio, frames) in first.items():
        assert audio.size > 0 and frames.shape[1:] == (96, 96, 3)
        np.testing.assert_array_equal(audio, second[clip_id][0])
        np.testing.assert_array_equal(frames, second[clip_id][1])


def test_different_seeds_give_different_clips(generated, tmp_path):
    out, records = generated
    other = _generate(tmp_path, seed=1)
    assert [r.label for r in other] == [r.label for r in records]
    assert {r.clip_id for r in other}.isdisjoint(r.clip_id for r in records)
    a = _preprocessed(out, records[:1])[records[0].clip_id]
    b = _preprocessed(tmp_path, other[:1])[other[0].clip_id]
    n = min(len(a[0]), len(b[0]))
    assert not np.array_equal(a[0][:n], b[0][:n])
    assert not np.array_equal(a[1][:1], b[1][:1])


def test_rendered_signals_follow_the_class_design():
    """Audio pitch names the audio pair; the object's hue names the visual pair."""
    specs = synthetic.plan_clips({"train": 4}, seed=0)
    for spec in [s for s in specs if not s.audio_blank][::7]:
        audio_rng, video_rng = np.random.SeedSequence(spec.entropy).spawn(2)
        wave = synthetic.render_audio(spec, np.random.default_rng(audio_rng))
        assert wave.dtype == np.float32 and 0.4 < np.abs(wave).max() <= 0.9
        spectrum = np.abs(np.fft.rfft(wave))
        freqs = np.fft.rfftfreq(len(wave), 1 / synthetic.SAMPLE_RATE)
        centre = synthetic.PITCH_CENTRES[synthetic.audio_group(spec.label)]
        band = (freqs > centre * 2 ** (-3.5 / 12)) & (freqs < centre * 2 ** (3.5 / 12))
        low = (freqs > 100) & (freqs < centre * 2 ** (-4 / 12))
        assert spectrum[band].mean() > 2 * spectrum[low].mean()
        frames = synthetic.render_video(spec, np.random.default_rng(video_rng))
        assert frames.dtype == np.uint8
        assert frames.shape == (round(spec.duration * synthetic.FPS), 96, 96, 3)


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown split"):
        synthetic.generate(tmp_path, {"training": 1})
    with pytest.raises(ValueError, match="even"):
        synthetic.generate(tmp_path, 1, size=(95, 96))


def test_generate_writes_the_dataset(tmp_path):
    records = synthetic.generate(tmp_path, {"train": 1, "val": 0, "test": 0}, 2, (2.0, 2.0))
    assert len(records) == 11
    assert len(read_records(tmp_path / synthetic.RECORDS_FILE)) == 11
    assert len(list((tmp_path / "videos").glob("*.mp4"))) == 11
