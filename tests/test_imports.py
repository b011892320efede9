"""Every module imports alone in a fresh interpreter: no module works only because another came first."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import reconciler


def _modules() -> list[str]:
    found = ["reconciler"]
    for info in pkgutil.walk_packages(reconciler.__path__, "reconciler."):
        # The entry point runs the command when imported; it is run below instead.
        if not info.name.endswith(".__main__"):
            found.append(info.name)
    return sorted(found)


def test_the_package_has_modules_to_check() -> None:
    assert {"reconciler.cli", "reconciler.engine", "reconciler.emulator.app"} <= set(_modules())


@pytest.mark.parametrize("module", _modules())
def test_module_imports_alone(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_entry_point_runs() -> None:
    command = [sys.executable, "-m", "reconciler", "--help"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and "Usage:" in result.stdout, result.stderr[-2000:]
