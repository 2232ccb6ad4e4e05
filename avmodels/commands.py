"""The provenance commands behind one parser: ``trace``, ``audit``, ``diff``, ``code``.

    python -m avmodels.provenance trace results/tables/table3.csv --row minsim --col av
    python -m avmodels.provenance audit results/
    python -m avmodels.provenance diff RUN_A/results RUN_B/results
    python -m avmodels.provenance code workflow_scripts/evaluate.py --files

Each command's module also runs alone (``python -m avmodels.audit results/``) and has a
``main(argv)`` returning the exit status.
"""

from __future__ import annotations

import argparse
import signal
from collections.abc import Sequence

from avmodels import audit, codehash, diff, trace

COMMANDS = {
    "trace": (trace, "the record chain behind a file or one table cell"),
    "audit": (audit, "files without or with wrong records, changed, stale, chains, code"),
    "diff": (diff, "table cells that differ between two runs, and why"),
    "code": (codehash, "code hash of workflow scripts"),
}


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(
        prog="python -m avmodels.provenance", description="Provenance of the workflow's outputs."
    )
    sub = main_parser.add_subparsers(dest="command", required=True)
    for name, (module, summary) in COMMANDS.items():
        module.add_arguments(sub.add_parser(name, help=summary, description=summary))
    return main_parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit status (1: findings or differences, 2: bad usage)."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet end when piped into head
    args = parser().parse_args(argv)
    return COMMANDS[args.command][0].run(args)
