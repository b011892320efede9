"""Apply speed at concurrency 1 to 64 against an emulator adding latency, beside a bare httpx loop."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import httpx

from bench.common import KEY, REPEAT, Row, desired_yaml, populate, ratios, row, run_cli
from tests.support.emulator import start_emulator

COUNT = 1_000
LATENCY_MS = 20
CONCURRENCIES = (1, 4, 16, 32, 64)
# A higher concurrency may be this much slower than a lower one before it counts as slower (noise).
TOLERANCE = 1.05


def plan_once(path: Path, url: str) -> float:
    """A whole `reconciler plan` process on the same changes: what apply does before its first write."""
    start = time.perf_counter()
    done = run_cli("plan", path.name, "--ignore-state", url=url, cwd=path.parent)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"plan failed:\n{done.stderr[-2000:]}")
    return took


def apply_once(path: Path, url: str, concurrency: int, arg: str) -> float:
    """A whole `reconciler apply --auto-approve` process writing COUNT field updates."""
    path.write_text(desired_yaml(COUNT, lambda i: arg))
    start = time.perf_counter()
    done = run_cli(
        "apply",
        path.name,
        "--auto-approve",
        "--concurrency",
        str(concurrency),
        "--ignore-state",
        url=url,
        cwd=path.parent,
    )
    took = time.perf_counter() - start
    if done.returncode != 0 or f"{COUNT} succeeded" not in done.stdout:
        raise SystemExit(f"apply failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return took


async def bare_patches(url: str, concurrency: int, arg: str) -> float:
    """The same PATCHes from a bare httpx loop, as one would write it: one client with a pool of
    `concurrency` connections, a semaphore, no plan, no verification, no process start-up."""
    headers = {"authorization": f"Bearer {KEY}"}
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits) as client:
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
                for attempt in range(3):
                    try:
                        response = await client.patch(f"/api/v1/secrets/{secret_id}", json={"tool_arg": arg})
                        break
                    except httpx.TransportError:
                        # A kept-alive connection the server closed as it was reused: sent again, as
                        # reconciler's own client does.
                        if attempt == 2:
                            raise
                response.raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(patch(i) for i in ids))
        return time.perf_counter() - start


def apply_rows(tmp: Path) -> list[Row]:
    db = tmp / "apply.db"
    populate(db, COUNT)
    path = tmp / "apply.yaml"
    rows: list[Row] = []
    medians: dict[int, float] = {}
    flags = ("--quiet", "--list-style", "paged", "--latency-ms", str(LATENCY_MS))
    emu = start_emulator(*flags, db_path=db)
    try:
        apply_once(path, emu.url, 4, "warm-up")
        for concurrency in CONCURRENCIES:
            ours, bare, writes = [], [], []
            for run in range(REPEAT):
                # A new value each time, so every run writes all COUNT secrets.
                ours.append(apply_once(path, emu.url, concurrency, f"arg-{concurrency}-{run}"))
                bare.append(asyncio.run(bare_patches(emu.url, concurrency, f"bare-{concurrency}-{run}")))
                writes.append(ours[-1] - plan_once(path, emu.url))
            ideal = COUNT / concurrency * LATENCY_MS / 1000
            name = f"apply {COUNT:,} field updates, --latency-ms {LATENCY_MS}, concurrency {concurrency}"
            applied = row(name, ours, "s")
            medians[concurrency] = applied.median
            rows.append(applied)
            rows.append(row("  bare httpx PATCH loop", bare, "s"))
            rows.append(row("  ratio to bare httpx PATCH loop", ratios(ours, bare), "×", "≤ 1.10×"))
            # Apply less a plan process of the same changes: the writes, their verification, the state.
            rows.append(
                row("  writes alone (apply − plan), ratio to the bare loop", ratios(writes, bare), "×")
            )
            rows.append(row(f"  ratio to ideal ({ideal:g} s)", [t / ideal for t in ours], "×"))
    finally:
        emu.stop()
    steps = [medians[high] / medians[low] for low, high in itertools.pairwise(CONCURRENCIES)]
    rows.append(
        row(
            "apply: slowest step up in concurrency (median at c ÷ median at the c below)",
            max(steps),
            "×",
            f"≤ {TOLERANCE:.2f}×",
        )
    )
    return rows
