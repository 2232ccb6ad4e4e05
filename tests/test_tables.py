"""Tables 1-6 from evaluation CSVs: structure, derived columns, missing cells, outputs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from avmodels.provenance import record_path
from avmodels.robustness import metrics
from avmodels.study import rendering, tables
from avmodels.study.paper import paper_datasets

# model -> test-time defenses it is evaluated with
MODELS = {
    "concat": ("none", "exfmem"),
    "minsim": ("none", "exfmem"),
    "audio": ("none",),
    "visual": ("none",),
    "pcl": ("none",),
    "maxsim": ("none",),
    "sum": ("none",),
    "film": ("none",),
    "gated_sum": ("none",),
    "gated_concat": ("none",),
}
OWN_MODES = {"audio": ("clean", "a"), "visual": ("clean", "v")}


def write_evals(root: Path, dataset: str, seed: int, skip=()) -> list[Path]:
    """One CSV per job (model, defense, attack, eps) with random, structured accuracies;
    unimodal models score only the modes of their own input. Every other file carries a
    ``record`` column, the rest rely on the sidecar convention."""
    rng = np.random.default_rng(seed)
    paths = []
    for model, defenses in MODELS.items():
        for defense in defenses:
            clean = float(rng.uniform(60, 95))
            for attack in ("fgsm", "pgd", "mim"):
                for eps in (0.006, 0.012):
                    if (model, defense, attack, eps) in skip:
                        continue
                    modes = OWN_MODES.get(model, ("clean", "a", "v", "av"))
                    rows = [
                        {
                            "dataset": dataset,
                            "model": model,
                            "defense": defense,
                            "attack": attack,
                            "eps": eps,
                            "mode": mode,
                            "eps_audio": eps if mode in ("a", "av") else 0.0,
                            "eps_visual": eps if mode in ("v", "av") else 0.0,
                            "accuracy": clean
                            if mode == "clean"
                            else clean * rng.uniform(0.05, 0.8),
                            "n_correct": 0,
                            "n": 104,
                        }
                        for mode in modes
                    ]
                    path = root / dataset / model / defense / attack / f"{eps:g}.csv"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    frame = pd.DataFrame(rows)
                    if len(paths) % 2 == 0:
                        frame["record"] = (
                            f"records/{dataset}-{model}-{defense}-{attack}-{eps:g}.json"
                        )
                    frame.to_csv(path, index=False)
                    paths.append(path)
    return paths


@pytest.fixture(scope="module")
def eval_paths(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("evals")
    skip = {("maxsim", "none", "fgsm", 0.006)}
    return write_evals(root, "synthetic_music", 0, skip) + write_evals(root, "ave", 1)


@pytest.fixture(scope="module")
def evals(eval_paths) -> pd.DataFrame:
    return tables.load_evaluations(eval_paths)


def one(evals, **key) -> pd.Series:
    sel = np.ones(len(evals), dtype=bool)
    for k, v in key.items():
        sel &= np.isclose(evals[k], v) if isinstance(v, float) else (evals[k] == v).to_numpy()
    found = evals[sel]
    assert len(found) >= 1, key
    return found.iloc[0]


def cell(cells, **key) -> pd.Series:
    sel = np.ones(len(cells), dtype=bool)
    for k, v in key.items():
        sel &= (cells[k] == v).to_numpy()
    found = cells[sel]
    assert len(found) == 1, key
    return found.iloc[0]


def test_load_evaluations_carries_records(eval_paths, evals):
    with_column = pd.read_csv(eval_paths[0])
    assert set(evals.loc[evals["record"] == with_column["record"][0], "model"]) == {"concat"}
    sidecar = str(record_path(eval_paths[1]))
    assert (evals["record"] == sidecar).sum() == len(pd.read_csv(eval_paths[1]))
    listed = tables.load_evaluations(eval_paths[1:3], records=["r1.json", "r2.json"])
    assert set(listed["record"]) == {"r1.json", pd.read_csv(eval_paths[2])["record"][0]}


def test_conflicting_evaluations_raise(evals):
    clash = evals.iloc[:1].copy()
    clash["accuracy"] += 1.0
    with pytest.raises(ValueError, match="conflicting evaluations"):
        tables.as_evaluations(pd.concat([evals, clash]))
    assert len(tables.as_evaluations(pd.concat([evals, evals]))) == len(evals)


def test_missing_columns_raise(tmp_path):
    path = tmp_path / "bad.csv"
    pd.DataFrame({"dataset": ["x"], "accuracy": [1.0]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="missing column"):
        tables.load_evaluations([path])


def test_defense_table_structure_and_derived_columns(evals):
    cells = tables.build_table("table3", evals, ["synthetic_music"])
    assert list(cells.columns) == tables.CELL_COLUMNS
    assert list(dict.fromkeys(cells["method"])) == list(tables.DEFENSES)
    assert len(cells) == len(tables.DEFENSES) * 6
    assert set(cells["column"]) == {"clean", "a", "v", "av", "avg", "ri"}
    for method in ("none", "minsim", "exfmem", "minsim_exfmem"):
        got = {c: cell(cells, method=method, column=c)["ours"] for c in ("clean", "a", "v", "av")}
        avg = metrics.attack_average([got["a"], got["v"], got["av"]])
        assert cell(cells, method=method, column="avg")["ours"] == pytest.approx(avg, abs=1e-3)
    base = {c: cell(cells, method="none", column=c)["ours"] for c in ("clean", "avg")}
    mine = {c: cell(cells, method="minsim_exfmem", column=c)["ours"] for c in ("clean", "avg")}
    ri = metrics.relative_improvement(mine["clean"], mine["avg"], base["clean"], base["avg"])
    assert cell(cells, method="minsim_exfmem", column="ri")["ours"] == pytest.approx(ri, abs=1e-3)
    assert cell(cells, method="none", column="ri")["ours"] == pytest.approx(0.0)
    # ExFMem rows read the exfmem evaluations of their base model
    row = one(
        evals,
        dataset="synthetic_music",
        model="minsim",
        defense="exfmem",
        attack="fgsm",
        eps=0.006,
        mode="a",
    )
    got = cell(cells, method="minsim_exfmem", column="a")
    assert got["ours"] == pytest.approx(row["accuracy"], abs=1e-4)
    assert got["source_record"] == row["record"]


def test_embedded_dataset_shows_music_numbers_as_reference(evals):
    cells = tables.build_table("table3", evals, ["synthetic_music"])
    assert set(cells["paper_dataset"]) == {"music"}
    none_clean = cell(cells, method="none", column="clean")
    assert none_clean["paper"] == 88.46
    assert none_clean["delta"] == pytest.approx(none_clean["ours"] - 88.46, abs=1e-3)
    assert not cells["paper"].isna().any()
    markdown = rendering.to_markdown(cells)
    assert "MIT-MUSIC numbers, a reference only" in markdown
    assert "(88.46)" in markdown


def test_dataset_without_published_numbers(evals):
    cells = tables.build_table("table2", evals, {"ave": "ave"})
    assert cells["paper"].isna().all()
    assert set(cells["paper_dataset"]) == {""}
    assert "reports no numbers" in rendering.to_markdown(cells)


def test_missing_evaluation_marks_cells_and_keeps_the_row(evals):
    cells = tables.build_table("table3", evals, ["synthetic_music"])
    maxsim = cells[cells["method"] == "maxsim"]
    assert len(maxsim) == 6
    assert maxsim.loc[maxsim["column"].isin(["a", "v", "av", "avg", "ri"]), "ours"].isna().all()
    assert not np.isnan(cell(cells, method="maxsim", column="clean")["ours"])  # from another job
    assert cell(cells, method="maxsim", column="a")["note"].startswith("missing")
    assert not np.isnan(cell(cells, method="minsim", column="ri")["ours"])
    markdown = rendering.to_markdown(cells)
    line = next(ln for ln in markdown.splitlines() if ln.startswith("| MaxSim"))
    assert line.count(rendering.MISSING) == 5
    assert "not evaluated" in markdown
    assert "---" in rendering.to_latex(cells)


def test_unimodal_rows_follow_the_papers_convention(evals):
    cells = tables.build_table("table3", evals, ["synthetic_music"])
    audio = {c: cell(cells, method="unimodal_a", column=c) for c in ("clean", "a", "v", "av")}
    assert audio["v"]["ours"] == audio["clean"]["ours"]
    assert audio["av"]["ours"] == audio["a"]["ours"]
    assert audio["v"]["note"].startswith(tables.UNIMODAL_MARK)
    visual = {c: cell(cells, method="unimodal_v", column=c) for c in ("clean", "a", "v", "av")}
    assert visual["a"]["ours"] == visual["clean"]["ours"]
    assert visual["av"]["ours"] == visual["v"]["ours"]
    assert tables.UNIMODAL_MARK in rendering.to_markdown(cells)


def test_unimodal_rows_prefer_scored_modes(evals):
    scored = one(evals, dataset="ave", model="audio", attack="fgsm", eps=0.006, mode="a").copy()
    scored["mode"], scored["eps_audio"], scored["eps_visual"] = "v", 0.0, 0.006
    scored["accuracy"] = 12.5
    extended = pd.concat([evals, scored.to_frame().T], ignore_index=True)
    cells = tables.build_table("table5", extended, ["ave"])
    got = cell(cells, method="unimodal_a", column="v")
    assert got["ours"] == 12.5
    assert got["note"] == ""


def test_attack_table_budgets_and_unimodal_clean_rows(evals):
    cells = tables.build_table("table1", evals, ["synthetic_music"])
    assert len(cells) == 3 * 5 + 2
    for attack in ("fgsm", "pgd", "mim"):
        for mode, eps in (("a", 0.012), ("v", 0.012), ("av", 0.006)):
            row = one(
                evals,
                dataset="synthetic_music",
                model="concat",
                defense="none",
                attack=attack,
                eps=eps,
                mode=mode,
            )
            got = cell(cells, attack=attack, method="concat", column=mode)["ours"]
            assert got == pytest.approx(row["accuracy"], abs=1e-4)
    uni = cells[cells["method"].isin(["unimodal_a", "unimodal_v"])]
    assert list(uni["column"]) == ["clean", "clean"]
    assert list(uni["paper"]) == [59.62, 81.73]
    table4 = tables.build_table("table4", evals, ["synthetic_music"])
    row = one(
        evals,
        dataset="synthetic_music",
        model="concat",
        defense="none",
        attack="pgd",
        eps=0.006,
        mode="v",
    )
    assert cell(table4, attack="pgd", column="v")["ours"] == pytest.approx(
        row["accuracy"], abs=1e-4
    )
    other = tables.build_table("table1", evals, ["synthetic_music"], budgets={"single": 0.006})
    assert cell(other, attack="pgd", column="v")["ours"] == pytest.approx(row["accuracy"], abs=1e-4)


def test_fusion_table_average_includes_clean(evals):
    cells = tables.build_table("table2", evals, ["synthetic_music"])
    assert list(dict.fromkeys(cells["method"])) == list(tables.FUSIONS)
    got = {c: cell(cells, method="film", column=c)["ours"] for c in ("clean", "a", "v", "av")}
    expected = metrics.average_with_clean(got["clean"], [got["a"], got["v"], got["av"]])
    assert cell(cells, method="film", column="avg_clean")["ours"] == pytest.approx(
        expected, abs=1e-3
    )
    sources = {cell(cells, method="film", column=c)["source_record"] for c in got}
    assert (
        set(cell(cells, method="film", column="avg_clean")["source_record"].split(";")) == sources
    )


def test_write_table_outputs(evals, tmp_path):
    cells = tables.build_table("table6", evals, ["synthetic_music", "ave"])
    paths = rendering.write_table(cells, tmp_path / "tables" / "table6")
    assert {p.suffix for p in paths.values()} == {".csv", ".md", ".tex"}
    back = pd.read_csv(paths["csv"], keep_default_na=False, na_values=[""])
    assert list(back.columns) == tables.CELL_COLUMNS
    assert len(back) == len(cells) == 2 * len(tables.MIM_DEFENSES) * 6
    tex = paths["tex"].read_text()
    for token in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}{lrrrrrr}"):
        assert token in tex
    assert "MinSim+ExFMem" in tex and "_" not in tex.replace(r"\_", "")
    md = paths["md"].read_text()
    assert md.count("| None |") == 2
    assert "### AVE" in md and "### Synthetic MUSIC" in md


def test_paper_evaluations_rebuild_the_published_tables():
    """The transcribed measured cells rebuild every published Avg / RI within rounding,
    except the values the paper's own notes flag."""
    evals = tables.paper_evaluations()
    flagged = {
        ("table1", "music", "pgd", "concat", "avg"),  # printed 5.09, columns give 5.13
        ("table3", "kinetics_sounds", "fgsm", "minsim", "ri"),  # printed 8.99, columns 8.90
    }
    for name in tables.TABLES:
        cells = tables.build_table(name, evals, paper_datasets(name))
        assert not cells["ours"].isna().any() and not cells["paper"].isna().any()
        for row in cells.itertuples(index=False):
            key = (row.table, row.dataset, row.attack, row.method, row.column)
            measured = row.column in ("clean", "a", "v", "av")
            # Table 3's Kinetics-Sounds None/AV (8.09) differs from Table 1's (8.18), kept
            ks_none = row.table == "table3" and row.dataset == "kinetics_sounds"
            if key in flagged or (ks_none and (row.method == "none" or row.column == "ri")):
                continue
            tolerance = 1e-9 if measured else 0.025
            assert abs(row.delta) <= tolerance, key


@pytest.mark.parametrize(
    "script", ["table", "budget_figure", "findings", "localization_figure", "tsne_figure"]
)
def test_table_and_figure_jobs_do_not_import_torch(script):
    """They read CSV and npz files only: importing torch (2-4 s) would be most of their time."""
    source = (Path(__file__).parents[1] / "workflow_scripts" / f"{script}.py").read_text()
    modules = [line.split()[1] for line in source.splitlines() if line.startswith("from avmodels")]
    assert modules, f"{script}.py imports nothing from avmodels"
    code = f"import sys, {', '.join(modules)}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
