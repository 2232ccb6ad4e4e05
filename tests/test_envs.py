"""The conda environments pin exactly what pyproject.toml pins."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml


def _pins(requirements: list[str]) -> dict[str, str]:
    pins = {}
    for req in requirements:
        name, version = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", req.strip()).groups()
        pins[name.lower()] = version
    return pins


def test_envs_match_pyproject(repo_dir: Path) -> None:
    project = tomllib.loads((repo_dir / "pyproject.toml").read_text())["project"]
    pinned = _pins(project["dependencies"])
    envs = sorted((repo_dir / "envs").glob("*.yaml"))
    assert envs
    for env in envs:
        spec = yaml.safe_load(env.read_text())
        pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
        env_pins = _pins(pip)
        for name, version in env_pins.items():
            assert pinned.get(name) == version, f"{env.name}: {name}=={version} vs pyproject"
        assert "python=3.11" in spec["dependencies"]


def test_rules_name_existing_envs(repo_dir: Path) -> None:
    rules = "\n".join(p.read_text() for p in (repo_dir / "rules").glob("*.smk"))
    named = set(re.findall(r'"\.\./(envs/[^"]+)"', rules))
    assert named
    for env in named:
        assert (repo_dir / env).is_file(), env
