"""The rule files only wire: no lambdas, and one evaluation path template for every user."""

from __future__ import annotations

import re
from pathlib import Path

from avmodels.workflow.plan import EVALUATION, EvalKey

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]
SOURCES = [*WORKFLOW, *sorted((REPO / "avmodels").rglob("*.py"))]
SOURCES += sorted((REPO / "workflow_scripts").glob("*.py"))


def lines_matching(pattern: str, files: list[Path]) -> list[str]:
    found = re.compile(pattern)
    return [
        f"{path.relative_to(REPO)}:{n}"
        for path in files
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if found.search(line)
    ]


def test_rules_hold_no_lambdas() -> None:
    assert lines_matching(r"\blambda\b", WORKFLOW) == []


def files(hits: list[str]) -> list[str]:
    return [hit.split(":")[0] for hit in hits]


def test_one_evaluation_path_template() -> None:
    assert files(lines_matching(r"results/\S*eval/", SOURCES)) == ["avmodels/workflow/plan.py"]
    assert files(lines_matching(r"plan\.EVALUATION\b", WORKFLOW)) == ["rules/attack.smk"] * 2
    key = EvalKey("music", "concat", "none", "pgd", "0.006")
    assert key.path == EVALUATION.format(**vars(key))
    assert key.path == "results/music/eval/concat/none/pgd/0.006.csv"
