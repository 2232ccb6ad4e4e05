"""Workflow benchmarks: the embedded study's overhead, a no-op dry run and the paper's dry run.

The workflow runs in a fresh temporary copy of the repository (the library, scripts, rules,
Snakefile, configs, profiles and environments), so nothing left in the working tree counts.

(a) ``snakemake --cores 2 all`` (quick: ``--configfile config/tiny.yaml``). Each step writes
    provenance sidecars ``*.prov.json`` whose ``seconds`` is the time spent inside the step
    (from :func:`avmodels.workflow.jobs.job` entering to the step's end: no interpreter start, no
    imports, no output hashing). Snakemake's log gives each job's threads and lifetime as the
    scheduler sees it (start and finish stamps, one-second resolution). With ``C`` cores and
    wall time ``W`` (launch to exit), the ``C * W`` core-seconds split into

    - work: sum over jobs of threads x in-step seconds;
    - job start and finish: sum of threads x (lifetime - in-step seconds): a Python
      interpreter, torch and avmodels imports, Snakemake's script preamble, provenance;
    - scheduler and idle cores: ``C * W`` - sum of threads x lifetime: DAG building, the
      gaps between jobs and the cores left idle when fewer jobs are ready than cores.

    Figure: overhead fraction = 1 - work / (C * W), target <= 0.10. The per-job start-up
    cost (``python -c "import torch, avmodels.study.train"``, median wall time) times the number
    of jobs is reported beside it as its main explanation.
(b) ``snakemake -n all`` once the run is complete (nothing to do): median wall, <= 3 s.
(c) ``snakemake -n all --configfile config/paper.yaml`` in a fresh copy: median wall,
    <= 15 s, and the number of jobs of the paper's study (Snakemake's job stats table).
(d) Where the time goes: a table of rules by time (jobs, in-step seconds, lifetimes), given
    to the report as its own section.
(e) The same study with no APGD and Square jobs (``autoattack.attacks: []``) in another fresh
    copy: the wall time those jobs add, ``wall with / wall without - 1``, target <= 0.15.
(f) The SLURM executor plugin's probe: when Snakemake loads it, it runs ``scontrol show
    config`` (10 s timeout). Where ``scontrol`` is installed but no controller answers, every
    Snakemake start waits out that timeout; the row says which case this machine is.

All times are wall-clock times of a machine that may be shared; CPU seconds are reported
beside them. Quick mode: the tiny config and fewer repetitions.

    python bench/workflow.py [--quick]

With ``AVROBUST_BENCH_KEEP=DIR`` the study runs in ``DIR`` (which must not hold a study
already) and is kept there, to look at its tables, figures and report afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COPIED = (
    "avmodels",
    "workflow_scripts",
    "rules",
    "Snakefile",
    "config.yaml",
    "config",
    "profiles",
    "envs",
    "report",
)
CORES = 2
KEEP_ENV = "AVROBUST_BENCH_KEEP"  # a directory: run the study there and keep it
OVERHEAD_TARGET = 0.10
GROWTH_TARGET = 0.15  # wall time the APGD and Square jobs may add to the embedded study
NOOP_TARGET = 3.0
PAPER_DRY_TARGET = 15.0
STARTUP_CODE = "import torch, avmodels.study.train"
STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")


@dataclass
class Timed:
    """One command: wall and CPU seconds (its process tree), exit status, combined output."""

    wall: float
    cpu: float
    returncode: int
    output: str


@dataclass
class Job:
    """One job as Snakemake's log shows it, plus its in-step seconds from the sidecars."""

    rule: str
    wildcards: dict[str, str] = field(default_factory=dict)
    threads: int = 1
    started: float | None = None
    finished: float | None = None
    seconds: float | None = None

    @property
    def lifetime(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started


def fresh_copy(dest: Path) -> Path:
    """Copy what the workflow needs into ``dest`` (no caches, no results)."""
    dest.mkdir(parents=True, exist_ok=True)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in COPIED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=skip)
        else:
            shutil.copy2(src, dest / name)
    return dest


def _env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), env.get("PATH", "")))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH")) if p)
    return env


def timed(cmd: list[str], cwd: Path, log: Path | None = None) -> Timed:
    """Run ``cmd``; wall time and the CPU time of its (waited-for) process tree."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=cwd, env=_env(cwd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if log is not None:
        log.write_text(proc.stdout)
    return Timed(wall, cpu, proc.returncode, proc.stdout)


def snakemake(args: list[str], cwd: Path, log: Path | None = None) -> Timed:
    return timed([sys.executable, "-m", "snakemake", *args], cwd, log)


def failure_reason(output: str) -> str:
    """One line saying why a Snakemake run failed: the failing rule and the last error line."""
    rules = re.findall(r"^Error in rule (\w+):", output, re.M)
    errors = [
        line.strip()
        for line in output.splitlines()
        if re.match(r"^\s*[\w.]*(Error|Exception): \S", line) and "WorkflowError" not in line
    ]
    where = f"rule {rules[0]}" if rules else "snakemake"
    return f"{where} failed: {errors[-1] if errors else output.strip().splitlines()[-1]}"


def job_count(output: str) -> dict[str, int]:
    """Rule -> jobs from the first job stats table of Snakemake's output (``total`` too)."""
    counts: dict[str, int] = {}
    lines = output.splitlines()
    if "Job stats:" not in lines:
        return counts
    for line in lines[lines.index("Job stats:") + 3 :]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    return counts


def _wildcards(text: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in text.split(", ") if "=" in item)


def parse_log(text: str) -> dict[str, Job]:
    """Jobs by id from Snakemake's log: rule, wildcards, threads, start and finish stamps."""
    jobs: dict[str, Job] = {}
    stamp: float | None = None
    current: Job | None = None
    for line in text.splitlines():
        if m := STAMP.match(line):
            stamp = time.mktime(time.strptime(m.group(1), "%a %b %d %H:%M:%S %Y"))
            current = None
        elif m := re.match(r"^(?:local)?rule (\w+):$", line):
            current = Job(m.group(1), started=stamp)
        elif current is not None and (m := re.match(r"^\s+(jobid|wildcards|threads): (.*)$", line)):
            key, value = m.groups()
            if key == "jobid":
                jobs[value] = current
            elif key == "wildcards":
                current.wildcards = _wildcards(value)
            else:
                current.threads = int(value)
        elif (m := re.match(r"^Finished jobid: (\w+)", line)) and m.group(1) in jobs:
            jobs[m.group(1)].finished = stamp
    return jobs


def _key(rule: str, wildcards: dict) -> tuple:
    return rule, tuple(sorted((str(k), str(v)) for k, v in wildcards.items()))


def step_seconds(root: Path) -> dict[tuple, float]:
    """In-step seconds per (rule, wildcards) from the provenance sidecars under ``root``."""
    found: dict[tuple, float] = {}
    for top in ("results", "resources"):
        for path in (root / top).rglob("*.prov.json"):
            record = json.loads(path.read_text())
            if "seconds" in record and "rule" in record:
                found[_key(record["rule"], record.get("wildcards", {}))] = record["seconds"]
    return found


def snakemake_log(root: Path) -> str:
    """The newest Snakemake log under ``root`` (the jobs' own output does not reach it)."""
    logs = sorted((root / ".snakemake" / "log").glob("*.snakemake.log"))
    return logs[-1].read_text() if logs else ""


def study_jobs(root: Path) -> list[Job]:
    """The run's jobs (rule ``all`` left out) with their in-step seconds where recorded."""
    seconds = step_seconds(root)
    jobs = [j for j in parse_log(snakemake_log(root)).values() if j.rule != "all"]
    for j in jobs:
        j.seconds = seconds.get(_key(j.rule, j.wildcards))
    return jobs


def startup_seconds(root: Path, reps: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``python -c "import torch, avmodels.study.train"``."""
    runs = [timed([sys.executable, "-c", STARTUP_CODE], root) for _ in range(reps)]
    for r in runs:
        if r.returncode:
            raise RuntimeError(f"{STARTUP_CODE!r} failed: {r.output.strip().splitlines()[-1]}")
    return statistics.median(r.wall for r in runs), statistics.median(r.cpu for r in runs)


def import_profile(root: Path, top: int = 6) -> str:
    """The heaviest nested imports of the start-up code (``python -X importtime``)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", STARTUP_CODE],
        cwd=root,
        env=_env(root),
        capture_output=True,
        text=True,
    )
    entries = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m:
            entries.append((int(m.group(2)) / 1e6, int(m.group(1)) / 1e6, len(m.group(3)), m[4]))
    total = sum(e[0] for e in entries if e[2] == 1)
    heavy = sorted((e for e in entries if e[2] > 1), reverse=True)[:top]
    lines = [f"`{STARTUP_CODE}`: {total:.2f} s of imports in this measurement; heaviest:"]
    lines += [f"  {cum:6.2f} s cumulative ({own:.2f} s own) {name}" for cum, own, _, name in heavy]
    return "\n".join(lines)


def dry_run_profile(root: Path, args: list[str], top: int = 5) -> str:
    """cProfile of a dry run in-process: top functions by cumulative and by own time."""
    out = root / "dry_run.prof"
    code = (
        "import sys, cProfile; from snakemake.cli import main; sys.argv = ['snakemake'] + "
        f"{args!r}; cProfile.run('main()', {str(out)!r})"
    )
    timed([sys.executable, "-c", code], root)
    if not out.exists():
        return "profile unavailable (the profiled dry run did not finish)"
    stats = pstats.Stats(str(out))
    listing = stats.stats  # type: ignore[attr-defined]
    own = sorted(listing.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    workflow_code = [(k, v) for k, v in listing.items() if k[0].startswith(str(root))]
    ours = sorted(workflow_code, key=lambda kv: kv[1][3], reverse=True)[:top]

    def fmt(k: tuple, v: tuple, col: int) -> str:
        name = "/".join(Path(k[0]).parts[-2:]) if "/" in k[0] else k[0]
        return f"  {v[col]:6.2f} s  {name}:{k[1]}({k[2]})"

    lines = [f"cProfile of `snakemake {' '.join(args)}`, top {top} by own time:"]
    lines += [fmt(k, v, 2) for k, v in own]
    lines += [f"workflow code (Snakefile, rules, avmodels) by cumulative time, top {top}:"]
    lines += [fmt(k, v, 3) for k, v in ours]
    return "\n".join(lines)


def rule_table(jobs: list[Job]) -> str:
    """Markdown: rules by total lifetime, with in-step and outside-step seconds."""
    by_rule: dict[str, list[Job]] = defaultdict(list)
    for j in jobs:
        by_rule[j.rule].append(j)
    total_step = sum(j.seconds or 0.0 for j in jobs) or 1.0
    rows = []
    for rule, js in by_rule.items():
        step = sum(j.seconds or 0.0 for j in js)
        life = sum(j.lifetime or 0.0 for j in js)
        rows.append((life, step, rule, js))
    lines = [
        "| rule | jobs | threads | lifetime s (sum) | in-step s (sum) | in-step s (mean) | "
        "outside step s (sum) | share of in-step s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for life, step, rule, js in sorted(rows, key=lambda r: r[0], reverse=True):
        threads = max(j.threads for j in js)
        lines.append(
            f"| {rule} | {len(js)} | {threads} | {life:.0f} | {step:.1f} | {step / len(js):.2f} "
            f"| {life - step:.0f} | {step / total_step:.1%} |"
        )
    return "\n".join(lines)


def _row(figure: str, value: float | int | None, target: str | None = None, met=None, **extra):
    row = {"benchmark": "workflow", "figure": figure, "value": value}
    return row | {"target": target, "met": met, **extra}


def _median_cpu(runs: list[Timed]) -> float:
    return round(statistics.median(r.cpu for r in runs), 2)


def slurm_probe() -> dict:
    """(f) How long ``scontrol show config`` takes here, as the SLURM plugin runs it."""
    figure = "SLURM plugin's probe at each Snakemake start: `scontrol show config` wall s"
    if shutil.which("scontrol") is None:
        case = "no scontrol on PATH: the probe returns at once"
        return _row(f"{figure} ({case})", 0.0, case=case)
    started = time.perf_counter()
    try:
        command = ["scontrol", "show", "config"]
        answered = subprocess.run(command, capture_output=True, timeout=10).returncode == 0
    except subprocess.TimeoutExpired:
        answered = False
    wall = time.perf_counter() - started
    case = "the controller answered" if answered else "no controller answered"
    return _row(f"{figure} ({case})", round(wall, 2), case=case)


def paper_dry_run(root: Path, reps: int) -> list[dict]:
    """(c) the paper configuration's dry run in a fresh copy."""
    args = ["-n", "all", "--configfile", "config/paper.yaml"]
    runs = [snakemake(args, root) for _ in range(reps)]
    if runs[0].returncode:
        return [_row("paper dry run", None, error=failure_reason(runs[0].output))]
    wall = statistics.median(r.wall for r in runs)
    counts = job_count(runs[0].output)
    met = wall <= PAPER_DRY_TARGET
    profile = None if met else dry_run_profile(root, args)
    return [
        _row(
            f"`snakemake -n all --configfile config/paper.yaml` wall s (median of {reps})",
            round(wall, 2),
            f"<= {PAPER_DRY_TARGET}",
            met,
            walls=[round(r.wall, 2) for r in runs],
            **({"profile": profile} if profile else {}),
        ),
        _row("  the same: CPU s of the dry run's processes (median)", _median_cpu(runs)),
        _row("paper study: jobs in the DAG (incl. `all`)", counts.get("total"), jobs=counts),
    ]


def noop_dry_run(root: Path, config: list[str], reps: int) -> list[dict]:
    """(b) a dry run with nothing to do."""
    args = ["-n", "all", *config]
    runs = [snakemake(args, root) for _ in range(reps)]
    if runs[0].returncode:
        return [_row("no-op dry run", None, error=failure_reason(runs[0].output))]
    wall = statistics.median(r.wall for r in runs)
    pending = job_count(runs[0].output).get("total", 0)
    met = wall <= NOOP_TARGET
    extra: dict = {"walls": [round(r.wall, 2) for r in runs]}
    if pending:
        extra["pending_jobs"] = pending
    if not met:
        extra["profile"] = dry_run_profile(root, args)
    figure = f"`snakemake -n all` after the run, nothing to do: wall s (median of {reps})"
    return [
        _row(figure, round(wall, 2), f"<= {NOOP_TARGET}", met, **extra),
        _row("  the same: CPU s of the dry run's processes (median)", _median_cpu(runs)),
    ]


def study_run(root: Path, config: list[str], startup_reps: int) -> tuple[list[dict], bool]:
    """(a) + (d): the full run, its overhead and where its time goes; (rows, succeeded)."""
    launched = time.time()
    run = snakemake(["--cores", str(CORES), "all", *config], root, root / "snakemake_run.log")
    name = " ".join(["`snakemake --cores", str(CORES), "all", *config]) + "`"
    jobs = study_jobs(root)
    if run.returncode:
        title = "Where the workflow's time goes (jobs finished before the run failed)"
        section = {"title": title, "body": rule_table([j for j in jobs if j.finished])}
        error = failure_reason(run.output)
        return [_row(f"{name} (embedded study)", None, error=error, section=section)], False
    capacity = CORES * run.wall
    work = sum(j.threads * (j.seconds or 0.0) for j in jobs)
    lifetimes = sum(j.threads * (j.lifetime or 0.0) for j in jobs)
    overhead = 1 - work / capacity
    startup, startup_cpu = startup_seconds(root, startup_reps)
    starts = [j.started for j in jobs if j.started is not None]
    first_job = min(starts) - launched if starts else None
    met = overhead <= OVERHEAD_TARGET
    rows = [
        _row(f"{name} wall s ({len(jobs)} jobs, {CORES} cores)", round(run.wall, 1),
             cpu_s=round(run.cpu, 1), first_job_after_s=first_job and round(first_job, 1),
             section={"title": "Where the workflow's time goes", "body": rule_table(jobs)}),
        _row("workflow overhead fraction: 1 - sum(threads x in-step s) / (cores x wall)",
             round(overhead, 3), f"<= {OVERHEAD_TARGET}", met,
             work_core_s=round(work, 1), capacity_core_s=round(capacity, 1),
             jobs_without_sidecar=sum(j.seconds is None for j in jobs)),
        _row("  of which job start/finish: sum(threads x (lifetime - in-step s)) / (cores x wall)",
             round((lifetimes - work) / capacity, 3)),
        _row("  of which scheduler and idle cores: 1 - sum(threads x lifetime) / (cores x wall)",
             round(1 - lifetimes / capacity, 3)),
        _row(f"per-job start-up: `python -c \"{STARTUP_CODE}\"` wall s (median of {startup_reps})",
             round(startup, 2), cpu_s=round(startup_cpu, 2)),
        _row("  start-up x jobs / (cores x wall)", round(startup * len(jobs) / capacity, 3)),
    ]  # fmt: skip
    if not met:
        rows[1]["profile"] = startup_note(
            len(jobs), lifetimes - work, capacity - work, startup, startup_cpu
        ) + import_profile(root)
    return rows, True


def startup_note(jobs: int, outside: float, lost: float, startup: float, cpu: float) -> str:
    """Why the overhead is what it is: the jobs' time outside their steps against the probe."""
    return (
        f"{jobs} jobs each start a Python interpreter that imports torch and avmodels before "
        f"its step starts, and end it after: {outside:.0f} core-s outside the steps in all "
        f"({outside / jobs:.1f} per job), of {lost:.0f} core-s of capacity lost with the "
        f"scheduler's and the idle cores'. The probe `python -c \"{STARTUP_CODE}\"` takes "
        f"{startup:.1f} s wall, {cpu:.1f} s CPU, the interpreter's teardown included, which "
        "a job skips (avmodels.workflow.jobs.end_process). See 'Where the workflow's time "
        "goes' for the rules.\n"
    )


def without_autoattack(root: Path, config: list[str], with_wall: float) -> list[dict]:
    """(e) The same study with no APGD and Square jobs (``autoattack.attacks: []``): the wall
    time they add, run after (a) in its own fresh copy."""
    overlay = root / "no_autoattack.yaml"
    overlay.write_text("autoattack:\n  attacks: []\n")
    files = config[1:] if config else ["config.yaml"]
    args = ["--cores", str(CORES), "all", "--configfile", *files, overlay.name]
    run = snakemake(args, root, root / "snakemake_run.log")
    if run.returncode:
        error = failure_reason(run.output)
        return [_row("the same study without APGD and Square jobs", None, error=error)]
    growth = with_wall / run.wall - 1
    jobs = len(study_jobs(root))
    rows = [
        _row(f"the same study without APGD and Square jobs: wall s ({jobs} jobs)",
             round(run.wall, 1), cpu_s=round(run.cpu, 1)),
        _row("wall time the APGD and Square jobs add: wall with / wall without - 1",
             round(growth, 3), f"<= {GROWTH_TARGET}", growth <= GROWTH_TARGET),
    ]  # fmt: skip
    if growth > GROWTH_TARGET:
        rows[1]["profile"] = (
            f"{with_wall - run.wall:.0f} s more wall time. The APGD and Square jobs' own times "
            "are the `autoattack` row of 'Where the workflow's time goes'; their step and query "
            "counts are `autoattack.attacks` of the study's config."
        )
    return rows


def run(quick: bool = False) -> list[dict]:
    """Rows {benchmark, figure, value, target, met}; rows with ``error`` are failures."""
    config = ["--configfile", "config/tiny.yaml"] if quick else []
    reps = 1 if quick else 3
    keep = os.environ.get(KEEP_ENV)
    probe = [slurm_probe()]
    with tempfile.TemporaryDirectory(prefix="avrobust-bench-") as tmp:
        paper = paper_dry_run(fresh_copy(Path(tmp) / "paper"), reps)
        root = fresh_copy(Path(keep) if keep else Path(tmp) / "study")
        rows, ok = study_run(root, config, startup_reps=reps)
        if ok:
            rows += noop_dry_run(root, config, reps=max(reps, 2))
            without = fresh_copy(Path(tmp) / "without")
            rows += without_autoattack(without, config, with_wall=rows[0]["value"])
    return rows + paper + probe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny config, one repetition")
    args = parser.parse_args()
    for r in run(args.quick):
        verdict = "ERROR" if "error" in r else {None: "info", True: "PASS", False: "MISS"}[r["met"]]
        target = "" if r["target"] is None else f" (target {r['target']})"
        print(f"{r['figure']:<90} {r['value']!s:>8}{target}  {verdict} {r.get('error', '')}")
        if "section" in r:
            print(r["section"]["body"])


if __name__ == "__main__":
    main()
