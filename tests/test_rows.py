"""Rows: the CSV a step writes without pandas is the one pandas writes."""

from __future__ import annotations

import io
import math

import pandas as pd
import pytest

from avmodels import atomic
from avmodels.atomic import Rows
from avmodels.data.dataset import read_manifest, require_clips

RECORDS = [
    {
        "name": "plain", "text": 'a, "quoted"\ncell', "share": 63.63636363636363, "tiny": 1e-05,
        "big": 1e16, "whole": 0.0, "count": 14, "mixed": 3, "flag": True, "gap": 6.018131e-14,
    },
    {
        "name": "gaps", "text": "", "share": math.nan, "tiny": -2.5, "big": 123456789.125,
        "whole": 100.0, "count": 0, "mixed": 0.5, "flag": False, "gap": None,
    },
]  # fmt: skip
COLUMNS = ["name", "text", "share", "tiny", "big", "whole", "count", "mixed", "flag", "gap"]


def csv_text(table) -> str:
    out = io.StringIO()
    table.to_csv(out, index=False)
    return out.getvalue()


def test_rows_write_the_bytes_pandas_writes():
    rows = Rows(COLUMNS, RECORDS)
    assert csv_text(rows) == csv_text(pd.DataFrame(RECORDS, columns=COLUMNS))
    assert ",14,3.0,True," in csv_text(rows)  # an integer beside floats is written as one


def test_columns_order_the_cells_and_missing_keys_are_empty():
    rows = Rows(["b", "a", "c"], [{"a": 1, "b": "x"}])
    assert csv_text(rows) == "b,a,c\nx,1,\n"
    assert csv_text(Rows(["a", "b"], [])) == csv_text(pd.DataFrame(columns=["a", "b"]))


def test_frame_and_text():
    rows = Rows(COLUMNS, RECORDS)
    pd.testing.assert_frame_equal(rows.frame(), pd.DataFrame(RECORDS, columns=COLUMNS))
    text = rows.text(leave_out=["text"]).splitlines()
    assert len(text) == 3 and "text" not in text[0] and "63.6364" in text[1]
    assert len({len(line) for line in text}) == 1  # aligned
    with pytest.raises(ValueError, match="without an index"):
        rows.to_csv(io.StringIO(), index=True)


def test_write_csv_writes_rows_atomically(tmp_path):
    path = tmp_path / "eval.csv"
    atomic.write_csv(Rows(COLUMNS, RECORDS), path, index=False)
    assert path.read_text() == csv_text(pd.DataFrame(RECORDS, columns=COLUMNS))
    assert [p.name for p in tmp_path.iterdir()] == ["eval.csv"]


def test_manifests_read_without_pandas_as_with_it(tmp_path):
    frame = pd.DataFrame(
        {
            "clip_dir": ["clips/a", "clips/b"],
            "label_index": [2, 0],
            "num_samples": [66150.0, 11025.0],  # a float column, as pandas may write one
            "num_frames": [48, 8],
            "duration": [6.0, 1.0],
        }
    )
    path = tmp_path / "manifest.csv"
    frame.to_csv(path, index=False)
    from_file, from_frame = read_manifest(path), read_manifest(frame, root=tmp_path)
    assert from_file == from_frame
    counts = [(c.label, c.num_samples, c.num_frames) for c in from_file]
    assert counts == [(2, 66150, 48), (0, 11025, 8)]
    assert from_file[0].clip_dir == tmp_path / "clips/a"
    assert require_clips(path, "test") == require_clips(frame, "test") == 2
