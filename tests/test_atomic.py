"""Atomic writes, unreadable inputs set aside, empty splits refused."""

from __future__ import annotations

import builtins
import json
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure
from test_provenance import NamedList
from test_train import make_manifests, tiny_config

from avmodels import atomic
from avmodels.data import records
from avmodels.data.dataset import EmptySplit, require_clips
from avmodels.models.model import ModelConfig, build_model, load_checkpoint, save_checkpoint
from avmodels.provenance import record_path
from avmodels.robustness.exfmem import load_banks
from avmodels.settings import EvalSettings, InputSettings
from avmodels.study import figures
from avmodels.study.analyses import evaluate_localization, feature_sets
from avmodels.study.analysis_arrays import load_arrays, save_tsne_npz
from avmodels.study.evaluate import evaluate
from avmodels.study.train import train
from avmodels.workflow import jobs

OLD = b"the previous complete file\n"


class CrashingFile:
    """A file whose first write stores half of its data, then fails as a crash would."""

    def __init__(self, fh: Any) -> None:
        self._fh = fh

    def write(self, data: Any) -> int:
        self._fh.write(data[: max(1, len(data) // 2)])
        self._fh.flush()
        raise OSError("simulated crash mid-write")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)

    def __enter__(self) -> CrashingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._fh.close()


def crashing_open(*args: Any, **kwargs: Any) -> CrashingFile:
    return CrashingFile(builtins.open(*args, **kwargs))


def _figure(path: Path) -> None:
    fig = Figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    figures.save_figure(fig, path.with_suffix(""))


WRITERS = {
    "text": (".md", lambda p: atomic.write_text(p, "# findings\n" * 100)),
    "csv": (".csv", lambda p: atomic.write_csv(pd.DataFrame({"a": range(100)}), p, index=False)),
    "checkpoint": (
        ".pt",
        lambda p: save_checkpoint(p, build_model(ModelConfig(variant="audio", num_classes=2))),
    ),
    "banks": (".pt", lambda p: atomic.torch_save({"audio": torch.ones(512, 8)}, p)),
    "npz": (".npz", lambda p: save_tsne_npz(p, {"m": {"audio": np.ones((4, 3))}}, np.arange(4))),
    "figure": (".png", _figure),
    "records": (
        ".csv",
        lambda p: records.write_records(
            p, [records.ClipRecord("music", "x", "a" * 11, 0.0, 10.0, "train")]
        ),
    ),
}


@pytest.mark.parametrize("kind", WRITERS)
def test_crash_mid_write_leaves_the_old_file(tmp_path, monkeypatch, kind):
    suffix, write = WRITERS[kind]
    target = tmp_path / f"out{suffix}"
    target.write_bytes(OLD)
    monkeypatch.setattr(atomic, "open", crashing_open, raising=False)
    with pytest.raises(OSError, match="simulated crash"):
        write(target)
    assert target.read_bytes() == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]  # no temporary left


@pytest.mark.parametrize("kind", WRITERS)
def test_crash_mid_write_leaves_no_new_file(tmp_path, monkeypatch, kind):
    suffix, write = WRITERS[kind]
    monkeypatch.setattr(atomic, "open", crashing_open, raising=False)
    with pytest.raises(OSError, match="simulated crash"):
        write(tmp_path / f"out{suffix}")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", WRITERS)
def test_write_replaces_the_old_file(tmp_path, kind):
    suffix, write = WRITERS[kind]
    target = tmp_path / f"out{suffix}"
    target.write_bytes(OLD)
    write(target)
    assert target.read_bytes() != OLD
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary


def test_writes_read_back(tmp_path):
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    atomic.write_csv(frame, tmp_path / "sub" / "f.csv", index=False)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "sub" / "f.csv"), frame)
    save_tsne_npz(tmp_path / "e.npz", {"m": {"visual": np.eye(3)}}, np.arange(3))
    assert np.array_equal(load_arrays(tmp_path / "e.npz")["m__visual"], np.eye(3))


def test_only_whole_file_modes():
    with pytest.raises(ValueError, match="mode must be"), atomic.writing("x", "a"):
        pass


def test_error_in_serializer_keeps_the_old_file(tmp_path):
    target = tmp_path / "t.csv"
    target.write_bytes(OLD)
    with pytest.raises(RuntimeError), atomic.writing(target) as fh:
        fh.write("half,a,row")
        raise RuntimeError("serializer failed")
    assert target.read_bytes() == OLD


KILLED_WRITER = """
import sys, time
from avmodels import atomic
with atomic.writing(sys.argv[1], "wb") as fh:
    fh.write(b"x" * 100_000)
    fh.flush()
    print("half written", flush=True)
    time.sleep(120)
    fh.write(b"x" * 100_000)
"""


def test_killed_writer_leaves_the_old_file(tmp_path):
    target = tmp_path / "checkpoint.pt"
    target.write_bytes(OLD)
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(target)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(atomic.__file__).parents[1],
    )
    assert child.stdout.readline().strip() == "half written"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert target.read_bytes() == OLD
    (partial,) = [p for p in tmp_path.iterdir() if p != target]  # the hidden temporary
    assert partial.name.startswith(".checkpoint.pt.") and partial.stat().st_size == 100_000


# --- inputs that cannot be loaded ------------------------------------------------------------


def _truncated_checkpoint(path: Path) -> Path:
    save_checkpoint(path, build_model(ModelConfig(variant="audio", num_classes=2)))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_truncated_checkpoint_and_bank_are_unreadable(tmp_path):
    ckpt = _truncated_checkpoint(tmp_path / "checkpoint.pt")
    with pytest.raises(atomic.UnreadableFile, match="cannot load .*checkpoint.pt") as err:
        load_checkpoint(ckpt)
    assert err.value.path == ckpt and "\n" not in str(err.value)
    (tmp_path / "bank.pt").write_bytes(b"")
    with pytest.raises(atomic.UnreadableFile, match="bank.pt"):
        load_banks(tmp_path / "bank.pt")
    with pytest.raises(atomic.UnreadableFile, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")


def _run_job(smk: SimpleNamespace, checkpoint: Path) -> None:
    with jobs.job(smk):
        load_checkpoint(checkpoint)


def _smk(tmp_path: Path, checkpoint: Path) -> SimpleNamespace:
    return SimpleNamespace(
        rule="evaluate",
        input=NamedList(checkpoint=str(checkpoint)),
        output=NamedList(str(tmp_path / "eval.csv")),
        params=NamedList(),
        wildcards=NamedList(),
        log=[str(tmp_path / "eval.log")],
        threads=1,
    )


def _record(output: Path) -> None:
    record_path(output).write_text(json.dumps({"rule": "train", "output": str(output)}))


def _log_lines(tmp_path: Path, text: str) -> list[str]:
    return [line for line in (tmp_path / "eval.log").read_text().splitlines() if text in line]


def test_unreadable_input_the_workflow_wrote_is_set_aside(tmp_path):
    ckpt = _truncated_checkpoint(tmp_path / "checkpoint.pt")
    _record(ckpt)
    failed: list[str] = []
    smk = _smk(tmp_path, ckpt)
    with pytest.raises(SystemExit) as done, jobs.job(smk, on_error=failed.append):
        load_checkpoint(ckpt)
    assert done.value.code == 1 and failed == []  # an error, not a failure row
    assert not ckpt.exists() and (tmp_path / "checkpoint.pt.unreadable").exists()
    assert not (tmp_path / "eval.csv").exists()
    (line,) = _log_lines(tmp_path, "cannot load")
    assert f"cannot load {ckpt}: " in line and "moved to checkpoint.pt.unreadable" in line


@pytest.mark.parametrize("record", ["none", "other output"])
def test_unreadable_input_the_workflow_did_not_write_is_kept(tmp_path, record):
    ckpt = _truncated_checkpoint(tmp_path / "checkpoint.pt")
    if record == "other output":
        record_path(ckpt).write_text(json.dumps({"output": str(tmp_path / "elsewhere.pt")}))
    data = ckpt.read_bytes()
    with pytest.raises(SystemExit):
        _run_job(_smk(tmp_path, ckpt), ckpt)
    assert ckpt.read_bytes() == data
    assert not (tmp_path / "checkpoint.pt.unreadable").exists()


# --- empty splits ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manifests(tmp_path_factory) -> dict[str, Path]:
    paths = make_manifests(tmp_path_factory.mktemp("tiny"))
    empty = paths["val"].with_name("manifest_empty.csv")
    pd.read_csv(paths["val"]).head(0).to_csv(empty, index=False)
    return {**paths, "empty": empty}


def test_require_clips(manifests, tmp_path):
    assert require_clips(manifests["val"], "validation") == len(pd.read_csv(manifests["val"]))
    with pytest.raises(EmptySplit, match=r"^dataset music: the test split has no clips \("):
        require_clips(manifests["empty"], "test", "music")
    (tmp_path / "blank.csv").write_text("")
    with pytest.raises(EmptySplit, match="the validation split has no clips"):
        require_clips(tmp_path / "blank.csv", "validation")
    with pytest.raises(EmptySplit, match="^dataset x: the train split has no clips$"):
        require_clips(pd.DataFrame(), "train", "x")


def test_empty_validation_split_is_an_error(manifests, tmp_path):
    config = ModelConfig(variant="audio", num_classes=2)
    with pytest.raises(EmptySplit, match="dataset music: the validation split has no clips"):
        train(
            config,
            tiny_config(),
            manifests["train"],
            manifests["empty"],
            tmp_path / "ckpt.pt",
            tmp_path / "log.csv",
            device="cpu",
            progress=False,
            dataset="music",
        )
    assert list(tmp_path.iterdir()) == []  # no "best" epoch, no log


def test_empty_test_split_is_an_error(manifests):
    model = build_model(ModelConfig(variant="audio", num_classes=2))
    with pytest.raises(EmptySplit, match="dataset music: the test split has no clips"):
        evaluate(
            model,
            manifests["empty"],
            "fgsm",
            0.01,
            EvalSettings(inputs=InputSettings(audio_samples=4096, image_size=32, resize_size=36)),
            dataset="music",
            device="cpu",
            progress=False,
        )


def test_empty_split_ends_the_job_in_one_line(manifests, tmp_path):
    failed: list[str] = []
    smk = _smk(tmp_path, tmp_path / "unused.pt")
    with pytest.raises(SystemExit), jobs.job(smk, on_error=failed.append):
        require_clips(manifests["empty"], "test", "music")
    assert failed == [] and not (tmp_path / "eval.csv").exists()
    assert len(_log_lines(tmp_path, "the test split has no clips")) == 1
    assert "Traceback" not in (tmp_path / "eval.log").read_text()


@pytest.mark.parametrize("analysis", ["localization", "features"])
def test_empty_test_split_stops_the_analyses(manifests, analysis):
    run = evaluate_localization if analysis == "localization" else feature_sets
    model = build_model(ModelConfig(variant="localization", num_classes=2))
    with pytest.raises(EmptySplit, match=r"the test split has no clips \(.*manifest_empty.csv\)"):
        run(model, manifests["empty"], "fgsm", 0.01, device="cpu", progress=False)
