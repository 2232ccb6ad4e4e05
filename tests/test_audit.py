"""The audit cannot be fooled: files without records, deleted, copied or redirected records,
broken cell chains; its digest over all records. Runs on the small run of test_provenance."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from test_provenance import DATA, LIST, TABLE, build_run, make_workflow

from avmodels.provenance import record_path
from avmodels.workflow import audit, cli

MINSIM_EVAL = "results/music/eval/minsim/none/fgsm/0.006.csv"
CONCAT_EVAL = "results/music/eval/concat/none/fgsm/0.006.csv"


@pytest.fixture
def workflow(tmp_path: Path) -> Path:
    wf = tmp_path / "wf"
    build_run(tmp_path / "runA", make_workflow(wf))
    return wf


@pytest.fixture
def run(workflow: Path) -> Path:
    return workflow.parent / "runA"


def check(run: Path, workflow: Path) -> tuple[set[tuple[str, str]], list[str], int]:
    """(kind, path) of each finding, the printed report and the exit status of ``audit``."""
    report = audit.audit([run / "results", run / "resources"], workflow)
    with contextlib.chdir(run), contextlib.redirect_stdout(out := _Text()):
        status = cli.main(["audit", "results", "resources", "--workflow", str(workflow)])
    return {(f.kind, f.path) for f in report.findings}, out.lines(), status


class _Text(list):
    def write(self, text: str) -> None:
        self.append(text)

    def lines(self) -> list[str]:
        return "".join(self).splitlines()


def named(lines: list[str], kind: str, path: str) -> bool:
    return any(line.split()[:2] == [kind, path] for line in lines)


def test_files_without_a_record_are_named(run: Path, workflow: Path):
    (run / "results/music/notes.txt").write_text("by hand\n")
    (run / "results/tables/table9.csv").write_text("table,ours\nx,1\n")
    (run / "results/README.md").write_text("# results/\n")  # the folder's own notes
    (run / f"{MINSIM_EVAL}.failures").write_text("attempt 1\n")  # the job harness's counter
    (run / "resources/music/clips/shard0/.snakemake_timestamp").write_text("")
    (run / "resources/music/clips/shard0/b.wav").write_text("a file inside a recorded folder")
    found, lines, status = check(run, workflow)
    assert {p for k, p in found if k == "unrecorded"} == {
        "results/music/notes.txt",
        "results/tables/table9.csv",
    }
    assert named(lines, "unrecorded", "results/music/notes.txt") and status == 1
    assert ("changed", "resources/music/clips/shard0") in found  # the folder's hash moved


def test_an_edited_csv_whose_record_was_deleted_is_named(run: Path, workflow: Path):
    (run / MINSIM_EVAL).write_text("mode,accuracy\nclean,99\nav,99\n")
    record_path(run / MINSIM_EVAL).unlink()
    found, lines, _ = check(run, workflow)
    assert ("unrecorded", MINSIM_EVAL) in found
    line = next(x for x in lines if x.startswith("unrecorded"))
    assert MINSIM_EVAL in line and f"[table] {TABLE} names it" in line
    assert ("chain", TABLE) in found  # the minsim cells no longer reach the lists
    assert ("stale", TABLE) in found


def test_a_record_copied_from_another_output_is_named(run: Path, workflow: Path):
    shutil.copy(record_path(run / CONCAT_EVAL), record_path(run / MINSIM_EVAL))
    (run / MINSIM_EVAL).write_text((run / CONCAT_EVAL).read_text())  # the files agree, too
    found, lines, _ = check(run, workflow)
    assert ("misplaced", MINSIM_EVAL) in found
    line = next(x for x in lines if x.startswith("misplaced"))
    assert f"its record is [evaluate] {CONCAT_EVAL}'s" in line


def test_a_record_copied_from_the_same_output_of_another_run_is_named(
    run: Path, workflow: Path, tmp_path: Path
):
    other = tmp_path / "runB"
    build_run(other, make_workflow(tmp_path / "wfB"), weight=2.0)
    shutil.copy(record_path(other / MINSIM_EVAL), record_path(run / MINSIM_EVAL))
    found, lines, _ = check(run, workflow)
    assert ("changed", MINSIM_EVAL) in found and named(lines, "changed", MINSIM_EVAL)


def test_a_record_whose_output_points_elsewhere_is_named(run: Path, workflow: Path):
    sidecar = record_path(run / MINSIM_EVAL)
    record = json.loads(sidecar.read_text())
    concat = json.loads(record_path(run / CONCAT_EVAL).read_text())
    record.update(output=CONCAT_EVAL, output_hash=concat["output_hash"])
    sidecar.write_text(json.dumps(record))
    found, lines, _ = check(run, workflow)
    assert ("misplaced", MINSIM_EVAL) in found and named(lines, "misplaced", MINSIM_EVAL)


def test_each_cell_chain_reaches_the_lists(run: Path, workflow: Path):
    found, _, status = check(run, workflow)
    assert (found, status) == (set(), 0)
    record_path(run / f"{DATA}/manifest_test.csv").unlink()
    found, lines, _ = check(run, workflow)
    assert ("unrecorded", f"{DATA}/manifest_test.csv") in found
    chain = [x for x in lines if x.startswith("chain")]
    assert len(chain) == 1 and chain[0].split()[1] == TABLE
    assert f"{DATA}/manifest_test.csv has no record: cell table3 " in chain[0]
    assert "and 4 more" in chain[0]  # all five cells rest on the test split


def test_a_cell_naming_an_evaluation_the_table_did_not_use(run: Path, workflow: Path):
    table = run / TABLE
    table.write_text(table.read_text().replace("eval/minsim/none", "eval/other/none"))
    record_path(table).unlink()  # no record to say the table was edited
    found, lines, _ = check(run, workflow)
    assert ("unrecorded", TABLE) in found
    chain = [x for x in lines if x.startswith("chain")]
    assert any("results/music/eval/other/none/fgsm/0.006.csv has no record" in x for x in chain)


def test_a_broken_record_is_named_once(run: Path, workflow: Path):
    record_path(run / MINSIM_EVAL).write_text("{not json")
    found, lines, status = check(run, workflow)
    rel = str(record_path(MINSIM_EVAL))
    assert ("unreadable", rel) in found and status == 1
    assert ("unrecorded", MINSIM_EVAL) not in found  # named once, by its broken record
    assert any(x.startswith("chain") and f"{rel} is not a provenance record" in x for x in lines)


def test_digest_over_all_records_is_the_sha256sum_of_their_list(run: Path, workflow: Path):
    report = audit.audit([run / "results", run / "resources"], workflow)
    assert report.checked == len(list(run.rglob("*.prov.json")))
    assert audit.audit([run / "resources", run / "results"], workflow).digest == report.digest
    listing = "find results resources -name '*.prov.json' | LC_ALL=C sort | xargs sha256sum"
    shell = subprocess.run(
        f"{listing} | sha256sum", shell=True, cwd=run, capture_output=True, text=True, check=True
    )
    assert shell.stdout.split()[0] == report.digest
    _, lines, _ = check(run, workflow)
    assert lines[-2].startswith(f"digest {report.digest}") and lines[-1].startswith("audit: ")
    record = json.loads((run / f"{LIST}.prov.json").read_text())
    (run / f"{LIST}.prov.json").write_text(json.dumps({**record, "seed": 7}))
    assert audit.audit([run / "results", run / "resources"], workflow).digest != report.digest


def test_code_restored_with_cp_p_is_no_change(run: Path, workflow: Path, tmp_path: Path):
    script = workflow / "workflow_scripts" / "train.py"
    backup = tmp_path / "train.py.orig"
    subprocess.run(["cp", "-p", str(script), str(backup)], check=True)
    script.write_text(script.read_text() + "EPOCHS = 3\n")
    assert {k for k, _ in check(run, workflow)[0]} == {"code"}
    subprocess.run(["cp", "-p", str(backup), str(script)], check=True)
    assert check(run, workflow)[0] == set()
