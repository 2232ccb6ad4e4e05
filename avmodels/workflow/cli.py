"""``avrobust``: the project's one command line, dispatching each command to its module.

``avrobust preprocess VIDEO OUT_DIR`` turns a video into a clip folder; ``trace``, ``audit``
and ``diff`` read the provenance records of a study's outputs; ``code`` prints a workflow
step's code hash; ``preflight`` runs the download checks by hand. ``avrobust COMMAND -h``
lists a command's options. A module is imported only when its command runs.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Sequence

#: command -> (module whose ``main`` runs it, one-line help)
COMMANDS = {
    "preprocess": (
        "avmodels.data.preprocess",
        "decode a video into a clip folder (11025 Hz, 8 fps)",
    ),
    "trace": ("avmodels.workflow.trace", "the record chain behind an output or one table cell"),
    "audit": (
        "avmodels.workflow.audit",
        "files without or with wrong records, changed, stale, chains",
    ),
    "diff": ("avmodels.workflow.diff", "table cells that differ between two runs, and why"),
    "code": (
        "avmodels.workflow.codehash",
        "code hash of workflow scripts, and the files it covers",
    ),
    "preflight": (
        "avmodels.workflow.preflight",
        "check the download runtime, ffmpeg and free disk",
    ),
}
#: commands whose ``main`` takes the command name before its options (the others, options alone)
NAMED = {"preprocess"}


def parser() -> argparse.ArgumentParser:
    """The top-level parser; each command's own options are its module's."""
    top = argparse.ArgumentParser(
        prog="avrobust",
        description="Clips, provenance and checks of the avrobust study.",
        epilog="avrobust COMMAND -h: the options of one command",
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, text) in COMMANDS.items():
        sub.add_parser(name, help=text, add_help=False)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit status."""
    if argv is None:  # the command line: a quiet end when piped into head
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args, rest = parser().parse_known_args(argv)
    module = importlib.import_module(COMMANDS[args.command][0])
    argv = [args.command, *rest] if args.command in NAMED else rest
    return module.main(argv) or 0


if __name__ == "__main__":
    sys.exit(main())
