"""Run every benchmark under bench/ and write bench/RESULTS.md and bench/results.json.

Each benchmark module exposes ``run(quick: bool = False) -> list[dict]`` whose rows hold
``benchmark, figure, value, target, met`` (``target``/``met`` None: informative) plus any
extra measurements. Modules run in a fixed order (others found under bench/ follow, sorted);
a module that raises becomes one ERROR row with its one-line reason, a row carrying an
``error`` key is an ERROR row too, and the other rows are kept. Optional row keys:
``profile`` (text explaining a missed target) and ``section`` ({"title", "body"}: Markdown
written as its own section). A missed target without a ``profile`` gets the module's
``profile(row, quick)`` if it defines one, else a cProfile of the module's quick run.

    python bench/run_all.py [--quick] [--only NAME ...] [--update] [--no-profile]
                            [--out bench/RESULTS.md]

``--only NAME --update`` re-measures those modules and keeps the other modules' rows of the
existing ``results.json`` beside ``--out``; the report names what was re-measured and when.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import importlib.util
import json
import logging
import os
import platform
import pstats
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType

from avmodels.workflow.jobs import package_versions

BENCH = Path(__file__).resolve().parent
ORDER = (
    "attack_overhead",
    "vs_torchattacks",
    "fgsm_sweep",
    "sparse_code",
    "frame_formats",
    "data_loading",
    "startup",
    "workflow",
)
PACKAGES = (
    "torch",
    "torchvision",
    "torchaudio",
    "numpy",
    "scikit-learn",
    "pandas",
    "snakemake",
    "torchattacks",
    "soundfile",
    "imageio-ffmpeg",
)
TOP = 5
log = logging.getLogger("bench")


def module_names() -> list[str]:
    """Benchmarks under bench/: the fixed order first, then any other module, sorted."""
    found = {p.stem for p in BENCH.glob("*.py") if not p.stem.startswith("_")} - {"run_all"}
    return [n for n in ORDER if n in found] + sorted(found - set(ORDER))


def load(name: str) -> ModuleType:
    """Import ``bench/<name>.py`` by file."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def reason(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}".strip().splitlines()
    return text[0] if text else type(err).__name__


def error_row(name: str, why: str) -> dict:
    return {"benchmark": name, "figure": "run()", "value": None, "target": None, "met": None} | {
        "error": why
    }


def status(row: dict) -> str:
    if "error" in row:
        return "ERROR"
    return {None: "info", True: "PASS", False: "MISS"}.get(row.get("met"), str(row.get("met")))


def run_module(name: str, quick: bool) -> tuple[ModuleType | None, list[dict], float]:
    """(module, rows, seconds); a failure becomes one ERROR row."""
    start = time.perf_counter()
    module = None
    try:
        module = load(name)
        rows = list(module.run(quick=quick))
        for row in rows:
            missing = {"benchmark", "figure", "value", "target", "met"} - set(row)
            if missing and "error" not in row:
                raise ValueError(f"row {row.get('figure')!r} lacks {sorted(missing)}")
    except Exception as err:  # one failing benchmark must not lose the others' rows
        traceback.print_exc()
        rows = [error_row(name, reason(err))]
    return module, rows, time.perf_counter() - start


def cprofile_quick(module: ModuleType) -> str:
    """Top functions of the module's quick run: by own time, and avmodels ones by cumulative."""
    profiler = cProfile.Profile()
    try:
        profiler.runcall(module.run, quick=True)
    except Exception as err:
        return f"profiling run failed: {reason(err)}"
    listing = pstats.Stats(profiler).stats  # type: ignore[attr-defined]

    def fmt(key: tuple, value: tuple, col: int) -> str:
        where = "/".join(Path(key[0]).parts[-2:]) if "/" in key[0] else key[0]
        return f"  {value[col]:7.3f} s  {where}:{key[1]}({key[2]})"

    own = sorted(listing.items(), key=lambda kv: kv[1][2], reverse=True)[:TOP]
    ours = [kv for kv in listing.items() if f"{os.sep}avmodels{os.sep}" in kv[0][0]]
    ours = sorted(ours, key=lambda kv: kv[1][3], reverse=True)[:TOP]
    lines = [
        f"cProfile of the whole `{module.__name__[6:]}.run(quick=True)` (both sides of each "
        f"ratio; the sides' times are in the measurements above), top {TOP} by own time:"
    ]
    lines += [fmt(k, v, 2) for k, v in own]
    if ours:
        lines += [f"avmodels functions by cumulative time, top {TOP}:"]
        lines += [fmt(k, v, 3) for k, v in ours]
    return "\n".join(lines)


def explain(module: ModuleType | None, row: dict, quick: bool, cache: dict) -> str:
    """The profile note of a missed target."""
    if row.get("profile"):
        return str(row["profile"])
    if module is None:
        return "no profile: the module could not be loaded"
    if hasattr(module, "profile"):
        return str(module.profile(row, quick))
    if module.__name__ not in cache:
        cache[module.__name__] = cprofile_quick(module)
    return cache[module.__name__]


def machine() -> dict:
    """CPU model, cores, memory, GPU, OS, load."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines()
                 if ln.startswith("model name")]  # fmt: skip
        cpu = names[0] if names else cpu
    memory = None
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total = next(ln for ln in meminfo.read_text().splitlines() if ln.startswith("MemTotal"))
        memory = round(int(total.split()[1]) / 2**20, 1)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = "none"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    except ImportError:
        gpu = "unknown (torch not importable)"
    return {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gib": memory,
        "gpu": gpu,
        "os": platform.platform(),
        "host": platform.node(),
    }


def versions() -> dict[str, str]:
    return package_versions(PACKAGES, missing="not installed")


def fmt_value(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int | float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.4g}"
    return str(value)


def fmt_target(row: dict) -> str:
    """A string target as given; a bare number gets the comparison that ``met`` implies."""
    target, value, met = row.get("target"), row.get("value"), row.get("met")
    if target is None:
        return ""
    if isinstance(target, int | float) and isinstance(value, int | float) and met is not None:
        op = "<=" if (value <= target) == bool(met) else ">="
        return f"{op} {fmt_value(target)}"
    return str(target)


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def extras(row: dict) -> dict:
    skip = {"benchmark", "figure", "value", "target", "met", "error", "status"}
    skip |= {"profile", "profile_note", "section"}
    return {k: v for k, v in row.items() if k not in skip}


#: Library choices made on measurements, with the figures they rested on (the modules'
#: docstrings point here instead of carrying numbers that would go stale).
CHOICES = """\
- Clip storage (`avmodels.data.clips`; rows `frame_formats`). Frames are one packed baseline-JPEG
  stream with a byte-offset index: when chosen (10 s clip at 455x256) it read a random frame
  as fast as one JPEG file per frame (~1.6 ms, decode bound) with the same bytes (~1.7 MB),
  in 4 files per clip instead of 82; a uint8 `.npy` read in ~0.8 ms but took ~17x the bytes,
  PNG ~7x the bytes and ~6x the read time, and an H.264 mp4 was half the size but ~100x
  slower to seek. Audio is PCM16 WAV: it read a 65535-sample window ~3x faster than FLAC,
  which would save under 3 % of a clip's bytes.
- JPEG decoding (`avmodels.data.dataset`; rows `data_loading`). simplejpeg (libjpeg-turbo) gives
  the pixels of Pillow's decode 3.5x faster for 48-96 px frames and 1.5x for 455x256 ones
  (measured when chosen; no row of its own).
- No torchvision in the jobs (`avmodels.models.resnet`, `avmodels.data.dataset`). Importing
  torchvision pulls in `torch._dynamo`, about 2 s per process when measured (no row of its own);
  every workflow job builds the ResNet18 trunk and the evaluation transforms, so both live here."""


def markdown(report: dict) -> str:
    m, v, rows = report["machine"], report["versions"], report["rows"]
    counts = {s: sum(r["status"] == s for r in rows) for s in ("PASS", "MISS", "ERROR", "info")}
    mode = " --quick" if report["quick"] else ""
    out = [
        "# Benchmark results",
        "",
        f"Written by `make bench` (`python bench/run_all.py{mode}`) on {report['date']} "
        f"in {report['seconds'] / 60:.1f} min: {counts['PASS']} PASS, {counts['MISS']} MISS, "
        f"{counts['ERROR']} ERROR, {counts['info']} informative rows.",
        "",
        "Each figure is a ratio of times measured side by side in this one run (repetitions "
        "interleaved, medians), except where the figure names an absolute quantity: absolute "
        "times vary between machines. **This machine is shared and noisy**: other people's "
        "jobs run beside the benchmarks (load average "
        f"{report['load_start']} at the start, {report['load_end']} at the end, on "
        f"{m['usable_cores']} cores), so wall-clock figures are inflated; the per-benchmark "
        "scripts time CPU seconds of one thread where they can.",
        "",
        *(
            [
                f"Not present (skipped): {', '.join(report['absent'])}.",
                "",
            ]
            if report["absent"]
            else []
        ),
        *(
            f"Re-measured on {u['date']} (`--only {' '.join(u['modules'])} --update`, load "
            f"average {u['load']}): the rows of {', '.join(u['modules'])}.\n"
            for u in report.get("updates", [])
        ),
        "## Machine",
        "",
        f"- CPU: {m['cpu']}, {m['logical_cores']} logical cores ({m['usable_cores']} usable)",
        f"- memory: {m['memory_gib']} GiB",
        f"- GPU: {m['gpu']}",
        f"- OS: {m['os']}",
        "",
        "## Versions",
        "",
        ", ".join(f"{k} {val}" for k, val in v.items()),
        "",
        "## Results",
        "",
        "| benchmark | figure | value | target | met |",
        "|---|---|---:|---|---|",
    ]
    for r in rows:
        value = r.get("error", "") if r["status"] == "ERROR" else fmt_value(r.get("value"))
        out.append(
            f"| {r['benchmark']} | {cell(str(r['figure']))} | {cell(value)} "
            f"| {cell(fmt_target(r))} | {r['status']} |"
        )
    missed = [r for r in rows if r["status"] == "MISS"]
    if missed:
        out += ["", "## Missed targets", ""]
        for r in missed:
            out += [f"### {r['benchmark']}: {r['figure']}", ""]
            out += [f"{fmt_value(r['value'])} against a target of {fmt_target(r)}."]
            if extras(r):
                measured = json.dumps(extras(r), default=str)
                out += ["", f"Measurements: `{measured}`"]
            if r.get("profile_note"):
                out += ["", "```", r["profile_note"], "```"]
            out += [""]
    errors = [r for r in rows if r["status"] == "ERROR"]
    if errors:
        out += ["", "## Errors", ""]
        out += [f"- {r['benchmark']}: {r['error']}" for r in errors]
    for r in rows:
        if r.get("section"):
            out += ["", f"## {r['section']['title']}", "", r["section"]["body"]]
    out += ["", "## Choices made on these measurements", "", CHOICES]
    out += ["", "## Benchmark run times", ""]
    out += [f"- {name}: {sec:.0f} s" for name, sec in report["module_seconds"].items()]
    return "\n".join(out) + "\n"


def merged(previous: dict, report: dict) -> dict:
    """``previous`` with the modules of ``report`` re-measured: their rows and run times
    replaced, in the modules' order; the date, machine and versions stay the full run's,
    and ``updates`` lists each partial run."""
    ran = set(report["module_seconds"])
    kept = [r for r in previous["rows"] if r["benchmark"] not in ran]
    order = {name: i for i, name in enumerate([*ORDER, *sorted(ran)])}
    rows = sorted(kept + report["rows"], key=lambda r: order.get(r["benchmark"], len(order)))
    update = {"date": report["date"], "modules": sorted(ran), "load": report["load_start"]}
    return previous | {
        "rows": rows,
        "module_seconds": previous["module_seconds"] | report["module_seconds"],
        "updates": [*previous.get("updates", []), update],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fast smoke run of every benchmark")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these modules")
    parser.add_argument(
        "--update", action="store_true", help="keep the other modules' rows of results.json"
    )
    parser.add_argument("--no-profile", action="store_true", help="no cProfile of missed targets")
    parser.add_argument("--out", type=Path, default=BENCH / "RESULTS.md")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import torch

    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    sys.path[:0] = [str(BENCH.parent), str(BENCH)]  # avmodels, and the shared bench helpers
    names = [n for n in module_names() if not args.only or n in args.only]
    report = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine(),
        "versions": versions() | {"torch_threads": str(args.threads)},
        "load_start": ", ".join(f"{x:.1f}" for x in os.getloadavg()),
        "absent": [n for n in ORDER if n not in module_names()],
    }
    start, rows, seconds, cache = time.perf_counter(), [], {}, {}
    for name in names:
        log.info("running %s", name)
        module, found, seconds[name] = run_module(name, args.quick)
        for row in found:
            row["status"] = status(row)
            if row["status"] == "MISS" and not args.no_profile:
                row["profile_note"] = explain(module, row, args.quick, cache)
            log.info("  %s %s: %s", row["status"], row["figure"], row.get("value"))
        rows += found
    report |= {
        "rows": rows,
        "module_seconds": seconds,
        "seconds": time.perf_counter() - start,
        "load_end": ", ".join(f"{x:.1f}" for x in os.getloadavg()),
    }
    if args.update:
        report = merged(json.loads(args.out.with_name("results.json").read_text()), report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown(report))
    args.out.with_name("results.json").write_text(json.dumps(report, indent=1, default=str))
    print(args.out.read_text())


if __name__ == "__main__":
    main()
