"""The package layout: the science packages import none of the workflow machinery, and each
package's lazy exports name real objects."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCIENCE = ("models", "robustness", "data", "study")
# Modules both sides use that import neither: the only ones beside the packages.
SHARED = {"__init__", "atomic", "devices", "provenance", "registry", "settings"}
PACKAGES = (*SCIENCE, "workflow")

# Imports every science package and each of its submodules, then lists what got imported.
PROBE = """
import importlib, json, sys
import avmodels.models, avmodels.robustness, avmodels.data, avmodels.study
for package in {science!r}:
    for name in importlib.import_module(f"avmodels.{{package}}")._SUBMODULES:
        importlib.import_module(f"avmodels.{{package}}.{{name}}")
print(json.dumps(sorted(sys.modules)))
"""


def imported(code: str) -> list[str]:
    """The modules a fresh interpreter has imported after running ``code`` in the repo."""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_science_imports_no_workflow_machinery() -> None:
    modules = imported(PROBE.format(science=SCIENCE))
    science = [m for m in modules if m.split(".")[:2] in ([["avmodels", p] for p in SCIENCE])]
    assert "avmodels.study.tables" in science and "avmodels.data.media" in science
    assert len(science) > 30  # every submodule was imported
    assert [m for m in modules if m.startswith("avmodels.workflow")] == []
    assert [m for m in modules if m.split(".")[0] == "snakemake"] == []


def test_importing_a_package_imports_none_of_its_modules() -> None:
    code = (
        "import json, sys, avmodels.models, avmodels.study; print(json.dumps(sorted(sys.modules)))"
    )
    modules = imported(code)
    assert "avmodels.models" in modules and "avmodels.study" in modules
    assert "torch" not in modules
    assert [m for m in modules if m.startswith(("avmodels.models.", "avmodels.study."))] == []


def test_no_flat_module_outside_the_shared_ones() -> None:
    flat = {p.stem for p in (REPO / "avmodels").glob("*.py")}
    assert "atomic" in flat and flat <= SHARED
    for package in PACKAGES:
        assert (REPO / "avmodels" / package / "__init__.py").is_file()


@pytest.mark.parametrize("package", PACKAGES)
def test_package_exports_resolve(package: str) -> None:
    """Each name in ``__all__`` is a submodule or the object its defining module holds."""
    module = importlib.import_module(f"avmodels.{package}")
    assert module.__doc__ and module.__all__
    for name in module.__all__:
        value = getattr(module, name)
        if name in module._SUBMODULES:
            assert value.__name__ == f"avmodels.{package}.{name}"
        else:
            owner = importlib.import_module(f"avmodels.{package}.{module._EXPORTS[name]}")
            assert value is getattr(owner, name)
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        module.missing  # noqa: B018
