"""Snakemake's command line, starting every process with the environment of a conda job.

Under ``--sdm conda`` Snakemake (``snakemake.shell``) runs a job's command with its own
environment less ``R_LIBS``, ``PYTHONPATH``, ``PERLLIB`` and ``PERL5LIB``, after activating
the job's environment, whose ``python`` then runs the job's script. This runner applies the
first part to every process Snakemake starts, no conda needed; the interpreter it runs
under stands for the second (``python tests/conda_job.py SNAKEMAKE_ARGS...``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from snakemake.cli import main

# What snakemake.shell removes from a conda job's environment (Snakemake 9).
CLEARED = ("R_LIBS", "PYTHONPATH", "PERLLIB", "PERL5LIB")


class CondaJobPopen(subprocess.Popen):
    """``subprocess.Popen`` with the variables of :data:`CLEARED` removed."""

    def __init__(self, args: Any, *rest: Any, env: Any = None, **kwargs: Any) -> None:
        env = dict(os.environ if env is None else env)
        for var in CLEARED:
            env.pop(var, None)
        super().__init__(args, *rest, env=env, **kwargs)


if __name__ == "__main__":
    subprocess.Popen = CondaJobPopen  # type: ignore[misc]
    main(sys.argv[1:])
