"""The workflow machinery: config checks, targets, the job wrapper, code hashes, provenance runs,
trace, audit, diff and the ``avrobust`` command line. The science packages import none of it.

- :mod:`.audit`: ``audit``: every record of a results tree checked against the files, the code
  and each other.
- :mod:`.cells`: Cells of the long table CSVs: reading, naming and selecting them.
- :mod:`.chains`: Each table cell's record chain, followed back to the clip lists: every link
  must hold.
- :mod:`.cli`: ``avrobust``: the project's one command line, dispatching each command to its
  module.
- :mod:`.codehash`: Code hashes that stand for exactly the code a workflow step runs.
- :mod:`.config`: Study configuration checks: the JSON schema plus the cross-references it
  cannot express.
- :mod:`.diff`: ``diff``: the table cells that differ between two runs, and what changed
  upstream.
- :mod:`.jobs`: What every workflow step does around its work: logging, threads, provenance.
- :mod:`.plan`: Which models, evaluations and analyses a study configuration asks for.
- :mod:`.preflight`: Checks a study with YouTube datasets runs before any job: JavaScript
  runtime, ffmpeg, a.
- :mod:`.rulesource`: Which script each rule runs, read from the workflow's rule files, and its
  code hash now.
- :mod:`.runs`: A workflow run as its provenance records describe it.
- :mod:`.trace`: ``trace``: the provenance chain behind a file or one table cell, as an indented
  tree.

Public names are exported lazily: importing the package imports none of its
modules; ``from avmodels.<package> import name`` imports the one defining ``name``.
"""

from __future__ import annotations

from avmodels import lazy_exports

_SUBMODULES = (
    "audit",
    "cells",
    "chains",
    "cli",
    "codehash",
    "config",
    "diff",
    "jobs",
    "plan",
    "preflight",
    "rulesource",
    "runs",
    "trace",
)
_EXPORTS = {  # public name -> the module defining it
    "AUTOATTACK_EVALUATION": "plan",
    "CACHE_ENV": "codehash",
    "CACHE_FILE": "codehash",
    "CELL_KEYS": "cells",
    "COMMANDS": "cli",
    "Chains": "chains",
    "CodeCheck": "rulesource",
    "ConfigError": "config",
    "DATA_SUFFIXES": "codehash",
    "DEFENSE_TABLES": "plan",
    "EVALUATION": "plan",
    "EvalKey": "plan",
    "FAILURES_SUFFIX": "jobs",
    "FULL_DEFENSE_MODEL": "plan",
    "Finding": "audit",
    "GB": "preflight",
    "HARNESS": "codehash",
    "KINDS": "audit",
    "LISTED": "config",
    "MADE_UNDER": "chains",
    "NAMED": "cli",
    "NOT_OUTPUTS": "audit",
    "PACKAGE": "codehash",
    "PACKAGES": "jobs",
    "PACKAGE_DIR": "codehash",
    "PUBLISHED": "cells",
    "PreflightError": "preflight",
    "RESULTS": "runs",
    "RULE_RE": "rulesource",
    "Report": "audit",
    "Run": "runs",
    "SCRIPT_RE": "rulesource",
    "SHORT": "runs",
    "TABLES": "plan",
    "UNFOLLOWED": "codehash",
    "UNREADABLE_SUFFIX": "jobs",
    "all_evaluations": "plan",
    "analysis_datasets": "plan",
    "attack_settings": "plan",
    "autoattack_evaluations": "plan",
    "autoattack_settings": "plan",
    "canonical": "config",
    "cell_label": "cells",
    "check": "preflight",
    "check_config": "config",
    "clear_code_caches": "codehash",
    "clips_to_fetch": "preflight",
    "code_closure": "codehash",
    "datasets": "plan",
    "estimate_bytes": "preflight",
    "failed_attempts": "jobs",
    "finetune_settings": "plan",
    "finetuned": "plan",
    "flatten": "runs",
    "fmt": "runs",
    "fmt_eps": "plan",
    "full_defense_mode": "plan",
    "gpu_asked": "jobs",
    "job": "jobs",
    "job_key": "runs",
    "load_schema": "config",
    "number": "cells",
    "output_of": "runs",
    "package_versions": "jobs",
    "parser": "cli",
    "read_cells": "cells",
    "records_digest": "audit",
    "root_of": "runs",
    "rule_code_hash": "codehash",
    "rule_scripts": "rulesource",
    "run_of_dir": "audit",
    "select_cells": "cells",
    "set_aside": "jobs",
    "short": "runs",
    "source_hash": "codehash",
    "sources": "cells",
    "sweep_budgets": "plan",
    "sweep_evaluations": "plan",
    "table_budgets": "plan",
    "table_cells": "cells",
    "table_code_hash": "codehash",
    "table_datasets": "plan",
    "table_evaluations": "plan",
    "table_files": "chains",
    "tables": "plan",
    "variant_settings": "plan",
    "written_by_workflow": "jobs",
}
__all__ = [*_SUBMODULES, *_EXPORTS]


__getattr__, __dir__ = lazy_exports(__name__, _SUBMODULES, _EXPORTS, globals())
