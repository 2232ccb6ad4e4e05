"""Checks a study with YouTube datasets runs before any job: JavaScript runtime, ffmpeg, a
writable clip store and free disk against the study's estimate.

``avrobust preflight STORE... [--need-gb N]`` runs them by hand.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

from avmodels.data import download, preprocess, probing
from avmodels.settings import DownloadSettings

GB = 1e9


class PreflightError(RuntimeError):
    """What is missing, in one line that says what to do."""


def clips_to_fetch(records_csv: str | Path, stores: Sequence[str | Path]) -> int | None:
    """Clips of a records CSV in none of ``stores`` (None: the records do not exist yet)."""
    path = Path(records_csv)
    if not path.is_file():
        return None
    with open(path, newline="", encoding="utf-8") as f:
        ids = {row.get("clip_id") or "" for row in csv.DictReader(f)}
    return sum(1 for i in ids if not (i and any(preprocess.find_video(s, i) for s in stores)))


def estimate_bytes(settings: DownloadSettings, pending: Sequence[int | None]) -> float:
    """Free disk the study needs: the clips still to fetch times ``mb_per_clip``; while a
    dataset's list is not known yet, at least ``min_free_gb``."""
    known = sum(n for n in pending if n is not None) * float(settings.mb_per_clip) * 1e6
    if all(n is not None for n in pending):
        return known
    return max(float(settings.min_free_gb) * GB, known)


def _writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".preflight.{uuid.uuid4().hex}"
        probe.write_bytes(b"x")
        probe.unlink()
    except OSError as err:
        raise PreflightError(
            f"clip store {folder} is not writable ({err.strerror or err}); fix its "
            "permissions or run the workflow from a folder you can write to"
        ) from None


def check(
    stores: Sequence[str | Path], need_bytes: float, js_runtime: str | None = None
) -> list[str]:
    """Run every check; returns what was found (one line each), raises
    :class:`PreflightError` at the first problem."""
    try:
        deno = download.deno_path(js_runtime)
    except download.RuntimeMissing as err:
        raise PreflightError(str(err)) from None
    try:
        ffmpeg = probing.ensure_ffmpeg()
        subprocess.run([ffmpeg, "-version"], capture_output=True, timeout=60, check=True)
    except (OSError, RuntimeError, subprocess.SubprocessError) as err:
        raise PreflightError(
            f"ffmpeg does not run ({str(err)[:120]}); reinstall imageio-ffmpeg "
            "(`pip install -e .`) or put an ffmpeg on PATH"
        ) from None
    found = [f"JavaScript runtime {deno}", f"ffmpeg {ffmpeg}"]
    for store in dict.fromkeys(Path(s) for s in stores):
        _writable(store)
    for store in dict.fromkeys(Path(s) for s in stores):
        free = shutil.disk_usage(store).free
        if free < need_bytes:
            raise PreflightError(
                f"only {free / GB:.1f} GB free at {store.resolve()}, the study needs about "
                f"{need_bytes / GB:.1f} GB; free space, move resources/ to a larger disk "
                "(a symlink works) or lower download.min_free_gb"
            )
        found.append(f"{free / GB:.1f} GB free at {store} (needed {need_bytes / GB:.1f} GB)")
    return found


def main(argv: list[str] | None = None) -> int:
    """``avrobust preflight STORE... [--need-gb N]``; exit status 1 when a check fails."""
    parser = argparse.ArgumentParser(prog="avrobust preflight", description=__doc__)
    parser.add_argument("stores", nargs="+", type=Path, help="clip store folders to check")
    parser.add_argument("--need-gb", type=float, default=0.0, help="free disk needed (GB)")
    parser.add_argument("--js-runtime", help="the JavaScript runtime (default: the deno wheel)")
    args = parser.parse_args(argv)
    try:
        for line in check(args.stores, args.need_gb * GB, args.js_runtime):
            print(line)
    except PreflightError as err:
        print(f"pre-flight: {err}", file=sys.stderr)
        return 1
    return 0
