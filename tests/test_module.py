"""The workflow imported as a Snakemake module (``module`` + ``use rule *``) from another
folder: its scripts, schema, envs, captions and default config come from its own folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from studies import DRY_RUN_TIMEOUT, copy_workflow, run, tail

REPO = Path(__file__).resolve().parents[1]
TARGET = "resources/synthetic_music/records.csv"  # the synthesize job of the tiny study

IMPORTER = """
{configfile}

module avrobust:
    snakefile:
        "{workflow}/Snakefile"
    {config}


use rule * from avrobust
"""


def importer(tmp_path: Path, own_config: bool) -> tuple[Path, Path]:
    """A copy of the workflow and, beside it, a project importing it; both folders."""
    workflow = copy_workflow(REPO, tmp_path / "avrobust").resolve()
    project = tmp_path / "project"
    project.mkdir()
    text = IMPORTER.format(
        workflow=workflow,
        configfile=f'configfile: "{workflow}/config/tiny.yaml"' if own_config else "",
        config="config:\n        config" if own_config else "",
    )
    (project / "Snakefile").write_text(text)
    return workflow, project


def snakemake(project: Path, *args: str):
    """Snakemake in the importing project, with no ``--configfile``."""
    return run([sys.executable, "-m", "snakemake", *args], project, DRY_RUN_TIMEOUT)


def planned_rules(stdout: str) -> set[str]:
    """Rule names of the job-count table that a dry run prints."""
    rows = (line.split() for line in stdout.splitlines())
    return {row[0] for row in rows if len(row) == 2 and row[1].isdigit()}


@pytest.mark.slow
@pytest.mark.parametrize("own_config", [True, False], ids=["config-handed-over", "default"])
def test_module_dry_run_plans_the_study(tmp_path: Path, own_config: bool) -> None:
    _, project = importer(tmp_path, own_config)
    done = snakemake(project, "-n", "--quiet", "rules")
    assert done.returncode == 0, tail(done.stdout, 80)
    planned = planned_rules(done.stdout)
    assert {"synthesize", "train", "evaluate", "table", "findings", "all"} <= planned, planned
    assert not (project / "config.yaml").exists()


@pytest.mark.slow
def test_module_runs_a_job_with_its_own_library(tmp_path: Path) -> None:
    workflow, project = importer(tmp_path, own_config=True)
    done = snakemake(project, TARGET, "--cores", "2")
    assert done.returncode == 0, tail(done.stdout, 80)
    assert (project / TARGET).is_file()
    log = (project / "logs" / "synthetic_music" / "synthesize.log").read_text()
    assert f"library: {workflow / 'avmodels'}\n" in log, log
    assert not (workflow / "resources").exists()
