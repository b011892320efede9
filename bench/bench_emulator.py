"""Throughput of the local io.net emulator: GET by id and PATCH over loopback against a real process."""

from __future__ import annotations

import asyncio
import itertools
import os
import selectors
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

KEY = "bench-key"
CONCURRENCY = int(os.environ.get("BENCH_EMULATOR_CONCURRENCY", "8"))
DURATION_S = float(os.environ.get("BENCH_EMULATOR_SECONDS", "3"))
WARMUP_S = 0.5
SECRETS = 100
GET_TARGET = 1000
PATCH_TARGET = 500

Request = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


def _start(db_path: Path, *flags: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reconciler",
            "emulator",
            "--port",
            "0",
            "--db",
            str(db_path),
            "--quiet",
            *flags,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        ready = selector.select(timeout=30)
    url = proc.stdout.readline().strip() if ready else ""
    if not url.startswith("http://"):
        proc.kill()
        raise RuntimeError(f"the emulator did not start (exit code {proc.wait()})")
    return proc, url


def _cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) used so far by process `pid`; None where /proc is not available."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # utime and stime are fields 14 and 15 of stat; fields[0] here is field 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _hammer(clients: list[httpx.AsyncClient], request: Request, seconds: float) -> tuple[int, float]:
    """Requests completed by one worker per client (each keeping one request in flight), and the time."""
    counter = itertools.count()
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            response = await request(client, next(counter))
            if response.status_code != 200:
                raise RuntimeError(f"unexpected status {response.status_code}")
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(client) for client in clients))
    return done, time.perf_counter() - started


async def _measure(url: str, pid: int) -> dict[str, float]:
    """Requests per second for GET and PATCH, and the emulator's CPU milliseconds per request."""
    # One single-connection client per worker: httpcore's shared pool spends more time looking for an
    # idle connection than the emulator spends answering, and would hide the emulator's own speed.
    clients = [
        httpx.AsyncClient(
            base_url=url,
            headers={"Authorization": f"Bearer {KEY}"},
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            timeout=30,
        )
        for _ in range(CONCURRENCY)
    ]
    try:
        ids: list[str] = []
        for index in range(SECRETS):
            response = await clients[0].post(
                "/api/v1/secrets/",
                json={"secret_name": f"bench-{index}", "secret_value": f"value-{index:06d}"},
            )
            response.raise_for_status()
            ids.append(response.json()["secret_id"])

        # Parsed once: httpx's URL parsing would otherwise be a tenth of the client's time per request.
        urls = [httpx.URL(f"{url}/api/v1/secrets/{secret_id}") for secret_id in ids]

        async def get(client: httpx.AsyncClient, n: int) -> httpx.Response:
            return await client.get(urls[n % SECRETS])

        async def patch(client: httpx.AsyncClient, n: int) -> httpx.Response:
            body = {"secret_value": f"rotated-{n:09d}"} if n % 2 else {"tool_name": f"agno__bench__{n}"}
            return await client.patch(urls[n % SECRETS], json=body)

        results: dict[str, float] = {}
        for name, request in (("get", get), ("patch", patch)):
            await _hammer(clients, request, WARMUP_S)
            cpu_before = _cpu_seconds(pid)
            count, elapsed = await _hammer(clients, request, DURATION_S)
            cpu_after = _cpu_seconds(pid)
            results[name] = count / elapsed
            if cpu_before is not None and cpu_after is not None:
                results[f"{name}_cpu_ms"] = (cpu_after - cpu_before) * 1000 / count
        return results
    finally:
        for client in clients:
            await client.aclose()


def run() -> list[dict[str, object]]:
    """Table rows (name, value, unit, target) for bench/run.py."""
    # httpcore tries `import sniffio` whenever it sets up a lock; when sniffio is not installed, each
    # failed import rescans sys.path (about 0.4 ms, several times per request) and the benchmark would
    # measure the client's import machinery instead of the emulator. A None entry makes that import
    # fail at once, and httpcore then assumes asyncio, which is what runs here. Undone afterwards, so
    # other benchmarks in the same process are unaffected.
    blocked_sniffio = "sniffio" not in sys.modules
    with tempfile.TemporaryDirectory(prefix="bench-emulator-") as tmp:
        proc, url = _start(Path(tmp) / "bench.db")
        try:
            if blocked_sniffio:
                sys.modules["sniffio"] = None  # type: ignore[assignment]
            results = asyncio.run(_measure(url, proc.pid))
        finally:
            if blocked_sniffio:
                del sys.modules["sniffio"]
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    label = f"{CONCURRENCY} in flight, loopback"
    rows: list[dict[str, object]] = []
    for name, method, target in (("get", "GET", GET_TARGET), ("patch", "PATCH", PATCH_TARGET)):
        rows.append(
            {
                "name": f"emulator {method} /api/v1/secrets/{{id}} ({label})",
                "value": round(results[name], 1),
                "unit": "req/s",
                "target": f">= {target}",
            }
        )
        if f"{name}_cpu_ms" in results:
            # The emulator's own cost, whatever the client's: one core serves 1000 / this per second.
            rows.append(
                {
                    "name": f"emulator CPU per {method} (server process only)",
                    "value": round(results[f"{name}_cpu_ms"], 3),
                    "unit": "ms",
                    "target": f"<= {1000 / target:g}",
                }
            )
    return rows


PAGES_MEASURED = 50


def paging_rows(db_path: Path, count: int) -> list[dict[str, object]]:
    """Time per list page near the start and near the end of a large account, one request at a time:
    a page's cost must not grow with its depth. Values are the pages' times (min, median, max)."""
    proc, url = _start(db_path, "--list-style", "paged")
    try:
        last = -(-count // 100)
        measured = min(PAGES_MEASURED, last // 2)
        times: dict[str, list[float]] = {}
        regions = {"first": range(1, measured + 1), "last": range(last - measured + 1, last + 1)}
        headers = {"Authorization": f"Bearer {KEY}"}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            for where, pages in regions.items():
                client.get("/api/v1/secrets/", params={"page": pages[0], "page_size": 100})  # warm up
                times[where] = []
                for page in pages:
                    start = time.perf_counter()
                    client.get("/api/v1/secrets/", params={"page": page, "page_size": 100}).raise_for_status()
                    times[where].append((time.perf_counter() - start) * 1000)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    first, deep = statistics.median(times["first"]), statistics.median(times["last"])
    return [
        {
            "name": f"emulator list page, first {measured} of {count:,} (each page)",
            "values": times["first"],
            "unit": "ms",
        },
        {
            "name": f"emulator list page, last {measured} of {count:,} (each page)",
            "values": times["last"],
            "unit": "ms",
        },
        {
            "name": "  ratio of medians, last to first",
            "values": [deep / first],
            "unit": "×",
            "target": "≤ 1.2×",
        },
    ]


if __name__ == "__main__":
    for row in run():
        print(f"{row['name']}: {row['value']} {row['unit']} (target {row['target']})")
