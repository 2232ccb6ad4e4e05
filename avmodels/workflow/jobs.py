"""What every workflow step does around its work: logging, threads, provenance.

The workflow's scripts hand their ``snakemake`` object to :func:`job`; this
module only reads its attributes (input, output, params, log, threads, rule),
so the library never imports Snakemake.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import platform
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

from avmodels import atomic
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


def gpu_asked(smk: Any) -> bool:
    """Whether the job's resources ask for a GPU (``gpu`` or ``gpus`` above zero)."""
    resources = dict(smk.resources.items()) if hasattr(smk, "resources") else {}
    return any(_count(resources.get(key)) > 0 for key in ("gpu", "gpus"))


def _count(value: Any) -> int:
    try:
        return int(str(value).rsplit(":", 1)[-1])  # "1" or SLURM's "type:1"
    except ValueError:
        return 0


def _choose_device(smk: Any, logger: logging.Logger) -> str:
    """Pick the job's device (config ``device`` and its resources), log it, hand it to the
    library; stop the job in one line when a GPU it needs is not usable. Steps that import
    no torch and ask for no GPU run on the CPU."""
    config = getattr(smk, "config", None) or {}
    request = str(config.get("device", "auto"))
    if "torch" not in sys.modules and not gpu_asked(smk) and request == "auto":
        logger.info("device: cpu (a step without torch)")
        return "cpu"
    from avmodels import devices  # imports torch: only steps that run networks pay for it

    try:
        device = devices.choose(str(config.get("device", "auto")), gpu_asked(smk))
    except (devices.DeviceUnavailable, ValueError) as err:
        logger.error("device: %s", err)  # the one line, on stderr and in the log
        raise SystemExit(1) from None
    os.environ[devices.ENV] = str(device)
    logger.info("device: %s", devices.describe(device))
    return str(device)


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


UNREADABLE_SUFFIX = ".unreadable"


def written_by_workflow(path: str | Path) -> bool:
    """Whether ``path`` has a provenance record of a workflow step that wrote it there."""
    record = record_path(path)
    try:
        written = json.loads(record.read_text()).get("output")
    except (OSError, ValueError, AttributeError):
        return False
    return isinstance(written, str) and Path(written).resolve() == Path(path).resolve()


def set_aside(path: str | Path) -> Path | None:
    """Move an input that cannot be loaded to ``<path>.unreadable`` when a workflow step wrote
    it, so that the next run makes that step write it again; a file the workflow did not
    write (or one already gone) is left alone. Returns where it went, if moved."""
    path = Path(path)
    if not (path.is_file() and written_by_workflow(path)):
        return None
    moved = path.with_name(path.name + UNREADABLE_SUFFIX)
    try:
        os.replace(path, moved)
    except FileNotFoundError:  # another job moved it first
        return None
    return moved


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
    The job first picks and logs its device (:mod:`avmodels.devices`) and exits in one line
    when a GPU it asks for is not usable, then logs the folder of the library it runs. A bad
    input (:class:`avmodels.atomic.InputError`) ends the job in one line instead, and an input
    the workflow wrote that cannot be loaded is set aside (:func:`set_aside`), so the next run
    rebuilds it and what reads it.

    A step run as Snakemake's script (``smk`` is its ``snakemake``) ends its process when the
    block is done and its provenance written (:func:`end_process`), so the script's ``with
    job(...)`` block is its last statement.
    """
    collect_again()
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
    chosen = _choose_device(smk, logger)
    logger.info("library: %s", Path(__file__).resolve().parents[1])  # which avmodels runs
    try:
        yield logger
    except atomic.InputError as err:  # no output, marked or not, for a bad input
        moved = set_aside(err.path) if isinstance(err, atomic.UnreadableFile) else None
        again = f"; moved to {moved.name}, the next run writes it again" if moved else ""
        logger.error("%s%s", err, again)
        raise SystemExit(1) from None
    except Exception as err:
        if on_error is None:
            logger.exception("step failed")
            raise
        reason = f"{type(err).__name__}: {err}".splitlines()[0]
        logger.exception("step failed, output marked as failed: %s", reason)
        on_error(reason)
        failures = Path(str(smk.output[0]) + FAILURES_SUFFIX)
        earlier = failures.read_text() if failures.exists() else ""
        atomic.write_text(failures, f"{earlier}{time.strftime('%Y-%m-%dT%H:%M:%S')}\t{reason}\n")
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
        "device": chosen,
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "seconds": round(time.time() - started, 3),
    }
    for path in _flat(outputs):
        if Path(path).exists():
            entry = dict(record, output=path, output_hash=file_hash(path))
            text = json.dumps(entry, indent=1, sort_keys=True, default=str)
            atomic.write_text(record_path(path), text)
    if is_main_script(smk):
        end_process()


def collect_again() -> None:
    """Turn garbage collection back on, leaving the objects made so far out of it.

    ``workflow_scripts/_library.py`` turns collection off while the script imports its
    packages: torch's import makes hundreds of thousands of objects that live as long as the
    process, and collecting among them only costs time. :func:`gc.freeze` keeps them out of
    later collections too. Where collection is on already (a step run in-process), nothing
    changes.
    """
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def is_main_script(smk: Any) -> bool:
    """Whether ``smk`` is the ``snakemake`` object of the script running as ``__main__``."""
    main = sys.modules.get("__main__")
    return main is not None and getattr(main, "snakemake", None) is smk


def end_process() -> None:
    """End a finished step's process at once: flush and close the logs and the standard
    streams, then exit with status 0 without the interpreter's teardown (clearing torch's
    modules and objects is a noticeable part of a short job, and buys nothing: the step's
    outputs and records are written and closed). A step that left child processes (data loader
    workers) or threads running exits the usual way, which stops and waits for them."""
    pool = sys.modules.get("multiprocessing")  # a step that never imported it started none
    if (pool is not None and pool.active_children()) or any(
        t.is_alive() and not t.daemon
        for t in threading.enumerate()
        if t is not threading.main_thread()
    ):
        return
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(0)
