"""The SLURM profile, slurm/config.yaml.

Dry runs check what each rule asks SLURM for. The tests marked ``slurm`` run the tiny
study on the single-node cluster that tests/slurm/setup_slurm.sh starts (as root), with
tests/slurm/profile layered on the real profile (no GPU on the test node): every compute
job goes through sbatch, the tables equal a local run's byte for byte, and neither a
cancelled job (submitted again by Snakemake) nor a requeued one (preemption, handled by
SLURM) stops the study.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import torch
import yaml
from studies import Study

from avmodels.models.model import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SNAKEMAKE = str(BIN / "snakemake")
TINY = "config/tiny.yaml"
PROFILES = ("--profile", "slurm", "--profile", "tests/slurm/profile")
GPU_RULES = {
    "train",
    "finetune",
    "memory_bank",
    "evaluate",
    "autoattack",
    "localization",
    "embeddings",
}
JOBCOMP_LOG = Path("/var/log/slurm/jobcomp.log")
RUN_TIMEOUT = 3600  # seconds for a whole study; a stuck run is killed, not waited on
TARGET = "results/synthetic_music/models/concat/checkpoint.pt"
# Run TARGET's job again in a finished study, and only it (whatever edits reached the
# tree since the study ran).
FORCE_TARGET = ("--force", TARGET, "--rerun-triggers", "mtime", "--configfile", TINY)

RULE_LINE = re.compile(r"^\s*(?:local)?rule (\w+):$")
RESOURCES_LINE = re.compile(r"^\s*resources: (.*)$")
RUN_ID_LINE = re.compile(r"SLURM run ID: (\S+)")


def _env(**extra: str) -> dict[str, str]:
    """This environment without the user's SLURM defaults, with the venv first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SBATCH_", "AVROBUST_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def dry_run_resources(*args: str, env: dict[str, str] | None = None) -> dict[str, list[dict]]:
    """Resources of every job of `snakemake --profile slurm -n all ARGS`, by rule."""
    proc = subprocess.run(
        [SNAKEMAKE, "-n", "all", "--profile", "slurm", *args],
        cwd=REPO,
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    jobs: dict[str, list[dict]] = {}
    rule = None
    for line in output.splitlines():
        if match := RULE_LINE.match(line):
            rule = match.group(1)
        elif (match := RESOURCES_LINE.match(line)) and rule is not None:
            items = (item.split("=", 1) for item in match.group(1).split(", "))
            jobs.setdefault(rule, []).append(dict(items))
            rule = None
    return jobs


@pytest.fixture(scope="module")
def paper_jobs() -> dict[str, list[dict]]:
    """The dry run of `snakemake --profile slurm all`: the paper's study."""
    return dry_run_resources()


@pytest.mark.slow
def test_profile_gives_one_gpu_to_the_network_rules_only(paper_jobs: dict) -> None:
    assert "download" in paper_jobs and "synthesize" not in paper_jobs
    assert paper_jobs.keys() >= GPU_RULES
    for rule, resources in paper_jobs.items():
        gpus = {job.get("gpu") for job in resources}
        assert gpus == ({"1"} if rule in GPU_RULES else {None}), rule


@pytest.mark.slow
def test_partition_and_account_come_from_the_environment(paper_jobs: dict) -> None:
    for resources in paper_jobs.values():
        for job in resources:
            assert "slurm_partition" not in job and "slurm_account" not in job

    env = _env(SBATCH_PARTITION="cpu", AVROBUST_GPU_PARTITION="gpu", SBATCH_ACCOUNT="proj1")
    jobs = dry_run_resources("--configfile", TINY, env=env)
    assert "synthesize" in jobs and "download" not in jobs  # tiny replaced paper
    for rule, resources in jobs.items():
        for job in resources:
            assert job["slurm_account"] == "proj1", rule
            assert job["slurm_partition"] == ("gpu" if rule in GPU_RULES else "cpu"), rule


# --- a real cluster -------------------------------------------------------------------


def _cluster_problem() -> str | None:
    hint = "run tests/slurm/setup_slurm.sh as root"
    if shutil.which("sinfo") is None:
        return f"SLURM is not installed: {hint}"
    proc = subprocess.run(
        ["sinfo", "--noheader", "--format=%t"], capture_output=True, text=True, timeout=30
    )
    if proc.returncode != 0 or not {"idle", "mix", "alloc"} & set(proc.stdout.split()):
        return f"no SLURM node is up ({proc.stderr.strip() or proc.stdout.strip()}): {hint}"
    return None


@pytest.fixture(scope="module")
def cluster() -> None:
    """A running cluster; CI must have one, elsewhere its absence skips the test."""
    problem = _cluster_problem()
    if problem and os.environ.get("CI"):
        pytest.fail(problem)
    if problem:
        pytest.skip(problem)


class Run:
    """A Snakemake process in its own process group, run from the repository root.

    Leaving the ``with`` block kills a process still running (a head process waiting on
    a dead controller ignores SIGTERM), cancels its SLURM jobs and unlocks the directory.
    """

    def __init__(self, workdir: Path, *args: str) -> None:
        self.workdir = workdir
        self.args = ("--directory", str(workdir), *args)
        self.log = workdir.parent / f"{workdir.name}-{time.monotonic_ns()}.log"
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [SNAKEMAKE, *self.args],
                cwd=REPO,
                env=_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            if run_id := self._run_id():
                subprocess.run(["scancel", "--name", run_id], check=False, timeout=60)
            subprocess.run(
                [SNAKEMAKE, *self.args, "--unlock"],
                cwd=REPO,
                env=_env(),
                capture_output=True,
                timeout=300,
                check=False,
            )

    def tail(self, chars: int = 6000) -> str:
        return self.log.read_text()[-chars:]

    def _run_id(self) -> str | None:
        match = RUN_ID_LINE.search(self.log.read_text())
        return match.group(1) if match else None

    def run_id(self) -> str:
        run_id = self._run_id()
        assert run_id, f"no SLURM run ID in the log:\n{self.tail()}"
        return run_id

    def wait(self, timeout: float = RUN_TIMEOUT) -> None:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"Snakemake still running after {timeout} s:\n{self.tail()}")
        assert code == 0, self.tail()

    def running_job(self, rule: str, timeout: float = 300) -> str:
        """The SLURM id of this run's first job of `rule` once it is running."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"Snakemake ended early:\n{self.tail()}"
            run_id = self._run_id()
            if run_id:
                for job_id, state, job_rule in slurm_jobs(run_id):
                    if job_rule == rule and state == "RUNNING":
                        return job_id
            time.sleep(0.5)
        pytest.fail(f"no {rule} job running after {timeout} s:\n{self.tail()}")


def slurm_jobs(run_id: str) -> list[tuple[str, str, str]]:
    """(job id, state, rule or group name) of every job a run submitted, oldest first."""
    out = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--name", run_id, "--format=%i|%T|%k"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    jobs = []
    for line in out.splitlines():
        job_id, state, comment = line.strip().split("|", 2)
        # The plugin's comment: rule_<rule>[_wildcards_<values>] or rule_<group>_<rule>.
        jobs.append((job_id, state, comment.removeprefix("rule_").split("_wildcards_")[0]))
    return sorted(jobs, key=lambda job: int(job[0]))


def job_records(run_id: str) -> list[dict[str, str]]:
    """A run's records in the job completion log: one per job end (a requeue ends one)."""
    records = (
        dict(field.split("=", 1) for field in line.split() if "=" in field)
        for line in JOBCOMP_LOG.read_text().splitlines()
    )
    return [record for record in records if record.get("Name") == run_id]


def profile_setting(profile: str, *keys: str) -> object:
    """A value of a profile's config.yaml (its YTE keys, if any, read as plain strings)."""
    value = yaml.safe_load((REPO / profile / "config.yaml").read_text())
    for key in keys:
        value = value[key]
    return value


RULE_BLOCK = re.compile(r"^rule (\w+):\n((?:    .*\n|\n)*)", re.MULTILINE)
RULE_LIMITS = re.compile(r"resources:\n\s+mem_mb=\d+,\n\s+runtime=\w+,")


def test_memory_and_time_are_set_in_the_rules_only() -> None:
    """The profile adds CPUs, the GPU and the partition; memory and wall time are the rules'."""
    profile = profile_setting("slurm")
    for settings in [profile["default-resources"], *profile["set-resources"].values()]:
        assert {"mem_mb", "runtime"}.isdisjoint(settings), settings
    rules = {
        name: body
        for smk in (REPO / "rules").glob("*.smk")
        for name, body in RULE_BLOCK.findall(smk.read_text())
    }
    submitted = {name for name, body in rules.items() if "localrule: True" not in body}
    assert set(profile["set-threads"]) <= submitted and "preprocess_local" in submitted
    for name in submitted:
        assert RULE_LIMITS.search(rules[name]), f"rule {name} sets no mem_mb and runtime"


@pytest.fixture(scope="module")
def slurm_study(cluster: None, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    workdir = tmp_path_factory.mktemp("slurm")
    with Run(workdir, *PROFILES, "all", "--configfile", TINY) as run:
        run.wait()
    return workdir, run.run_id()


def _count(root: Path, pattern: str) -> int:
    return len(list(root.glob(pattern)))


@pytest.mark.slurm
@pytest.mark.slow
def test_slurm_study_tables_equal_local_run(slurm_study: tuple[Path, str], study: Study) -> None:
    workdir, _ = slurm_study
    local_study = study.root
    tables = sorted(p.relative_to(local_study) for p in local_study.glob("results/tables/*.csv"))
    assert tables
    assert tables == sorted(p.relative_to(workdir) for p in workdir.glob("results/tables/*.csv"))
    for table in tables:
        assert (workdir / table).read_bytes() == (local_study / table).read_bytes(), table


@pytest.mark.slurm
@pytest.mark.slow
def test_every_compute_job_went_through_sbatch(slurm_study: tuple[Path, str]) -> None:
    workdir, run_id = slurm_study
    jobs = slurm_jobs(run_id)
    evaluations = _count(workdir, "results/*/eval/*/*/*/*.csv")
    finetuned = _count(workdir, "results/*/models/*_exfmem/checkpoint.pt")
    group_size = profile_setting("slurm", "group-components", "evaluation")
    assert Counter(rule for _, _, rule in jobs) == {
        "synthesize": _count(workdir, "resources/*/videos/shard0"),
        "preprocess": _count(workdir, "resources/*/manifests/shard*.csv"),
        "train": _count(workdir, "results/*/models/*/checkpoint.pt") - finetuned,
        "finetune": finetuned,
        "memory_bank": _count(workdir, "results/*/memory/*.pt"),
        "evaluation_evaluate": math.ceil(evaluations / group_size),
        "autoattack": _count(workdir, "results/*/autoattack/*/*/*.csv"),
        "localization": _count(workdir, "results/*/analysis/localization.npz"),
        "embeddings": _count(workdir, "results/*/analysis/embeddings.npz"),
    }
    assert {state for _, state, _ in jobs} == {"COMPLETED"}

    # Group members run one after another: the group asks for one member's CPUs and
    # for the sum of the members' time limits.
    records = {r["JobId"]: r for r in job_records(run_id)}
    groups = [records[job_id] for job_id, _, rule in jobs if rule == "evaluation_evaluate"]
    runtime = profile_setting("tests/slurm/profile", "set-resources", "evaluate", "runtime")
    assert {r["ProcCnt"] for r in groups} == {"1"}
    assert sum(int(r["TimeLimit"]) for r in groups) == evaluations * runtime
    assert {records[job_id]["JobState"] for job_id, _, _ in jobs} == {"COMPLETED"}


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)[0].state_dict()


@pytest.mark.slurm
@pytest.mark.slow
def test_cancelled_job_is_submitted_again(slurm_study: tuple[Path, str]) -> None:
    workdir, _ = slurm_study
    before = _weights(workdir / TARGET)
    with Run(workdir, *PROFILES, *FORCE_TARGET) as run:
        job_id = run.running_job("train")
        subprocess.run(["scancel", job_id], check=True, timeout=60)
        run.wait()
        jobs = slurm_jobs(run.run_id())
    assert [(j, s) for j, s, _ in jobs][0] == (job_id, "CANCELLED")
    assert [(s, rule) for _, s, rule in jobs[1:]] == [("COMPLETED", "train")]
    after = _weights(workdir / TARGET)
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before)


@pytest.mark.slurm
@pytest.mark.slow
def test_requeued_job_finishes_without_a_new_submission(slurm_study: tuple[Path, str]) -> None:
    workdir, _ = slurm_study
    with Run(workdir, *PROFILES, *FORCE_TARGET) as run:
        job_id = run.running_job("train")
        show = ["scontrol", "show", "job", job_id]
        details = subprocess.run(show, capture_output=True, text=True, check=True).stdout
        assert "Requeue=1" in details  # sbatch --requeue, from slurm-requeue: true
        # What preemption does to a job submitted with --requeue.
        subprocess.run(["scontrol", "requeue", job_id], check=True, timeout=60)
        deadline = time.monotonic() + 120
        while [s for j, s, _ in slurm_jobs(run.run_id()) if j == job_id] != ["PENDING"]:
            assert time.monotonic() < deadline, run.tail()
            time.sleep(0.5)
        # SLURM holds a requeued job back for a while; let it start again now, but not in
        # the second of the requeue: slurmd refuses the job credentials issued then.
        time.sleep(3)
        subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True)
        run.wait()
        jobs = slurm_jobs(run.run_id())
    assert [(j, s) for j, s, _ in jobs] == [(job_id, "COMPLETED")]
    ends = [r["JobState"] for r in job_records(run.run_id()) if r["JobId"] == job_id]
    assert len(ends) == 2 and ends[-1] == "COMPLETED"
