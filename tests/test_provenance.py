"""Code hashes, provenance records and the trace/audit/diff commands over a small fake run."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from avmodels.provenance import file_hash, record_path
from avmodels.workflow import audit as audit_mod
from avmodels.workflow import cli, codehash, rulesource
from avmodels.workflow import diff as diff_mod
from avmodels.workflow import trace as trace_mod
from avmodels.workflow.codehash import code_closure, rule_code_hash, table_code_hash
from avmodels.workflow.jobs import job

# --- a Snakemake-like job -----------------------------------------------------------------


class NamedList(list):
    """Like Snakemake's input/output/params: iterable, named entries as attributes + items()."""

    def __init__(self, *positional: Any, **named: Any) -> None:
        flat = list(positional)
        for value in named.values():
            flat.extend(value if isinstance(value, list) else [value])
        super().__init__(flat)
        self._named = named
        self.__dict__.update(named)

    def items(self):
        return self._named.items()

    def get(self, key: str, default: Any = None) -> Any:
        return self._named.get(key, default)


def _write(path: str, content: str | dict[str, str]) -> None:
    target = Path(path)
    if isinstance(content, dict):
        target.mkdir(parents=True, exist_ok=True)
        for name, text in content.items():
            (target / name).write_text(text)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)


def step(
    rule: str,
    outputs: list[str] | dict[str, str],
    contents: dict[str, Any],
    codes: dict[str, str],
    inputs: list[str] | dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    wildcards: dict[str, str] | None = None,
    seed: int | None = None,
) -> None:
    """Run one fake workflow step through ``jobs.job``, writing ``contents``."""

    def io(value: list[str] | dict[str, Any] | None) -> NamedList:
        if isinstance(value, list):
            return NamedList(*value)
        return NamedList(**(value or {}))

    smk = SimpleNamespace(
        rule=rule,
        input=io(inputs),
        output=io(outputs),
        params=NamedList(**(params or {}), code=codes[rule]),
        wildcards=NamedList(**(wildcards or {})),
        log=[],
        threads=1,
    )
    with job(smk, seed=seed):
        for path, content in contents.items():
            _write(path, content)


# --- a fake workflow and run ----------------------------------------------------------------

RULE_FILES = {
    "data.smk": ["fetch_list", "list_records", "download", "preprocess", "manifest"],
    "train.smk": ["train"],
    "attack.smk": ["evaluate"],
    "report.smk": ["table"],
}
LIST = "resources/lists/music/list.json"
LIST_TEXT = '{"clips": ["abc", "def"]}\n'
RECORDS = "resources/music/records.csv"
LIST_EXCL = "resources/music/list_exclusions.csv"
VIDEOS = "resources/music/videos/shard0"
FAILURES = "resources/music/failures/shard0.csv"
CLIPS = "resources/music/clips/shard0"
SHARD = "resources/music/manifests/shard0.csv"
SHARD_EXCL = "resources/music/exclusions/shard0.csv"
DATA = "results/music/data"
TABLE = "results/tables/table3.csv"
INPUTS = {"audio_samples": 4096, "image_size": 32}


def make_workflow(wf: Path) -> dict[str, str]:
    """Rules files and scripts; returns each rule's code hash."""
    (wf / "rules").mkdir(parents=True)
    (wf / "workflow_scripts").mkdir()
    codes = {}
    for smk, rules in RULE_FILES.items():
        text = ""
        for rule in rules:
            text += f'rule {rule}:\n    log:\n        "x.log",\n    localrule: True\n'
            text += f'    script:\n        "../workflow_scripts/{rule}.py"\n\n\n'
            script = wf / "workflow_scripts" / f"{rule}.py"
            script.write_text(f'"""The {rule} step."""\n\nOUT = snakemake.output[0]\n')
            codes[rule] = rule_code_hash(script)
        (wf / "rules" / smk).write_text(text)
    # the table rule's code is its script's plus the spec of the table it builds
    spec = wf / "avmodels" / "study" / "table_specs" / "table3.py"
    spec.parent.mkdir(parents=True)
    spec.write_text('"""Table 3."""\n\nSPEC = None\n')
    codes["table"] = table_code_hash(wf / "workflow_scripts" / "table.py", "table3")
    return codes


def build_run(root: Path, codes: dict[str, str], weight: float = 1.0, multi: float = 0.006):
    """A run from a clip list to one table: models ``concat`` and ``minsim`` (loss weight)."""
    root.mkdir(parents=True, exist_ok=True)
    music = {"dataset": "music"}
    with contextlib.chdir(root):
        sha = hashlib.sha256(LIST_TEXT.encode()).hexdigest()
        params = {"url": "https://example.org/list.json", "sha256": sha}
        step("fetch_list", [LIST], {LIST: LIST_TEXT}, codes, params=params, wildcards=music)
        outputs = {"records": RECORDS, "exclusions": LIST_EXCL}
        contents = {RECORDS: "clip,label\nabc,violin\ndef,flute\n", LIST_EXCL: "clip\n"}
        step("list_records", outputs, contents, codes, {"list": LIST}, wildcards=music)
        outputs = {"videos": VIDEOS, "failures": FAILURES}
        contents = {VIDEOS: {"abc.mp4": "v1", "def.mp4": "v2"}, FAILURES: "clip\n"}
        step("download", outputs, contents, codes, {"records": RECORDS}, {"shards": 1}, music)
        outputs = {"clips": CLIPS, "manifest": SHARD, "exclusions": SHARD_EXCL}
        contents = {CLIPS: {"abc.wav": "a1"}, SHARD: "clip_id\nabc\n", SHARD_EXCL: "clip_id\n"}
        inputs = {"records": RECORDS, "videos": VIDEOS}
        step("preprocess", outputs, contents, codes, inputs, {"frame_short_side": 96}, music)
        outputs = {s: f"{DATA}/manifest_{s}.csv" for s in ("train", "val", "test")}
        outputs["exclusions"] = f"{DATA}/exclusions.csv"
        contents = {path: f"clip_id\n{name}\n" for name, path in outputs.items()}
        inputs = {"records": RECORDS, "list_exclusions": LIST_EXCL, "manifests": [SHARD]}
        inputs |= {"exclusions": [SHARD_EXCL], "failures": [FAILURES]}
        step("manifest", outputs, contents, codes, inputs, wildcards=music)
        evals = {}
        for model, w in (("concat", 0.0), ("minsim", weight)):
            settings = {"arch": "concat", "loss": "minsim" if w else "ce", "loss_weight": w}
            ckpt = f"results/music/models/{model}/checkpoint.pt"
            outputs = {"checkpoint": ckpt, "history": f"results/music/models/{model}/training.csv"}
            contents = {ckpt: json.dumps(settings), outputs["history"]: "epoch\n1\n"}
            inputs = {"train": f"{DATA}/manifest_train.csv", "val": f"{DATA}/manifest_val.csv"}
            params = {"settings": settings, "inputs": INPUTS, "seed": 1234}
            wc = {"dataset": "music", "model": model}
            step("train", outputs, contents, codes, inputs, params, wc, seed=1234)
            path = f"results/music/eval/{model}/none/fgsm/{multi:g}.csv"
            clean, av = 80 + 5 * w, 20 + 10 * w + 1000 * multi
            inputs = {"checkpoint": ckpt, "manifest": f"{DATA}/manifest_test.csv"}
            evaluation = {"table_budgets": {"single": 0.012, "multi": multi}, "steps": 10}
            params = {"evaluation": evaluation, "inputs": INPUTS}
            wc = {**wc, "defense": "none", "attack": "fgsm", "eps": f"{multi:g}"}
            csv = f"mode,accuracy\nclean,{clean}\nav,{av}\n"
            step("evaluate", [path], {path: csv}, codes, inputs, params, wc)
            evals[model] = (path, clean, av)
        rows = ["table,dataset,attack,method,column,ours,paper,delta,source_record,note"]
        for method, model in (("none", "concat"), ("minsim", "minsim")):
            path, clean, av = evals[model]
            source = str(record_path(path))
            rows += [f"table3,music,fgsm,{method},clean,{clean},80,0,{source},"]
            rows += [f"table3,music,fgsm,{method},av,{av},30,0,{source},"]
        ri = evals["minsim"][2] - evals["concat"][2]
        sources = ";".join(str(record_path(evals[m][0])) for m in ("minsim", "concat"))
        rows += [f"table3,music,fgsm,minsim,ri,{ri},5,0,{sources},"]
        md = TABLE.replace(".csv", ".md")
        contents = {TABLE: "\n".join(rows) + "\n", md: "| table |\n"}
        inputs = [evals[m][0] for m in ("concat", "minsim")]
        params = {"datasets": {"music": "music"}}
        step(
            "table", {"csv": TABLE, "md": md}, contents, codes, inputs, params, {"table": "table3"}
        )


@pytest.fixture(autouse=True)
def _restore_logging():
    """``jobs.job`` configures the root logger; put it back after each test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def workflow(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    wf = tmp_path / "wf"
    return wf, make_workflow(wf)


@pytest.fixture
def run(tmp_path: Path, workflow) -> Path:
    root = tmp_path / "runA"
    build_run(root, workflow[1])
    return root


# --- trace ------------------------------------------------------------------------------------


def test_trace_cell_reaches_the_clip_list(run: Path):
    lines = trace_mod.trace(run / TABLE, row="minsim", col="av")
    text = "\n".join(lines)
    assert lines[0].startswith("cell table3 dataset=music attack=fgsm method=minsim column=av")
    order = ["[table]", "[evaluate]", "[train]", "[manifest]", "[preprocess]", "[list_records]"]
    heads = [next(i for i, line in enumerate(lines) if tag in line) for tag in order]
    assert heads == sorted(heads)
    assert "results/music/eval/minsim/none/fgsm/0.006.csv" in text
    assert "results/music/eval/concat" not in text  # only this cell's sources
    train = next(line for line in lines if "[train]" in line)
    assert "seed 1234" in train
    assert "settings.loss_weight=1.0" in text
    fetch = next(line for line in lines if "[fetch_list]" in line)
    list_sha = file_hash(run / LIST)
    assert LIST in fetch and f"sha256 {list_sha[:12]}" in fetch
    assert f"sha256={list_sha}" in text  # the expected hash the rule checked
    # deeper in the tree than the training record
    indent = len(fetch) - len(fetch.lstrip("│├└─ "))
    assert indent > len(train) - len(train.lstrip("│├└─ "))


def test_trace_cell_with_two_sources_lists_each_chain_once(run: Path):
    lines = trace_mod.trace(run / TABLE, row="dataset=music,attack=fgsm,method=MinSim", col="RI")
    text = "\n".join(lines)
    assert "eval/minsim/none/fgsm/0.006.csv" in text and "eval/concat/none/fgsm/0.006.csv" in text
    assert sum("[fetch_list]" in line and "see above" not in line for line in lines) == 1
    assert any("[manifest]" in line and "(see above)" in line for line in lines)


def test_trace_cell_of_a_table_without_record(run: Path):
    record_path(run / TABLE).unlink()
    lines = trace_mod.trace(run / TABLE, row="minsim", col="clean")
    assert lines[1] == f"{TABLE}  sha256 -  (no record)"
    assert lines[2].startswith("└── results/music/eval/minsim/none/fgsm/0.006.csv  [evaluate]")
    assert any("[fetch_list]" in line for line in lines)


def test_trace_ambiguous_or_unknown_selection(run: Path, capsys):
    with pytest.raises(ValueError, match="2 cells match"):
        trace_mod.trace(run / TABLE, row="fgsm", col="av")
    with pytest.raises(ValueError, match="no column 'modell'"):
        trace_mod.trace(run / TABLE, row="modell=x", col="av")
    assert cli.main(["trace", str(run / TABLE), "--row", "nothing"]) == 2
    assert "no cell matches" in capsys.readouterr().err


def test_trace_cli_on_a_file_and_verify(run: Path, capsys):
    ckpt = run / "results/music/models/minsim/checkpoint.pt"
    assert cli.main(["trace", str(ckpt)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("results/music/models/minsim/checkpoint.pt  [train]")
    (run / f"{DATA}/manifest_val.csv").write_text("edited\n")
    lines = trace_mod.trace(ckpt, verify=True)
    assert any("manifest_val.csv" in line and "CHANGED" in line for line in lines)


# --- audit ------------------------------------------------------------------------------------


def _audit(dirs: list[Path], wf: Path) -> tuple[list[audit_mod.Finding], int]:
    report = audit_mod.audit(dirs, wf)
    return report.findings, report.checked


def test_audit_clean_tree(run: Path, workflow, capsys):
    findings, checked = _audit([run / "results", run / "resources"], workflow[0])
    assert findings == []
    assert checked == len(list(run.rglob("*.prov.json")))
    findings, checked = _audit([run / "results"], workflow[0])
    assert findings == []
    assert checked > len(list((run / "results").rglob("*.prov.json")))  # reached resources/
    with contextlib.chdir(run):
        assert cli.main(["audit", "results", "--workflow", str(workflow[0])]) == 0
    assert "no findings" in capsys.readouterr().out


def test_audit_names_an_edited_output_and_its_consumer(run: Path, workflow, capsys):
    ckpt = "results/music/models/minsim/checkpoint.pt"
    (run / ckpt).write_text("edited by hand")
    findings, _ = _audit([run / "results"], workflow[0])
    assert {(f.kind, f.path) for f in findings} == {
        ("changed", ckpt),
        ("stale", "results/music/eval/minsim/none/fgsm/0.006.csv"),
    }
    with contextlib.chdir(run):
        assert cli.main(["audit", "results", "--workflow", str(workflow[0])]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"changed    {ckpt}") and out[-1].endswith("1 changed, 1 stale")


def test_audit_missing_and_stale_once_per_job(run: Path, workflow):
    (run / f"{DATA}/manifest_train.csv").unlink()
    findings, _ = _audit([run / "results"], workflow[0])
    kinds = sorted((f.kind, f.path) for f in findings)
    assert kinds[0] == ("missing", f"{DATA}/manifest_train.csv")
    stale = [f for f in findings if f.kind == "stale"]
    assert len(stale) == 2  # one per training job (concat, minsim), not one per output
    assert all("manifest_train.csv" in f.detail and "gone" in f.detail for f in stale)


def test_audit_code_mismatch(run: Path, workflow):
    wf, _ = workflow
    script = wf / "workflow_scripts" / "train.py"
    script.write_text(script.read_text() + "# a comment only\n")
    assert _audit([run / "results"], wf)[0] == []
    script.write_text(script.read_text() + "EPOCHS = 3\n")
    findings, _ = _audit([run / "results"], wf)
    assert {f.kind for f in findings} == {"code"}
    assert sorted(f.detail.split()[0] for f in findings) == ["[train]", "[train]"]
    assert all("workflow_scripts/train.py" in f.detail for f in findings)


def test_audit_an_archived_copy_under_another_name(run: Path, workflow, tmp_path: Path):
    archive = tmp_path / "archive" / "run1"
    shutil.copytree(run / "results", archive)
    findings, _ = _audit([archive], workflow[0])
    # results/... are read from the copy; the resources/ it was made from were not kept:
    # the manifest job's inputs are gone (one finding per input, not per output), and the
    # table's cells no longer reach the clip lists
    assert {f.kind for f in findings} == {"stale", "chain"}
    gone = sorted(f.detail.split()[2] for f in findings if f.kind == "stale")
    assert gone == sorted([RECORDS, LIST_EXCL, SHARD, SHARD_EXCL, FAILURES])
    chain = {f.detail.split(":")[0] for f in findings if f.kind == "chain"}
    assert {f.path for f in findings if f.kind == "chain"} == {TABLE}
    assert f"{RECORDS} has no record" in chain


def test_rule_scripts_of_the_repository(repo_dir: Path):
    scripts = rulesource.rule_scripts(repo_dir)
    assert scripts["evaluate"] == repo_dir / "workflow_scripts" / "evaluate.py"
    assert scripts["table"] == repo_dir / "workflow_scripts" / "table.py"
    rules = {
        line.split()[1].rstrip(":")
        for smk in (repo_dir / "rules").glob("*.smk")
        for line in smk.read_text().splitlines()
        if line.startswith("rule ")
    }
    assert rules - {"all"} <= set(scripts)


# --- diff -------------------------------------------------------------------------------------


def _changed_cells(lines: list[str]) -> set[str]:
    return {
        line.split()[4].split("=")[1] + "/" + line.split()[5].rstrip(":").split("=")[1]
        for line in lines
        if line.startswith("changed")
    }


def test_diff_names_the_changed_parameter(run: Path, workflow, tmp_path: Path):
    other = tmp_path / "runB"
    build_run(other, workflow[1], weight=2.0)
    lines, differing = diff_mod.diff(run / "results", other / "results")
    assert _changed_cells(lines) == {"minsim/clean", "minsim/av", "minsim/ri"}
    assert differing == 3
    text = "\n".join(lines)
    assert "[train]: settings.loss_weight: 1.0 -> 2.0" in text
    assert "input results/music/models/minsim/checkpoint.pt sha256" in text
    assert "code " not in text and "multi" not in text
    assert lines[-1] == "diff: 3 of 5 common cells changed, 0 only in A, 0 only in B"


def test_diff_follows_renamed_inputs_to_a_config_key(run: Path, workflow, tmp_path: Path):
    other = tmp_path / "runB"
    build_run(other, workflow[1], multi=0.008)
    lines, _ = diff_mod.diff(run / "results", other / "results")
    assert _changed_cells(lines) == {"none/av", "minsim/av"}
    text = "\n".join(lines)
    assert "evaluation.table_budgets.multi: 0.006 -> 0.008" in text
    assert "wildcards.eps: 0.006 -> 0.008" in text
    assert "[train]" not in text  # nothing upstream of the evaluations differs


def test_diff_code_change_and_identical_runs(run: Path, workflow, tmp_path: Path):
    other = tmp_path / "runB"
    codes = {**workflow[1], "evaluate": "0" * 64}
    build_run(other, codes)
    lines, differing = diff_mod.diff(run / "results", other / "results")
    assert differing == 0 and lines == [
        "diff: 0 of 5 common cells changed, 0 only in A, 0 only in B"
    ]
    build_run(other, codes, weight=3.0)
    lines, _ = diff_mod.diff(run / "results", other / "results")
    assert any(
        f"[evaluate]: code {workflow[1]['evaluate'][:12]} -> 000000000000" in x for x in lines
    )
    assert cli.main(["diff", str(run / "results"), str(other / "results")]) == 1


# --- code hashes ------------------------------------------------------------------------------


@pytest.fixture
def package(tmp_path: Path, monkeypatch) -> Path:
    """A tiny ``avmodels`` package and a workflow script reaching part of it."""
    pkg = tmp_path / "code" / "avmodels"
    pkg.mkdir(parents=True)
    files = {
        "__init__.py": '"""Package."""\n',
        "alpha.py": "from avmodels.beta import VALUE\n\n\ndef f():\n    return VALUE\n",
        "beta.py": "from . import gamma\n\nVALUE = gamma.X + 1\n",
        "gamma.py": '"""Gamma."""\n\nX = 1\n',
        "delta.py": "from .zeta import Z\n",
        "zeta.py": "Z = 3\n",
        "unused.py": "U = 0\n",
    }
    for name, text in files.items():
        (pkg / name).write_text(text)
    scripts = tmp_path / "code" / "workflow_scripts"
    scripts.mkdir()
    (scripts / "step.py").write_text("from avmodels.alpha import f\nimport avmodels.delta\n")
    monkeypatch.setattr(codehash, "PACKAGE_DIR", pkg)
    monkeypatch.setattr(codehash, "_CACHE", codehash._SourceCache(tmp_path / "cache.json"))
    codehash.clear_code_caches()
    yield scripts / "step.py"
    codehash.clear_code_caches()


def _rehash(script: Path) -> str:
    codehash.clear_code_caches()
    return rule_code_hash(script)


def test_closure_follows_all_import_forms(package: Path):
    names = {p.name for p in code_closure(package)}
    assert names == {
        "step.py",
        "__init__.py",
        "alpha.py",
        "beta.py",
        "gamma.py",
        "delta.py",
        "zeta.py",
    }


@pytest.mark.parametrize("module", ["gamma.py", "zeta.py", "alpha.py"])
def test_code_hash_ignores_comments_docstrings_and_touch(package: Path, module: str):
    before = _rehash(package)
    path = codehash.PACKAGE_DIR / module
    text = path.read_text()
    if text.startswith('"""'):
        text = text.replace(text.split('"""')[1], "A reworded docstring.", 1)
    else:
        text = '"""A new docstring."""\n' + text
    path.write_text("# a comment\n" + text.replace(" = ", "=") + "\n\n# end\n")
    stat = path.stat()
    os.utime(path, (stat.st_atime + 100, stat.st_mtime + 100))
    assert _rehash(package) == before


@pytest.mark.parametrize("module", ["gamma.py", "zeta.py", "alpha.py", "__init__.py"])
def test_code_hash_changes_with_a_real_edit(package: Path, module: str):
    before = _rehash(package)
    path = codehash.PACKAGE_DIR / module
    path.write_text(path.read_text() + "EXTRA = 1\n")
    assert _rehash(package) != before


def test_code_hash_reads_unchanged_files_from_the_cache_file(package: Path, monkeypatch):
    before = _rehash(package)
    cached = json.loads((package.parents[2] / "cache.json").read_text())
    assert len(cached) == 7  # step.py and the six modules it reaches
    analysed = []
    real = codehash._analyse
    monkeypatch.setattr(
        codehash, "_analyse", lambda p, d=None: analysed.append(p.name) or real(p, d)
    )
    assert _rehash(package) == before and analysed == []  # a new process: the file only
    path = codehash.PACKAGE_DIR / "zeta.py"
    path.write_text("Z = 4\n")
    assert _rehash(package) != before and analysed == ["zeta.py"]


def test_code_hash_sees_a_same_size_edit_with_the_mtime_restored(package: Path, monkeypatch):
    before = _rehash(package)
    path = codehash.PACKAGE_DIR / "zeta.py"
    stat = path.stat()
    path.write_text("Z = 4\n")  # as long as "Z = 3\n"
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    analysed = []
    real = codehash._analyse
    monkeypatch.setattr(
        codehash, "_analyse", lambda p, d=None: analysed.append(p.name) or real(p, d)
    )
    assert _rehash(package) != before and analysed == ["zeta.py"]


def test_code_restored_with_cp_p_hashes_as_before(package: Path, tmp_path: Path, monkeypatch):
    before = _rehash(package)
    path = codehash.PACKAGE_DIR / "gamma.py"
    backup = tmp_path / "gamma.py.orig"
    subprocess.run(["cp", "-p", str(path), str(backup)], check=True)
    path.write_text(path.read_text() + "EXTRA = 1\n")
    assert _rehash(package) != before
    subprocess.run(["cp", "-p", str(backup), str(path)], check=True)
    assert _rehash(package) == before
    analysed = []
    real = codehash._analyse
    monkeypatch.setattr(
        codehash, "_analyse", lambda p, d=None: analysed.append(p.name) or real(p, d)
    )
    os.utime(path, ns=(1, 1))  # any mtime: the content decides
    assert _rehash(package) == before and analysed == []


def test_code_hash_ignores_unreached_modules(package: Path):
    before = _rehash(package)
    (codehash.PACKAGE_DIR / "unused.py").write_text("U = 1\n")
    assert _rehash(package) == before


def test_workflow_steps_do_not_reach_the_commands():
    """Steps reach ``provenance`` (through ``jobs``); editing the commands must not rerun them."""
    codehash.clear_code_caches()
    names = {p.name for p in code_closure(codehash.PACKAGE_DIR / "workflow" / "jobs.py")}
    assert "provenance.py" in names
    assert names.isdisjoint({"audit.py", "cli.py", "trace.py", "diff.py", "codehash.py"})


def test_imports_under_a_main_guard_are_not_followed(package: Path):
    before = _rehash(package)
    path = codehash.PACKAGE_DIR / "zeta.py"
    path.write_text(path.read_text() + 'if __name__ == "__main__":\n    import avmodels.unused\n')
    assert "unused.py" not in {p.name for p in code_closure(package)}
    assert _rehash(package) != before  # zeta.py itself changed
    path.write_text(path.read_text() + "import avmodels.unused\n")
    assert "unused.py" in {p.name for p in code_closure(package)}


def test_audit_cli_rejects_a_missing_directory(tmp_path: Path, capsys):
    assert cli.main(["audit", str(tmp_path / "nowhere")]) == 2
    assert "no directory" in capsys.readouterr().err


def test_audit_table_code_includes_its_spec(run: Path, workflow):
    wf, _ = workflow
    spec = wf / "avmodels" / "study" / "table_specs" / "table3.py"
    spec.write_text(spec.read_text() + "ROWS = 2\n")
    findings, _ = _audit([run / "results"], wf)
    assert {(f.kind, f.path) for f in findings} == {("code", TABLE)}
    assert findings[0].detail.startswith("[table]")


def test_directory_hash_ignores_snakemake_timestamp(tmp_path: Path):
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "a.wav").write_bytes(b"audio")
    before = file_hash(tmp_path / "clips")
    (tmp_path / "clips" / ".snakemake_timestamp").write_text("")
    assert file_hash(tmp_path / "clips") == before
    (tmp_path / "clips" / "b.wav").write_bytes(b"more")
    assert file_hash(tmp_path / "clips") != before


def test_download_code_is_what_decides_the_download(repo_dir: Path):
    """The download step's code is its script, ``download`` and the list/range code: not
    the job harness (logging, provenance) nor the media code it checks files with."""
    codehash.clear_code_caches()
    names = {p.name for p in code_closure(repo_dir / "workflow_scripts" / "download.py")}
    assert {"download.py", "lists.py", "failures.py"} <= names
    assert names.isdisjoint({"jobs.py", "provenance.py", "media.py", "probing.py", "preprocess.py"})
    for step in ("fetch_list", "list_records"):
        names = {p.name for p in code_closure(repo_dir / "workflow_scripts" / f"{step}.py")}
        assert "lists.py" in names and names.isdisjoint({"jobs.py", "provenance.py"})
    names = {p.name for p in code_closure(repo_dir / "workflow_scripts" / "preprocess.py")}
    expected = {"jobs.py", "provenance.py", "media.py", "probing.py", "preprocess.py"}
    assert expected <= names, "other steps are unchanged"
