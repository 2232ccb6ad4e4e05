"""What every workflow step does around its work: logging, threads, provenance.

The workflow's scripts hand their ``snakemake`` object to :func:`job`; this
module only reads its attributes (input, output, params, log, threads, rule),
so the library never imports Snakemake.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

from avmodels.provenance import file_hash, record_path

PACKAGES = ("torch", "torchvision", "torchaudio", "numpy", "pandas", "scikit-learn", "yt-dlp")


def package_versions(names: Iterable[str] = PACKAGES, missing: str | None = None) -> dict[str, str]:
    """Python's version and the installed distributions' ``names``; one not installed is left
    out, or given as ``missing``."""
    found = {"python": platform.python_version()}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if missing is not None:
                found[name] = missing
    return found


def _named(io: Any) -> dict[str, Any]:
    """Named entries of a Snakemake input/output object, positional ones by index."""
    names = dict(io.items()) if hasattr(io, "items") else {}
    listed = {
        v for value in names.values() for v in (value if isinstance(value, list) else [value])
    }
    extra = [str(p) for p in io if str(p) not in listed]
    named = {k: [str(p) for p in v] if isinstance(v, list) else str(v) for k, v in names.items()}
    if extra:
        named["_"] = extra
    return named


def _flat(paths: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for value in paths.values():
        out.extend(value if isinstance(value, list) else [value])
    return out


def _device() -> str:
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    return "cpu"


FAILURES_SUFFIX = ".failures"


def failed_attempts(output_pattern: str) -> Callable[[Any], int]:
    """A ``params`` function: how many times the job of ``output_pattern`` has failed.

    A step run with ``on_error`` turns its failure into an output that says so and appends a
    line to ``<first output>.failures``; the count then differs from the one recorded with the
    failed run, so the next run retries the step. The function takes the wildcards only:
    Snakemake leaves parameters computed from ``output`` out of its rerun trigger.
    """

    def attempts(wildcards: Any) -> int:
        path = Path(output_pattern.format(**dict(wildcards.items())) + FAILURES_SUFFIX)
        return len(path.read_text().splitlines()) if path.exists() else 0

    return attempts


@contextmanager
def job(
    smk: Any,
    seed: int | None = None,
    on_error: Callable[[str], None] | None = None,
) -> Iterator[logging.Logger]:
    """Run a workflow step: log to its log file, then record provenance for its outputs.

    ``on_error(reason)``, when given, writes outputs that mark the step as failed instead of
    failing the workflow (the reason and traceback go to the log, the failure is counted
    for :func:`failed_attempts`), so one failed evaluation leaves a marked gap in the tables.
    """
    log_file = smk.log[0] if len(smk.log) else None
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w"))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(message)s", handlers=handlers, force=True
    )
    threads = str(getattr(smk, "threads", 1))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, threads)
    started = time.time()
    logger = logging.getLogger(f"avmodels.{smk.rule}")
    try:
        yield logger
    except Exception as err:
        if on_error is None:
            logger.exception("step failed")
            raise
        reason = f"{type(err).__name__}: {err}".splitlines()[0]
        logger.exception("step failed, output marked as failed: %s", reason)
        on_error(reason)
        with open(str(smk.output[0]) + FAILURES_SUFFIX, "a") as fh:
            fh.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')}\t{reason}\n")
    inputs = _named(smk.input)
    outputs = _named(smk.output)
    record = {
        "rule": smk.rule,
        "wildcards": dict(smk.wildcards.items()),
        "params": {k: v for k, v in smk.params.items()},
        "inputs": {p: file_hash(p) for p in _flat(inputs) if Path(p).exists()},
        "input_records": {p: str(record_path(p)) for p in _flat(inputs) if record_path(p).exists()},
        "seed": seed,
        "versions": package_versions(),
        "device": _device(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "seconds": round(time.time() - started, 3),
    }
    for path in _flat(outputs):
        if Path(path).exists():
            entry = dict(record, output=path, output_hash=file_hash(path))
            record_path(path).write_text(json.dumps(entry, indent=1, sort_keys=True, default=str))
