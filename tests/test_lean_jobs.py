"""Each workflow job imports only the heavy packages its step uses.

A job is a fresh interpreter: every package its script imports at the top (directly or through
``avmodels``) is paid by every job of its rule before the step starts. The check runs the
scripts' own import statements in a fresh interpreter and reads ``sys.modules``.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow_scripts"
#: Packages costing a noticeable part of a job's start-up, by top-level name.
HEAVY = {
    "torch", "torchvision", "torchaudio", "pandas", "scipy", "sklearn", "matplotlib", "PIL",
    "yt_dlp",
}  # fmt: skip
NETWORKS = {"torch"}  # steps running networks read manifests and write CSVs with csv
ANALYSES = {"torch", "pandas"}  # the analyses pick clips by class and summarise with pandas
FIGURES = {"matplotlib", "PIL", "pandas"}  # PIL comes with matplotlib
#: Heavy packages each step may import when it starts; all others stay out.
ALLOWED: dict[str, set[str]] = {
    "train": NETWORKS,
    "evaluate": NETWORKS,
    "autoattack": NETWORKS,
    "finetune": NETWORKS,
    "memory_bank": NETWORKS,
    "localization": ANALYSES,
    "embeddings": ANALYSES,
    "budget_figure": FIGURES,
    "localization_figure": FIGURES,
    "tsne_figure": FIGURES,  # scikit-learn only inside the t-SNE call
    "table": {"pandas"},
    "findings": {"pandas"},
    "autoattack_table": {"pandas"},
    "manifest": {"pandas"},
    "preprocess": {"pandas"},
    "preprocess_local": {"pandas"},
    "synthesize": {"scipy"},
    "download": set(),  # yt-dlp only when a clip is fetched
    "fetch_list": set(),
    "list_records": set(),
    "local_sources": set(),
    "own_sources": set(),
    "visual_weights": set(),
}


def import_lines(script: Path) -> list[str]:
    """The script's top-level import statements, as source."""
    tree = ast.parse(script.read_text())
    return [ast.unparse(n) for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]


def heavy_imports(lines: list[str]) -> set[str]:
    """Heavy packages in ``sys.modules`` of a fresh interpreter after running ``lines``."""
    probe = "import json, sys; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    code = "\n".join([*lines, probe])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=SCRIPTS)
    assert out.returncode == 0, out.stderr.strip().splitlines()[-1:]
    return set(json.loads(out.stdout.splitlines()[-1])) & HEAVY


def test_every_script_is_listed():
    assert {p.stem for p in SCRIPTS.glob("*.py") if not p.stem.startswith("_")} == set(ALLOWED)


GROUPS = sorted({tuple(sorted(allowed)) for allowed in ALLOWED.values()})


@pytest.mark.parametrize("allowed", GROUPS, ids=lambda g: "+".join(g) or "none")
def test_jobs_import_only_what_their_steps_use(allowed):
    """One interpreter per allowed set: the steps sharing it import together (the packages
    loaded are the union of each step's), and a step over its set is then named alone."""
    steps = sorted(s for s, a in ALLOWED.items() if tuple(sorted(a)) == allowed)
    lines = [line for step in steps for line in import_lines(SCRIPTS / f"{step}.py")]
    if heavy_imports(lines) <= set(allowed):
        return
    over = {
        s: sorted(heavy_imports(import_lines(SCRIPTS / f"{s}.py")) - set(allowed)) for s in steps
    }
    pytest.fail(
        f"start-up imports beyond {list(allowed)}: { {s: o for s, o in over.items() if o} }"
    )


def test_probe_sees_a_heavy_import():
    """The check can fail: a script importing scikit-learn is caught."""
    assert heavy_imports(["import sklearn.manifold"]) >= {"sklearn"}


def test_metrics_import_no_torch():
    """The table metrics are plain arithmetic on percentages."""
    assert heavy_imports(
        ["import avmodels.robustness.metrics", "import avmodels.study.tables"]
    ) <= {"pandas"}


def test_startup_bench_runs_a_job_to_its_entry():
    """bench/startup.py writes Snakemake's own preamble and stamps each stage in order."""
    path = SCRIPTS.parent / "bench" / "startup.py"
    spec = importlib.util.spec_from_file_location("bench_startup", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    runs = bench.measure(("fetch_list",), reps=1)["fetch_list"]
    walls = [runs[0][stage][0] for stage in bench.STAGES]
    assert walls == sorted(walls) and walls[0] > 0
    assert "snakemake preamble start" in bench.preamble("fetch_list", Path("/nonexistent"))
