"""Run a command with a pseudo-terminal as its stdout and stderr, as on a developer's screen."""

from __future__ import annotations

import os
import pty
import select
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path


def run_in_terminal(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: Path | None = None, timeout: float = 300
) -> tuple[int, str]:
    """The exit code and everything the command wrote to the terminal (stdout and stderr together)."""
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary
    )
    os.close(secondary)
    chunks: list[bytes] = []
    try:
        while True:
            ready, _, _ = select.select([primary], [], [], timeout)
            if not ready:
                proc.kill()
                raise TimeoutError(f"{argv[0]} wrote nothing for {timeout} s")
            try:
                data = os.read(primary, 65536)
            except OSError:  # EIO: every writer has closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(primary)
    return proc.wait(timeout=timeout), b"".join(chunks).decode("utf-8", errors="replace")
