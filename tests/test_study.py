"""The tiny study end to end with a real Snakemake: what it writes, and how it fails.

Reads the session's tiny study (conftest.py); the failure test works on a copy of it.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from studies import CONFIG, Study, snakemake, tail

from avmodels.models.model import load_checkpoint
from avmodels.study import autotable
from avmodels.study.autoeval import attack_label
from avmodels.study.claims import CLAIMS
from avmodels.study.paper import paper_value
from avmodels.study.rendering import MISSING
from avmodels.study.table_specs import TABLE_NAMES, load_spec
from avmodels.study.tables import CELL_COLUMNS

pytestmark = pytest.mark.slow

DATASET = "synthetic_music"


def read_table(root: Path, table: str) -> pd.DataFrame:
    return pd.read_csv(root / "results" / "tables" / f"{table}.csv", keep_default_na=False)


def expected_cells(table: str) -> list[tuple[str, str, str]]:
    """(attack, method, column) of every cell the table's spec lays out, in order."""
    spec = load_spec(table)
    return [(r.attack, r.method, c.key) for r in spec.rows for c in spec.row_columns(r)]


def test_the_tiny_study_learns_and_its_attacks_bite(study: Study) -> None:
    """What the tests of reruns and diffs rely on, on this machine's kernels: Concat's
    training loss falls every epoch, its clean accuracy is far above chance (1 in 11), and
    each attacked Table 1 cell lies below the clean one."""
    log = pd.read_csv(study.root / "results" / DATASET / "models" / "concat" / "training.csv")
    losses = log["train_loss"].tolist()
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False)), losses
    table = read_table(study.root, "table1")
    concat = table[table["method"] == "concat"].set_index(["attack", "column"])["ours"]
    for attack in ("fgsm", "pgd", "mim"):
        clean = float(concat[(attack, "clean")])
        assert clean >= 3 * 100 / 11, (attack, clean)
        assert float(concat[(attack, "av")]) < clean, concat[attack]


def test_every_table_has_every_cell_with_ours_and_paper(study: Study) -> None:
    config = yaml.safe_load((study.root / CONFIG).read_text())
    for table in TABLE_NAMES:
        frame = read_table(study.root, table)
        assert list(frame.columns) == CELL_COLUMNS, table
        cells = list(zip(frame["attack"], frame["method"], frame["column"], strict=True))
        assert cells == expected_cells(table), table
        assert set(frame["dataset"]) == {DATASET}
        ours = pd.to_numeric(frame["ours"])
        assert ours.notna().all(), frame[ours.isna()]
        assert ((ours >= 0) & (ours <= 100) | frame["column"].isin(["avg", "ri"])).all()
        reference = config["tables"][table][DATASET]
        assert set(frame["paper_dataset"]) == {reference}
        for row in frame.itertuples():
            published = paper_value(table, reference, row.attack, row.method, row.column)
            assert float(row.paper) == pytest.approx(published, abs=1e-9, nan_ok=True), row
        measured = frame[~frame["column"].isin(["avg", "ri"])]
        sources = [p for cell in measured["source_record"] for p in cell.split(";")]
        assert sources and all((study.root / p).is_file() for p in sources), table
        for suffix in ("md", "tex"):
            text = (study.root / "results" / "tables" / f"{table}.{suffix}").read_text()
            assert load_spec(table).title.split(":")[0] in text, (table, suffix)
    frame = read_table(study.root, "autoattack")  # the defenses under APGD and Square
    assert list(frame.columns) == autotable.CELL_COLUMNS
    assert list(dict.fromkeys(frame["method"])) == list(autotable.DEFENDED)
    labels = {attack_label(a) for a in config["autoattack"]["attacks"]}
    assert set(frame["attack"]) == {"clean", "worst", *labels}
    assert pd.to_numeric(frame["ours"]).between(0, 100).all(), frame
    assert all((study.root / p).is_file() for p in frame["source_record"])
    for suffix in ("md", "tex"):
        text = (study.root / "results" / "tables" / f"autoattack.{suffix}").read_text()
        assert autotable.TITLE in text, suffix


def test_findings_check_every_claim(study: Study) -> None:
    text = (study.root / "results" / "findings.md").read_text()
    pattern = r"^## `(\w+)`: (held|not held|within noise|not evaluated)$"
    verdicts = dict(re.findall(pattern, text, re.M))
    assert set(verdicts) == {c.name for c in CLAIMS}
    kinetics_only = {c.name for c in CLAIMS if c.datasets == ("kinetics_sounds",)}
    missing = {name for name, verdict in verdicts.items() if verdict == "not evaluated"}
    assert missing == kinetics_only, "a claim lacked its evaluations"
    assert "Paper's numbers (held)" in text
    assert "**A demonstration of the pipeline.**" in text
    assert "(paired bootstrap)" in text and "(exact binomial)" in text
    masking = re.findall(r"^### `(\w+)` on .+: (held|not held|within noise)$", text, re.M)
    assert [m for m, _ in masking] == list(autotable.DEFENDED), text


def test_full_defense_is_finetuned_and_its_cells_come_from_it(study: Study) -> None:
    config = yaml.safe_load((study.root / CONFIG).read_text())
    settings = config["full_defense"]
    assert settings["mode"] == "finetune"
    models = study.root / "results" / DATASET / "models"
    tuned = models / "minsim_exfmem" / "checkpoint.pt"
    log = pd.read_csv(models / "minsim_exfmem" / "training.csv")
    epochs = settings["finetune"]["epochs"]
    assert log["epoch"].tolist() == list(range(1, epochs + 1))
    assert (log["lr"] == settings["finetune"]["lr"]).all() and log["train_loss"].gt(0).all()
    before, _ = load_checkpoint(models / "minsim" / "checkpoint.pt")
    after, extra = load_checkpoint(tuned)
    assert extra["finetuned_from"] == f"results/{DATASET}/models/minsim/checkpoint.pt"
    assert extra["train_config"]["loss"] == "minsim" and extra["exfmem"] == config["exfmem"]
    for net in ("audio_net", "visual_net"):
        old, new = getattr(before, net).state_dict(), getattr(after, net).state_dict()
        assert any(not torch.equal(old[k], new[k]) for k in old), f"{net} did not train"
    relative = f"results/{DATASET}/models/minsim_exfmem/checkpoint.pt"
    for table in ("table3", "table5", "table6"):
        frame = read_table(study.root, table)
        frame = frame[~frame["column"].isin(["avg", "avg_clean", "ri"])]  # measured cells
        rows = frame[frame["method"] == "minsim_exfmem"]
        sources = {p for cell in rows["source_record"] for p in cell.split(";") if p}
        assert sources, table
        for source in sources:  # each a provenance record of one evaluation
            record = json.loads((study.root / source).read_text())
            assert relative in record["inputs"], (table, source)
            assert f"results/{DATASET}/memory/minsim.pt" in record["inputs"]
        others = frame[frame["method"] != "minsim_exfmem"]
        for cell in others["source_record"]:
            for source in filter(None, cell.split(";")):
                record = json.loads((study.root / source).read_text())
                assert relative not in record["inputs"], (table, source)


def test_report_has_tables_figures_and_captions(study: Study, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    done = snakemake(study.root, "--report", str(report))
    assert done.returncode == 0, tail(done.stdout)
    html = report.read_text()
    assert "Tian &amp; Xu" in html or "Tian & Xu" in html  # the workflow description
    for name in (*(f"{t}.csv" for t in TABLE_NAMES), "autoattack.csv", "findings.md"):
        assert name in html, name
    for figure in ("budget_curves", "localization", "tsne", "tsne_attacked_audio"):
        assert f"{DATASET}_{figure}.png" in html, figure
    assert "Sound source localization under attack" in html  # a figure's caption


def test_failed_evaluation_leaves_its_cells_marked_and_the_run_complete(
    study: Study, tmp_path: Path
) -> None:
    root = tmp_path / "study"
    subprocess.run(["cp", "-a", str(study.root), str(root)], check=True)
    # the bank of test-time ExFMem around Concat (MinSim's also feeds its fine-tuning)
    bank = root / "results" / DATASET / "memory" / "concat.pt"
    torch.save({"not": "a memory bank"}, bank)  # newer than its evaluations: they run again
    done = snakemake(root, "--cores", "2", "--keep-going", "all", timeout=1800)
    assert done.returncode == 0, tail(done.stdout)
    failed = sorted((root / "results" / DATASET / "eval" / "concat" / "exfmem").rglob("*.csv"))
    assert failed and all(Path(f"{p}.failures").is_file() for p in failed)
    frame = read_table(root, "table5")
    rows = frame[frame["method"] == "exfmem"]
    assert len(rows) and (rows["ours"] == "").all(), rows  # marked missing, row kept
    others = frame[frame["method"] != "exfmem"]
    assert (others["ours"] != "").all(), others[others["ours"] == ""]
    healthy = read_table(study.root, "table5")
    keys = ["attack", "method", "column"]
    assert frame[keys].equals(healthy[keys])  # every row and column still there
    markdown = (root / "results" / "tables" / "table5.md").read_text()
    assert MISSING in markdown
    # The failure is remembered: the next run tries the failed jobs again, and only them.
    again = snakemake(root, "--dry-run", "all")
    planned = set(re.findall(r"^\s*(?:local)?rule (\w+):", again.stdout, re.M)) - {"all"}
    assert "evaluate" in planned and "train" not in planned, tail(again.stdout)
