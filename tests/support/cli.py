"""The reconciler command in a subprocess, as a user runs it: a clean environment, and checks that no
traceback and none of the given secrets ever reach its output."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

# Variables of the developer's own shell that would change what the command does.
ENV_PREFIXES = ("IOINTELLIGENCE", "IO_API", "RECONCILER", "GITHUB_STEP_SUMMARY")


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIXES)}
    env["NO_COLOR"] = "1"
    env.update(extra or {})
    return env


def argv(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "reconciler", *map(str, args)]


def run(
    *args: str | Path,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    secrets: Iterable[str] = (),
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """`reconciler ARGS`; never a traceback or an internal error, never one of `secrets` in its output."""
    # No terminal, as in CI: nothing can wait for an answer on stdin.
    result = subprocess.run(
        argv(*args),
        cwd=cwd,
        env=clean_env(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert "Internal error" not in result.stderr, result.stderr
    for secret in secrets:
        assert secret not in result.stdout, f"{args}: a secret reached stdout"
        assert secret not in result.stderr, f"{args}: a secret reached stderr"
    return result
