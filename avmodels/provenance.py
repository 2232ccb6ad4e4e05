"""Code hashes that stand for exactly the code a workflow step runs.

A step's code is its script plus every ``avmodels`` module the script reaches
through imports, followed transitively. Each file is hashed on its normalised
syntax tree (docstrings, comments and formatting dropped), so touching a file
or editing a comment changes nothing, while any real edit of a reached module
changes the hash.

Every output also gets a record beside it (:func:`record_path`, written by
``avmodels.jobs.job``); ``python -m avmodels.provenance {trace,audit,diff,code}`` reads
them (``avmodels.audit``).
"""

from __future__ import annotations

import ast
import hashlib
from functools import cache
from pathlib import Path

import yaml

PACKAGE = "avmodels"
PACKAGE_DIR = Path(__file__).resolve().parent


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            first = body[0] if body else None
            value = first.value if isinstance(first, ast.Expr) else None
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


@cache
def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


@cache
def source_hash(path: Path) -> str:
    """sha256 of a file's normalised content: Python by syntax tree, YAML by value."""
    path = Path(path)
    if path.suffix == ".py":
        tree = _strip_docstrings(ast.parse(path.read_text(), filename=str(path)))
        text = ast.dump(tree, annotate_fields=False, include_attributes=False)
    elif path.suffix in {".yaml", ".yml"}:
        text = repr(yaml.safe_load(path.read_text()))
    else:
        text = path.read_text()
    return hashlib.sha256(text.encode()).hexdigest()


def _module_file(name: str) -> Path | None:
    if name != PACKAGE and not name.startswith(PACKAGE + "."):
        return None
    parts = name.split(".")[1:]
    base = PACKAGE_DIR.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    package = _package_of(path)
    for node in ast.walk(_parse(path)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_from(node, package)
            if base:
                names.add(base)
                names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


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


@cache
def code_closure(script: Path) -> tuple[Path, ...]:
    """The script and every ``avmodels`` file it reaches, sorted."""
    seen: set[Path] = set()
    todo = [Path(script).resolve()]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imported_modules(path):
            found = _module_file(name)
            if found is not None:
                todo.append(found.resolve())
                # a submodule import runs its package's __init__ too
                init = found.parent / "__init__.py"
                if init.is_file():
                    todo.append(init.resolve())
    data = {p for f in seen for p in _data_files(f)}
    return tuple(sorted(seen | data))


def _data_files(path: Path) -> list[Path]:
    """Package data files a module names literally (e.g. ``"paper_results.yaml"``)."""
    if PACKAGE_DIR not in path.parents:
        return []
    found = []
    for node in ast.walk(_parse(path)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            candidate = path.parent / node.value
            if node.value.endswith((".yaml", ".yml", ".csv")) and candidate.is_file():
                found.append(candidate.resolve())
    return found


def rule_code_hash(script: str | Path) -> str:
    """One sha256 for the normalised code a workflow script runs."""
    digest = hashlib.sha256()
    root = PACKAGE_DIR.parent
    for path in code_closure(Path(script)):
        rel = path.relative_to(root) if root in path.parents else path.name
        digest.update(f"{rel}:{source_hash(path)}\n".encode())
    return digest.hexdigest()


def table_code_hash(script: str | Path, table: str) -> str:
    """The table script's code hash plus that of one table's spec module only (the script
    loads specs by name, so its import closure leaves them out)."""
    script = Path(script)
    spec = script.parent.parent / "avmodels" / "table_specs" / f"{table}.py"
    return f"{rule_code_hash(script)}+{source_hash(spec)}"


# --- provenance records -------------------------------------------------------------------

RECORD_SUFFIX = ".prov.json"


def record_path(output: str | Path) -> Path:
    """Where the provenance record of an output lives: beside it, ``<name>.prov.json``."""
    output = Path(output)
    return output.with_name(output.name + RECORD_SUFFIX)


UNHASHED = {".snakemake_timestamp"}  # Snakemake's own marker in directory outputs


def file_hash(path: str | Path) -> str:
    """sha256 of a file; for a directory, of its files' relative names and hashes
    (Snakemake's timestamp marker left out)."""
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_dir():
        children = (p for p in path.rglob("*") if p.is_file() and p.name not in UNHASHED)
        for child in sorted(children):
            digest.update(f"{child.relative_to(path)}:{file_hash(child)}\n".encode())
        return digest.hexdigest()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def clear_code_caches() -> None:
    """Forget parsed sources and hashes, so that files edited since are read again."""
    for cached in (_parse, source_hash, code_closure):
        cached.cache_clear()


def main(argv: list[str] | None = None) -> None:
    """``python -m avmodels.provenance {trace,audit,diff,code} ...`` (see ``avmodels.audit``)."""
    import importlib
    import signal
    import sys

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet end when piped into head
    # Imported by name: workflow steps reach this module, and a code hash of theirs must not
    # change when the commands below are edited.
    commands = importlib.import_module(f"{PACKAGE}.audit")
    sys.exit(commands.main(argv))


if __name__ == "__main__":
    main()
