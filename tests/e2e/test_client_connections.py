"""The client's connections to a real emulator process: one per request slot, kept and reused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from reconciler.client import Client, ClientConfig
from tests.support.emulator import running_emulator

TCP_TABLE = Path("/proc/net/tcp")
ESTABLISHED, TIME_WAIT = "01", "06"


def connections_to(port: int) -> dict[str, int]:
    """Loopback TCP connections to `port` by state (the client's side of each)."""
    states: dict[str, int] = {}
    for line in TCP_TABLE.read_text().splitlines()[1:]:
        fields = line.split()
        remote, state = fields[2], fields[3]
        if int(remote.rsplit(":", 1)[1], 16) == port:
            states[state] = states.get(state, 0) + 1
    return states


@pytest.mark.skipif(not TCP_TABLE.exists(), reason="reads the kernel's TCP table (Linux)")
def test_requests_reuse_one_connection_per_slot(tmp_path: Path) -> None:
    with running_emulator("--quiet", db_path=tmp_path / "emulator.db") as emulator:
        port = int(emulator.url.rsplit(":", 1)[1])

        async def scenario() -> tuple[dict[str, int], dict[str, int]]:
            config = ClientConfig(api_url=emulator.url, api_key="test-key", concurrency=4)
            async with Client(config) as client:
                created = await client.create({"secret_name": "one", "secret_value": "abcd-value"})
                for _ in range(3):
                    await asyncio.gather(*(client.get(created.secret_id) for _ in range(40)))
                during = connections_to(port)
            return during, connections_to(port)

        during, after = asyncio.run(scenario())
    # 121 requests, at most four at a time: four connections at most, none opened and closed again.
    assert 1 <= during.get(ESTABLISHED, 0) <= 4
    assert during.get(TIME_WAIT, 0) == 0
    # Closing the client closes them (the client's side then waits in TIME_WAIT).
    assert after.get(ESTABLISHED, 0) == 0
