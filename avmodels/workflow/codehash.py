"""Code hashes that stand for exactly the code a workflow step runs.

A step's code is its script plus every ``avmodels`` module the script reaches
through imports, followed transitively (imports under ``if __name__ == "__main__":``
are not followed: a step never runs them). Each file is hashed on its normalised
syntax tree (docstrings, comments and formatting dropped), so touching a file
or editing a comment changes nothing, while any real edit of a reached module
changes the hash. What was read of each file is kept in ``.cache/avmodels/`` beside
the package (or the file ``$AVMODELS_CODE_CACHE``), keyed by path and the sha256 of the
file's bytes, so a dry run does not parse the library again and no edit goes unseen,
whatever the file's modification time.

Command line: ``avrobust code SCRIPT [--files]``.
"""

from __future__ import annotations

import argparse
import ast
import functools
import hashlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from avmodels import atomic

PACKAGE = "avmodels"
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # avmodels/, above workflow/
DATA_SUFFIXES = (".yaml", ".yml", ".csv")
CACHE_FILE = ".cache/avmodels/code_hashes.json"  # under the folder that holds the package
CACHE_ENV = "AVMODELS_CODE_CACHE"  # another place for that file


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            first = body[0] if body else None
            value = first.value if isinstance(first, ast.Expr) else None
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


@dataclass(frozen=True)
class _Source:
    """What the code hash needs of one file, from a single parse."""

    digest: str  # sha256 of the normalised content
    imports: tuple[str, ...] = ()  # absolute names of the modules it imports
    literals: tuple[str, ...] = ()  # string constants that may name package data files


def _is_main_guard(node: ast.AST) -> bool:
    """``if __name__ == "__main__":`` (code a module runs only as a program)."""
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    test = node.test
    names = [test.left, *test.comparators]
    return any(isinstance(n, ast.Name) and n.id == "__name__" for n in names) and any(
        isinstance(n, ast.Constant) and n.value == "__main__" for n in names
    )


def _imported_nodes(tree: ast.Module) -> list[ast.AST]:
    """Every node of the module except those under a top-level ``__main__`` guard."""
    return [n for top in tree.body if not _is_main_guard(top) for n in ast.walk(top)]


def _analyse(path: Path, data: bytes | None = None) -> _Source:
    text = (path.read_bytes() if data is None else data).decode()
    if path.suffix in {".yaml", ".yml"}:
        return _Source(_sha256(repr(yaml.safe_load(text))))
    if path.suffix != ".py":
        return _Source(_sha256(text))
    tree = ast.parse(text, filename=str(path))
    package = _package_of(path)
    imports: set[str] = set()
    literals: set[str] = set()
    for node in _imported_nodes(tree):
        if isinstance(node, ast.Import):
            imports.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_from(node, package)
            if base:
                imports.add(base)
                imports.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and str(node.value).endswith(DATA_SUFFIXES):
            literals.add(node.value)
    dump = ast.dump(_strip_docstrings(tree), annotate_fields=False, include_attributes=False)
    return _Source(_sha256(dump), tuple(sorted(imports)), tuple(sorted(literals)))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class _SourceCache:
    """:func:`_analyse` results in memory and in a JSON file, keyed by path and the sha256
    of the file's bytes: a workflow parses its rules on every run (a dry run included), and
    re-parsing the library each time costs seconds. Reading and hashing the bytes is cheap;
    a file is analysed again as soon as its content differs, whatever its mtime says."""

    def __init__(self, file: Path | None) -> None:
        self.file, self.entries, self.dirty = file, None, False

    def get(self, path: Path) -> _Source:
        if self.entries is None:
            self.entries = self._load()
        data = path.read_bytes()
        key, content = str(path), hashlib.sha256(data).hexdigest()
        entry = self.entries.get(key)
        if entry is None or entry[0] != content:
            source = _analyse(path, data)
            self.entries[key] = entry = [content, source.digest, source.imports, source.literals]
            self.dirty = True
        return _Source(entry[1], tuple(entry[2]), tuple(entry[3]))

    def _load(self) -> dict:
        try:
            return json.loads(self.file.read_text()) if self.file else {}
        except (OSError, ValueError):
            return {}

    def save(self) -> None:
        """Write the file if anything was analysed (atomically; skipped if not writable)."""
        if not (self.dirty and self.file):
            return
        try:
            atomic.write_text(self.file, json.dumps(self.entries))
            self.dirty = False
        except OSError:
            pass


_CACHE = _SourceCache(
    Path(os.environ[CACHE_ENV]) if os.environ.get(CACHE_ENV) else PACKAGE_DIR.parent / CACHE_FILE
)


def source_hash(path: Path) -> str:
    """sha256 of a file's normalised content: Python by syntax tree, YAML by value."""
    digest = _CACHE.get(Path(path).resolve()).digest
    _CACHE.save()
    return digest


def _module_file(name: str) -> Path | None:
    """The ``avmodels`` file of module ``name`` (resolved), or None outside the package."""
    return _find_module(PACKAGE, PACKAGE_DIR, name)


@functools.cache
def _find_module(package: str, package_dir: Path, name: str) -> Path | None:
    if name != package and not name.startswith(package + "."):
        return None
    base = package_dir.joinpath(*name.split(".")[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate.resolve()
    return None


def _package_of(path: Path) -> str | None:
    try:
        rel = path.resolve().relative_to(PACKAGE_DIR.parent)
    except ValueError:
        return None
    return ".".join(rel.with_suffix("").parts[:-1]) or None


def _resolve_from(node: ast.ImportFrom, package: str | None) -> str | None:
    if node.level == 0:
        return node.module
    if package is None:
        return None
    parts = package.split(".")
    parts = parts[: len(parts) - node.level + 1]
    return ".".join([*parts, node.module] if node.module else parts)


# logging, provenance records and how files are written
HARNESS = frozenset(f"{PACKAGE}.{name}" for name in ("workflow.jobs", "provenance", "atomic"))
# Steps whose output depends neither on the job harness nor on code they call only to
# check what they fetched (ffmpeg probing, where a finished video lies): an edit there must
# not fetch (or download) everything again.
UNFOLLOWED = {
    "fetch_list": HARNESS,
    "list_records": HARNESS,
    "download": HARNESS | {f"{PACKAGE}.data.{name}" for name in ("probing", "preprocess")},
}


def code_closure(script: Path, ignore: frozenset[str] | None = None) -> tuple[Path, ...]:
    """The script and every ``avmodels`` file it reaches, sorted; imports of the modules in
    ``ignore`` (default: :data:`UNFOLLOWED` of the script's step) are not followed."""
    if ignore is None:
        ignore = UNFOLLOWED.get(Path(script).stem, frozenset())
    seen: set[Path] = set()
    data: set[Path] = set()
    todo = [Path(script).resolve()]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        source = _CACHE.get(path)
        for name in source.imports:
            if name in ignore:
                continue
            found = _module_file(name)
            if found is not None:
                todo.append(found)
                # a submodule import runs its package's __init__ too
                init = found.with_name("__init__.py")
                if init != found and _module_file(name.rpartition(".")[0]) == init:
                    todo.append(init)
        if PACKAGE_DIR in path.parents:  # package data files a module names literally
            data.update(
                (path.parent / name).resolve()
                for name in source.literals
                if (path.parent / name).is_file()
            )
    _CACHE.save()
    return tuple(sorted(seen | data))


def rule_code_hash(script: str | Path, ignore: frozenset[str] | None = None) -> str:
    """One sha256 for the normalised code a workflow script runs (``ignore``: modules left
    out, as in :func:`code_closure`)."""
    digest = hashlib.sha256()
    root = PACKAGE_DIR.parent
    for path in code_closure(Path(script), ignore):
        rel = path.relative_to(root) if root in path.parents else path.name
        digest.update(f"{rel}:{source_hash(path)}\n".encode())
    return digest.hexdigest()


def table_code_hash(script: str | Path, table: str) -> str:
    """The table script's code hash plus that of one table's spec module only (the script
    loads specs by name, so its import closure leaves them out)."""
    script = Path(script)
    spec = script.parent.parent / "avmodels" / "study" / "table_specs" / f"{table}.py"
    return f"{rule_code_hash(script)}+{source_hash(spec)}"


def clear_code_caches() -> None:
    """Forget what was read of the sources (memory only; the file cache checks contents)."""
    _CACHE.entries = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "scripts", nargs="+", help="workflow scripts, e.g. workflow_scripts/evaluate.py"
    )
    parser.add_argument("--files", action="store_true", help="list the files each hash covers")


def run(args: argparse.Namespace) -> int:
    """Print each script's code hash (and, with ``--files``, the files it covers)."""
    for script in args.scripts:
        if not Path(script).is_file():
            print(f"code: no file {script}", file=sys.stderr)
            return 2
        print(f"{rule_code_hash(script)}  {script}")
        if args.files:
            print("".join(f"    {p}\n" for p in code_closure(Path(script))), end="")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``code SCRIPT... [--files]``: exit status 0, 2 for a script that does not exist."""
    parser = argparse.ArgumentParser(prog="avrobust code", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))
