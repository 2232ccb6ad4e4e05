"""Claim checks with n and intervals, on the paper's printed tables and on constructed runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from avmodels.study import findings, verdicts
from avmodels.study.claims import CLAIMS
from avmodels.study.paper import PAPER_COLUMNS
from avmodels.study.tables import EVAL_COLUMNS, load_evaluations

# paper_tables.csv spells methods and metrics out; the project's keys are short.
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
TABLE1 = {"table1": {"toy": "music"}}


@pytest.fixture(scope="module")
def printed(shared_dir) -> pd.DataFrame:
    """The paper's printed cells, read from the reference transcription beside the project."""
    raw = pd.read_csv(shared_dir / "data" / "paper_tables" / "paper_tables.csv")
    frame = pd.DataFrame(
        {
            "table": raw["table"],
            "dataset": raw["dataset"],
            "attack": raw["attack"],
            "method": raw["method"].replace(METHODS),
            "column": raw["metric"].map(METRICS),
            "value": raw["value_percent"],
        }
    )
    assert not frame.isna().any().any()
    return frame[PAPER_COLUMNS]


def by_name(claims) -> dict[str, findings.Claim]:
    return {c.name: c for c in claims}


def test_every_claim_holds_on_the_papers_printed_numbers(printed):
    claims = findings.check_claims(findings.PaperCells(printed))
    assert [c.name for c in claims] == [c.name for c in CLAIMS]
    for claim in claims:
        if claim.name == "localization_fooled":  # Figs. 4, 9 print no number
            assert claim.verdict == findings.NOT_EVALUATED
            continue
        assert claim.verdict == "held", (claim.name, claim.evidence)
        assert all(" n=" in line and "95% [" in line for line in claim.evidence)


def test_paper_verdicts_read_each_tables_own_cells(printed):
    claims = by_name(findings.check_claims(findings.PaperCells(printed)))
    joint = "\n".join(claims["joint_worse_than_visual_ks"].evidence)
    assert "Table 3: FGSM: Unimodal V V 18.72 > None AV 8.09: n=3104" in joint
    strongest = "\n".join(claims["av_attack_strongest"].evidence)
    assert "Kinetics-Sounds, Table 1: FGSM: Concat A 33.38 > Concat AV 8.18" in strongest
    best = "\n".join(claims["full_best_ri"].evidence)
    assert "MinSim+ExFMem RI 12.44 > MinSim RI 8.99" in best  # printed (the row gives 8.90)
    assert "AVE, Table 5" in best and "Table 1" not in best
    single = "\n".join(claims["single_attack_below_unimodal"].evidence)
    assert "MIT-MUSIC, Table 1: FGSM: Concat A 50.00 < clean Unimodal V 81.73" in single
    fusion = "\n".join(claims["fusion_single_attack_below_unimodal"].evidence)
    assert "Table 2: FGSM: FiLM V 39.42 < clean Unimodal A 59.62" in fusion


def test_a_printed_cell_of_another_table_does_not_change_a_verdict(printed):
    edited = printed.copy()
    ri = (edited["table"] == "table3") & (edited["dataset"] == "kinetics_sounds")
    ri &= (edited["method"] == "minsim") & (edited["column"] == "ri")
    edited.loc[ri, "value"] = 12.44  # a tie with the full model's printed RI
    claims = by_name(findings.check_claims(findings.PaperCells(edited)))
    assert claims["full_best_ri"].verdict == "not held"
    edited = printed.copy()
    av = (edited["table"] == "table1") & (edited["dataset"] == "kinetics_sounds")
    av &= (edited["attack"] == "fgsm") & (edited["column"] == "av")
    edited.loc[av, "value"] = 30.0  # Table 1 only: Table 3's None AV stays 8.09
    claims = by_name(findings.check_claims(findings.PaperCells(edited)))
    assert claims["av_attack_strongest"].verdict == "not held"
    assert claims["joint_worse_than_visual_ks"].verdict == "held"


def bits(n_right: int, n: int = 100, first: int = 0) -> str:
    """Per-clip correctness: clips first .. first + n_right - 1 right."""
    return "".join("1" if first <= i < first + n_right else "0" for i in range(n))


def row(model, mode, correct, attack="fgsm", eps=0.012, defense="none", per_clip=True) -> dict:
    n, k = len(correct), correct.count("1")
    return {
        "dataset": "toy",
        "model": model,
        "defense": defense,
        "attack": attack,
        "eps": eps,
        "mode": mode,
        "eps_audio": eps if mode in ("a", "av") else 0.0,
        "eps_visual": eps if mode in ("v", "av") else 0.0,
        "accuracy": 100.0 * k / n,
        "n_correct": k,
        "n": n,
        "correct": correct if per_clip else None,
    }


def clean_claim(concat: str, visual: str, per_clip: bool = True) -> findings.Claim:
    rows = [row("concat", "clean", concat, per_clip=per_clip)]
    rows += [row("audio", "clean", bits(10), per_clip=per_clip)]
    rows += [row("visual", "clean", visual, per_clip=per_clip)]
    cells = findings.RunCells(pd.DataFrame(rows), TABLE1)
    return findings.check_claim(
        next(c for c in CLAIMS if c.name == "clean_av_beats_unimodal"), cells
    )


def test_one_clip_out_of_100_reads_within_noise():
    claim = clean_claim(bits(80), bits(79))
    assert claim.verdict == "within noise"
    line = claim.evidence[1]
    assert "Concat clean 80.00 > Unimodal V clean 79.00: n=100, difference +1.00" in line
    assert "(paired bootstrap)" in line and line.endswith("within noise")
    assert claim.evidence[0].endswith("held")  # 80 vs 10 clips is no noise
    unpaired = clean_claim(bits(80), bits(79), per_clip=False)
    assert unpaired.verdict == "within noise" and "(exact binomial)" in unpaired.evidence[1]


def test_a_tie_reads_not_held():
    claim = clean_claim(bits(80), bits(80, first=20))  # same count, different clips
    assert claim.verdict == "not held"
    assert "difference +0.00" in claim.evidence[1] and claim.evidence[1].endswith("not held")
    assert clean_claim(bits(80), bits(80)).verdict == "not held"  # the very same clips


def test_a_clear_paired_difference_holds_and_is_deterministic():
    first = clean_claim(bits(90), bits(60))
    second = clean_claim(bits(90), bits(60))
    assert first.verdict == "held" and first.evidence == second.evidence
    # Paired: the 60 clips the visual model gets right, the fused one does too, so every clip
    # that differs favours fusion and the interval is narrower than the unpaired one.
    paired = verdicts.compare("", *_measures(bits(90), bits(60), True))
    unpaired = verdicts.compare("", *_measures(bits(90), bits(60), False))
    assert paired.low > unpaired.low and paired.high < unpaired.high


def _measures(x: str, y: str, per_clip: bool) -> tuple[verdicts.Measure, verdicts.Measure]:
    def measure(text: str, key: str) -> verdicts.Measure:
        values = 100.0 * np.array([c == "1" for c in text])
        return verdicts.Measure.of(
            verdicts.Score(values.mean(), len(text), values if per_clip else None, key)
        )

    return measure(x, "x"), measure(y, "y")


def test_7a_7v_read_table_1s_budget_and_table_2_its_own():
    rows = [row("audio", "clean", bits(60)), row("visual", "clean", bits(80))]
    rows += [row("concat", "a", bits(95), eps=0.006), row("concat", "v", bits(95), eps=0.006)]
    rows += [row("concat", "a", bits(30), eps=0.012), row("concat", "v", bits(20), eps=0.012)]
    tables = {"table1": {"toy": "music"}, "table2": {"toy": "music"}}
    claims = by_name(findings.check_claims(findings.RunCells(pd.DataFrame(rows), tables)))
    single = claims["single_attack_below_unimodal"]
    assert single.verdict == "held"
    assert "FGSM: Concat A 30.00 < clean Unimodal V 80.00: n=100" in single.evidence[0]
    fusion = claims["fusion_single_attack_below_unimodal"]  # Table 2: 0.006, where 95 > 80
    assert fusion.verdict == "not held"
    assert "Table 2: FGSM: Concat A 95.00 < clean Unimodal V 80.00" in "\n".join(fusion.evidence)


def test_defense_ri_is_paired_over_the_same_clips():
    rows = []
    for model, defense, right in (
        ("concat", "none", 50),
        ("minsim", "exfmem", 90),
        ("minsim", "none", 70),
    ):
        for mode in ("clean", "a", "v", "av"):
            rows.append(row(model, mode, bits(right), eps=0.006, defense=defense))
    cells = findings.RunCells(pd.DataFrame(rows), {"table3": {"toy": "music"}})
    claims = by_name(findings.check_claims(cells))
    best = claims["full_best_ri"]
    assert best.verdict == "held"  # 3 other rows have no evaluations: only None and MinSim
    assert any("MinSim+ExFMem RI 80.00 > MinSim RI 40.00: n=100" in e for e in best.evidence)
    assert claims["localization_fooled"].verdict == findings.NOT_EVALUATED


def localization(overlap: float, attacked_right: int) -> dict[str, np.ndarray]:
    labels = np.arange(40) % 4
    arrays = {"labels": labels, "pred_clean": labels.copy(), "score_clean": np.ones(40)}
    for mode in ("a", "v", "av"):
        pred = labels.copy()
        pred[attacked_right:] = (labels[attacked_right:] + 1) % 4
        arrays[f"pred_{mode}"] = pred
        arrays[f"score_{mode}"] = np.full(40, overlap)
    return arrays


def test_localization_fooled_needs_accuracy_loss_and_moved_attention():
    empty = pd.DataFrame(columns=EVAL_COLUMNS)
    spec = next(c for c in CLAIMS if c.name == "localization_fooled")
    fooled = findings.RunCells(empty, {}, localization={"toy": localization(0.2, 5)})
    claim = findings.check_claim(spec, fooled)
    assert claim.verdict == "held", claim.evidence
    assert (
        "A attack: attention overlap with the clean map 20.00 % < 50 %: n=40" in claim.evidence[1]
    )
    kept = findings.RunCells(empty, {}, localization={"toy": localization(0.9, 5)})
    assert findings.check_claim(spec, kept).verdict == "not held"


def test_write_findings_heads_a_synthetic_run_as_a_demonstration(tmp_path, printed):
    paper = findings.check_claims(findings.PaperCells(printed))
    claims = [clean_claim(bits(80), bits(79))]
    path = findings.write_findings(
        claims, tmp_path / "out" / "findings.md", paper, ["synthetic_music"]
    )
    text = path.read_text()
    assert text.startswith("# Findings")
    assert "**A demonstration of the pipeline.**" in text
    assert "- `clean_av_beats_unimodal`: each modality alone is ambiguous" in text
    assert "## `clean_av_beats_unimodal`: within noise" in text
    assert "Paper's numbers (held):" in text
    assert list(tmp_path.joinpath("out").iterdir()) == [path]  # no temporary file left
    plain = findings.write_findings(claims, tmp_path / "plain.md", paper, ["music"])
    assert "demonstration" not in plain.read_text()


@pytest.mark.parametrize("k, n", [(0, 104), (1, 100), (92, 104), (104, 104), (2248, 3104)])
def test_clopper_pearson_matches_the_beta_quantiles(k, n):
    stats = pytest.importorskip("scipy.stats")
    low, high = verdicts.clopper_pearson(k, n)
    expected_low = 0.0 if k == 0 else stats.beta.ppf(0.025, k, n - k + 1)
    expected_high = 1.0 if k == n else stats.beta.ppf(0.975, k + 1, n - k)
    assert low == pytest.approx(expected_low, abs=1e-9)
    assert high == pytest.approx(expected_high, abs=1e-9)


def test_per_clip_correctness_survives_the_evaluation_csv(tmp_path):
    rows = [row("concat", "clean", bits(80, first=20)), row("audio", "clean", bits(10))]
    rows += [row("visual", "clean", bits(79, first=20))]
    path = tmp_path / "eval.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    evals = load_evaluations([path])
    assert evals.loc[0, "correct"] == bits(80, first=20)  # leading zeros kept: not a number
    claim = findings.check_claim(
        next(c for c in CLAIMS if c.name == "clean_av_beats_unimodal"),
        findings.RunCells(evals, TABLE1),
    )
    assert "(paired bootstrap)" in claim.evidence[1] and claim.verdict == "within noise"
