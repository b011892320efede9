"""`make demo`'s script on a copy of examples/: no colour codes off a terminal, warnings explained once."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.terminal import run_in_terminal

ROOT = Path(__file__).resolve().parents[2]
ESCAPE = "\x1b"
# Select Graphic Rendition: bold and colours. (A progress bar on a terminal may hide the cursor.)
COLOUR = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    copy = tmp_path / "examples"
    shutil.copytree(ROOT / "examples", copy, ignore=shutil.ignore_patterns(".reconciler", ".secrets"))
    # The demo runs whatever RECONCILER names: here this interpreter with this checkout's package.
    wrapper = tmp_path / "reconciler"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m reconciler "$@"\n')
    wrapper.chmod(0o755)
    return copy


def demo_env(examples: Path) -> dict[str, str]:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("RECONCILER", "IOINTELLIGENCE", "NO_COLOR"))
    }
    return {**base, "PYTHONPATH": str(ROOT), "RECONCILER": str(examples.parent / "reconciler")}


def demo(examples: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(examples / "demo.sh")],
        env=demo_env(examples),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_demo_prints_no_colour_codes_off_a_terminal_and_explains_its_warnings_once(examples: Path) -> None:
    result = demo(examples)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ESCAPE not in result.stdout + result.stderr
    steps = re.findall(r"^\$ reconciler (\w+)", result.stdout, re.MULTILINE)
    assert steps == ["validate", "plan", "apply", "plan", "drift"]
    # Each warning the example triggers on purpose is printed in full once, and explained once.
    warnings = [line for line in result.stdout.splitlines() if ": warning: " in line]
    assert len(warnings) == 2 and len(set(warnings)) == 2
    assert result.stdout.count("These warnings are on purpose") == 1
    assert result.stdout.count("Workflows: 2 warnings, no errors") == 3


def test_demo_is_bold_on_a_terminal_unless_no_color(examples: Path) -> None:
    env = demo_env(examples)
    code, screen = run_in_terminal(["bash", str(examples / "demo.sh")], env=env)
    assert code == 0, screen
    assert "\x1b[1m$ reconciler plan secrets.yaml --api-url local\x1b[0m" in screen
    code, screen = run_in_terminal(["bash", str(examples / "demo.sh")], env={**env, "NO_COLOR": "1"})
    assert code == 0, screen
    assert not COLOUR.search(screen)
    assert "Applying" in screen  # the bar, on a terminal
