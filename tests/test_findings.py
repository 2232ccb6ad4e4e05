"""Claim checks: held / not held / not evaluated on data whose answer is known."""

from __future__ import annotations

import pandas as pd
import pytest

from avmodels import findings, tables


def by_name(claims) -> dict[str, findings.Claim]:
    return {c.name: c for c in claims}


def row(model, mode, accuracy, attack="fgsm", eps=0.006, defense="none", dataset="toy") -> dict:
    return {
        "dataset": dataset, "model": model, "defense": defense, "attack": attack, "eps": eps,
        "mode": mode, "eps_audio": eps if mode in ("a", "av") else 0.0,
        "eps_visual": eps if mode in ("v", "av") else 0.0, "accuracy": accuracy,
        "n_correct": 0, "n": 100,
    }  # fmt: skip


def model_rows(model, clean, a, v, av, **kw) -> list[dict]:
    return [row(model, "clean", clean, **kw), row(model, "a", a, **kw), row(model, "v", v, **kw),
            row(model, "av", av, **kw)]  # fmt: skip


@pytest.fixture(scope="module")
def paper_claims() -> list[findings.Claim]:
    return findings.check_claims(tables.paper_evaluations())


def test_the_papers_numbers_support_its_claims(paper_claims):
    assert [c.name for c in paper_claims] == [name for name, _, _ in findings.CLAIMS]
    for claim in paper_claims:
        assert claim.held is True, (claim.name, claim.evidence)
    evidence = by_name(paper_claims)["av_attack_strongest"].evidence
    assert "music: FGSM: AV 15.38 vs A 50.00, V 25.00 [holds]" in evidence
    assert "ave: FGSM: AV 8.71 vs A 40.55, V 24.88" in evidence  # AVE: Table 4 budgets


def test_av_attack_not_strongest_is_not_held():
    evals = pd.DataFrame(model_rows("concat", 90.0, 40.0, 30.0, 35.0, eps=0.006))
    evals = pd.concat(
        [evals, pd.DataFrame(model_rows("concat", 90.0, 20.0, 50.0, 10.0, eps=0.012))]
    )
    claims = by_name(findings.check_claims(evals))
    # Table 1 budgets: A, V at 0.012 (20, 50), AV at 0.006 (35): 35 > 20
    assert claims["av_attack_strongest"].held is False
    assert "AV 35.00 vs A 20.00, V 50.00 [fails]" in claims["av_attack_strongest"].evidence
    assert claims["iterative_stronger"].held is None
    assert claims["iterative_stronger"].evidence.startswith("not evaluated")


def test_attacked_modality_uses_the_largest_budget():
    rows = [row("audio", "clean", 60.0), row("visual", "clean", 80.0)]
    for eps, a, v in ((0.002, 85.0, 70.0), (0.012, 75.0, 40.0)):
        rows += [row("concat", "a", a, eps=eps), row("concat", "v", v, eps=eps)]
    claims = by_name(findings.check_claims(pd.DataFrame(rows)))
    assert claims["attacked_modality_drags"].held is True
    assert "A at eps 0.012: AV model 75.00 vs clean Unimodal V 80.00" in (
        claims["attacked_modality_drags"].evidence
    )
    rows[-2]["accuracy"] = 81.0
    claims = by_name(findings.check_claims(pd.DataFrame(rows)))
    assert claims["attacked_modality_drags"].held is False


def test_fusion_and_defense_claims():
    rows = model_rows("concat", 90, 50, 40, 10) + model_rows("sum", 90, 40, 40, 20)
    rows += model_rows("minsim", 90, 45, 40, 10)  # RI -5
    rows += model_rows("concat", 90, 55, 45, 15, defense="exfmem")  # RI +15
    rows += model_rows("minsim", 91, 60, 50, 30, defense="exfmem")  # RI +46
    claims = by_name(findings.check_claims(pd.DataFrame(rows)))
    assert claims["concat_most_robust_fusion"].held is False
    assert "Sum 20.00" in claims["concat_most_robust_fusion"].evidence
    assert claims["minsim_raises_ri"].held is False
    assert claims["exfmem_raises_ri"].held is True
    assert claims["full_best_ri"].held is True
    assert claims["full_raises_ri_mim"].held is None


def test_no_evaluations_means_not_evaluated():
    empty = pd.DataFrame(columns=tables.EVAL_COLUMNS)
    claims = findings.check_claims(empty)
    assert all(c.held is None for c in claims)


def test_write_findings(tmp_path, paper_claims):
    rows = model_rows("concat", 90, 50, 40, 10) + model_rows("sum", 90, 40, 40, 20)
    claims = findings.check_claims(pd.DataFrame(rows))
    path = findings.write_findings(claims, tmp_path / "out" / "findings.md", paper_claims)
    text = path.read_text()
    assert text.startswith("# Findings")
    assert "**not held**" in text and "**not evaluated**" in text
    assert "| Concat is the most robust fusion" in text
    assert "toy: FGSM AV column: Sum 20.00, Concat 10.00 [fails]" in text
    assert "Paper's numbers (held)" in text
