"""Provenance commands: trace a table number to its sources, audit a results tree, diff runs.

Every workflow output ``X`` has a record ``X.prov.json`` (written by ``avmodels.jobs.job``)
naming its rule, its parameters (``code``: the hash of the code the rule ran, see
``avmodels.provenance.rule_code_hash``), the sha256 of its inputs and the records of those
inputs. Paths in records are relative to the workflow's working directory (``results/...``,
``resources/...``); a run is that directory wherever it lies now: for ``/tmp/runA/results``
the path ``results/x`` is ``/tmp/runA/results/x`` and ``resources/y`` is
``/tmp/runA/resources/y``.

Command line (``avrobust ...``)::

    trace results/tables/table3.csv --row minsim --col av     # the chain behind one number
    trace results/tables/table1.csv --row "attack=pgd,method=concat" --col a
    trace results/synthetic_music/models/concat/checkpoint.pt # the chain behind one file
    audit results/                          # changed, missing, stale, out-of-date code
    diff /tmp/runA/results results/         # changed cells and what changed upstream
    code workflow_scripts/evaluate.py       # a step's code hash (--files: the files it covers)
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
import textwrap
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path
from typing import Any

from avmodels import provenance
from avmodels.provenance import (
    RECORD_SUFFIX,
    clear_code_caches,
    code_closure,
    file_hash,
    record_path,
    rule_code_hash,
    table_code_hash,
)

SHORT = 12  # hex digits shown of a sha256
KINDS = ("unreadable", "missing", "changed", "stale", "code")  # audit findings, in report order
RESULTS = "results"
CELL_KEYS = ("table", "dataset", "attack", "method", "column")
RULE_RE = re.compile(r"^(?:rule|checkpoint)\s+(\w+)\s*:", re.MULTILINE)
SCRIPT_RE = re.compile(r"^\s+script:\s*(?:#.*)?\n?\s*[rf]?[\"']([^\"']+)[\"']", re.MULTILINE)


def short(digest: str | None) -> str:
    return digest[:SHORT] if digest else "-"


def _fmt(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as ``{"a.b.c": leaf}``; lists and scalars are leaves."""
    if not isinstance(tree, dict) or (prefix and not tree):
        return {prefix: tree} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _root_of(record_file: Path, output: str | None) -> Path | None:
    """The working directory a record was written in, from where it lies and its output."""
    if not output or Path(output).is_absolute():
        return None
    expected = record_path(output).parts
    here = record_file.absolute().parts
    if here[-len(expected) :] != expected:
        return None
    return Path(*here[: -len(expected)])


class Run:
    """A workflow working directory: resolves record paths, reads records, hashes files once.

    ``results`` is where the record paths ``results/...`` point (default ``root/results``),
    so that a results directory kept under another name still reads as the run's results.
    """

    def __init__(self, root: Path, results: Path | None = None) -> None:
        self.root = Path(root).absolute()
        self.results = Path(results).absolute() if results else self.root / RESULTS
        self._hashes: dict[Path, str | None] = {}
        self._records: dict[Path, dict[str, Any] | None] = {}

    @classmethod
    def of_results(cls, results: str | Path) -> Run:
        results = Path(results).absolute()
        return cls(results.parent, results)

    @classmethod
    def of_file(cls, path: str | Path) -> Run:
        """The run a file belongs to: from its record, else its ``results`` ancestor, else cwd."""
        path = Path(path).absolute()
        sidecar = record_path(path)
        if sidecar.is_file():
            root = _root_of(sidecar, json.loads(sidecar.read_text()).get("output"))
            if root is not None:
                return cls(root)
        for parent in path.parents:
            if parent.name == RESULTS:
                return cls.of_results(parent)
        return cls(Path.cwd())

    def path(self, rel: str | Path) -> Path:
        rel = Path(rel)
        if rel.is_absolute():
            return rel
        if rel.parts and rel.parts[0] == RESULTS:
            return self.results.joinpath(*rel.parts[1:])
        return self.root / rel

    def rel(self, path: str | Path) -> str:
        """A path as records write it (``results/...`` or relative to the root)."""
        path = Path(path).absolute()
        if path == self.results or self.results in path.parents:
            return str(Path(RESULTS, path.relative_to(self.results)))
        if self.root in path.parents:
            return str(path.relative_to(self.root))
        return str(path)

    def hash(self, rel: str | Path) -> str | None:
        """sha256 of a file or directory now (None if it is gone); each path hashed once."""
        path = self.path(rel)
        if path not in self._hashes:
            self._hashes[path] = file_hash(path) if path.exists() else None
        return self._hashes[path]

    def record(self, rel: str | Path | None) -> dict[str, Any] | None:
        """The record stored at ``rel`` (a ``.prov.json`` path), None if there is none."""
        if rel is None:
            return None
        path = self.path(rel)
        if path not in self._records:
            if not path.is_file():
                self._records[path] = None
            else:
                try:
                    self._records[path] = json.loads(path.read_text())
                except (json.JSONDecodeError, UnicodeDecodeError) as err:
                    raise ValueError(f"{path}: not a provenance record ({err})") from err
        return self._records[path]


# --- table cells -----------------------------------------------------------------------------


def _norm(text: str) -> str:
    """Case- and punctuation-blind form: ``MinSim+ExFMem`` -> ``minsim_exfmem``."""
    return re.sub(r"[^0-9a-z.]+", "_", str(text).strip().lower()).strip("_")


def read_cells(path: str | Path) -> list[dict[str, str]]:
    with Path(path).open(newline="") as fh:
        return list(csv.DictReader(fh))


def cell_label(cell: dict[str, str]) -> str:
    keys = [k for k in CELL_KEYS[1:] if k in cell]
    return f"{cell.get('table', '?')} " + " ".join(f"{k}={cell[k]}" for k in keys)


def select_cells(
    cells: Sequence[dict[str, str]], row: str | None, col: str | None
) -> list[dict[str, str]]:
    """The cells a ``--row``/``--col`` selection names.

    ``row`` is comma-separated filters: ``key=value`` on a column of the table CSV, or a bare
    value matched against any of ``table, dataset, attack, method, column`` (so ``minsim``
    or ``minsim,fgsm`` work). Matching ignores case and punctuation (``MinSim+ExFMem``).
    """
    found = list(cells)
    known = set(cells[0]) if cells else set()
    for token in (t.strip() for t in (row or "").split(",")):
        if not token:
            continue
        if "=" in token:
            key, value = (s.strip() for s in token.split("=", 1))
            if key not in known:
                raise ValueError(f"no column {key!r}; columns: {', '.join(sorted(known))}")
            found = [c for c in found if _norm(c[key]) == _norm(value)]
        else:
            found = [
                c for c in found if any(_norm(c.get(k, "")) == _norm(token) for k in CELL_KEYS)
            ]
    if col:
        found = [c for c in found if _norm(c.get("column", "")) == _norm(col)]
    return found


def _number(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


def _sources(cell: dict[str, str]) -> list[str]:
    return [s.strip() for s in (cell.get("source_record") or "").split(";") if s.strip()]


def _output_of(record_rel: str) -> str:
    return record_rel[: -len(RECORD_SUFFIX)] if record_rel.endswith(RECORD_SUFFIX) else record_rel


# --- trace -----------------------------------------------------------------------------------


class _Tree:
    """Indented rendering of a record and, recursively, the records of its inputs.

    Inputs are shown longest lineage first (the checkpoint before the test manifest); a record
    already shown, or another output of a job already shown, is named and not expanded again.
    """

    def __init__(self, run: Run, verify: bool) -> None:
        self.run, self.verify = run, verify
        self.seen: set[str] = set()
        self.jobs: dict[str, str] = {}
        self.lines: list[str] = []
        self._depths: dict[str, int] = {}

    def depth(self, record_rel: str | None) -> int:
        """Length of the longest record chain below a record (0: no record)."""
        record = self.run.record(record_rel)
        if record is None or record_rel is None:
            return 0
        if record_rel not in self._depths:
            self._depths[record_rel] = 1  # a cycle, were there one, stops here
            links = (record.get("input_records") or {}).values()
            self._depths[record_rel] = 1 + max(map(self.depth, links), default=0)
        return self._depths[record_rel]

    def node(
        self,
        output: str,
        record_rel: str | None,
        lead: str = "",
        pad: str = "",
        used: str | None = None,
        children: list[tuple[str, str | None, str | None]] | None = None,
    ) -> None:
        """``lead`` starts the node's first line, ``pad`` its others; ``used``: the sha256
        the consumer recorded for this file."""
        record = self.run.record(record_rel)
        if record is None:
            now = f"  now {short(self.run.hash(output))}" if self.verify else ""
            self.lines.append(f"{lead}{output}  sha256 {short(used)}  (no record){now}")
            self._children(children or [], pad)
            return
        head = [record.get("output", output), f"[{record.get('rule')}]"]
        head.append(f"sha256 {short(record.get('output_hash'))}")
        code = (record.get("params") or {}).get("code")
        if code:
            head.append(f"code {short(code)}")
        if record.get("seed") is not None:
            head.append(f"seed {record['seed']}")
        if used and used != record.get("output_hash"):
            head.append(f"STALE: consumer used {short(used)}")
        if self.verify:
            now = self.run.hash(record.get("output", output))
            if now is None:
                head.append("MISSING")
            elif now != record.get("output_hash"):
                head.append(f"CHANGED: now {short(now)}")
        job = _job_key(self.run.root, record)
        if record_rel in self.seen:
            self.lines.append(f"{lead}{'  '.join(head)}  (see above)")
            return
        if job in self.jobs:
            self.lines.append(f"{lead}{'  '.join(head)}  (made with {self.jobs[job]}, see above)")
            return
        self.seen.add(str(record_rel))
        self.jobs[job] = record.get("output", output)
        self.lines.append(lead + "  ".join(head))
        if children is None:
            inputs = record.get("inputs") or {}
            links = record.get("input_records") or {}
            children = [(p, links.get(p), inputs.get(p)) for p in dict.fromkeys([*inputs, *links])]
            children.sort(key=lambda child: -self.depth(child[1]))
        body = pad + ("│   " if children else "    ")
        for line in self._details(record):
            self.lines.append(body + line)
        self._children(children, pad)

    def _children(self, children: list[tuple[str, str | None, str | None]], pad: str) -> None:
        for i, (path, rec, digest) in enumerate(children):
            last = i == len(children) - 1
            branch, more = ("└── ", "    ") if last else ("├── ", "│   ")
            if rec is not None and rec.startswith("paper:"):
                self.lines.append(f"{pad}{branch}published value ({rec})")
                continue
            self.node(path, rec, pad + branch, pad + more, digest)

    @staticmethod
    def _details(record: dict[str, Any]) -> list[str]:
        lines = []
        wildcards = record.get("wildcards") or {}
        if wildcards:
            lines.append("wildcards: " + " ".join(f"{k}={v}" for k, v in wildcards.items()))
        params = {k: v for k, v in flatten(record.get("params") or {}).items() if k != "code"}
        if params:
            text = "params: " + "  ".join(f"{k}={_fmt(v)}" for k, v in params.items())
            lines += textwrap.wrap(text, 96, subsequent_indent="        ", break_long_words=False)
        when = record.get("finished")
        if when:
            lines.append(
                f"ran: {when}, {record.get('seconds', '?')} s on {record.get('device', '?')}"
                f" ({record.get('host', '?')})"
            )
        return lines


def trace(
    path: str | Path, row: str | None = None, col: str | None = None, verify: bool = False
) -> list[str]:
    """The provenance chain of a file, or of one table cell when ``row``/``col`` are given.

    Each node shows the output, its rule, its sha256 and code hash (short), the seed, the
    wildcards and parameters, then its inputs' nodes; ``verify`` re-hashes every file and
    marks those changed since recorded. Raises ``ValueError`` unless exactly one cell matches.
    """
    run = Run.of_file(path)
    rel = run.rel(path)
    tree = _Tree(run, verify)
    if row is None and col is None:
        tree.node(rel, str(record_path(rel)))
        return tree.lines
    matches = select_cells(read_cells(path), row, col)
    if len(matches) != 1:
        what = "no cell matches" if not matches else f"{len(matches)} cells match"
        listed = "".join(f"\n  {cell_label(c)}" for c in matches[:30])
        raise ValueError(f"{what} --row {row!r} --col {col!r} in {path}{listed}")
    cell = matches[0]
    lines = [
        f"cell {cell_label(cell)}: ours {cell.get('ours', '?')}  paper {cell.get('paper', '?')}"
        f"  delta {cell.get('delta', '?')}"
    ]
    if cell.get("note"):
        lines.append(f"note: {cell['note']}")
    table_record = run.record(record_path(rel)) or {}
    recorded_inputs = table_record.get("inputs") or {}
    children = [(_output_of(s), s, recorded_inputs.get(_output_of(s))) for s in _sources(cell)]
    if not children:
        lines.append("no evaluation behind this cell")
    tree.node(rel, str(record_path(rel)), children=children)
    return lines + tree.lines


# --- audit -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One problem: ``kind`` is changed, missing, stale, code or unreadable."""

    kind: str
    path: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind:<10} {self.path}  {self.detail}"


def rule_scripts(workflow_dir: str | Path) -> dict[str, Path]:
    """Rule name -> its script, from the ``script:`` lines of ``Snakefile`` and ``rules/*.smk``."""
    workflow_dir = Path(workflow_dir)
    files = [workflow_dir / "Snakefile", *sorted((workflow_dir / "rules").glob("*.smk"))]
    scripts: dict[str, Path] = {}
    for smk in (f for f in files if f.is_file()):
        text = smk.read_text()
        starts = [(m.start(), m.group(1)) for m in RULE_RE.finditer(text)] + [(len(text), "")]
        for (start, name), (end, _) in zip(starts, starts[1:], strict=False):
            found = SCRIPT_RE.search(text, start, end)
            if found:
                scripts[name] = (smk.parent / found.group(1)).resolve()
    return scripts


class _CodeCheck:
    """The working tree's code hash of each rule, computed once."""

    def __init__(self, workflow_dir: Path) -> None:
        self.workflow_dir = workflow_dir
        self.scripts = rule_scripts(workflow_dir)
        self._hashes: dict[str, str | None] = {}
        clear_code_caches()

    def script(self, rule: str) -> Path | None:
        fallback = self.workflow_dir / "workflow_scripts" / f"{rule}.py"
        script = self.scripts.get(rule, fallback)
        return script if script.is_file() else None

    def __call__(self, rule: str, wildcards: dict[str, str] | None = None) -> str | None:
        table = (wildcards or {}).get("table") if rule == "table" else None
        key = f"{rule}:{table}" if table else rule
        if key not in self._hashes:
            script = self.script(rule)
            if script is None:
                self._hashes[key] = None
            elif table:
                self._hashes[key] = table_code_hash(script, table)
            else:
                self._hashes[key] = rule_code_hash(script)
        return self._hashes[key]


def _job_key(root: Path, record: dict[str, Any]) -> str:
    """Outputs of one job share a key (their records differ only in output and hash)."""
    same = {k: v for k, v in record.items() if k not in ("output", "output_hash")}
    return f"{root}\n{json.dumps(same, sort_keys=True, default=str)}"


def audit(
    dirs: Iterable[str | Path], workflow_dir: str | Path | None = None
) -> tuple[list[Finding], int]:
    """Check every record under ``dirs`` and every record they reach through their inputs.

    Findings: ``changed`` (the output's sha256 is not the recorded one), ``missing`` (record
    without output), ``stale`` (an input's sha256 is not the one its consumer recorded),
    ``code`` (the rule's code hash in ``workflow_dir``, default the repository, differs from
    the recorded one), ``unreadable`` (a broken record). Returns (findings, records checked).
    """
    workflow_dir = Path(workflow_dir or provenance.PACKAGE_DIR.parent).resolve()
    code_now = _CodeCheck(workflow_dir)
    todo: deque[tuple[Path, Run]] = deque()
    for top in map(Path, dirs):
        fallback = Run.of_results(top)
        todo.extend((p, fallback) for p in sorted(top.rglob("*" + RECORD_SUFFIX)))
    runs: dict[Path, Run] = {}
    seen: set[Path] = set()
    jobs: set[str] = set()
    findings: list[Finding] = []
    while todo:
        rec_file, fallback = todo.popleft()
        rec_file = rec_file.absolute()
        if rec_file in seen or not rec_file.is_file():
            continue
        seen.add(rec_file)
        try:
            record = json.loads(rec_file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            findings.append(Finding("unreadable", str(rec_file), str(err)))
            continue
        output = record.get("output") or _output_of(fallback.rel(rec_file))
        root = _root_of(rec_file, output)
        run = runs.setdefault(root, Run(root)) if root else fallback
        findings += _check_output(run, record, output)
        key = _job_key(run.root, record)
        if key not in jobs:
            jobs.add(key)
            findings += _check_inputs(run, record, output)
            findings += _check_code(code_now, record, output)
        todo.extend((run.path(r), run) for r in (record.get("input_records") or {}).values())
    return findings, len(seen)


def _check_output(run: Run, record: dict[str, Any], output: str) -> list[Finding]:
    now, then = run.hash(output), record.get("output_hash")
    if now is None:
        return [Finding("missing", output, f"[{record.get('rule')}] recorded {short(then)}")]
    if now != then:
        return [Finding("changed", output, f"sha256 {short(then)} recorded, now {short(now)}")]
    return []


def _check_inputs(run: Run, record: dict[str, Any], output: str) -> list[Finding]:
    found = []
    for path, then in (record.get("inputs") or {}).items():
        now = run.hash(path)
        if now != then:
            state = "gone" if now is None else f"now {short(now)}"
            detail = f"[{record.get('rule')}] input {path} sha256 {short(then)} used, {state}"
            found.append(Finding("stale", output, detail))
    return found


def _check_code(code_now: _CodeCheck, record: dict[str, Any], output: str) -> list[Finding]:
    rule = str(record.get("rule"))
    then = (record.get("params") or {}).get("code")
    if not then:
        return []
    now = code_now(rule, record.get("wildcards"))
    if now is None:
        where = code_now.workflow_dir / "rules"
        return [Finding("code", output, f"[{rule}] no script for rule {rule} under {where}")]
    if now != then:
        script = code_now.script(rule)
        name = script.relative_to(code_now.workflow_dir) if script else rule
        detail = f"[{rule}] code {short(then)} recorded, {short(now)} in the working tree ({name})"
        return [Finding("code", output, detail)]
    return []


# --- diff ------------------------------------------------------------------------------------


def table_cells(results: Path) -> dict[tuple[str, ...], dict[str, str]]:
    """Cells of the long table CSVs under ``results/tables``, keyed by ``CELL_KEYS``."""
    cells: dict[tuple[str, ...], dict[str, str]] = {}
    for path in sorted((results / "tables").glob("*.csv")):
        rows = read_cells(path)
        if not rows or not {"column", "ours"} <= set(rows[0]):
            continue
        for cell in rows:
            cell = {"table": path.stem, **{k: v for k, v in cell.items() if v is not None}}
            cells[tuple(cell.get(k, "") for k in CELL_KEYS)] = {**cell, "_file": str(path)}
    return cells


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=0, abs_tol=1e-9)


def _pair(a: Sequence[str], b: Sequence[str]) -> list[tuple[str | None, str | None]]:
    """Equal entries paired, then the rest in order (an input renamed, e.g. a new budget)."""
    both = [x for x in a if x in b]
    rest_a, rest_b = [x for x in a if x not in b], [x for x in b if x not in a]
    return [(x, x) for x in both] + list(zip_longest(rest_a, rest_b))


class _Differ:
    """Differences between two runs' record chains, each pair of records compared once."""

    def __init__(self, a: Run, b: Run) -> None:
        self.a, self.b = a, b
        self._nodes: dict[tuple[str | None, str | None, bool], list[str]] = {}

    def cell(self, cell_a: dict[str, str], cell_b: dict[str, str]) -> list[str]:
        lines: list[str] = []
        tables = (
            record_path(self.a.rel(cell_a["_file"])),
            record_path(self.b.rel(cell_b["_file"])),
        )
        lines += self.node(str(tables[0]), str(tables[1]), inputs=False)
        seen: set[tuple[str | None, str | None]] = set()
        for pa, pb in _pair(_sources(cell_a), _sources(cell_b)):
            self._walk(pa, pb, lines, seen)
        return list(dict.fromkeys(lines))

    def _walk(
        self, pa: str | None, pb: str | None, lines: list[str], seen: set[tuple[str | None, ...]]
    ) -> None:
        if (pa, pb) in seen:
            return
        seen.add((pa, pb))
        lines += self.node(pa, pb)
        ra = self.a.record(pa) if pa and not pa.startswith("paper:") else None
        rb = self.b.record(pb) if pb and not pb.startswith("paper:") else None
        if ra is None or rb is None:
            return
        links_a, links_b = ra.get("input_records") or {}, rb.get("input_records") or {}
        for ia, ib in _pair(list(links_a), list(links_b)):
            self._walk(
                links_a.get(ia) if ia else None, links_b.get(ib) if ib else None, lines, seen
            )

    def node(self, pa: str | None, pb: str | None, inputs: bool = True) -> list[str]:
        key = (pa, pb, inputs)
        if key not in self._nodes:
            self._nodes[key] = self._compare(pa, pb, inputs)
        return self._nodes[key]

    def _compare(self, pa: str | None, pb: str | None, inputs: bool) -> list[str]:
        if (pa or "").startswith("paper:") or (pb or "").startswith("paper:"):
            return [] if pa == pb else [f"source: {pa} -> {pb}"]
        ra = self.a.record(pa) if pa else None
        rb = self.b.record(pb) if pb else None
        if ra is None and rb is None:
            return []
        if ra is None or rb is None:
            name = _output_of(str(pb if ra is None else pa))
            return [f"{name}: record only in {'B' if ra is None else 'A'}"]
        label = f"{ra.get('output')} [{ra.get('rule')}]"
        out = []
        if ra.get("output") != rb.get("output"):
            out.append(f"{label}: now {rb.get('output')}")
        for key in ("rule", "seed", "device"):
            if ra.get(key) != rb.get(key):
                out.append(f"{label}: {key}: {_fmt(ra.get(key))} -> {_fmt(rb.get(key))}")
        code_a = (ra.get("params") or {}).get("code")
        code_b = (rb.get("params") or {}).get("code")
        if code_a != code_b:
            out.append(f"{label}: code {short(code_a)} -> {short(code_b)}")
        for prefix, field in (
            ("wildcards.", "wildcards"),
            ("", "params"),
            ("versions.", "versions"),
        ):
            flat_a, flat_b = flatten(ra.get(field) or {}), flatten(rb.get(field) or {})
            for k in dict.fromkeys([*flat_a, *flat_b]):
                if k != "code" and flat_a.get(k, "<absent>") != flat_b.get(k, "<absent>"):
                    va, vb = flat_a.get(k, "<absent>"), flat_b.get(k, "<absent>")
                    out.append(f"{label}: {prefix}{k}: {_fmt(va)} -> {_fmt(vb)}")
        if inputs:
            ins_a, ins_b = ra.get("inputs") or {}, rb.get("inputs") or {}
            for ia, ib in _pair(list(ins_a), list(ins_b)):
                ha, hb = ins_a.get(ia) if ia else None, ins_b.get(ib) if ib else None
                if ha != hb:
                    name = ia if ia == ib else f"{ia} -> {ib}"
                    out.append(f"{label}: input {name} sha256 {short(ha)} -> {short(hb)}")
        return out


def diff(results_a: str | Path, results_b: str | Path) -> tuple[list[str], int]:
    """Table cells whose value differs between two results directories, with their causes.

    Cells are matched on ``CELL_KEYS``; for each changed cell both record chains are walked
    (its ``source_record``, then the records of the inputs, paired by path) and every
    difference in code hash, parameter (``evaluation.table_budgets.multi: 0.006 -> 0.008``),
    seed, wildcard, software version and input sha256 is listed. Cells with the same causes
    are listed together. Returns (lines, number of cells that differ).
    """
    run_a, run_b = Run.of_results(results_a), Run.of_results(results_b)
    cells_a, cells_b = table_cells(run_a.results), table_cells(run_b.results)
    differ = _Differ(run_a, run_b)
    groups: dict[tuple[str, ...], list[str]] = {}
    for key in (k for k in cells_a if k in cells_b):
        a, b = cells_a[key], cells_b[key]
        va, vb = _number(a.get("ours")), _number(b.get("ours"))
        if not _same(va, vb):
            causes = tuple(differ.cell(a, b))
            change = f"{a.get('ours') or 'nan'} -> {b.get('ours') or 'nan'}"
            groups.setdefault(causes, []).append(f"changed  {cell_label(a)}: {change}")
    lines = []
    for causes, changed in groups.items():
        lines += changed
        lines.append("  upstream:")
        lines += [f"    {c}" for c in causes] or ["    no recorded difference"]
    only_a = [k for k in cells_a if k not in cells_b]
    only_b = [k for k in cells_b if k not in cells_a]
    lines += [f"only A   {cell_label(cells_a[k])}" for k in only_a]
    lines += [f"only B   {cell_label(cells_b[k])}" for k in only_b]
    n_changed = sum(len(v) for v in groups.values())
    lines.append(
        f"diff: {n_changed} of {len(set(cells_a) & set(cells_b))} common cells changed, "
        f"{len(only_a)} only in A, {len(only_b)} only in B"
    )
    return lines, n_changed + len(only_a) + len(only_b)


# --- command line ----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avrobust", description="Provenance of the workflow's outputs."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("trace", help="the record chain behind a file or one table cell")
    p.add_argument("path", help="an output, e.g. results/tables/table3.csv")
    p.add_argument("--row", help='cell filters: "dataset=X,attack=fgsm,method=minsim" or "minsim"')
    p.add_argument("--col", help="the cell's column: clean, a, v, av, avg, avg_clean, ri")
    p.add_argument("--verify", action="store_true", help="re-hash files, mark changed ones")
    p = sub.add_parser("audit", help="changed, missing and stale outputs, out-of-date code")
    p.add_argument("dirs", nargs="*", default=[RESULTS], help="directories to scan (results)")
    p.add_argument("--workflow", help="workflow directory for code hashes (the repository)")
    p = sub.add_parser("diff", help="table cells that differ between two runs, and why")
    p.add_argument("run_a", help="a results directory")
    p.add_argument("run_b", help="another results directory")
    p = sub.add_parser("code", help="code hash of workflow scripts")
    p.add_argument("scripts", nargs="+", help="workflow scripts, e.g. workflow_scripts/train.py")
    p.add_argument("--files", action="store_true", help="list the files each hash covers")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (1: findings or differences, 2: bad usage)."""
    args = _parser().parse_args(argv)
    if args.command == "trace":
        try:
            lines = trace(args.path, args.row, args.col, args.verify)
        except ValueError as err:
            print(f"trace: {err}", file=sys.stderr)
            return 2
        print("\n".join(lines))
        return 0
    if args.command == "audit":
        absent = [d for d in args.dirs if not Path(d).is_dir()]
        if absent:
            print(f"audit: no directory {', '.join(absent)}", file=sys.stderr)
            return 2
        findings, checked = audit(args.dirs, args.workflow)
        for finding in sorted(findings, key=lambda f: (KINDS.index(f.kind), f.path)):
            print(finding)
        counts = Counter(f.kind for f in findings)
        summary = ", ".join(f"{counts[kind]} {kind}" for kind in KINDS if counts[kind])
        print(f"audit: {checked} records checked, " + (summary or "no findings"))
        return 1 if findings else 0
    if args.command == "diff":
        lines, differing = diff(args.run_a, args.run_b)
        print("\n".join(lines))
        return 1 if differing else 0
    for script in args.scripts:
        print(f"{rule_code_hash(script)}  {script}")
        if args.files:
            print("".join(f"    {p}\n" for p in code_closure(Path(script))), end="")
    return 0
