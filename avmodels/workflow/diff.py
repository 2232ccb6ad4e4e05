"""``diff``: the table cells that differ between two runs, and what changed upstream.

avrobust diff RUN_A/results RUN_B/results
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from itertools import zip_longest
from pathlib import Path

from avmodels.provenance import record_path
from avmodels.workflow.cells import PUBLISHED, cell_label, number, sources, table_cells
from avmodels.workflow.runs import Run, flatten, fmt, output_of, short


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
        for pa, pb in _pair(sources(cell_a), sources(cell_b)):
            self._walk(pa, pb, lines, seen)
        return list(dict.fromkeys(lines))

    def _walk(
        self, pa: str | None, pb: str | None, lines: list[str], seen: set[tuple[str | None, ...]]
    ) -> None:
        if (pa, pb) in seen:
            return
        seen.add((pa, pb))
        lines += self.node(pa, pb)
        ra = self.a.record(pa) if pa and not pa.startswith(PUBLISHED) else None
        rb = self.b.record(pb) if pb and not pb.startswith(PUBLISHED) else None
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
        if (pa or "").startswith(PUBLISHED) or (pb or "").startswith(PUBLISHED):
            return [] if pa == pb else [f"source: {pa} -> {pb}"]
        ra = self.a.record(pa) if pa else None
        rb = self.b.record(pb) if pb else None
        if ra is None and rb is None:
            return []
        if ra is None or rb is None:
            name = output_of(str(pb if ra is None else pa))
            return [f"{name}: record only in {'B' if ra is None else 'A'}"]
        label = f"{ra.get('output')} [{ra.get('rule')}]"
        out = []
        if ra.get("output") != rb.get("output"):
            out.append(f"{label}: now {rb.get('output')}")
        for key in ("rule", "seed", "device"):
            if ra.get(key) != rb.get(key):
                out.append(f"{label}: {key}: {fmt(ra.get(key))} -> {fmt(rb.get(key))}")
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
                    out.append(f"{label}: {prefix}{k}: {fmt(va)} -> {fmt(vb)}")
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
        va, vb = number(a.get("ours")), number(b.get("ours"))
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_a", help="a results directory")
    parser.add_argument("run_b", help="another results directory")


def run(args: argparse.Namespace) -> int:
    """Print the differences; 1 if any cell differs, 2 for a directory that does not exist."""
    absent = [d for d in (args.run_a, args.run_b) if not Path(d).is_dir()]
    if absent:
        print(f"diff: no directory {', '.join(absent)}", file=sys.stderr)
        return 2
    lines, differing = diff(args.run_a, args.run_b)
    print("\n".join(lines))
    return 1 if differing else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``diff RUN_A RUN_B``."""
    parser = argparse.ArgumentParser(
        prog="avrobust diff", description="Table cells that differ between two runs."
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
