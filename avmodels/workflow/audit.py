"""``audit``: every record of a results tree checked against the files, the code and each other.

Findings, each naming a file (paths as records write them, ``results/...``):

- ``unreadable``: a record that is not JSON.
- ``unrecorded``: a file with no record beside it (and not inside a recorded folder), or
  whose record is gone while an output made from it still names that record.
- ``misplaced``: a record that names another output than the file it sits beside (copied
  from another output, or its ``output`` edited).
- ``missing``: a record whose output is gone; ``changed``: an output whose sha256 is not
  the recorded one; ``stale``: an input whose sha256 is not the one its consumer recorded.
- ``chain``: a table whose cells' record chains do not reach back to the clip lists
  (:mod:`avmodels.workflow.chains`).
- ``code``: a rule whose code hash in the working tree is not the recorded one.

The audit also prints one digest over all records it checked, for a paper to cite: the
sha256 of the lines ``<sha256 of the record file>  <record path>``, one per record, sorted
by path (``sha256sum``'s format; see :func:`records_digest`).

    avrobust audit results/ [resources/] [--workflow DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avmodels.provenance import RECORD_SUFFIX, UNHASHED, record_path
from avmodels.workflow.chains import Chains, table_files
from avmodels.workflow.codehash import PACKAGE_DIR
from avmodels.workflow.jobs import FAILURES_SUFFIX
from avmodels.workflow.rulesource import CodeCheck
from avmodels.workflow.runs import RESULTS, Run, job_key, output_of, root_of, short

KINDS = ("unreadable", "unrecorded", "misplaced", "missing", "changed", "stale", "chain", "code")
NOT_OUTPUTS = {"results/README.md", "results/report.html"}  # the folder's notes, --report


@dataclass(frozen=True)
class Finding:
    """One problem with one file; ``kind`` is one of :data:`KINDS`."""

    kind: str
    path: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind:<10} {self.path}  {self.detail}"


@dataclass
class Report:
    """What an audit found, and the records it checked (record path -> its sha256)."""

    findings: list[Finding] = field(default_factory=list)
    records: dict[str, str] = field(default_factory=dict)

    @property
    def checked(self) -> int:
        return len(self.records)

    @property
    def digest(self) -> str:
        return records_digest(self.records)


def records_digest(records: dict[str, str]) -> str:
    """sha256 of ``"<sha256>  <path>\\n"`` per record, sorted by path: for a run whose
    records all were checked, ``find results resources -name '*.prov.json' | LC_ALL=C sort
    | xargs sha256sum | sha256sum`` in its folder prints the same."""
    lines = "".join(f"{records[path]}  {path}\n" for path in sorted(records))
    return hashlib.sha256(lines.encode()).hexdigest()


def run_of_dir(top: Path) -> Run:
    """The run a scanned folder belongs to: ``resources/`` or a folder under ``results/``
    of its run; any other folder is taken for a run's results kept under another name."""
    top = top.absolute()
    if top.name == "resources":
        return Run(top.parent)
    for folder in (top, *top.parents):
        if folder.name == RESULTS:
            return Run.of_results(folder)
    return Run.of_results(top)


class _Auditor:
    """Walks records breadth-first from those found on disk through their inputs' records."""

    def __init__(self, workflow_dir: Path) -> None:
        self.code_now = CodeCheck(workflow_dir)
        self.report = Report()
        self.runs: dict[Path, Run] = {}
        self.placed: dict[Path, tuple[Run, dict[str, Any]]] = {}  # record file -> its run
        self.named: set[Path] = set()  # files a finding already names as unrecorded/misplaced
        self.seen: set[Path] = set()
        self.jobs: set[str] = set()
        self.todo: deque[tuple[Path, Run, str | None]] = deque()

    def add(self, kind: str, path: str, detail: str) -> None:
        self.report.findings.append(Finding(kind, path, detail))

    def drain(self) -> None:
        while self.todo:
            rec_file, fallback, consumer = self.todo.popleft()
            rec_file = rec_file.absolute()
            if rec_file in self.seen:
                continue
            self.seen.add(rec_file)
            self.visit(rec_file, fallback, consumer)

    def visit(self, rec_file: Path, fallback: Run, consumer: str | None) -> None:
        beside = Path(output_of(str(rec_file)))
        if not rec_file.is_file():
            if consumer is not None and beside.exists() and beside not in self.named:
                self.named.add(beside)
                detail = f"its record is gone; {consumer} names it"
                self.add("unrecorded", fallback.rel(beside), detail)
            return
        data = rec_file.read_bytes()
        try:
            record = json.loads(data)
            output = str(record["output"])
        except (ValueError, KeyError, TypeError) as err:
            self.named.add(beside)
            self.add("unreadable", fallback.rel(rec_file), f"not a provenance record ({err})")
            return
        root = root_of(rec_file, output)
        if root is not None:
            run = self.runs.setdefault(root, Run(root))
        elif fallback.rel(rec_file) == str(record_path(output)):
            run = fallback  # results kept under another name
        else:
            self.named.add(beside)
            rule = record.get("rule")
            self.add("misplaced", fallback.rel(beside), f"its record is [{rule}] {output}'s")
            return
        self.placed[rec_file] = (run, record)
        self.report.records[run.rel(rec_file)] = hashlib.sha256(data).hexdigest()
        self.check_output(run, record, output)
        key = job_key(run.root, record)
        if key not in self.jobs:
            self.jobs.add(key)
            self.check_inputs(run, record, output)
            self.check_code(record, output)
        label = f"[{record.get('rule')}] {output}"
        for rel in (record.get("input_records") or {}).values():
            self.todo.append((run.path(rel), run, label))

    def check_output(self, run: Run, record: dict[str, Any], output: str) -> None:
        now, then = run.hash(output), record.get("output_hash")
        if now is None:
            self.add("missing", output, f"[{record.get('rule')}] recorded {short(then)}")
        elif now != then:
            self.add("changed", output, f"sha256 {short(then)} recorded, now {short(now)}")

    def check_inputs(self, run: Run, record: dict[str, Any], output: str) -> None:
        for path, then in (record.get("inputs") or {}).items():
            now = run.hash(path)
            if now != then:
                state = "gone" if now is None else f"now {short(now)}"
                detail = f"[{record.get('rule')}] input {path} sha256 {short(then)} used, {state}"
                self.add("stale", output, detail)

    def check_code(self, record: dict[str, Any], output: str) -> None:
        rule = str(record.get("rule"))
        then = (record.get("params") or {}).get("code")
        if not then:
            return
        now = self.code_now(rule, record.get("wildcards"))
        if now is None:
            where = self.code_now.workflow_dir / "rules"
            self.add("code", output, f"[{rule}] no script for rule {rule} under {where}")
        elif now != then:
            script = self.code_now.script(rule)
            name = script.relative_to(self.code_now.workflow_dir) if script else rule
            detail = f"[{rule}] code {short(then)} recorded, {short(now)} in the working tree"
            self.add("code", output, f"{detail} ({name})")

    def check_tables(self, top: Path, fallback: Run) -> None:
        """Each table's cells back to the lists; the records reached are audited too."""
        for path in table_files(top):
            placed = self.placed.get(record_path(path).absolute())
            run, record = placed if placed else (fallback, None)
            chains = Chains(run)
            for link, cells in chains.table(path, record).items():
                more = f" and {len(cells) - 1} more" if len(cells) > 1 else ""
                self.add("chain", run.rel(path), f"{link}: cell {cells[0]}{more}")
            self.todo.extend((rec, run, None) for rec in chains.records())

    def check_unrecorded(self, top: Path, fallback: Run) -> None:
        """Files under ``top`` that no record in place covers."""
        covered = {Path(output_of(str(f))) for f in self.placed}
        for path in sorted(p.absolute() for p in top.rglob("*") if p.is_file()):
            if path.name.endswith((RECORD_SUFFIX, FAILURES_SUFFIX)) or path.name in UNHASHED:
                continue
            if path in self.named or fallback.rel(path) in NOT_OUTPUTS:
                continue
            if not covered.intersection((path, *path.parents)):
                self.named.add(path)
                self.add("unrecorded", fallback.rel(path), "no provenance record")


def audit(dirs: Iterable[str | Path], workflow_dir: str | Path | None = None) -> Report:
    """Check every record under ``dirs``, every record they reach through their inputs and
    the table cells' chains, and every file under ``dirs`` for a record (see the module's
    docstring for the findings); ``workflow_dir`` (default the repository) gives the code."""
    auditor = _Auditor(Path(workflow_dir or PACKAGE_DIR.parent).resolve())
    tops = [(Path(top), run_of_dir(Path(top))) for top in dirs]
    for top, run in tops:
        auditor.todo.extend((p, run, None) for p in sorted(top.rglob("*" + RECORD_SUFFIX)))
    auditor.drain()
    for top, run in tops:
        auditor.check_tables(top, run)
    auditor.drain()
    for top, run in tops:
        auditor.check_unrecorded(top, run)
    return auditor.report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dirs", nargs="*", default=[RESULTS], help="folders to scan (results)")
    parser.add_argument("--workflow", help="workflow folder for code hashes (the repository)")


def run(args: argparse.Namespace) -> int:
    """Print the findings, the digest and a summary; 1 with findings, 2 for a bad folder."""
    absent = [d for d in args.dirs if not Path(d).is_dir()]
    if absent:
        print(f"audit: no directory {', '.join(absent)}", file=sys.stderr)
        return 2
    report = audit(args.dirs, args.workflow)
    for finding in sorted(report.findings, key=lambda f: (KINDS.index(f.kind), f.path)):
        print(finding)
    counts = Counter(f.kind for f in report.findings)
    summary = ", ".join(f"{counts[kind]} {kind}" for kind in KINDS if counts[kind])
    print(f"digest {report.digest}  (sha256 over the {report.checked} records checked)")
    print(f"audit: {report.checked} records checked, " + (summary or "no findings"))
    return 1 if report.findings else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``audit [DIR...] [--workflow DIR]``."""
    parser = argparse.ArgumentParser(
        prog="avrobust audit", description="Check a results tree against its records."
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
