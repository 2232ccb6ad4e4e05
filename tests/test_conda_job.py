"""A job of the workflow imports the workflow's own ``avmodels`` with the environment
Snakemake gives a conda job (``--sdm conda``).

No conda is reachable here, so the test reproduces a conda job, and says what it leaves out:

- reproduced: Snakemake clears ``PYTHONPATH`` (and ``R_LIBS``, ``PERLLIB``, ``PERL5LIB``) in a
  conda job's environment: ``tests/conda_job.py`` starts every process of the run that way
  (the test checks that the installed Snakemake still clears them);
- reproduced: the job runs under the environment's own ``python``, whose site-packages can
  hold an installed ``avmodels`` (an env that installs the project, a ``pip install .``): a
  venv whose site-packages hold a copy of the package that fails when imported, with the
  dependencies reached through a ``.pth`` file; Snakemake itself runs under it too, so the
  job's interpreter is the same;
- not reproduced: creating and activating the environment (conda's PATH and variables).
"""

from __future__ import annotations

import importlib
import inspect
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conda_job import CLEARED
from studies import IGNORED, copy_workflow, tail

REPO = Path(__file__).resolve().parents[1]
TARGET = "resources/synthetic_music/records.csv"  # the synthesize job of the tiny study
DECOY = "raise ImportError('the avmodels installed in the job environment was imported')\n"


def conda_like_env(root: Path) -> Path:
    """A venv standing for the job's conda environment; its python."""
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    deps = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    (site / "dependencies.pth").write_text("".join(f"{p}\n" for p in sorted(deps)))
    shutil.copytree(REPO / "avmodels", site / "avmodels", ignore=IGNORED)
    with (site / "avmodels" / "__init__.py").open("a") as fh:
        fh.write(DECOY)
    return python


def job_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env  # ffmpeg from this interpreter's bin directory


def test_snakemake_clears_pythonpath_in_conda_jobs() -> None:
    source = inspect.getsource(importlib.import_module("snakemake.shell"))
    assert "conda_block_conflicting_envvars" in source
    assert all(f'"{var}"' in source for var in CLEARED)


@pytest.mark.slow
def test_conda_job_imports_the_workflows_library(tmp_path: Path) -> None:
    root = copy_workflow(REPO, tmp_path / "workflow").resolve()
    python = conda_like_env(tmp_path / "env")
    env = job_env()
    installed = subprocess.run(
        [python, "-c", "import torch, snakemake, avmodels"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert "the avmodels installed in the job environment" in installed.stderr  # it shadows

    run = subprocess.run(
        [python, REPO / "tests" / "conda_job.py", TARGET, "--cores", "2"]
        + ["--configfile", "config/tiny.yaml"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, tail(run.stderr, 80)
    log = (root / "logs" / "synthetic_music" / "synthesize.log").read_text()
    assert f"library: {root / 'avmodels'}\n" in log, log
    assert (root / TARGET).is_file()
