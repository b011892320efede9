"""The README's first hour: what it tells a newcomer to run must work as written."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def snippet_after(marker: str) -> list[str]:
    """The lines of the first ```sh block after `marker`."""
    start = README.index(marker)
    block = re.search(r"```sh\n(.*?)```", README[start:], re.DOTALL)
    assert block is not None, marker
    return [line.split("#", 1)[0].strip() for line in block.group(1).splitlines()]


def test_quick_start_names_every_prerequisite_and_how_to_run_the_tool() -> None:
    quick = README[README.index("## Quick start") : README.index("## The desired-state file")]
    assert "Python 3.11+" in quick and "`make`" in quick and "Node.js with npm" in quick
    assert "`.venv/bin/reconciler --help`" in quick and "source .venv/bin/activate" in quick
    assert "Without npm on `PATH` it runs everything else and says that the workflow lint" in quick


def test_the_io_net_install_snippet_leaves_reconciler_on_the_path_it_uses() -> None:
    lines = [line for line in snippet_after("To use it against io.net") if line]
    activated = next(i for i, line in enumerate(lines) if ". .venv/bin/activate" in line)
    first_use = next(i for i, line in enumerate(lines) if line.startswith("reconciler "))
    assert activated < first_use
    # Installed into the activated environment, before it is used.
    installs = [i for i, line in enumerate(lines) if "pip install" in line and ".venv/bin/pip" not in line]
    assert installs and activated < min(installs) and max(installs) < first_use


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_ends_by_saying_how_to_run_the_tool() -> None:
    planned = subprocess.run(
        ["make", "-n", "--no-print-directory", "demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert planned.returncode == 0, planned.stderr
    last = planned.stdout.splitlines()[-1]
    assert last.startswith('echo "The tool is installed in .venv: run .venv/bin/reconciler --help, or')
    assert "'source .venv/bin/activate' first." in last


def test_the_readme_shows_the_comment_picture_and_the_script_that_makes_it() -> None:
    assert "](docs/pr-comment.png)" in README
    assert (ROOT / "docs" / "pr-comment.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "tools/pr_comment_picture.py" in README and (ROOT / "tools" / "pr_comment_picture.py").exists()
    assert "tools/fresh_clone_check.sh" in README and (ROOT / "tools" / "fresh_clone_check.sh").exists()
