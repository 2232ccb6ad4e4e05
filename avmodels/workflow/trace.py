"""``trace``: the provenance chain behind a file or one table cell, as an indented tree.

Each node shows the output, its rule, its sha256 and code hash (short), the seed, the
wildcards and parameters, then its inputs' nodes, down to the clip lists::

    avrobust trace results/tables/table3.csv --row minsim --col av
    avrobust trace results/tables/table1.csv --row "attack=pgd,method=concat" --col a
    avrobust trace results/synthetic_music/models/concat/checkpoint.pt --verify
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from avmodels.provenance import record_path
from avmodels.workflow.cells import PUBLISHED, cell_label, read_cells, select_cells, sources
from avmodels.workflow.runs import Run, flatten, fmt, job_key, output_of, short


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
        job = job_key(self.run.root, record)
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
            if rec is not None and rec.startswith(PUBLISHED):
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
            text = "params: " + "  ".join(f"{k}={fmt(v)}" for k, v in params.items())
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
    children = [(output_of(s), s, recorded_inputs.get(output_of(s))) for s in sources(cell)]
    if not children:
        lines.append("no evaluation behind this cell")
    tree.node(rel, str(record_path(rel)), children=children)
    return lines + tree.lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="an output, e.g. results/tables/table3.csv")
    parser.add_argument(
        "--row", help='cell filters: "dataset=X,attack=fgsm,method=minsim" or "minsim"'
    )
    parser.add_argument("--col", help="the cell's column: clean, a, v, av, avg, avg_clean, ri")
    parser.add_argument("--verify", action="store_true", help="re-hash files, mark changed ones")


def run(args: argparse.Namespace) -> int:
    """Print the chain; 2 (and one line on stderr) for a selection that is not one cell."""
    try:
        lines = trace(args.path, args.row, args.col, args.verify)
    except (ValueError, OSError) as err:
        print(f"trace: {err}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``trace PATH [--row R --col C] [--verify]``."""
    parser = argparse.ArgumentParser(
        prog="avrobust trace", description="The record chain behind a file or cell."
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
