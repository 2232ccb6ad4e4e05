"""Per-job start-up of the workflow's steps: the seconds a job spends before its work.

Snakemake 9 runs a ``script:`` job as ``python <tmp script>`` through a shell: the script
is Snakemake's preamble (``snakemake.script.PythonScript.generate_preamble``: it unpickles
the job's ``snakemake`` object, importing ``snakemake.iocontainers`` and
``snakemake.logging``) followed by the step's source. This benchmark writes that same file
for a step, with the installed Snakemake's own preamble, the step's top-level import
statements (``workflow_scripts/<step>.py``, which reach ``avmodels``) and the job harness's
entry (:func:`avmodels.workflow.jobs.job`: logging, threads, device choice), then stops where the
step's work would begin. Each run stamps the wall clock and its own CPU time after each
stage:

- interpreter: from the shell's spawn to the script's first line;
- preamble: Snakemake's preamble;
- imports: the step's imports;
- job entry: :func:`avmodels.workflow.jobs.job` up to its ``yield``;

and, on the way out (with no outputs to hash, as the step did no work):

- process exit: the harness's provenance record, then the end of the process, which the
  harness brings about without the interpreter's teardown
  (:func:`avmodels.workflow.jobs.end_process`; CPU: the whole process tree, shell included).

Figures: per-job start-up (spawn to job entry), median wall seconds over the repetitions,
target <= 2.5 s, for ``train`` and ``evaluate``; the CPU seconds of the same runs beside
them (what the job itself burns, which other processes on a shared machine do not inflate).
The runs of the steps are interleaved. The load average before and after is reported.
Beside them, informative: the CPU seconds of the train step's first ``torch.optim.SGD``,
which imports ``torch._dynamo`` inside torch (a cost inside the step's work, not start-up).

    python bench/startup.py [--quick] [--reps N]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from snakemake.iocontainers import InputFiles, Log, OutputFiles, Params, ResourceList, Wildcards
from snakemake.script import PythonScript
from snakemake.sourcecache import LocalSourceFile

REPO = Path(__file__).resolve().parents[1]
STEPS = ("train", "evaluate")
TARGET = 2.5
STAGES = ("interpreter", "preamble", "imports", "job entry", "process exit")
MARK = "__marks.append((%r, __time.time(), __time.process_time()))"


def import_lines(step: str) -> list[str]:
    """The step script's top-level import statements, as source."""
    tree = ast.parse((REPO / "workflow_scripts" / f"{step}.py").read_text())
    return [ast.unparse(n) for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]


def preamble(step: str, work: Path) -> str:
    """The preamble the installed Snakemake writes for a local script job of ``step``."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    resources = ResourceList(fromdict={"_cores": 1, "_nodes": 1, "tmpdir": str(work)})
    text = PythonScript.generate_preamble(
        path=LocalSourceFile(str(REPO / "workflow_scripts" / f"{step}.py")),
        cache_path=None, source=None, basedir=None,
        input_=InputFiles(fromdict={"data": str(work / "absent.csv")}),
        output=OutputFiles(fromdict={"out": str(work / "out.csv")}),
        params=Params(fromdict={"settings": {}}), wildcards=Wildcards(fromdict={}),
        threads=1, resources=resources, log=Log([str(work / f"{step}.log")]), config=config,
        rulename=step, conda_env=None, container_img=None, singularity_args=None,
        env_modules=None, bench_record=None, jobid=1, bench_iteration=None,
        cleanup_scripts=True, shadow_dir=None, is_local=True,
    )  # fmt: skip
    return text + f"__real_file__ = __file__; __file__ = {str(work / f'{step}.py')!r};\n"


def job_script(step: str, work: Path) -> Path:
    """A job's script for ``step`` that stops where the step's work begins and prints its
    stage stamps."""
    lines = [
        "import time as __time; __marks = []",
        MARK % "interpreter",
        *preamble(step, work).splitlines(),
        MARK % "preamble",
        *import_lines(step),
        MARK % "imports",
        "from avmodels.workflow.jobs import job as __job",
        "with __job(snakemake):",
        "    " + MARK % "job entry",
        "    import json as __json; print(__json.dumps(__marks), flush=True)",
    ]
    path = work / f"tmp.{step}.py"
    path.write_text("\n".join(lines) + "\n")
    return path


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.pop("OMP_NUM_THREADS", None)  # the job harness sets it, as in a real job
    return env


def one_run(script: Path) -> dict[str, tuple[float, float]]:
    """Stage -> (wall s since the spawn, CPU s of the job) for one run of ``script``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    spawned = time.time()
    out = subprocess.run(
        ["/bin/bash", "-c", f"{sys.executable} {script}"],
        cwd=REPO, env=_env(), capture_output=True, text=True,
    )  # fmt: skip
    if out.returncode:
        raise RuntimeError(f"{script.name} failed: {out.stderr.strip().splitlines()[-1]}")
    ended = time.time()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(getattr(after, f) - getattr(before, f) for f in ("ru_utime", "ru_stime"))
    marks = json.loads(out.stdout.strip().splitlines()[-1])
    stages = {stage: (stamp - spawned, cpu) for stage, stamp, cpu in marks}
    return stages | {"process exit": (ended - spawned, cpu)}


def measure(steps: tuple[str, ...], reps: int) -> dict[str, list[dict]]:
    """Runs of each step, interleaved (one warm-up run each, not counted)."""
    with tempfile.TemporaryDirectory(prefix="avrobust-startup-") as tmp:
        scripts = {s: job_script(s, Path(tmp)) for s in steps}
        for script in scripts.values():
            one_run(script)
        runs: dict[str, list[dict]] = {s: [] for s in steps}
        for _ in range(reps):
            for step, script in scripts.items():
                runs[step].append(one_run(script))
    return runs


def import_shares(step: str, top: int = 6) -> str:
    """The step's imports by top-level package: own import time summed (``-X importtime``)."""
    code = "\n".join(import_lines(step))
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=REPO, env=_env(), capture_output=True, text=True,
    )  # fmt: skip
    own: dict[str, int] = {}
    for m in re.finditer(r"^import time:\s+(\d+) \|\s+\d+ \| *([\w.]+)$", out.stderr, re.M):
        name = m.group(2).split(".")[0]
        own[name] = own.get(name, 0) + int(m.group(1))
    total = sum(own.values()) or 1
    heavy = sorted(own.items(), key=lambda kv: kv[1], reverse=True)[:top]
    listing = ", ".join(f"{name} {us / total:.0%}" for name, us in heavy)
    return f"{step}: {total / 1e6:.2f} s of imports in this measurement; by package: {listing}"


def profile(row: dict, quick: bool) -> str:
    """Where a missed start-up goes: the stages, and the imports by package."""
    step = row["figure"].split()[0]
    return (
        f"CPU {row['cpu_s']} s of the job against {row['value']} s wall (load {row['load']}); "
        f"the step's imports take {row['imports_wall_s']} s wall of it.\n" + import_shares(step)
    )


OPTIMIZER_CODE = """
import sys, time, torch
import avmodels.study.train
before = len(sys.modules)
start = time.process_time()
torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)
print(time.process_time() - start, len(sys.modules) - before, "torch._dynamo" in sys.modules)
"""


def optimizer_import(reps: int) -> dict:
    """The train step's first ``torch.optim.SGD``: CPU s and the modules it imports (median)."""
    runs = []
    for _ in range(reps):
        out = subprocess.run(
            [sys.executable, "-c", OPTIMIZER_CODE], cwd=REPO, env=_env(), capture_output=True,
            text=True, check=True,
        )  # fmt: skip
        cpu, modules, dynamo = out.stdout.split()
        runs.append((float(cpu), int(modules), dynamo == "True"))
    return {
        "cpu_s": round(statistics.median(r[0] for r in runs), 2),
        "modules": int(statistics.median(r[1] for r in runs)),
        "dynamo": all(r[2] for r in runs),
    }


def _load() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def _row(figure: str, value: float, target: float | None = None, **extra) -> dict:
    met = None if target is None else value <= target
    target_text = None if target is None else f"<= {target}"
    row = {"benchmark": "startup", "figure": figure, "value": value, "target": target_text}
    return row | {"met": met, **extra}


def _median(runs: list[dict], stage: str, col: int) -> float:
    return round(statistics.median(r[stage][col] for r in runs), 2)


def section(runs: dict[str, list[dict]], reps: int, load: tuple[str, str]) -> dict:
    """Markdown: the stages' cumulative medians per step, the method and the load."""
    lines = [
        f"Per-job start-up of `script:` jobs, measured by `bench/startup.py` ({reps} "
        f"interleaved runs per step after one warm-up; load average {load[0]} before, "
        f"{load[1]} after, on {os.cpu_count()} cores). Each run is the file Snakemake "
        "writes for the job (the installed Snakemake's own preamble), the step's import "
        "statements and the job harness with no work inside, started through a shell as "
        "Snakemake starts it; cumulative medians, wall seconds since the spawn and the job's "
        "CPU seconds (at process exit: the shell and the interpreter together). Start-up is "
        "the job entry column; the columns after it are the finishing side of a job (no "
        "outputs to hash here). On a loaded machine the wall times include waiting for a core.",
        "",
        "| step | " + " | ".join(f"{s} wall s" for s in STAGES) + " | job entry CPU s "
        "| process exit CPU s |",
        "|---|" + "---:|" * (len(STAGES) + 2),
    ]
    for step, rs in runs.items():
        walls = " | ".join(f"{_median(rs, s, 0):.2f}" for s in STAGES)
        cpus = " | ".join(f"{_median(rs, s, 1):.2f}" for s in ("job entry", "process exit"))
        lines.append(f"| {step} | {walls} | {cpus} |")
    return {"title": "Job start-up", "body": "\n".join(lines)}


def run(quick: bool = False, reps: int | None = None) -> list[dict]:
    """Rows {benchmark, figure, value, target, met}: start-up of the train and evaluate jobs."""
    reps = reps or (2 if quick else 7)
    before = _load()
    runs = measure(STEPS, reps)
    load = (before, _load())
    rows = []
    for step, rs in runs.items():
        wall, cpu = _median(rs, "job entry", 0), _median(rs, "job entry", 1)
        imports = _median(rs, "imports", 0) - _median(rs, "preamble", 0)
        rows.append(_row(f"{step} job start-up: spawn to job entry, wall s (median of {reps})",
                         wall, TARGET, cpu_s=cpu, imports_wall_s=round(imports, 2),
                         load=f"{load[0]} before, {load[1]} after"))  # fmt: skip
        rows.append(_row(f"  {step} job start-up, CPU s of the job (median of {reps})", cpu))
    sgd = optimizer_import(max(reps // 2, 1))
    rows.append(_row("train step, inside its work: the first torch.optim.SGD, CPU s (torch "
                     f"imports {sgd['modules']} modules{', torch._dynamo' * sgd['dynamo']})",
                     sgd["cpu_s"]))  # fmt: skip
    rows[0]["section"] = section(runs, reps, load)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two runs per step")
    parser.add_argument("--reps", type=int, help="runs per step (default 7, quick 2)")
    args = parser.parse_args()
    rows = run(args.quick, args.reps)
    for r in rows:
        verdict = {None: "info", True: "PASS", False: "MISS"}[r["met"]]
        target = "" if r["target"] is None else f" (target {r['target']})"
        print(f"{r['figure']:<70} {r['value']!s:>6}{target}  {verdict}")
    print(rows[0]["section"]["body"])


if __name__ == "__main__":
    main()
