"""The job context of the workflow scripts: failure bookkeeping, and how a step's process ends."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from avmodels.provenance import record_path
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


# --- how a step's process ends ----------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
STEP = """
import sys, threading, time
sys.path[:0] = [{scripts!r}, {tests!r}]
import _library  # noqa: F401
import gc
from pathlib import Path
from test_provenance import NamedList
from types import SimpleNamespace
from avmodels.workflow.jobs import job

snakemake = SimpleNamespace(
    rule="step", input=NamedList(), output=NamedList({out!r}), params=NamedList(),
    wildcards=NamedList(), log=[{log!r}], threads=1,
)
print("collection during imports:", gc.isenabled(), flush=True)
with job(snakemake) as log:
    print("collection in the step:", gc.isenabled(), flush=True)
    {body}
    Path({out!r}).write_text("done")
    log.info("step finished")
    print("unflushed line", end="")
print("after the block")
"""


def _run_step(tmp_path: Path, body: str) -> subprocess.CompletedProcess:
    out, log = tmp_path / "out.txt", tmp_path / "step.log"
    script = tmp_path / "step.py"
    text = STEP.format(
        scripts=str(ROOT / "workflow_scripts"),
        tests=str(ROOT / "tests"),
        out=str(out),
        log=str(log),
        body=body,
    )
    script.write_text(text)
    return subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_finished_step_ends_its_process_with_everything_written(tmp_path: Path):
    done = _run_step(tmp_path, "pass")
    assert done.returncode == 0, done.stderr
    assert "collection during imports: False" in done.stdout
    assert "collection in the step: True" in done.stdout
    assert done.stdout.endswith("unflushed line")  # flushed before the exit...
    assert "after the block" not in done.stdout  # ...which comes at the end of the block
    assert (tmp_path / "out.txt").read_text() == "done"
    record = json.loads(record_path(tmp_path / "out.txt").read_text())
    assert record["output"] == str(tmp_path / "out.txt") and record["rule"] == "step"
    assert "step finished" in (tmp_path / "step.log").read_text()


def test_a_step_with_a_thread_still_running_exits_the_usual_way(tmp_path: Path):
    body = "threading.Thread(target=time.sleep, args=(1,)).start()"
    done = _run_step(tmp_path, body)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("after the block\n")
    assert (tmp_path / "out.txt").read_text() == "done"


def test_a_failed_step_exits_non_zero_with_its_traceback(tmp_path: Path):
    done = _run_step(tmp_path, "raise ValueError('bad input')")
    assert done.returncode == 1
    assert "ValueError: bad input" in done.stderr and "after the block" not in done.stdout
    assert not (tmp_path / "out.txt").exists()
    assert "step failed" in (tmp_path / "step.log").read_text()


def _ends_with_job_block(tree: ast.Module) -> bool:
    last = tree.body[-1]
    if isinstance(last, ast.Try):  # a step whose errors become one line (download)
        last = last.body[-1] if len(last.body) == 1 else None
    return isinstance(last, ast.With) and any(
        isinstance(item.context_expr, ast.Call)
        and getattr(item.context_expr.func, "id", None) == "job"
        for item in last.items
    )


def test_every_script_ends_with_its_job_block():
    """Nothing after a script's ``with job(...)`` block would run: the job ends the process."""
    scripts = sorted((ROOT / "workflow_scripts").glob("[!_]*.py"))
    assert scripts
    late = [p.name for p in scripts if not _ends_with_job_block(ast.parse(p.read_text()))]
    assert late == []
