"""Puts this workflow's own ``avmodels`` first on ``sys.path``; every script imports it first.

Snakemake runs a script as a copy under ``.snakemake/scripts/`` and appends this folder to
``sys.path``. A job in a conda environment (``--sdm conda``) gets no ``PYTHONPATH``, and an
``avmodels`` installed in that environment, or beside Snakemake, would come before the
workflow's folder. Importing this module first makes every job run the library beside its
scripts: the code whose hash the workflow records, wherever the workflow was imported from.

It also turns garbage collection off for the imports that follow: the step's ``job`` turns it
back on (``avmodels.workflow.jobs.collect_again``): a shorter start for every job
(``bench/RESULTS.md``, "Job start-up").
"""

import gc
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

if sys.path[:1] != [str(ROOT)]:
    sys.path.insert(0, str(ROOT))
_loaded = sys.modules.get("avmodels")
if _loaded is not None and Path(_loaded.__file__).resolve().parent != ROOT / "avmodels":
    raise ImportError(f"avmodels was imported from {_loaded.__file__}, not from {ROOT}")
gc.disable()  # until the step starts: torch's import makes objects that live as long as the job
