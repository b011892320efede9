"""Plan speed and memory at 10,000 and 50,000 secrets, against the floor any tool must pay."""

from __future__ import annotations

import asyncio
import gc
import os
import time
from pathlib import Path

import httpx
from ruamel.yaml import YAML

from bench.common import ENV, KEY, REPEAT, Row, Usage, desired_yaml, measure_cli, populate, ratios, row
from reconciler import cli, engine, settings
from reconciler.plan import PlanOptions
from reconciler.render import render_plan
from tests.support.emulator import start_emulator

# The listing parallelism reconciler uses by default (settings' --concurrency default).
CONCURRENCY = 4
PAGE_SIZE = 100


def scan_events(path: Path) -> None:
    """ruamel's C parser over the file, every event produced and dropped: nothing is built."""
    for _ in YAML(typ="safe").parse(path.read_bytes()):
        pass


async def fetch_pages(url: str, concurrency: int) -> int:
    """Every page of the listing, decoded, as reconciler fetches them: page 1, then the others side by
    side within `concurrency`. No secret is checked or kept."""
    limits = httpx.Limits(max_connections=concurrency + 1)
    headers = {"authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits) as client:
        slots = asyncio.Semaphore(concurrency)

        async def page(number: int) -> int:
            async with slots:
                response = await client.get(
                    "/api/v1/secrets/", params={"page": number, "page_size": PAGE_SIZE}
                )
                response.raise_for_status()
                return len(response.json()["data"])

        first = await client.get("/api/v1/secrets/", params={"page": 1, "page_size": PAGE_SIZE})
        body = first.json()
        pages = -(-body["pagination"]["total"] // PAGE_SIZE)
        rest = await asyncio.gather(*(page(n) for n in range(2, pages + 1)))
        return len(body["data"]) + sum(rest)


async def fetch_windows(url: str) -> int:
    """Every window of 100 under limit/offset, one after another until one comes back short: with no
    count in the answer there is nothing to fetch ahead by."""
    headers = {"authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=url, headers=headers) as client:
        offset = 0
        while True:
            response = await client.get("/api/v1/secrets/", params={"limit": PAGE_SIZE, "offset": offset})
            response.raise_for_status()
            got = len(response.json()["data"])
            offset += got
            if got < PAGE_SIZE:
                return offset


def floor(path: Path, url: str, style: str = "paged") -> float:
    """The floor: the event scan and the listing side by side, the way reconciler overlaps them."""

    async def both() -> None:
        scanning = asyncio.create_task(asyncio.to_thread(scan_events, path))
        if style == "paged":
            await fetch_pages(url, CONCURRENCY)
        else:
            await fetch_windows(url)
        await scanning

    start = time.perf_counter()
    asyncio.run(both())
    return time.perf_counter() - start


def ours(path: Path, url: str) -> tuple[float, float]:
    """`engine.make_plan` and the text rendering in this process: (wall seconds, CPU seconds)."""
    conf = settings.resolve(desired_path=path, api_url=url, ignore_state=True, environ={**os.environ, **ENV})
    start, cpu = time.perf_counter(), time.process_time()
    result = cli._await(engine.make_plan(conf, path, PlanOptions()))
    render_plan(result.plan, "text")
    return time.perf_counter() - start, time.process_time() - cpu


def plan_rows(tmp: Path, count: int, *, changed: bool) -> tuple[list[Row], list[float]]:
    """The rows for one account size, and the CPU seconds per secret of each in-sync run."""
    # The collector as the reconciler process sets it, so the in-process figures are the command's.
    gc.set_threshold(*cli.GC_THRESHOLDS)
    label = f"{count:,}"
    db = tmp / f"plan-{count}.db"
    populate(db, count)
    in_sync = tmp / f"in-sync-{count}.yaml"
    in_sync.write_text(desired_yaml(count, lambda i: "access_token"))
    edited = tmp / f"changed-{count}.yaml"
    edited.write_text(desired_yaml(count, lambda i: "token" if i % 10 == 0 else "access_token"))
    # The targets hold under page/page_size, where the answer counts the account.
    emu = start_emulator("--quiet", "--list-style", "paged", db_path=db)
    try:
        # Warm the file cache, the emulator's database pages and deepdiff's import.
        floor(in_sync, emu.url)
        ours(edited if changed else in_sync, emu.url)
        floors, walls, cpus, edits = [], [], [], []
        for _ in range(REPEAT):
            floors.append(floor(in_sync, emu.url))
            wall, cpu = ours(in_sync, emu.url)
            walls.append(wall)
            cpus.append(cpu)
            if changed:
                edits.append(ours(edited, emu.url)[0])
        rows = [
            row(f"plan {label} secrets, in sync", walls, "s"),
            row("  floor: C parser event scan beside the paged listing", floors, "s"),
            row("  ratio to floor", ratios(walls, floors), "×", "≤ 1.5×" if count == 10_000 else ""),
        ]
        if changed:
            rows.append(row(f"plan {label} secrets, 10% field changes", edits, "s"))
            rows.append(row("  ratio to in sync", ratios(edits, walls), "×", "≤ 1.2×"))
        per_secret = [cpu / count for cpu in cpus]
        rows.append(row(f"  CPU per secret, plan {label} in sync", [c * 1e6 for c in per_secret], "µs"))
        cwd = in_sync.parent
        name = in_sync.name
        target = "≤ 150 MB" if count == 50_000 else ""
        plans = [measure_cli("plan", name, "--ignore-state", url=emu.url, cwd=cwd) for _ in range(REPEAT)]
        rows.append(row(f"peak memory, plan {label} (the reconciler process)", _peaks(plans), "MB", target))
        if count == 50_000:
            state = ("--state", str(tmp / "state-50000.json"))
            applies = [
                measure_cli("apply", name, "--auto-approve", "--adopt", *state, url=emu.url, cwd=cwd)
                for _ in range(REPEAT)
            ]
            rows.append(row(f"peak memory, apply --adopt {label} in sync", _peaks(applies), "MB"))
            drifts = [measure_cli("drift", name, *state, url=emu.url, cwd=cwd) for _ in range(REPEAT)]
            rows.append(row(f"peak memory, drift {label} with state", _peaks(drifts), "MB"))
    finally:
        emu.stop()
    if count == 10_000:
        rows += _offset_rows(db, in_sync)
    return rows, per_secret


def _offset_rows(db: Path, in_sync: Path) -> list[Row]:
    """The in-sync plan under the emulator's default dialect, limit/offset."""
    emu = start_emulator("--quiet", "--list-style", "offset", db_path=db)
    try:
        floor(in_sync, emu.url, "offset")
        ours(in_sync, emu.url)
        floors, walls = [], []
        for _ in range(REPEAT):
            floors.append(floor(in_sync, emu.url, "offset"))
            walls.append(ours(in_sync, emu.url)[0])
    finally:
        emu.stop()
    return [
        row("plan 10,000 secrets, in sync, limit/offset", walls, "s"),
        row("  floor: the event scan beside every window, one after another", floors, "s"),
        row("  ratio to floor", ratios(walls, floors), "×"),
    ]


def _peaks(usages: list[Usage]) -> list[float]:
    return [u.peak_mb for u in usages]
