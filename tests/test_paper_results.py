"""The project's own transcription of the paper's numbers against the reference CSV."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from avmodels.study import paper

# Names of the reference CSV -> the project's names.
METHODS = {"unimodal_audio": "unimodal_a", "unimodal_visual": "unimodal_v"}
METRICS = {
    "clean_av": "clean",
    "clean": "clean",
    "attacked_a": "a",
    "attacked_v": "v",
    "attacked_av": "av",
    "avg": "avg",
    "avg_with_clean": "avg_clean",
    "ri": "ri",
}


@pytest.fixture(scope="module")
def reference(shared_dir) -> pd.DataFrame:
    return pd.read_csv(shared_dir / "data" / "paper_tables" / "paper_tables.csv")


def test_every_reference_number_equals_ours(reference):
    for row in reference.itertuples(index=False):
        ours = paper.paper_value(
            row.table,
            row.dataset,
            row.attack,
            METHODS.get(row.method, row.method),
            METRICS[row.metric],
        )
        assert ours == pytest.approx(row.value_percent, abs=1e-9), row


def test_no_number_beyond_the_reference(reference):
    ours = paper.paper_cells()
    assert len(ours) == len(reference)
    assert set(ours["table"]) == {f"table{i}" for i in range(1, 7)}
    assert not ours["value"].isna().any()


def test_absent_cells_are_nan():
    assert math.isnan(paper.paper_value("table2", "ave", "fgsm", "concat", "av"))
    assert math.isnan(paper.paper_value("table6", "music", "mim", "minsim", "ri"))
    assert math.isnan(paper.paper_value("table1", None, "fgsm", "concat", "clean"))


def test_file_cites_the_paper_and_notes_known_inconsistencies():
    text = paper.PAPER_RESULTS.read_text()
    assert "arXiv:2104.02000" in text.splitlines()[2]
    assert paper.paper_data()["paper"]["arxiv"] == "2104.02000"
    assert any("8.99" in n for n in paper.paper_notes("table3", "kinetics_sounds"))
    assert paper.paper_notes("table3", "music") == []


def test_reference_datasets():
    assert paper.reference_dataset("synthetic_music") == "music"
    assert paper.reference_dataset("ave") == "ave"
    assert paper.reference_dataset("elsewhere") is None
    assert paper.paper_datasets("table6") == ("music", "kinetics_sounds", "ave")
