"""Each table cell's record chain, followed back to the clip lists: every link must hold.

A cell names the records of the evaluations it came from (``source_record``). Its chain
holds when each of those is a record of an input the table's own record lists, and,
recursively, every input a record lists under ``results/`` or ``resources/`` has a record
in place, down to the steps with no such inputs (the clip lists, the synthetic generator).
Hashes along the chain are checked by the audit itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from avmodels.workflow.cells import PUBLISHED, cell_label, read_cells, sources
from avmodels.workflow.runs import Run, output_of

MADE_UNDER = ("results/", "resources/")  # inputs the workflow makes, so must have records


def table_files(top: Path) -> Iterator[Path]:
    """The table CSVs under ``top``: CSVs in a ``tables`` folder with a ``source_record``."""
    for path in sorted(top.rglob("*.csv")):
        if path.parent.name == "tables" and "source_record" in _header(path):
            yield path


def _header(path: Path) -> str:
    with path.open(errors="replace") as fh:
        return fh.readline()


class Chains:
    """Broken links below records of one run, each record followed once."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self._below: dict[str, tuple[str, ...]] = {}

    def table(self, path: Path, record: dict[str, Any] | None) -> dict[str, list[str]]:
        """Broken link -> labels of the cells of ``path`` whose chain it breaks."""
        used = set((record or {}).get("inputs") or {})
        broken: dict[str, list[str]] = {}
        for cell in read_cells(path):
            cell = {"table": path.stem, **{k: v for k, v in cell.items() if v is not None}}
            for link in dict.fromkeys(self.cell(cell, used if record else None)):
                broken.setdefault(link, []).append(cell_label(cell))
        return broken

    def cell(self, cell: dict[str, str], used: set[str] | None) -> list[str]:
        """The broken links of one cell (``used``: the table record's inputs, if any)."""
        links: list[str] = []
        for source in sources(cell):
            if source.startswith(PUBLISHED):
                continue
            if used is not None and output_of(source) not in used:
                links.append(f"source {output_of(source)} is not an input of the table's record")
            links += self.below(source)
        return links

    def below(self, record_rel: str) -> tuple[str, ...]:
        """Broken links at and below the record ``record_rel``."""
        if record_rel not in self._below:
            self._below[record_rel] = ()  # a cycle, were there one, stops here
            self._below[record_rel] = tuple(dict.fromkeys(self._walk(record_rel)))
        return self._below[record_rel]

    def _walk(self, record_rel: str) -> Iterator[str]:
        output = output_of(record_rel)
        try:
            record = self.run.record(record_rel)
        except ValueError:
            yield f"{record_rel} is not a provenance record"
            return
        if record is None:
            yield f"{output} has no record"
            return
        if record.get("output") != output:
            yield f"{record_rel} is the record of {record.get('output')}"
            return
        links = record.get("input_records") or {}
        for path in record.get("inputs") or {}:
            if path in links:
                yield from self.below(links[path])
            elif str(path).startswith(MADE_UNDER):
                yield f"{path} (input of [{record.get('rule')}] {output}) has no record"

    def records(self) -> list[Path]:
        """Every record file reached so far (for the audit to check)."""
        return [self.run.path(rel) for rel in self._below if self.run.path(rel).is_file()]
