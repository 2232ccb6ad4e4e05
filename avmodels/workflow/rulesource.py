"""Which script each rule runs, read from the workflow's rule files, and its code hash now."""

from __future__ import annotations

import re
from pathlib import Path

from avmodels.workflow.codehash import clear_code_caches, rule_code_hash, table_code_hash

RULE_RE = re.compile(r"^(?:rule|checkpoint)\s+(\w+)\s*:", re.MULTILINE)
SCRIPT_RE = re.compile(r"^\s+script:\s*(?:#.*)?\n?\s*[rf]?[\"']([^\"']+)[\"']", re.MULTILINE)


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


class CodeCheck:
    """The working tree's code hash of each rule, computed once."""

    def __init__(self, workflow_dir: Path) -> None:
        self.workflow_dir = workflow_dir
        self.scripts = rule_scripts(workflow_dir)
        self._hashes: dict[str, str | None] = {}
        clear_code_caches()

    def script(self, rule: str) -> Path | None:
        """The rule's script (``workflow_scripts/<rule>.py`` if no rule file names one)."""
        fallback = self.workflow_dir / "workflow_scripts" / f"{rule}.py"
        script = self.scripts.get(rule, fallback)
        return script if script.is_file() else None

    def __call__(self, rule: str, wildcards: dict[str, str] | None = None) -> str | None:
        """The rule's code hash now (a table's includes its spec); None without a script."""
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
