"""The entry point: what a run of the command leaves out of its import and of its exit."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

# Runs the command as the console script does, then reports from an exit handler, which runs after the
# command has finished and before the interpreter tears down.
RUN = """
import atexit, gc, sys
def report():
    import httpx
    print("freeze", gc.get_freeze_count() > 0)
    print("loaded", sorted(m for m in ("rich", "pygments") if m in sys.modules))
    print("httpx", callable(httpx.AsyncClient))
atexit.register(report)
sys.argv = ["reconciler", "--version"]
from reconciler.__main__ import main
main()
"""


def _run() -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", RUN], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.splitlines()


def test_a_finished_run_freezes_its_objects_so_the_last_collection_skips_them() -> None:
    assert "freeze True" in _run()


@pytest.mark.skipif(
    not all(importlib.util.find_spec(name) for name in ("rich", "pygments")),
    reason="httpx only imports its command line when rich and pygments are installed",
)
def test_httpx_is_imported_without_its_command_line() -> None:
    lines = _run()
    assert "loaded []" in lines
    assert "httpx True" in lines
