"""The ``avrobust`` command line: every command answers ``--help`` with help on each option."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from avmodels.workflow.cli import COMMANDS

REPO = Path(__file__).resolve().parents[1]
ENTRY = re.compile(r"^  (\S+(?: \S+)*?)(?: {2,}(\S.*))?$")  # "  --name VALUE    help"


def avrobust(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "avmodels.workflow.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=120)


def undocumented(help_text: str) -> list[str]:
    """Arguments and options listed in an argparse help text without a help line."""
    lines = help_text.splitlines()
    missing, listing = [], False
    for i, line in enumerate(lines):
        if line.endswith(":") and not line.startswith(" "):
            listing = line in ("positional arguments:", "options:")
            continue
        entry = ENTRY.match(line) if listing else None
        if entry is None or entry.group(1).startswith("-h, --help"):
            continue
        follows = lines[i + 1] if i + 1 < len(lines) else ""
        if not entry.group(2) and not follows.startswith(" " * 6):
            missing.append(entry.group(1))
    return missing


def test_the_entry_point_is_declared() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"avrobust": "avmodels.workflow.cli:main"}


def test_help_lists_every_command() -> None:
    done = avrobust("--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: avrobust")
    for name in ("preprocess", "trace", "audit", "diff"):
        assert re.search(rf"^    {name}\b", done.stdout, re.MULTILINE), name


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_helps_on_every_option(command: str) -> None:
    done = avrobust(command, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: avrobust {command}")
    assert "options:" in done.stdout
    assert undocumented(done.stdout) == []


def test_undocumented_options_are_caught() -> None:
    text = "usage: x\n\noptions:\n  -h, --help  show\n  --seed SEED\n  --fast      go fast\n"
    assert undocumented(text) == ["--seed SEED"]


def test_commands_reach_their_modules(tmp_path: Path) -> None:
    done = avrobust("audit", str(tmp_path / "nowhere"))
    assert done.returncode == 2 and done.stderr.strip() == f"audit: no directory {tmp_path}/nowhere"
    done = avrobust("preprocess", str(tmp_path / "none.mp4"), str(tmp_path / "clip"))
    assert done.returncode == 1 and done.stderr.strip() == f"{tmp_path}/none.mp4: no such file"
    done = avrobust("frobnicate")
    assert done.returncode == 2 and "invalid choice: 'frobnicate'" in done.stderr
