"""`make bench`: plan and apply speed against a real emulator process, start-up, peak memory, emulator."""

from __future__ import annotations

import asyncio
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import bench_emulator  # noqa: E402
from reconciler import engine, settings  # noqa: E402
from reconciler.emulator.app import account_id  # noqa: E402
from reconciler.emulator.store import Store  # noqa: E402
from reconciler.plan import PlanOptions  # noqa: E402
from reconciler.render import render_plan  # noqa: E402
from tests.support.emulator import RunningEmulator, start_emulator  # noqa: E402

KEY = "bench-key"
VALUE = "ghp_benchBenchBenchBench0001"
ENV = {"BENCH_TOKEN": VALUE, "IOINTELLIGENCE_API_KEY": KEY, "NO_COLOR": "1"}
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
Row = dict[str, object]


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


def median_time(action: Callable[[], object], repeat: int = REPEAT) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def floor(path: Path, url: str) -> None:
    """What any tool must do at least: parse the YAML with ruamel's C loader and fetch every page."""
    YAML(typ="safe").load(path.read_text())
    with httpx.Client(base_url=url, headers={"authorization": f"Bearer {KEY}"}) as client:
        page = 1
        while True:
            body = client.get("/api/v1/secrets/", params={"page": page, "page_size": 100}).json()
            if not body["pagination"]["has_next"]:
                break
            page += 1


def floor_offset(path: Path, url: str) -> None:
    """The same under limit/offset: every window of 100 once, until one comes back short."""
    YAML(typ="safe").load(path.read_text())
    with httpx.Client(base_url=url, headers={"authorization": f"Bearer {KEY}"}) as client:
        offset = 0
        while True:
            body = client.get("/api/v1/secrets/", params={"limit": 100, "offset": offset}).json()
            if len(body["data"]) < 100:
                break
            offset += 100


def ours(path: Path, url: str) -> None:
    conf = settings.resolve(desired_path=path, api_url=url, ignore_state=True, environ={**os.environ, **ENV})
    result = asyncio.run(engine.make_plan(conf, path, PlanOptions()))
    render_plan(result.plan, "text")


def plan_rows(tmp: Path) -> list[Row]:
    count = 10_000
    db = tmp / "plan.db"
    populate(db, count)
    in_sync = tmp / "in-sync.yaml"
    in_sync.write_text(desired_yaml(count, lambda i: "access_token"))
    changed = tmp / "changed.yaml"
    changed.write_text(desired_yaml(count, lambda i: "token" if i % 10 == 0 else "access_token"))
    rows: list[Row] = []
    # The targets hold under page/page_size, where the listing is read twice to prove it whole.
    emu = start_emulator("--quiet", "--list-style", "paged", db_path=db)
    try:
        base = median_time(lambda: floor(in_sync, emu.url))
        for label, path in (("in sync", in_sync), ("10% field changes", changed)):
            took = median_time(lambda path=path: ours(path, emu.url))  # type: ignore[misc]
            rows.append(row(f"plan 10,000 secrets, {label} (page/page_size)", took, "s", "≤ 3 s"))
            rows.append(row(f"  ratio to floor ({base:.2f} s)", took / base, "×", "≤ 1.5×"))
        rows.append(
            row("peak memory, plan 10,000 secrets (process)", peak_rss_mb(in_sync, emu.url), "MB", "≤ 200 MB")
        )
    finally:
        emu.stop()
    # The emulator's default: windows that overlap by one secret, with no count to fetch ahead by.
    emu = start_emulator("--quiet", "--list-style", "offset", db_path=db)
    try:
        base = median_time(lambda: floor_offset(in_sync, emu.url))
        took = median_time(lambda: ours(in_sync, emu.url))
        rows.append(row("plan 10,000 secrets, in sync (limit/offset)", took, "s", ""))
        rows.append(row(f"  ratio to floor ({base:.2f} s)", took / base, "×", ""))
    finally:
        emu.stop()
    return rows


def run_cli(*args: str, url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **ENV, "RECONCILER_API_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def peak_rss_mb(path: Path, url: str) -> float:
    env = {**os.environ, **ENV, "RECONCILER_API_URL": url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "plan", str(path), "--ignore-state"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, _, usage = os.wait4(proc.pid, 0)
    return usage.ru_maxrss / 1024


def apply_rows(tmp: Path) -> list[Row]:
    count, latency_ms, concurrency = 1_000, 20, 4
    db = tmp / "apply.db"
    populate(db, count)
    path = tmp / "apply.yaml"
    rows: list[Row] = []
    flags = ("--quiet", "--list-style", "paged", "--latency-ms", str(latency_ms))
    emu: RunningEmulator = start_emulator(*flags, db_path=db)
    try:
        timings = {}
        for arg, conc in (("token", concurrency), ("access_token", 1)):
            path.write_text(desired_yaml(count, lambda i, arg=arg: arg))  # type: ignore[misc]
            start = time.perf_counter()
            done = run_cli(
                "apply",
                path.name,
                "--auto-approve",
                "--concurrency",
                str(conc),
                "--ignore-state",
                url=emu.url,
                cwd=tmp,
            )
            timings[conc] = time.perf_counter() - start
            if done.returncode != 0 or f"{count} succeeded" not in done.stdout:
                raise SystemExit(f"apply failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        ideal = count / concurrency * latency_ms / 1000
        bare = asyncio.run(bare_patches(emu.url, concurrency))
        name = f"apply 1,000 field updates, --latency-ms {latency_ms}, concurrency {concurrency}"
        rows.append(row(name, timings[concurrency], "s", ""))
        rows.append(row(f"  ratio to ideal ({ideal:.1f} s)", timings[concurrency] / ideal, "×", "≤ 1.5×"))
        rows.append(
            row(f"  ratio to bare httpx PATCH loop ({bare:.2f} s)", timings[concurrency] / bare, "×", "")
        )
        rows.append(row("  speed-up over --concurrency 1", timings[1] / timings[concurrency], "×", "≥ 3.5×"))
    finally:
        emu.stop()
    return rows


async def bare_patches(url: str, concurrency: int) -> float:
    """The same PATCHes from a bare httpx loop: no plan, no verification, no process start-up."""
    headers = {"authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=url, headers=headers) as client:
        ids: list[str] = []
        page = 1
        while True:
            body = (await client.get("/api/v1/secrets/", params={"page": page, "page_size": 100})).json()
            ids += [item["secret_id"] for item in body["data"]]
            if not body["pagination"]["has_next"]:
                break
            page += 1
        limit = asyncio.Semaphore(concurrency)

        async def patch(secret_id: str) -> None:
            async with limit:
                response = await client.patch(f"/api/v1/secrets/{secret_id}", json={"tool_arg": "bare"})
                response.raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(patch(i) for i in ids))
        return time.perf_counter() - start


def startup_rows(tmp: Path) -> list[Row]:
    db = tmp / "typical.db"
    populate(db, 50)
    path = tmp / "typical.yaml"
    path.write_text(desired_yaml(50, lambda i: "access_token"))
    emu = start_emulator("--quiet", db_path=db)
    try:
        run_cli("plan", path.name, url=emu.url, cwd=tmp)  # warm the file cache
        typical = median_time(lambda: run_cli("plan", path.name, url=emu.url, cwd=tmp), 5)
    finally:
        emu.stop()
    helps = median_time(
        lambda: subprocess.run(
            [sys.executable, "-m", "reconciler", "--help"], capture_output=True, check=True
        ),
        5,
    )
    return [
        row("plan of 50 secrets, whole process", typical, "s", "≤ 0.6 s"),
        row("reconciler --help start-up", helps, "s", "≤ 0.35 s"),
    ]


def row(name: str, value: float, unit: str, target: str) -> Row:
    return {"name": name, "value": value, "unit": unit, "target": target}


def table(rows: list[Row]) -> str:
    lines = ["| measure | result | target |", "| --- | ---: | --- |"]
    for r in rows:
        value = float(r["value"])  # type: ignore[arg-type]
        shown = f"{value:,.0f}" if value >= 100 else f"{value:.2f}"
        lines.append(f"| {r['name']} | {shown} {r['unit']} | {r['target']} |")
    return "\n".join(lines)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        match = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        cpu = match.group(1) if match else cpu
    except OSError:
        pass
    system = f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores"
    return f"{system}, {cpu}, Python {platform.python_version()}"


GROUPS: dict[str, Callable[[Path], list[Row]]] = {
    "plan": plan_rows,
    "apply": apply_rows,
    "startup": startup_rows,
    "emulator": lambda _tmp: bench_emulator.run(),
}


def main() -> None:
    """`python bench/run.py [plan|apply|startup|emulator ...]`: those groups of rows, or all of them."""
    chosen = sys.argv[1:] or list(GROUPS)
    unknown = sorted(set(chosen) - set(GROUPS))
    if unknown:
        raise SystemExit(f"unknown group {', '.join(unknown)}; choose from {', '.join(GROUPS)}")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        for name in chosen:
            rows += GROUPS[name](Path(tmp_dir))
    print(f"Machine: {machine()}\n")
    print(table(rows))


if __name__ == "__main__":
    main()
