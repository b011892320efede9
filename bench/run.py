"""`make bench`: plan and apply speed against real emulator processes, memory, start-up, the emulator."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import bench_emulator  # noqa: E402
from bench.bench_apply import apply_rows  # noqa: E402
from bench.bench_plan import plan_rows  # noqa: E402
from bench.common import REPEAT, Row, desired_yaml, populate, ratios, repeat, row, run_cli  # noqa: E402
from tests.support.emulator import start_emulator  # noqa: E402


def startup_rows(tmp: Path) -> list[Row]:
    import time

    def timed(action: object) -> float:
        start = time.perf_counter()
        action()  # type: ignore[operator]
        return time.perf_counter() - start

    db = tmp / "typical.db"
    populate(db, 50)
    path = tmp / "typical.yaml"
    path.write_text(desired_yaml(50, lambda i: "access_token"))
    emu = start_emulator("--quiet", db_path=db)
    try:
        run_cli("plan", path.name, url=emu.url, cwd=tmp)  # warm the file cache
        typical = repeat(lambda: timed(lambda: run_cli("plan", path.name, url=emu.url, cwd=tmp)))
    finally:
        emu.stop()
    helps = repeat(
        lambda: timed(
            lambda: subprocess.run(
                [sys.executable, "-m", "reconciler", "--help"], capture_output=True, check=True
            )
        )
    )
    return [
        row("plan of 50 secrets, whole process", typical, "s", "≤ 0.6 s"),
        row("reconciler --help start-up", helps, "s", "≤ 0.35 s"),
    ]


def emulator_rows(found: list[dict[str, object]]) -> list[Row]:
    rows = []
    for item in found:
        values = item.get("values", item.get("value"))
        runs = [float(v) for v in values] if isinstance(values, list) else float(values)  # type: ignore[arg-type]
        rows.append(row(str(item["name"]), runs, str(item["unit"]), str(item.get("target", ""))))
    return rows


def shown(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.2f}"


def table(rows: list[Row]) -> str:
    lines = ["| measure | min | median | max | target |", "| --- | ---: | ---: | ---: | --- |"]
    for r in rows:
        unit = f" {r.unit}"
        if len(r.values) == 1:
            lines.append(f"| {r.name} | | {shown(r.values[0])}{unit} | | {r.target} |")
        else:
            low, mid, high = min(r.values), r.median, max(r.values)
            lines.append(f"| {r.name} | {shown(low)} | {shown(mid)}{unit} | {shown(high)} | {r.target} |")
    return "\n".join(lines)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        match = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        cpu = match.group(1) if match else cpu
    except OSError:
        pass
    system = f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores"
    load = ""
    if hasattr(os, "getloadavg"):
        load = ", load average {:.2f} {:.2f} {:.2f} at the start".format(*os.getloadavg())
    return f"{system}, {cpu}, Python {platform.python_version()}{load}"


def installation() -> str:
    """How the measured package was installed: what a reader needs to compare with their own."""
    import reconciler
    from reconciler import yaml_tree

    dist = metadata.distribution("reconciler")
    direct = json.loads(dist.read_text("direct_url.json") or "{}")
    installer = (dist.read_text("INSTALLER") or "an unknown installer").strip()
    if direct.get("dir_info", {}).get("editable"):
        how = f"an editable install by {installer} of {direct.get('url', '?')}"
    elif direct:
        how = f"installed by {installer} from {direct.get('url', '?')}"
    else:
        how = f"installed by {installer} from a package index"
    where = Path(reconciler.__file__).parent
    parser = yaml_tree._safe_yaml_parser()
    yaml_parser = (
        f"ruamel's C parser (ruamel.yaml.clib {metadata.version('ruamel.yaml.clib')})"
        if "CParser" in parser.__name__
        else "ruamel's pure-Python parser (ruamel.yaml.clib is missing: loading is about 3× slower)"
    )
    pins = _pins(ROOT / "requirements.txt")
    off = [f"{name} {have or 'missing'} (pinned {want})" for name, want, have in pins if have != want]
    deps = (
        f"all {len(pins)} pins of requirements.txt installed as pinned"
        if not off
        else "differs from requirements.txt: " + ", ".join(off)
    )
    return f"reconciler {dist.version}, {how}, imported from {where}; YAML: {yaml_parser}; {deps}"


def _pins(path: Path) -> list[tuple[str, str, str | None]]:
    found = []
    for line in path.read_text().splitlines():
        name, sep, want = line.split("#")[0].strip().partition("==")
        if not sep:
            continue
        try:
            have: str | None = metadata.version(name)
        except metadata.PackageNotFoundError:
            have = None
        found.append((name, want, have))
    return found


def progress(what: str) -> None:
    print(f"measuring {what}...", file=sys.stderr, flush=True)


def plan_group(tmp: Path) -> list[Row]:
    progress("plan, 10,000 secrets")
    small, small_cpu = plan_rows(tmp, 10_000, changed=True)
    progress("plan, apply and drift, 50,000 secrets")
    large, large_cpu = plan_rows(tmp, 50_000, changed=False)
    per_secret = row("  CPU per secret at 50,000 ÷ at 10,000", ratios(large_cpu, small_cpu), "×", "≤ 1.10×")
    progress("the emulator's list pages at 50,000")
    pages = emulator_rows(bench_emulator.paging_rows(tmp / "plan-50000.db", 50_000))
    return [*small, *large, per_secret, *pages]


def apply_group(tmp: Path) -> list[Row]:
    progress("apply at concurrency 1 to 64 (the longest part)")
    return apply_rows(tmp)


def startup_group(tmp: Path) -> list[Row]:
    progress("start-up")
    return startup_rows(tmp)


def emulator_group(tmp: Path) -> list[Row]:
    progress("the emulator's throughput")
    return emulator_rows(bench_emulator.run())


GROUPS: dict[str, Callable[[Path], list[Row]]] = {
    "plan": plan_group,
    "apply": apply_group,
    "startup": startup_group,
    "emulator": emulator_group,
}


def main() -> None:
    """`python bench/run.py [plan|apply|startup|emulator ...]`: those groups of rows, or all of them."""
    chosen = sys.argv[1:] or list(GROUPS)
    unknown = sorted(set(chosen) - set(GROUPS))
    if unknown:
        raise SystemExit(f"unknown group {', '.join(unknown)}; choose from {', '.join(GROUPS)}")
    print(f"Machine: {machine()}")
    print(f"Package: {installation()}")
    print(f"Each row: {REPEAT} runs unless it shows one figure; ratios are taken run by run.\n", flush=True)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        for name in chosen:
            rows += GROUPS[name](Path(tmp_dir))
    print(table(rows))
    if hasattr(os, "getloadavg"):
        print("\nLoad average at the end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
