"""The paper's claims checked on this run and on the paper's own printed tables.

Tian & Xu, CVPR 2021 (arXiv:2104.02000), Sec. 4.3-4.6 and B.1-B.3; the claims are
:data:`avmodels.study.claims.CLAIMS`. Every comparison prints n (test clips), the difference in the
claim's favour and a 95 % interval (:mod:`avmodels.study.verdicts`):

- this run (:class:`RunCells`): a paired bootstrap over test clips, from the per-clip
  correctness each evaluation records (column ``correct``; an exact binomial interval for
  evaluations without it). A claim is "held" when every comparison's interval lies above
  zero, "within noise" when one spans zero, "not held" when one is a tie or goes the other way;
- the paper (:class:`PaperCells`): each table's own printed cells (Avg and RI as printed),
  n from the authors' test splits. Only the printed accuracies are published, so the verdict
  is the printed comparison (a tie is not held); the interval (exact binomial) shows which of
  them the test split cannot resolve ("within noise").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from avmodels import atomic
from avmodels.data.classes import SYNTHETIC_DATASET
from avmodels.study.analysis_arrays import load_arrays
from avmodels.study.claims import CLAIMS, ClaimSpec
from avmodels.study.paper import CITATION, dataset_name, paper_cells
from avmodels.study.table_specs.base import METHODS, UNIMODAL_MODES
from avmodels.study.tables import DEFAULT_BUDGETS, TABLES, as_evaluations, find_evaluation
from avmodels.study.verdicts import HELD, NOISE, NOT_HELD, Check, Measure, Score

NOT_EVALUATED = "not evaluated"
# Test clips of the authors' splits (AV-Robustness-CVPR21 data/test*.csv), the paper's n.
PAPER_TEST_CLIPS = {"music": 104, "kinetics_sounds": 3104, "ave": 402}
# Claims that hold on the embedded dataset because of how it is generated (avmodels.data.synthetic).
BY_CONSTRUCTION = {
    "clean_av_beats_unimodal": "each modality alone is ambiguous on different class pairs and "
    "both together always name the class, so fusion beats either modality on clean clips",
    "unimodal_a_worse": "its clean half, for the same reason",
    "unimodal_v_worse": "its clean half, for the same reason",
}
TableMap = Mapping[str, Mapping[str, str | None]]


@dataclass(frozen=True)
class Claim:
    """One claim's verdict and its comparisons (each described with n and interval)."""

    name: str
    statement: str
    verdict: str
    evidence: tuple[str, ...]


class _Derived:
    """Avg, Avg with clean and RI of a table row as measures of its measured cells.

    Subclasses give ``cell`` (any column) and ``printed`` (a derived cell's shown value, or
    None to compute it).
    """

    def cell(
        self, table: str, dataset: str, attack: str, method: str, column: str
    ) -> Measure | None:
        raise NotImplementedError

    def printed(
        self, table: str, dataset: str, attack: str, method: str, column: str
    ) -> float | None:
        return None

    def derive(
        self, table: str, dataset: str, attack: str, method: str, column: str
    ) -> Measure | None:
        baseline = TABLES[table].baseline
        parts: dict[str, list[tuple[float, tuple[str, str]]]] = {
            "avg": [(1 / 3, (method, k)) for k in ("a", "v", "av")],
            "avg_clean": [(1 / 4, (method, k)) for k in ("clean", "a", "v", "av")],
            "ri": [
                (w, (m, k)) for w, m in ((1.0, method), (-1.0, baseline)) for k in ("clean", "avg")
            ],
        }
        if column not in parts:
            raise ValueError(f"unknown derived column {column!r}")
        measures = [(w, self.cell(table, dataset, attack, *mc)) for w, mc in parts[column]]
        if any(m is None for _, m in measures):
            return None
        shown = self.printed(table, dataset, attack, method, column)
        return Measure.combine(measures, shown)


class PaperCells(_Derived):
    """The paper's printed cells, per table (a cell shared by two tables keeps each value).

    ``cells``: ``paper.PAPER_COLUMNS`` rows (default: ``paper.paper_cells()``).
    """

    point_only = True

    def __init__(self, cells: pd.DataFrame | None = None) -> None:
        frame = paper_cells() if cells is None else cells
        self.values = {
            (r.table, r.dataset, r.attack, r.method, r.column): float(r.value)
            for r in frame.itertuples(index=False)
        }

    def datasets(self, table: str) -> dict[str, str]:
        return {k[1]: k[1] for k in self.values if k[0] == table}

    def printed(
        self, table: str, dataset: str, attack: str, method: str, column: str
    ) -> float | None:
        return self.values.get((table, dataset, attack, method, column))

    def cell(
        self, table: str, dataset: str, attack: str, method: str, column: str
    ) -> Measure | None:
        value = self.printed(table, dataset, attack, method, column)
        if value is None:
            return None
        if TABLES[table].column(column).mode is None:
            return self.derive(table, dataset, attack, method, column)
        key = f"{table}/{dataset}/{attack}/{method}/{column}"
        return Measure.of(Score(value, PAPER_TEST_CLIPS[dataset], None, key))

    def localization(self, dataset: str) -> None:
        return None


class RunCells(_Derived):
    """This run's cells, resolved as :func:`avmodels.study.tables.build_table` resolves them."""

    point_only = False

    def __init__(
        self,
        evals: pd.DataFrame,
        tables: TableMap,
        budgets: Mapping[str, float] | None = None,
        localization: Mapping[str, str | Path | Mapping[str, np.ndarray]] | None = None,
    ) -> None:
        self.evals = as_evaluations(evals)
        self.tables = {t: dict(m) for t, m in tables.items()}
        self.tables["localization"] = {d: None for d in localization or {}}
        self.budgets = {**DEFAULT_BUDGETS, **(budgets or {})}
        self._localization = dict(localization or {})
        self._memo: dict[tuple, Measure | None] = {}

    def datasets(self, table: str) -> dict[str, str | None]:
        return self.tables.get(table, {})

    def localization(self, dataset: str) -> dict[str, np.ndarray] | None:
        source = self._localization.get(dataset)
        return None if source is None else load_arrays(source)

    def cell(
        self, table: str, dataset: str, attack: str, method: str, column: str
    ) -> Measure | None:
        key = (table, dataset, attack, method, column)
        if key not in self._memo:
            spec = TABLES[table]
            if not any(r.attack == attack and r.method == method for r in spec.rows):
                self._memo[key] = None
            elif spec.column(column).mode is None:
                self._memo[key] = self.derive(*key)
            else:
                self._memo[key] = self._measured(table, dataset, attack, method, column)
        return self._memo[key]

    def _measured(
        self, table: str, dataset: str, attack: str, method: str, column: str
    ) -> Measure | None:
        col = TABLES[table].column(column)
        m = METHODS[method]
        eps = self.budgets[col.budget] if col.budget else 0.0
        eps_a, eps_v = (eps if col.mode in modes else 0.0 for modes in (("a", "av"), ("v", "av")))
        args = (self.evals, dataset, m.model, m.defense, attack)
        found = find_evaluation(*args, col.mode, eps_a, eps_v)
        own = UNIMODAL_MODES.get(m.model)
        if found is None and own is not None and col.mode not in ("clean", own):
            found = find_evaluation(*args, own if col.mode == "av" else "clean", eps_a, eps_v)
        if found is None or np.isnan(found["accuracy"]):
            return None
        n = int(found["n"]) if pd.notna(found["n"]) else 0
        ident = "/".join(str(found[k]) for k in ("model", "defense", "attack", "eps", "mode"))
        return Measure.of(Score(float(found["accuracy"]), n, per_clip(found, n), ident))


def per_clip(row: pd.Series, n: int) -> np.ndarray | None:
    """100 x the per-clip correctness an evaluation row records ("0"/"1" per clip), or None."""
    text = row.get("correct")
    if not isinstance(text, str) or len(text) != n or n == 0:
        return None
    return 100.0 * (np.frombuffer(text.encode(), dtype=np.uint8) == ord("1"))


def _verdict(checks: Sequence[Check], point_only: bool) -> str:
    verdicts = {c.verdict(point_only) for c in checks}
    if not verdicts:
        return NOT_EVALUATED
    return NOT_HELD if NOT_HELD in verdicts else NOISE if NOISE in verdicts else HELD


def check_claim(spec: ClaimSpec, cells: RunCells | PaperCells) -> Claim:
    """One claim on every dataset it can be checked on (the first of its tables per dataset)."""
    lines: list[str] = []
    checks: list[Check] = []
    done: set[str] = set()
    for table in spec.tables:
        for dataset, reference in cells.datasets(table).items():
            if dataset in done:
                continue
            if spec.datasets is not None and (reference or dataset) not in spec.datasets:
                continue
            found = spec.check(cells, table, dataset)
            if found:
                done.add(dataset)
                checks += found
                where = f"{dataset_name(dataset)}, {table.replace('table', 'Table ')}"
                lines += [f"{where}: {c.describe(cells.point_only)}" for c in found]
    return Claim(spec.name, spec.statement, _verdict(checks, cells.point_only), tuple(lines))


def check_claims(cells: RunCells | PaperCells) -> list[Claim]:
    return [check_claim(spec, cells) for spec in CLAIMS]


def paper_claims() -> list[Claim]:
    """The claims checked on the paper's own printed tables."""
    return check_claims(PaperCells())


def _heading(datasets: Sequence[str]) -> list[str]:
    if SYNTHETIC_DATASET not in datasets:
        return []
    lines = [
        f"**A demonstration of the pipeline.** {dataset_name(SYNTHETIC_DATASET)} is generated "
        "(`avmodels.data.synthetic`), not the paper's data: its verdicts show that every check "
        "runs end to end, not whether the paper's claims hold. Claims that hold on it by "
        "construction:",
        "",
    ]
    lines += [f"- `{name}`: {why}" for name, why in BY_CONSTRUCTION.items()]
    return [*lines, ""]


def write_findings(
    claims: Sequence[Claim],
    path: str | Path,
    paper: Sequence[Claim] | None = None,
    datasets: Sequence[str] = (),
    extra: Sequence[str] = (),
) -> Path:
    """Markdown report: a summary table, then each claim with its comparisons; atomic write.

    ``paper`` (e.g. :func:`paper_claims`) adds the verdicts on the paper's printed cells;
    ``datasets`` (the run's) add the demonstration heading for the embedded dataset;
    ``extra`` lines (e.g. :func:`avmodels.study.autotable.masking_findings`) close the report.
    """
    ref = {c.name: c for c in paper or ()}
    lines = [
        "# Findings: the paper's claims checked on this run",
        "",
        *_heading(datasets),
        f"Paper: {CITATION}. Accuracies in percent. Each comparison gives n (test clips), the "
        "difference in the claim's favour and its 95 % interval; a claim holds when every "
        "comparison does, is within noise when an interval spans zero, and a tie is not held. "
        "The paper's column reads its printed cells, table by table.",
        "",
        "| claim | this run |" + (" paper's numbers |" if ref else ""),
        "|---|---|" + ("---|" if ref else ""),
    ]
    for claim in claims:
        row = f"| {claim.statement} | **{claim.verdict}** |"
        if ref:
            row += f" {ref[claim.name].verdict if claim.name in ref else NOT_EVALUATED} |"
        lines.append(row)
    lines.append("")
    for claim in claims:
        lines += [f"## `{claim.name}`: {claim.verdict}", "", claim.statement, ""]
        lines += [f"- {item}" for item in claim.evidence] or [
            "- the evaluations it needs are missing"
        ]
        if claim.name in ref:
            other = ref[claim.name]
            lines += ["", f"Paper's numbers ({other.verdict}):", ""]
            lines += [f"- {item}" for item in other.evidence] or [
                "- the paper prints no number for it"
            ]
        lines.append("")
    lines += extra
    path = Path(path)
    atomic.write_text(path, "\n".join(lines))
    return path
