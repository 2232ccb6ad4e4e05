"""A workflow run as its provenance records describe it.

Paths in records are relative to the workflow's working directory (``results/...``,
``resources/...``); a run is that directory wherever it lies now: for ``/tmp/runA/results``
the path ``results/x`` is ``/tmp/runA/results/x`` and ``resources/y`` is
``/tmp/runA/resources/y``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from avmodels.provenance import RECORD_SUFFIX, file_hash, record_path

SHORT = 12  # hex digits shown of a sha256
RESULTS = "results"


def short(digest: str | None) -> str:
    """The first hex digits of a sha256 (``-`` for none)."""
    return digest[:SHORT] if digest else "-"


def fmt(value: Any) -> str:
    """A value as records show it: strings bare, the rest as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as ``{"a.b.c": leaf}``; lists and scalars are leaves."""
    if not isinstance(tree, dict) or (prefix and not tree):
        return {prefix: tree} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def root_of(record_file: Path, output: str | None) -> Path | None:
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
            root = root_of(sidecar, json.loads(sidecar.read_text()).get("output"))
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


def output_of(record_rel: str) -> str:
    """The output a record path stands for (``x.csv.prov.json`` -> ``x.csv``)."""
    return record_rel[: -len(RECORD_SUFFIX)] if record_rel.endswith(RECORD_SUFFIX) else record_rel


def job_key(root: Path, record: dict[str, Any]) -> str:
    """Outputs of one job share a key (their records differ only in output and hash)."""
    same = {k: v for k, v in record.items() if k not in ("output", "output_hash")}
    return f"{root}\n{json.dumps(same, sort_keys=True, default=str)}"
