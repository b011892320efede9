"""What every benchmark shares: the account and files it measures, repeated runs, process measurement."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from reconciler.emulator.app import account_id  # noqa: E402
from reconciler.emulator.store import Store  # noqa: E402

KEY = "bench-key"
VALUE = "ghp_benchBenchBenchBench0001"
ENV = {"BENCH_TOKEN": VALUE, "IOINTELLIGENCE_API_KEY": KEY, "NO_COLOR": "1"}
# Each row is measured this many times; the table shows the minimum, median and maximum.
REPEAT = int(os.environ.get("BENCH_REPEAT", "5"))

# Runs a command as its own child and prints that child's resource usage as JSON. A process started
# straight from the benchmark would report the benchmark's own peak memory: Linux carries the peak of
# the address space a process had before exec (the parent's, after fork or vfork) into its ru_maxrss.
# This launcher is a small fresh interpreter, so the figure is the command's own (or the launcher's
# 10 MB, whichever is larger).
_LAUNCHER = """
import json, os, subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
err = child.stderr.read()
_, status, usage = os.wait4(child.pid, 0)
print(json.dumps({"code": os.waitstatus_to_exitcode(status), "maxrss_kb": usage.ru_maxrss,
                  "cpu_s": usage.ru_utime + usage.ru_stime, "stderr": err.decode(errors="replace")[-2000:]}))
"""


@dataclass(frozen=True)
class Row:
    """One line of the table: a measure over several runs (or one figure), its unit and its target."""

    name: str
    values: tuple[float, ...]
    unit: str
    target: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.values)


def row(name: str, values: Sequence[float] | float, unit: str, target: str = "") -> Row:
    runs = tuple(values) if isinstance(values, Sequence) else (values,)
    return Row(name, runs, unit, target)


def ratios(top: Sequence[float], bottom: Sequence[float]) -> list[float]:
    """Run-by-run ratios: each run's pair was measured side by side, under the same load."""
    return [a / b for a, b in zip(top, bottom, strict=True)]


def repeat(action: Callable[[], float], times: int = REPEAT) -> list[float]:
    return [action() for _ in range(times)]


def desired_yaml(count: int, arg: Callable[[int], str]) -> str:
    lines = ["version: 1", "secrets:"]
    for i in range(count):
        lines += [
            f"  - secret_name: secret-{i:05}",
            "    secret_value: ${BENCH_TOKEN}",
            '    tool_name: "agno__github__*"',
            f"    tool_arg: {arg(i)}",
            "    is_default_for_tool: false",
        ]
    return "\n".join(lines) + "\n"


def populate(db: Path, count: int) -> None:
    store = Store(str(db))
    user = account_id(KEY)
    for i in range(count):
        store.create(
            user,
            secret_name=f"secret-{i:05}",
            secret_value=VALUE,
            tool_name="agno__github__*",
            tool_arg="access_token",
        )
    store.close()


def cli_env(url: str) -> dict[str, str]:
    return {**os.environ, **ENV, "RECONCILER_API_URL": url}


def run_cli(*args: str, url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        cwd=cwd,
        env=cli_env(url),
        capture_output=True,
        text=True,
        check=False,
    )


@dataclass(frozen=True)
class Usage:
    """A finished process's own peak memory and CPU time."""

    peak_mb: float
    cpu_s: float


def measure_cli(*args: str, url: str, cwd: Path, ok: tuple[int, ...] = (0,)) -> Usage:
    """Run `reconciler ARGS` and return its own peak RSS and CPU, read by the launcher."""
    done = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, sys.executable, "-m", "reconciler", *args],
        cwd=cwd,
        env=cli_env(url),
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(done.stdout)
    if report["code"] not in ok:
        raise SystemExit(f"reconciler {' '.join(args)} exited {report['code']}:\n{report['stderr']}")
    return Usage(peak_mb=report["maxrss_kb"] / 1024, cpu_s=report["cpu_s"])
