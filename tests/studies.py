"""Running copies of the workflow with a real Snakemake, for the end-to-end tests.

The tiny study (config/tiny.yaml) runs once per test session in a copy of the workflow
(the ``study`` fixture in conftest.py); tests that change it work on copies of the copy.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
CONFIG = "config/tiny.yaml"
# What a copy of the workflow consists of; caches and build outputs inside are left out.
WORKFLOW_ENTRIES = (
    "Snakefile",
    "pyproject.toml",
    "config.yaml",
    "avmodels",
    "workflow_scripts",
    "rules",
    "config",
    "profiles",
    "envs",
    "report",
)
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".snakemake")
STUDY_TIMEOUT = 3600  # s, a full tiny study on 2 cores
DRY_RUN_TIMEOUT = 600
TOOL_TIMEOUT = 300

# --- running Snakemake and the provenance commands ------------------------------------------


def _env() -> dict[str, str]:
    """This interpreter's bin directory first on PATH (``snakemake``, ``ffmpeg``)."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


def run(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a command in its own process group; the whole group is killed on timeout."""
    proc = subprocess.Popen(
        args,
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        out = _kill_group(proc)
        pytest.fail(f"{' '.join(args)} ran past {timeout} s in {cwd}\n{tail(out)}")
    except BaseException:
        _kill_group(proc)
        raise
    return subprocess.CompletedProcess(args, proc.returncode, out, "")


def _kill_group(proc: subprocess.Popen[str]) -> str:
    """Stop a command and everything it started; what it printed."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            return proc.communicate(timeout=30)[0] or ""
        except subprocess.TimeoutExpired:
            continue
    return ""


def snakemake(
    root: Path, *args: str, configfile: str = CONFIG, timeout: float = DRY_RUN_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "snakemake", *args, "--configfile", configfile]
    return run(command, root, timeout)


def avrobust(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``avrobust ...`` with the copy's library (cwd comes first)."""
    return run([sys.executable, "-m", "avmodels.workflow.cli", *args], root, TOOL_TIMEOUT)


def copy_workflow(source: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_ENTRIES:
        src = source / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=IGNORED)
        elif src.is_file():
            shutil.copy2(src, dest / name)
    return dest


def run_study(root: Path, configfile: str = CONFIG) -> float:
    """Run the whole study in ``root``; seconds taken."""
    start = time.monotonic()
    done = snakemake(root, "--cores", "2", "all", configfile=configfile, timeout=STUDY_TIMEOUT)
    seconds = time.monotonic() - start
    assert done.returncode == 0, f"study failed in {root}:\n{tail(done.stdout, 120)}"
    return seconds


@dataclass(frozen=True)
class Study:
    root: Path
    seconds: float
