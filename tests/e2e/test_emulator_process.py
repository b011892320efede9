"""`reconciler emulator` as a real process over HTTP: start-up line, persistence, clean stops."""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.emulator.app import account_id
from reconciler.emulator.masking import mask
from tests.support import cli
from tests.support.emulator import RunningEmulator, running_emulator, start_emulator, stored_values
from tests.support.openapi import validate_response

pytestmark = pytest.mark.e2e

KEY = "e2e-key-0042"
CANARY = "canary-E2E-value-5f4e3d2c1b"
LIST = "/api/v1/secrets/"
ONE = "/api/v1/secrets/{secret_id}"


def client(emulator: RunningEmulator, key: str = KEY) -> httpx.Client:
    return httpx.Client(base_url=emulator.url, headers={"x-api-key": key}, timeout=10)


def checked(response: httpx.Response, template: str) -> Any:
    body = response.json()
    validate_response(response.request.method, template, response.status_code, body)
    return body


def test_prints_one_url_line_and_serves_every_operation(emulator: RunningEmulator) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", emulator.url)
    assert int(emulator.url.rsplit(":", 1)[1]) > 0
    with client(emulator) as http:
        info = checked(http.post(LIST, json={"secret_name": "n", "secret_value": CANARY}), LIST)
        assert info["display"] == mask(CANARY)
        assert checked(http.get(f"{LIST}{info['secret_id']}"), ONE) == info
        assert checked(http.get(LIST), LIST)["data"] == [info]
        patched = http.patch(f"{LIST}{info['secret_id']}", json={"secret_value": CANARY + "-rotated"})
        assert patched.status_code == 200
        assert stored_values(emulator.db_path)[info["secret_id"]] == CANARY + "-rotated"
        assert http.delete(f"{LIST}{info['secret_id']}").status_code == 200
        assert http.get(f"{LIST}{info['secret_id']}").status_code == 404
        assert http.get(LIST, headers={"x-api-key": ""}).status_code == 401
    log = emulator.requests()
    assert [(e["method"], e["status"]) for e in log] == [
        ("POST", 200),
        ("GET", 200),
        ("GET", 200),
        ("PATCH", 200),
        ("DELETE", 200),
        ("GET", 404),
        ("GET", 401),
    ]
    assert {e["user_id"] for e in log[:-1]} == {account_id(KEY)}
    for secret in (CANARY, mask(CANARY), KEY):
        assert secret not in str(log)
    assert emulator.stdout() == ""


def test_reset_empties_the_shared_emulator(emulator: RunningEmulator) -> None:
    with client(emulator) as http:
        http.post(LIST, json={"secret_name": "n", "secret_value": CANARY}).raise_for_status()
    emulator.reset()
    with client(emulator) as http:
        assert http.get(LIST).json()["data"] == []
    assert emulator.requests() == [
        {
            "method": "GET",
            "path": LIST,
            "query": {},
            "body_keys": [],
            "status": 200,
            "user_id": account_id(KEY),
            "fault": None,
        }
    ]


def test_concurrent_clients_over_real_http(emulator: RunningEmulator) -> None:
    async def main() -> None:
        async with httpx.AsyncClient(
            base_url=emulator.url, headers={"Authorization": f"Bearer {KEY}"}
        ) as http:
            responses = await asyncio.gather(
                *(http.post(LIST, json={"secret_name": f"s{i}", "secret_value": CANARY}) for i in range(50))
            )
            assert {r.status_code for r in responses} == {200}
            listed = (await http.get(LIST, params={"limit": 100})).json()
            assert sorted(s["secret_name"] for s in listed["data"]) == sorted(f"s{i}" for i in range(50))

    asyncio.run(main())


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stops_cleanly_and_keeps_data_across_a_restart(sig: signal.Signals, tmp_path: Path) -> None:
    db_path = tmp_path / "emulator.db"
    first = start_emulator(db_path=db_path)
    try:
        with client(first) as http:
            # An open keep-alive connection must not hold the shutdown up.
            info = checked(http.post(LIST, json={"secret_name": "kept", "secret_value": CANARY}), LIST)
            http.patch(f"{LIST}{info['secret_id']}", json={"tool_name": "agno__github__*"}).raise_for_status()
            assert first.stop(sig) == 0
    finally:
        first.stop()
    assert "Traceback" not in first.stderr()

    with running_emulator(db_path=db_path) as second, client(second) as http:
        assert second.proc.pid != first.proc.pid
        got = checked(http.get(f"{LIST}{info['secret_id']}"), ONE)
        assert got["tool_name"] == "agno__github__*"
        assert (got["created_at"], got["display"], got["secret_name"]) == (
            info["created_at"],
            info["display"],
            "kept",
        )
        assert got["updated_at"] > info["updated_at"]


def test_flags_reach_the_server(tmp_path: Path) -> None:
    flags = ["--api-key", KEY, "--list-style", "array", "--display-head", "2", "--display-tail", "2"]
    with running_emulator(*flags, "--duplicate-names", "reject", db_path=tmp_path / "e.db") as emulator:
        with client(emulator, "not-configured") as http:
            assert http.get(LIST).status_code == 401
        with client(emulator) as http:
            info = http.post(LIST, json={"secret_name": "n", "secret_value": CANARY}).json()
            assert info["display"] == CANARY[:2] + "****" + CANARY[-2:]
            assert http.post(LIST, json={"secret_name": "n", "secret_value": CANARY}).status_code == 409
            assert http.get(LIST).json() == [info]
        # Inspection is off unless asked for.
        assert httpx.get(f"{emulator.url}/_emulator/requests").status_code == 404


def test_log_requests_goes_to_stderr_without_secrets(tmp_path: Path) -> None:
    emulator = start_emulator("--log-requests", db_path=tmp_path / "e.db")
    with client(emulator) as http:
        http.post(LIST, json={"secret_name": "n", "secret_value": CANARY}).raise_for_status()
        http.get(LIST).raise_for_status()
    assert emulator.stop() == 0
    err = emulator.stderr()
    assert f"POST {LIST} 200" in err and f"GET {LIST} 200" in err
    for secret in (CANARY, mask(CANARY), KEY):
        assert secret not in err
    assert emulator.stdout() == ""


def test_the_database_of_values_is_private_to_its_owner(tmp_path: Path) -> None:
    """The emulator's own file, and the one `--api-url local` keeps beside the desired file."""
    db = tmp_path / "served" / "emulator.db"
    with running_emulator(db_path=db) as served, client(served) as http:
        http.post(LIST, json={"secret_name": "n", "secret_value": CANARY}).raise_for_status()
        assert {p.name: p.stat().st_mode & 0o777 for p in db.parent.iterdir()} == {
            "emulator.db": 0o600,
            "emulator.db-wal": 0o600,
            "emulator.db-shm": 0o600,
        }

    (tmp_path / "secrets.yaml").write_text(
        "version: 1\nsecrets:\n  - secret_name: n\n    secret_value: ${V}\n"
    )
    env = {"IOINTELLIGENCE_API_KEY": KEY, "V": CANARY}
    applied = cli.run("apply", "secrets.yaml", "--auto-approve", "--api-url", "local", cwd=tmp_path, env=env)
    assert applied.returncode == 0, applied.stderr
    local = tmp_path / ".reconciler" / "local.db"
    assert stored_values(local) and local.stat().st_mode & 0o777 == 0o600
    assert all(p.stat().st_mode & 0o077 == 0 for p in local.parent.glob("local.db*"))
