"""The job context of the workflow scripts: failure bookkeeping."""

from __future__ import annotations

from pathlib import Path

from avmodels.workflow.jobs import FAILURES_SUFFIX, failed_attempts


def test_failed_attempts_counts_the_failures_of_one_job(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    attempts = failed_attempts("eval/{model}/{eps}.csv")
    wildcards = {"model": "concat", "eps": "0.006"}

    class Wildcards:
        def items(self):
            return wildcards.items()

    assert attempts(Wildcards()) == 0
    Path("eval/concat").mkdir(parents=True)
    Path("eval/concat/0.006.csv" + FAILURES_SUFFIX).write_text("t1\tValueError: x\n")
    assert attempts(Wildcards()) == 1
    wildcards["model"] = "audio"
    assert attempts(Wildcards()) == 0
