"""Provenance records: where each output's record lies and the sha256 of files.

Every workflow output ``X`` gets a record ``X.prov.json`` beside it, written by
``avmodels.workflow.jobs.job``: the rule, its wildcards and parameters (``code``: the step's code
hash, :mod:`avmodels.workflow.codehash`), the sha256 of its inputs and of the output, the records of
the inputs, seed, package versions, device, host and times. Workflow steps reach this
module through the job harness, so it holds only what records need. It lies outside
:mod:`avmodels.workflow` because the study's tables name each cell's record with
:func:`record_path`.

Command line: ``avrobust {trace,audit,diff,code} ...`` (:mod:`avmodels.workflow.cli`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from avmodels.data.fetch import sha256_file

RECORD_SUFFIX = ".prov.json"
UNHASHED = {".snakemake_timestamp"}  # Snakemake's own marker in directory outputs


def record_path(output: str | Path) -> Path:
    """Where the provenance record of an output lives: beside it, ``<name>.prov.json``."""
    output = Path(output)
    return output.with_name(output.name + RECORD_SUFFIX)


def file_hash(path: str | Path) -> str:
    """sha256 of a file; for a directory, of its files' relative names and hashes
    (Snakemake's timestamp marker left out)."""
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_dir():
        children = (p for p in path.rglob("*") if p.is_file() and p.name not in UNHASHED)
        for child in sorted(children):
            digest.update(f"{child.relative_to(path)}:{file_hash(child)}\n".encode())
        return digest.hexdigest()
    return sha256_file(path)
