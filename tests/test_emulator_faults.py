"""The emulator's fault injection, rate limits, latency, request log and request logging."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from reconciler.emulator.app import ECHO_STATUSES, account_id, create_app, state_of
from reconciler.emulator.config import EmulatorConfig
from reconciler.emulator.masking import mask
from tests.support.emulator import client_for
from tests.support.openapi import validate_undocumented_error

KEY = "fault-key-31337"
CANARY = "canary-FAULT-value-8b7c6d"
LIST = "/api/v1/secrets/"
BODY = {"secret_name": "n", "secret_value": CANARY}


def run(scenario: Any, config: EmulatorConfig) -> Any:
    async def main() -> Any:
        app = create_app(config)
        async with client_for(app, KEY) as client:
            return await scenario(app, client)

    return asyncio.run(main())


def stored(app: FastAPI, key: str = KEY) -> list[Any]:
    return state_of(app).store.all(account_id(key))


def test_fail_rate_answers_5xx_without_acting() -> None:
    async def scenario(app: FastAPI, client: httpx.AsyncClient) -> None:
        statuses = set()
        for _ in range(30):
            response = await client.post(LIST, json=BODY)
            statuses.add(response.status_code)
            if response.status_code == 502:
                assert response.headers["content-type"].startswith("text/html")
            else:
                validate_undocumented_error(response.json())
        assert statuses == {500, 502, 503}
        assert stored(app) == []

    run(scenario, EmulatorConfig(fail_rate=1.0, seed=1))


def test_fail_after_rate_acts_then_answers_500() -> None:
    async def scenario(app: FastAPI, client: httpx.AsyncClient) -> None:
        created = await client.post(LIST, json=BODY)
        assert created.status_code == 500
        validate_undocumented_error(created.json())
        [secret] = stored(app)
        assert secret.secret_name == "n"

        patched = await client.patch(f"{LIST}{secret.secret_id}", json={"secret_name": "renamed"})
        assert patched.status_code == 500
        assert stored(app)[0].secret_name == "renamed"

        # Nothing happened, so nothing is hidden: a 404 stays a 404, a 422 a 422.
        assert (await client.get(f"{LIST}{uuid.uuid4()}")).status_code == 404
        assert (await client.post(LIST, json={"secret_name": "n"})).status_code == 422

        deleted = await client.delete(f"{LIST}{secret.secret_id}")
        assert deleted.status_code == 500
        assert stored(app) == []

    run(scenario, EmulatorConfig(fail_after_rate=1.0, seed=1))


def test_fail_echo_rate_repeats_the_key_and_the_displays_without_acting() -> None:
    async def scenario(app: FastAPI, client: httpx.AsyncClient) -> None:
        state_of(app).store.create(account_id(KEY), secret_name="n", secret_value=CANARY)
        display = mask(CANARY)
        seen = []
        for _ in range(len(ECHO_STATUSES)):
            response = await client.post(LIST, json={"secret_name": "m", "secret_value": CANARY})
            seen.append(response.status_code)
            if response.status_code == 200:
                assert KEY in response.headers["content-type"] and response.content == b"not json"
            else:
                assert KEY in response.text and display in response.text
        assert seen == list(ECHO_STATUSES)
        assert [s.secret_name for s in stored(app)] == ["n"]  # none of them acted
        log = await client.get("/_emulator/requests")
        assert {entry["fault"] for entry in log.json()} == {"echo"}

    run(scenario, EmulatorConfig(fail_echo_rate=1.0, inspect=True))


def test_an_echo_rate_leaves_a_seeds_other_faults_where_they_were() -> None:
    plain = _statuses(EmulatorConfig(fail_rate=0.3, seed=42))
    with_echo = _statuses(EmulatorConfig(fail_rate=0.3, fail_echo_rate=0.2, seed=42))
    assert [s for s in plain if s != 200] == [s for s, e in zip(with_echo, plain, strict=True) if e != 200]
    assert with_echo != plain


def _statuses(config: EmulatorConfig, count: int = 40) -> list[int]:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> list[int]:
        return [(await client.get(LIST)).status_code for _ in range(count)]

    result: list[int] = run(scenario, config)
    return result


def test_faults_are_reproducible_with_a_seed() -> None:
    config = EmulatorConfig(fail_rate=0.3, fail_after_rate=0.3, seed=42)
    first = _statuses(config)
    assert first == _statuses(config)
    assert {200, 500} <= set(first)
    assert 0 < first.count(200) < len(first)
    assert first != _statuses(EmulatorConfig(fail_rate=0.3, fail_after_rate=0.3, seed=43))


def test_rates_of_zero_never_fail() -> None:
    assert set(_statuses(EmulatorConfig(seed=7), count=100)) == {200}


def test_rate_limit_per_account_with_retry_after() -> None:
    now = [1000.0]

    async def scenario(app: FastAPI, client: httpx.AsyncClient) -> None:
        state_of(app).monotonic = lambda: now[0]
        assert [(await client.get(LIST)).status_code for _ in range(2)] == [200, 200]
        limited = await client.post(LIST, json=BODY)
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        validate_undocumented_error(limited.json())
        assert stored(app) == []

        async with client_for(app, "another-account") as other:
            assert (await other.get(LIST)).status_code == 200

        now[0] += 0.5  # one request's worth of tokens at 2/s
        assert (await client.get(LIST)).status_code == 200
        assert (await client.get(LIST)).status_code == 429
        now[0] += 1.0
        assert (await client.post(LIST, json=BODY)).status_code == 200

    run(scenario, EmulatorConfig(rate_limit=2.0))


def test_retry_after_reflects_a_slow_rate() -> None:
    now = [0.0]

    async def scenario(app: FastAPI, client: httpx.AsyncClient) -> None:
        state_of(app).monotonic = lambda: now[0]
        assert (await client.get(LIST)).status_code == 200
        limited = await client.get(LIST)
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "4"

    run(scenario, EmulatorConfig(rate_limit=0.25))


def test_latency_delays_requests_without_blocking_others() -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        started = time.perf_counter()
        responses = await asyncio.gather(*(client.get(LIST) for _ in range(10)))
        elapsed = time.perf_counter() - started
        assert {r.status_code for r in responses} == {200}
        assert elapsed >= 0.2
        assert elapsed < 1.5  # ten sequential sleeps would take 2 s

    run(scenario, EmulatorConfig(latency_ms=200))


# Inspection


@pytest.mark.parametrize(("method", "path"), [("GET", "/_emulator/requests"), ("POST", "/_emulator/reset")])
def test_inspection_is_off_unless_asked_for(method: str, path: str) -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        assert (await client.request(method, path)).status_code == 404

    run(scenario, EmulatorConfig())


def test_request_log_records_shape_but_never_values_or_keys() -> None:
    async def scenario(app: FastAPI, client: httpx.AsyncClient) -> None:
        created = (await client.post(LIST, json={**BODY, "tool_name": "agno__x__*"})).json()
        await client.patch(f"{LIST}{created['secret_id']}", json={"secret_value": CANARY + "-2"})
        await client.get(LIST, params={"page": 2, "page_size": 10, "api_key": KEY})
        async with client_for(app, key=None) as anonymous:
            await anonymous.get(LIST)
        log = (await client.get("/_emulator/requests")).json()
        assert log == [
            {
                "method": "POST",
                "path": LIST,
                "query": {},
                "body_keys": ["secret_name", "secret_value", "tool_name"],
                "status": 200,
                "user_id": account_id(KEY),
                "fault": None,
            },
            {
                "method": "PATCH",
                "path": f"{LIST}{created['secret_id']}",
                "query": {},
                "body_keys": ["secret_value"],
                "status": 200,
                "user_id": account_id(KEY),
                "fault": None,
            },
            {
                "method": "GET",
                "path": LIST,
                "query": {"page": "2", "page_size": "10"},
                "body_keys": [],
                "status": 200,
                "user_id": account_id(KEY),
                "fault": None,
            },
            {
                "method": "GET",
                "path": LIST,
                "query": {},
                "body_keys": [],
                "status": 401,
                "user_id": None,
                "fault": None,
            },
        ]
        text = str(log)
        for secret in (CANARY, mask(CANARY), KEY):
            assert secret not in text

    run(scenario, EmulatorConfig(inspect=True))


def test_request_log_names_injected_faults() -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        await client.post(LIST, json=BODY)
        [entry] = (await client.get("/_emulator/requests")).json()
        assert (entry["status"], entry["fault"]) == (500, "fail_after")

    run(scenario, EmulatorConfig(inspect=True, fail_after_rate=1.0))


def test_reset_forgets_secrets_log_and_restarts_the_fault_sequence() -> None:
    async def scenario(app: FastAPI, client: httpx.AsyncClient) -> None:
        before = [(await client.get(LIST)).status_code for _ in range(20)]
        await client.post(LIST, json=BODY)
        assert (await client.post("/_emulator/reset")).status_code == 200
        assert (await client.get("/_emulator/requests")).json() == []
        assert stored(app) == []
        after = [(await client.get(LIST)).status_code for _ in range(20)]
        assert after == before

    run(scenario, EmulatorConfig(inspect=True, fail_rate=0.5, seed=5))


def test_log_requests_writes_one_line_per_request_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        await client.post(LIST, json=BODY)
        await client.get(LIST, headers={"Authorization": "Bearer "})

    run(scenario, EmulatorConfig(log_requests=True))
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"POST {LIST} 200 account={account_id(KEY)[:8]}")
    assert lines[1].startswith(f"GET {LIST} 401 account=-")
    for secret in (CANARY, mask(CANARY), KEY):
        assert secret not in captured.err


def test_quiet_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        await client.post(LIST, json=BODY)

    run(scenario, EmulatorConfig())
    assert capsys.readouterr() == ("", "")
