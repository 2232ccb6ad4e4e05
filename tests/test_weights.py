"""Pretrained visual weights: the paper's plan fetches them, the rule verifies their digest,
and trained models start from them."""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path

import pytest
import torch
import yaml
from served import serving
from studies import copy_workflow, snakemake, tail

from avmodels.data.weights import IMAGENET_FILE, IMAGENET_SHA256, IMAGENET_URL, fetch_weights
from avmodels.models.model import ModelConfig, build_model
from avmodels.models.nets import VisualNet
from avmodels.provenance import record_path
from avmodels.workflow import plan

MODEL = "results/synthetic_music/models/visual/checkpoint.pt"


def _fake_weights(seed: int = 7) -> bytes:
    """A torchvision-keyed resnet18 state dict (with an ``fc``), random but reproducible."""
    torch.manual_seed(seed)
    state = VisualNet().resnet.state_dict()
    state["fc.weight"], state["fc.bias"] = torch.randn(1000, 512), torch.zeros(1000)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def test_imagenet_defaults_are_torchvision_own() -> None:
    from torchvision.models import ResNet18_Weights

    url = ResNet18_Weights.IMAGENET1K_V1.url
    assert url == IMAGENET_URL
    assert re.search(r"-([0-9a-f]+)\.pth$", url).group(1) == IMAGENET_SHA256


def test_model_trunk_starts_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "w.pth"
    path.write_bytes(_fake_weights())
    state = torch.load(path, weights_only=True)
    model = build_model(ModelConfig(variant="concat", num_classes=3, pretrained_visual=str(path)))
    for key, value in model.visual_net.resnet.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_fetch_checks_full_digest_and_prefix(tmp_path: Path) -> None:
    body = _fake_weights()
    digest = hashlib.sha256(body).hexdigest()
    with serving({"w.pth": body}) as srv:
        assert fetch_weights(f"{srv.base}/w.pth", tmp_path / "a.pth", digest).read_bytes() == body
        assert fetch_weights(f"{srv.base}/w.pth", tmp_path / "b.pth", digest[:8]).exists()
        wrong = ("0" if digest[0] != "0" else "1") + digest[1:]
        with pytest.raises(ValueError, match="does not match the configured"):
            fetch_weights(f"{srv.base}/w.pth", tmp_path / "c.pth", wrong)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pth", "b.pth"]


def test_paper_plan_fetches_weights_for_every_visual_training(
    repo_dir: Path, tmp_path: Path
) -> None:
    root = copy_workflow(repo_dir, tmp_path / "wf")
    done = snakemake(root, "-n", "all", configfile="config/paper.yaml")
    assert done.returncode == 0, tail(done.stdout)
    jobs = re.split(r"\n(?=rule )", done.stdout)
    assert sum(j.startswith("rule visual_weights:") for j in jobs) == 1
    config = yaml.safe_load((repo_dir / "config" / "paper.yaml").read_text())
    trains = [j for j in jobs if j.startswith("rule train:")]
    assert len(trains) > 0
    for block in trains:
        model = re.search(r"models/([^/]+)/checkpoint\.pt", block).group(1)
        visual = plan.variant_settings(config, model)["arch"] != "audio"
        inputs = re.search(r"input: (.*)", block).group(1)
        assert (IMAGENET_FILE in inputs) == visual, block


def _configure(root: Path, url: str, sha256: str) -> None:
    config = yaml.safe_load((root / "config" / "tiny.yaml").read_text())
    config["pretrained"] = {"visual": "imagenet", "url": url, "sha256": sha256}
    config["train"]["epochs"] = 1
    (root / "config" / "weights.yaml").write_text(yaml.safe_dump(config))


@pytest.mark.slow
def test_rule_verifies_served_weights_and_training_reads_them(
    repo_dir: Path, tmp_path: Path
) -> None:
    root = copy_workflow(repo_dir, tmp_path / "wf")
    body = _fake_weights()
    digest = hashlib.sha256(body).hexdigest()
    wrong = hashlib.sha256(body + b"x").hexdigest()
    with serving({"resnet18.pth": body}) as srv:
        _configure(root, f"{srv.base}/resnet18.pth", wrong)
        bad = snakemake(root, "--cores", "1", IMAGENET_FILE, configfile="config/weights.yaml")
        assert bad.returncode != 0
        lines = [ln for ln in bad.stdout.splitlines() if "does not match the configured" in ln]
        assert lines and all(wrong in ln and digest in ln for ln in lines), tail(bad.stdout)
        assert not (root / IMAGENET_FILE).exists()

        _configure(root, f"{srv.base}/resnet18.pth", digest)
        done = snakemake(root, "--cores", "2", MODEL, configfile="config/weights.yaml", timeout=900)
        assert done.returncode == 0, tail(done.stdout)
        assert srv.counts()["resnet18.pth"] == 2  # the failed try, then once
    assert (root / IMAGENET_FILE).read_bytes() == body
    record = json.loads(record_path(root / MODEL).read_text())
    assert record["inputs"][IMAGENET_FILE] == digest
    log = (root / "logs" / "synthetic_music" / "train" / "visual.log").read_text()
    assert f"loaded visual weights from {IMAGENET_FILE}" in log
