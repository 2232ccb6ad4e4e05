"""A corrupt checkpoint makes its training rerun, with a real Snakemake on a small study.

The study is ``config/tiny.yaml`` cut to six clips and one epoch; only one evaluation (of
the audio model) and what it needs are built.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from studies import CONFIG, REPO, copy_workflow, snakemake, tail

pytestmark = pytest.mark.slow

DATASET = "synthetic_music"
CHECKPOINT = f"results/{DATASET}/models/audio/checkpoint.pt"
EVALUATION = f"results/{DATASET}/eval/audio/none/fgsm/0.05.csv"
SMALL = "config/small.yaml"


def _small_study(root: Path) -> None:
    config = yaml.safe_load((root / CONFIG).read_text())
    config["datasets"][DATASET]["synthetic"].update(train=4, val=1, test=1)
    config["train"]["epochs"] = 1
    (root / SMALL).write_text(yaml.safe_dump(config))


def _build(root: Path) -> tuple[int, str]:
    done = snakemake(root, "--cores", "2", EVALUATION, configfile=SMALL, timeout=900)
    return done.returncode, done.stdout


def _rules(output: str) -> set[str]:
    return set(re.findall(r"^(?:local)?rule (\w+):", output, flags=re.MULTILINE))


def test_corrupt_checkpoint_reruns_its_training(tmp_path):
    root = copy_workflow(REPO, tmp_path / "wf")
    _small_study(root)
    rc, out = _build(root)
    assert rc == 0, tail(out)
    checkpoint = root / CHECKPOINT
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(data[: len(data) // 2])  # what a crash mid-write used to leave

    rc, out = _build(root)  # the evaluation fails in one line and sets the file aside
    assert rc != 0 and _rules(out) == {"evaluate"}, tail(out)
    log = (root / f"logs/{DATASET}/eval/audio/none/fgsm/0.05.log").read_text()
    (line,) = [x for x in log.splitlines() if "cannot load" in x]
    assert f"cannot load {CHECKPOINT}: " in line and "the next run writes it again" in line
    assert not checkpoint.exists() and checkpoint.with_name("checkpoint.pt.unreadable").exists()
    assert not (root / EVALUATION).exists()
    assert not (root / f"{EVALUATION}.failures").exists()  # no evaluation recorded as failed

    rc, out = _build(root)  # training reruns, then the evaluation succeeds
    assert rc == 0 and _rules(out) == {"train", "evaluate"}, tail(out)
    assert (root / EVALUATION).read_text().count("\n") > 1
    assert not (root / f"{EVALUATION}.failures").exists()
