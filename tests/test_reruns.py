"""What an edit of code or configuration reruns, checked with a real Snakemake on the tiny study.

One session fixture copies the workflow (library, scripts, rules, configs, profile; no
results or resources) into a temporary directory and runs ``config/tiny.yaml`` end to end.
Each check then makes one edit, asks Snakemake for its dry-run plan (every job it would run,
with its rule, wildcards and reason) and undoes the edit, file times included. Only the
reproducibility check (a second study from scratch) and the provenance ``diff`` check (a
budget change executed in a copy of the finished study) run jobs again.

The mechanism under test: ``profiles/default`` sets ``rerun-triggers: mtime, params, input,
software-env``, so a step reruns when one of its parameters changes; its configuration
values are parameters, and so is ``code``, the hash of the normalised code it reaches
(``avmodels.workflow.codehash.rule_code_hash``).
"""

from __future__ import annotations

import ast
import logging
import math
import os
import re
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml
from studies import (
    CONFIG,
    Study,
    avrobust,
    copy_workflow,
    run_study,
    snakemake,
    tail,
)

from avmodels.provenance import file_hash
from avmodels.workflow.plan import table_datasets, table_evaluations
from avmodels.workflow.plan import tables as plan_tables

pytestmark = pytest.mark.slow
log = logging.getLogger(__name__)

DATASET = "synthetic_music"
ALL_TABLES = {f"table{k}" for k in range(1, 7)}
# Rules made from evaluations (directly or through a table).
AFTER_EVALUATION = {"table", "findings", "budget_figure"}
# Rules that run attack code, and the figures made from the analyses among them.
ATTACK_USERS = {"evaluate", "localization", "embeddings", "localization_figure", "tsne_figure"}
# The APGD and Square jobs (the tiny study runs them) and their table.
AUTOATTACK = {"autoattack", "autoattack_table"}


# --- dry-run plans ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One job of a dry-run plan."""

    rule: str
    wildcards: dict[str, str]
    output: str
    reason: str

    def __str__(self) -> str:
        wc = ",".join(f"{k}={v}" for k, v in self.wildcards.items() if k != "dataset")
        return f"{self.rule}[{wc}] ({self.reason[:100]})"


JOB_RE = re.compile(r"^\s*(?:local)?rule (\w+):\s*$")
FIELD_RE = re.compile(r"^\s+(\w+): (.*)$")
STATS_RE = re.compile(r"^(\w+)\s+(\d+)$")


def parse_plan(text: str) -> list[Job]:
    """Jobs of ``snakemake --dry-run`` output (rule ``all`` left out).

    The jobs read are checked against the "Job stats" table Snakemake prints after them.
    """
    jobs: list[dict[str, str]] = []
    stats: Counter[str] = Counter()
    in_stats = False
    for line in text.splitlines():
        if line.startswith("Job stats:"):
            in_stats = True
        elif in_stats:
            found = STATS_RE.match(line.strip())
            if found and found.group(1) != "total":
                stats[found.group(1)] = int(found.group(2))
            elif not line.strip() and stats:
                in_stats = False
        elif found := JOB_RE.match(line):
            jobs.append({"rule": found.group(1)})
        elif jobs and (found := FIELD_RE.match(line)):
            jobs[-1].setdefault(found.group(1), found.group(2))
    assert Counter(job["rule"] for job in jobs) == stats, f"unreadable plan:\n{tail(text)}"
    return [
        Job(
            rule=job["rule"],
            wildcards=dict(
                pair.split("=", 1) for pair in job.get("wildcards", "").split(", ") if pair
            ),
            output=job.get("output", ""),
            reason=job.get("reason", ""),
        )
        for job in jobs
        if job["rule"] != "all"
    ]


def plan(root: Path, configfile: str = CONFIG) -> list[Job]:
    """What ``snakemake all`` would run now in ``root``."""
    done = snakemake(root, "--dry-run", "all", configfile=configfile)
    assert done.returncode == 0, f"dry run failed in {root}:\n{tail(done.stdout)}"
    jobs = parse_plan(done.stdout)
    if not jobs:
        assert "Nothing to be done" in done.stdout, tail(done.stdout)
    return jobs


def rules(jobs: list[Job]) -> set[str]:
    return {job.rule for job in jobs}


def of_rule(jobs: list[Job], rule: str) -> list[Job]:
    return [job for job in jobs if job.rule == rule]


def listing(jobs: list[Job]) -> str:
    return "\n".join(sorted(map(str, jobs))) or "(nothing)"


def evaluation_files(root: Path) -> set[str]:
    """The evaluation CSVs of a finished study, relative to its root."""
    found = (root / "results").glob("*/eval/*/*/*/*.csv")
    return {str(p.relative_to(root)) for p in found}


# --- edits that are undone -------------------------------------------------------------------


@contextmanager
def edited(path: Path, text: str) -> Iterator[Path]:
    """``path`` holds ``text`` inside the block; its bytes and times are restored after."""
    before, stat = path.read_bytes(), path.stat()
    assert text != before.decode(), f"the edit leaves {path} as it is"
    path.write_text(text)
    try:
        yield path
    finally:
        path.write_bytes(before)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@contextmanager
def touched(paths: list[Path]) -> Iterator[None]:
    """Every path's modification time is now (later than every output) inside the block."""
    stats = {p: p.stat() for p in paths}
    later = time.time() + 5
    try:
        for p in paths:
            os.utime(p, (later, later))
        yield
    finally:
        for p, st in stats.items():
            os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))


def edited_config(root: Path, name: str, change: dict[tuple[str, ...], object]) -> str:
    """A copy of the tiny config with values changed (by key path); its path from ``root``."""
    config = yaml.safe_load((root / CONFIG).read_text())
    for keys, value in change.items():
        node = config
        for key in keys[:-1]:
            node = node[key]
        assert keys[-1] in node, f"no {'.'.join(keys)} in {CONFIG}"
        node[keys[-1]] = value
    target = root / "config" / f"{name}.yaml"
    target.write_text(yaml.safe_dump(config, sort_keys=False))
    return str(target.relative_to(root))


def comment_edit(text: str) -> str:
    lines = text.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("def "))
    lines.insert(at, "# A remark on the function below; the code stays as it is.\n")
    return "".join(lines) + "\n# The end of the module.\n"


def docstring_edit(text: str) -> str:
    """The module docstring and the first function docstring reworded."""
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    documented = [tree] + [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and ast.get_docstring(node)
    ][:1]
    assert ast.get_docstring(tree) and len(documented) == 2, "no docstrings to edit"
    for node in documented:
        first = node.body[0].lineno - 1
        quote = '"""' if '"""' in lines[first] else "'''"
        lines[first] = lines[first].replace(quote, quote + "In short: ", 1)
    return "".join(lines)


def code_edit(text: str) -> str:
    """A real edit: one more module-level constant (the syntax tree changes)."""
    return text + "\nREVISION = 2  # a new name; nothing uses it\n"


# --- the promises ----------------------------------------------------------------------------


def test_second_run_does_nothing(study: Study) -> None:
    assert evaluation_files(study.root), "the study wrote no evaluations"
    jobs = plan(study.root)
    assert not jobs, f"a second run would run:\n{listing(jobs)}"


def test_touching_every_source_reruns_nothing(study: Study) -> None:
    root = study.root
    sources = [
        *(root / "avmodels").glob("**/*.py"),
        *(root / "avmodels").glob("**/*.yaml"),
        *(root / "workflow_scripts").glob("*.py"),
        *(root / "rules").glob("*.smk"),
        root / "Snakefile",
        root / "config.yaml",
        *(root / "config").glob("*.yaml"),
        *(root / "profiles").glob("**/*.yaml"),
        *(root / "envs").glob("*.yaml"),
    ]
    with touched(sources):
        jobs = plan(root)
    assert not jobs, f"touching the sources would rerun:\n{listing(jobs)}"


@pytest.mark.parametrize("edit", [comment_edit, docstring_edit], ids=["comment", "docstring"])
def test_comment_or_docstring_edit_reruns_nothing(study: Study, edit) -> None:
    path = study.root / "avmodels" / "robustness" / "attacks.py"
    with edited(path, edit(path.read_text())):
        jobs = plan(study.root)
    assert not jobs, f"a {edit.__name__} of attacks.py would rerun:\n{listing(jobs)}"


def test_table2_spec_edit_reruns_table2_and_findings(study: Study) -> None:
    path = study.root / "avmodels" / "study" / "table_specs" / "table2.py"
    if not path.is_file():
        pytest.skip(
            "avmodels/study/table_specs/table2.py does not exist: the Table 2 spec is not a module "
            "of its own, so no edit can reach Table 2 alone"
        )
    with edited(path, code_edit(path.read_text())):
        jobs = plan(study.root)
    assert rules(jobs) == {"table", "findings"}, listing(jobs)
    assert {job.wildcards["table"] for job in of_rule(jobs, "table")} == {"table2"}, listing(jobs)


def test_attack_code_edit_reruns_evaluations_and_their_users(study: Study) -> None:
    path = study.root / "avmodels" / "robustness" / "attacks.py"
    with edited(path, code_edit(path.read_text())):
        jobs = plan(study.root)
    assert not rules(jobs) & {"train", "memory_bank", "synthesize", "preprocess", "manifest"}, (
        listing(jobs)
    )
    assert rules(jobs) == ATTACK_USERS | AFTER_EVALUATION | AUTOATTACK, listing(jobs)
    evaluations = {job.output for job in of_rule(jobs, "evaluate")}
    assert evaluations == evaluation_files(study.root), listing(jobs)
    assert all("Params have changed" in job.reason for job in of_rule(jobs, "evaluate"))
    assert {job.wildcards["table"] for job in of_rule(jobs, "table")} == ALL_TABLES


def test_one_budget_change_reruns_that_level_only(study: Study) -> None:
    config = yaml.safe_load((study.root / CONFIG).read_text())
    budgets = config["evaluation"]["table_budgets"]
    assert budgets == {"single": 0.05, "multi": 0.025}, "the tiny budgets moved; update below"
    edited_name = edited_config(
        study.root, "single_budget", {("evaluation", "table_budgets", "single"): 0.04}
    )
    jobs = plan(study.root, edited_name)
    assert rules(jobs) <= {"evaluate"} | AFTER_EVALUATION, listing(jobs)
    evaluations = of_rule(jobs, "evaluate")
    # single-modality attacks at the new level, on the models of the budget curves/Table 1
    expected = {
        (model, attack)
        for model in ("concat", "audio", "visual")
        for attack in config["evaluation"]["attacks"]
    }
    assert {job.wildcards["eps"] for job in evaluations} == {"0.04"}, listing(jobs)
    assert {(j.wildcards["model"], j.wildcards["attack"]) for j in evaluations} == expected
    # Only Table 1 reports attacks at the single-modality budget; Tables 2-6 the multi one.
    assert {job.wildcards["table"] for job in of_rule(jobs, "table")} == {"table1"}, listing(jobs)


def test_variant_hyperparameter_change_reruns_that_variant_only(study: Study) -> None:
    config = yaml.safe_load((study.root / CONFIG).read_text())
    weight = config["variants"]["maxsim"]["train"]["loss_weight"]
    edited_name = edited_config(
        study.root, "maxsim_weight", {("variants", "maxsim", "train", "loss_weight"): weight / 2}
    )
    jobs = plan(study.root, edited_name)
    assert rules(jobs) == {"train", "evaluate", "table", "findings"} | AUTOATTACK, listing(jobs)
    assert {job.wildcards["model"] for job in jobs if "model" in job.wildcards} == {"maxsim"}
    maxsim_evaluations = {f for f in evaluation_files(study.root) if "/eval/maxsim/" in f}
    assert {job.output for job in of_rule(jobs, "evaluate")} == maxsim_evaluations
    # MaxSim is a row of the defense tables (3, 5, 6) only.
    tables = {job.wildcards["table"] for job in of_rule(jobs, "table")}
    assert tables == {"table3", "table5", "table6"}, listing(jobs)


def reversed_keys(value: object, path: tuple[str, ...] = ()) -> object:
    """Every mapping's keys in reverse order, but a table's datasets (its rows) as they are."""
    if isinstance(value, dict):
        keys = list(value) if path[:1] == ("tables",) and len(path) == 2 else list(value)[::-1]
        return {key: reversed_keys(value[key], (*path, key)) for key in keys}
    if isinstance(value, list):
        return [reversed_keys(item, path) for item in value]
    return value


def test_reordered_config_keys_rerun_nothing(study: Study) -> None:
    config = yaml.safe_load((study.root / CONFIG).read_text())
    reordered = yaml.safe_dump(reversed_keys(config), sort_keys=False)
    assert reordered != yaml.safe_dump(config, sort_keys=False)
    assert yaml.safe_load(reordered) == config
    target = study.root / "config" / "reordered.yaml"
    target.write_text(reordered)
    jobs = plan(study.root, str(target.relative_to(study.root)))
    assert not jobs, listing(jobs)


def test_exfmem_lam_edit_reruns_exfmem_steps_only(study: Study) -> None:
    config = yaml.safe_load((study.root / CONFIG).read_text())
    assert config["full_defense"]["mode"] == "finetune", "the tiny study moved; update below"
    edited_name = edited_config(
        study.root, "exfmem_lam", {("exfmem", "lam"): config["exfmem"]["lam"] * 2}
    )
    jobs = plan(study.root, edited_name)
    # the banks read only exfmem.size; the fine-tuning trains through the sparse coding
    assert rules(jobs) == {"finetune", "evaluate", "table", "findings"} | AUTOATTACK, listing(jobs)
    assert {job.wildcards["model"] for job in of_rule(jobs, "finetune")} == {"minsim"}
    # APGD and Square rerun on the ExFMem models only
    assert {job.wildcards["defense"] for job in of_rule(jobs, "autoattack")} <= {"exfmem"}
    exfmem_evaluations = {f for f in evaluation_files(study.root) if f.split("/")[4] == "exfmem"}
    assert exfmem_evaluations, "the study has no ExFMem evaluations"
    assert {job.output for job in of_rule(jobs, "evaluate")} == exfmem_evaluations
    shown = {
        table
        for table in plan_tables(config)
        for ds in table_datasets(config, table)
        if any(key.defense == "exfmem" for key in table_evaluations(config, table, ds))
    }
    tables = {job.wildcards["table"] for job in of_rule(jobs, "table")}
    assert tables == shown and tables < ALL_TABLES, listing(jobs)


def trace_cell(root: Path) -> list[str]:
    """``trace`` of one Table 3 cell (MinSim, audio-visual attack)."""
    done = avrobust(root, "trace", "results/tables/table3.csv", "--row", "minsim", "--col", "av")
    assert done.returncode == 0, done.stdout
    return done.stdout.splitlines()


def test_trace_reaches_data_origin_and_training(study: Study) -> None:
    root = study.root
    lines = trace_cell(root)
    text = "\n".join(lines)

    def first(pattern: str) -> int:
        found = [i for i, line in enumerate(lines) if re.search(pattern, line)]
        assert found, f"no line matches {pattern!r} in:\n{text}"
        return found[0]

    cell = first(r"^cell table3 .*method=minsim .*column=av")
    evaluation = first(r"eval/minsim/none/fgsm/[0-9.]+\.csv  \[evaluate\]")
    checkpoint = first(r"models/minsim/checkpoint\.pt  \[train\]")
    manifest = first(r"data/manifest_\w+\.csv  \[manifest\]")
    records_hash = file_hash(root / "resources" / DATASET / "records.csv")[:12]
    origin = first(rf"resources/{DATASET}/records\.csv  \[synthesize\]  sha256 {records_hash}")
    assert cell < evaluation < checkpoint < manifest < origin, text
    seed = yaml.safe_load((root / CONFIG).read_text())["datasets"][DATASET]["synthetic"]["seed"]
    assert re.search(rf"settings\.seed={seed}\b", "\n".join(lines[origin:])), text
    assert re.search(r"\[train\].* seed \d+", lines[checkpoint]), lines[checkpoint]


FINDING_RE = re.compile(
    r"^(unreadable|unrecorded|misplaced|missing|changed|stale|chain|code)\s+(\S+)\s+(.*)$"
)


def audit_findings(root: Path) -> tuple[int, set[tuple[str, str, str]]]:
    """Exit status of ``audit results`` and its findings as (kind, path, detail)."""
    done = avrobust(root, "audit", "results", "--workflow", str(root))
    found = {m.groups() for m in map(FINDING_RE.match, done.stdout.splitlines()) if m}
    assert done.stdout.rstrip().splitlines()[-1].startswith("audit: "), done.stdout
    return done.returncode, found


def test_untouched_study_audits_and_traces_clean(study: Study) -> None:
    status, findings = audit_findings(study.root)
    assert (status, findings) == (0, set()), "\n".join(map(" ".join, sorted(findings)))
    stale = [line for line in trace_cell(study.root) if "STALE" in line or "CHANGED" in line]
    assert not stale, "\n".join(stale)


def test_audit_names_a_hand_edited_evaluation(study: Study) -> None:
    root = study.root
    _, before = audit_findings(root)
    target = f"results/{DATASET}/eval/minsim/none/fgsm/0.025.csv"
    frame = pd.read_csv(root / target)
    frame.loc[0, "accuracy"] = frame.loc[0, "accuracy"] + 1.0
    with edited(root / target, frame.to_csv(index=False)):
        status, after = audit_findings(root)
    assert status != 0
    new = after - before
    assert {(kind, path) for kind, path, _ in new if kind != "stale"} == {("changed", target)}
    # the other new findings are the outputs made from it
    assert all(target in detail for kind, _, detail in new if kind == "stale"), new
    assert {path for kind, path, _ in new if kind == "stale"} >= {"results/findings.md"}


def test_two_studies_from_scratch_give_identical_tables(
    study: Study, tmp_path_factory: pytest.TempPathFactory
) -> None:
    again = copy_workflow(study.root, tmp_path_factory.mktemp("study_again"))
    run_study(again)
    first = sorted(p.name for p in (study.root / "results" / "tables").glob("*.csv"))
    second = sorted(p.name for p in (again / "results" / "tables").glob("*.csv"))
    assert first and first == second
    differ = [
        name
        for name in first
        if (study.root / "results/tables" / name).read_bytes()
        != (again / "results/tables" / name).read_bytes()
    ]
    assert not differ, f"tables differ between two runs from scratch: {differ}"


def _cells(results: Path) -> dict[str, float]:
    """Every table cell's value, by the label ``diff`` prints for it."""
    cells: dict[str, float] = {}
    for path in sorted((results / "tables").glob("*.csv")):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        for row in frame.to_dict("records"):
            keys = ("dataset", "attack", "method", "column")
            label = f"{path.stem} " + " ".join(f"{k}={row[k]}" for k in keys if k in row)
            cells[label] = float(row["ours"]) if row["ours"] else math.nan
    return cells


def _differs(a: float, b: float) -> bool:
    return not (math.isnan(a) and math.isnan(b)) and not math.isclose(a, b, abs_tol=1e-9)


def test_diff_names_changed_cells_and_config_key(
    study: Study, tmp_path_factory: pytest.TempPathFactory
) -> None:
    rerun = tmp_path_factory.mktemp("budget_rerun") / "study"
    subprocess.run(["cp", "-a", str(study.root), str(rerun)], check=True)
    before = yaml.safe_load((rerun / CONFIG).read_text())["evaluation"]["table_budgets"]
    # A budget that swamps the inputs (audio +-0.5 on a [-1, 1] waveform; images 0.5 in
    # normalised units, about 29 of 255 grey levels): the single-modality attacks drive the
    # learned model's accuracy to about chance, whatever float details the machine has.
    new = 0.5
    configfile = edited_config(
        rerun, "single_budget", {("evaluation", "table_budgets", "single"): new}
    )
    run_study(rerun, configfile)
    done = avrobust(rerun, "diff", str(study.root / "results"), str(rerun / "results"))
    cells_a, cells_b = _cells(study.root / "results"), _cells(rerun / "results")
    changed = {k for k in cells_a.keys() & cells_b.keys() if _differs(cells_a[k], cells_b[k])}
    assert changed, "the budget change moved no table cell; the check says nothing"
    named = set(re.findall(r"^changed\s+(.+?): \S+ -> \S+$", done.stdout, re.M))
    assert done.returncode == 1, done.stdout
    assert named == changed, done.stdout
    assert all(cell.startswith("table1 ") for cell in named), done.stdout
    key = f"table_budgets.single: {before['single']:g} -> {new:g}"
    assert key in done.stdout, done.stdout
