"""A plain `pip install` of the package, as pip and pipx users get it: the fast paths come with it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.install]
ROOT = Path(__file__).resolve().parents[2]


def test_plain_pip_install_brings_the_c_parser_and_sniffio(tmp_path: Path) -> None:
    # A copy of the sources, so the build writes nothing into the checkout.
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "reconciler", source / "reconciler", ignore=shutil.ignore_patterns("__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # No requirements file: only what pyproject.toml declares. pip's own cache is reused.
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(source)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    probe = (
        "import sniffio\n"
        "from ruamel.yaml import YAML\n"
        "from reconciler import yaml_tree\n"
        "from reconciler.desired import schema\n"
        "print(yaml_tree._safe_yaml_parser().__name__)\n"
        "print(schema.json_schema()['$schema'])\n"
    )
    result = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    # The JSON Schema is kept once, as package data (schemas/ links to it): the install carries it.
    assert result.stdout.split() == ["CParser", "https://json-schema.org/draft/2020-12/schema"]
    version = subprocess.run(
        [str(venv / "bin" / "reconciler"), "--version"], capture_output=True, text=True, check=False
    )
    assert version.returncode == 0 and "version" in version.stdout
