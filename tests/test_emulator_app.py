"""The emulator's HTTP behaviour in-process: every response checked against the vendored contract."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.emulator.app import account_id, create_app
from reconciler.emulator.config import EmulatorConfig
from reconciler.emulator.masking import mask
from reconciler.errors import UsageError
from tests.support.emulator import client_for, inprocess_client
from tests.support.openapi import (
    SECRET_INFO_FIELDS,
    component,
    validate_response,
    validate_undocumented_error,
)

KEY = "test-key"
CANARY = "canary-VALUE-7a3f9e1d2c"
LIST = "/api/v1/secrets/"
ONE = "/api/v1/secrets/{secret_id}"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")

Scenario = Callable[[FastAPI, httpx.AsyncClient], Awaitable[None]]
# The style of the tests about pages and their metadata (the default style is limit/offset).
PAGED = EmulatorConfig(list_style="paged")


def run(
    scenario: Scenario, config: EmulatorConfig | None = None, key: str | None = KEY, **kwargs: Any
) -> None:
    """Run `scenario` against a fresh in-memory emulator app and a client authenticated with `key`."""

    async def main() -> None:
        app = create_app(config or EmulatorConfig(), **kwargs)
        async with client_for(app, key) as client:
            await scenario(app, client)

    asyncio.run(main())


def checked(response: httpx.Response, template: str) -> Any:
    """The response's JSON, after checking it against what the contract documents for it."""
    body = response.json()
    validate_response(response.request.method, template, response.status_code, body)
    return body


def url(secret_id: str) -> str:
    return f"{LIST}{secret_id}"


async def create(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"secret_name": "github-token", "secret_value": CANARY, **fields}
    response = await client.post(LIST, json=body)
    assert response.status_code == 200, response.text
    info: dict[str, Any] = checked(response, LIST)
    return info


def assert_secret_info(info: dict[str, Any]) -> None:
    assert set(info) == SECRET_INFO_FIELDS  # never secret_value, nothing undocumented
    for stamp in (info["created_at"], info["updated_at"]):
        assert TIMESTAMP.match(stamp), stamp
        assert datetime.fromisoformat(stamp).utcoffset() == timedelta(0)


# The five operations


def test_create_answers_200_with_secret_info() -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        info = await create(
            client, tool_name="agno__github__*", tool_arg="access_token", is_default_for_tool=True
        )
        assert_secret_info(info)
        assert info["secret_name"] == "github-token"
        assert info["display"] == "cana****1d2c"
        assert (info["tool_name"], info["tool_arg"], info["is_default_for_tool"]) == (
            "agno__github__*",
            "access_token",
            True,
        )
        assert info["user_id"] == account_id(KEY) == str(uuid.UUID(info["user_id"]))
        assert info["created_at"] == info["updated_at"]

    run(scenario)


def test_create_defaults_optional_fields() -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        info = await create(client)
        assert (info["tool_name"], info["tool_arg"], info["is_default_for_tool"]) == (None, None, False)
        explicit_null = await create(client, tool_name=None, tool_arg=None, is_default_for_tool=None)
        assert (
            explicit_null["tool_name"],
            explicit_null["tool_arg"],
            explicit_null["is_default_for_tool"],
        ) == (
            None,
            None,
            False,
        )

    run(scenario)


def test_get_list_patch_delete_round_trip() -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        info = await create(client)
        got = checked(await client.get(url(info["secret_id"])), ONE)
        assert got == info

        listed = checked(await client.get(LIST), LIST)
        assert listed["data"] == [info]

        patched = await client.patch(url(info["secret_id"]), json={"tool_name": "agno__linear__*"})
        assert patched.status_code == 200
        patch_body = checked(patched, ONE)
        assert isinstance(patch_body, dict) and CANARY not in patched.text

        after = checked(await client.get(url(info["secret_id"])), ONE)
        assert after["tool_name"] == "agno__linear__*"

        deleted = await client.delete(url(info["secret_id"]))
        assert deleted.status_code == 200
        assert isinstance(checked(deleted, ONE), dict)

        gone = await client.get(url(info["secret_id"]))
        assert gone.status_code == 404
        assert isinstance(checked(gone, ONE)["detail"], str)
        assert checked(await client.get(LIST), LIST)["data"] == []

    run(scenario)


def test_ids_are_accepted_in_any_case_and_answered_in_canonical_form() -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        info = await create(client)
        got = checked(await client.get(url(info["secret_id"].upper())), ONE)
        assert got["secret_id"] == info["secret_id"]

    run(scenario)


def test_paths_without_the_trailing_slash_are_redirected_not_served() -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/v1/secrets")
        assert response.status_code == 307
        assert response.headers["location"].endswith("/api/v1/secrets/")

    run(scenario)


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_unknown_id_is_404_with_a_string_detail(method: str) -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        response = await client.request(
            method, url(str(uuid.uuid4())), json={} if method == "PATCH" else None
        )
        assert response.status_code == 404
        assert isinstance(checked(response, ONE)["detail"], str)

    run(scenario)


def test_many_concurrent_requests_from_one_client() -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        created = await asyncio.gather(*(create(client, secret_name=f"s-{i}") for i in range(200)))
        assert len({info["secret_id"] for info in created}) == 200
        fetched = await asyncio.gather(*(client.get(url(info["secret_id"])) for info in created))
        assert [r.json()["secret_name"] for r in fetched] == [f"s-{i}" for i in range(200)]
        patched = await asyncio.gather(
            *(client.patch(url(info["secret_id"]), json={"tool_arg": "a"}) for info in created)
        )
        assert {r.status_code for r in patched} == {200}
        listed = checked(await client.get(LIST, params={"page_size": 100, "page": 2}), LIST)
        assert listed["pagination"]["total"] == 200

    run(scenario, PAGED)


# Auth


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {KEY}"},
        {"Authorization": f"bearer {KEY}"},
        {"x-api-key": KEY},
        {"token": KEY},
    ],
)
def test_each_credential_header_reaches_the_same_account(headers: dict[str, str]) -> None:
    async def scenario(app: FastAPI, client: httpx.AsyncClient) -> None:
        info = await create(client)
        async with client_for(app, key=None) as bare:
            response = await bare.get(LIST, headers=headers)
        assert response.status_code == 200
        assert [s["secret_id"] for s in checked(response, LIST)["data"]] == [info["secret_id"]]

    run(scenario)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer "},
        {"Authorization": f"Basic {KEY}"},
        {"Authorization": KEY},
        {"x-api-key": ""},
        {"Authorization": f"Bearer {KEY}", "x-api-key": KEY},
        {"x-api-key": KEY, "token": KEY},
    ],
    ids=[
        "none",
        "empty-bearer",
        "basic",
        "no-scheme",
        "empty-x-api-key",
        "bearer+x-api-key",
        "x-api-key+token",
    ],
)
def test_missing_malformed_or_ambiguous_credentials_are_401(headers: dict[str, str]) -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        for method, path in (("GET", LIST), ("POST", LIST), ("GET", ONE), ("PATCH", ONE), ("DELETE", ONE)):
            target = path.format(secret_id=uuid.uuid4())
            body = {"secret_name": "n", "secret_value": CANARY} if method in ("POST", "PATCH") else None
            response = await client.request(method, target, headers=headers, json=body)
            assert response.status_code == 401, (method, response.text)
            assert isinstance(checked(response, path)["detail"], str)
            assert KEY not in response.text and CANARY not in response.text

    run(scenario, key=None)


def test_configured_keys_restrict_access_and_are_never_echoed() -> None:
    allowed = "sk-allowed-1234567890"

    async def scenario(app: FastAPI, client: httpx.AsyncClient) -> None:
        wrong = await client.get(LIST)
        assert wrong.status_code == 401
        assert "wrong-key-5550123" not in wrong.text
        async with client_for(app, allowed) as good:
            response = await good.get(LIST)
            assert response.status_code == 200
            assert allowed not in response.text

    run(scenario, EmulatorConfig(api_keys=(allowed, "sk-other")), key="wrong-key-5550123")


def test_each_key_is_its_own_account() -> None:
    async def scenario(app: FastAPI, client: httpx.AsyncClient) -> None:
        mine = await create(client, secret_name="mine")
        async with client_for(app, "other-key") as other:
            assert checked(await other.get(LIST), LIST)["data"] == []
            for method in ("GET", "PATCH", "DELETE"):
                body = {"secret_name": "stolen"} if method == "PATCH" else None
                response = await other.request(method, url(mine["secret_id"]), json=body)
                assert response.status_code == 404
            theirs = await create(other, secret_name="theirs")
            assert theirs["user_id"] == account_id("other-key") != mine["user_id"]
        assert checked(await client.get(url(mine["secret_id"])), ONE) == mine
        assert [s["secret_name"] for s in checked(await client.get(LIST), LIST)["data"]] == ["mine"]

    run(scenario)


# Validation


def _too_long(n: int = 1025) -> str:
    return ("x" * n)[:n]


@pytest.mark.parametrize(
    ("body", "loc", "error_type"),
    [
        ({"secret_name": "", "secret_value": "abcd"}, ["body", "secret_name"], "string_too_short"),
        ({"secret_name": _too_long(), "secret_value": "abcd"}, ["body", "secret_name"], "string_too_long"),
        ({"secret_name": "n", "secret_value": "q7z"}, ["body", "secret_value"], "string_too_short"),
        ({"secret_name": "n", "secret_value": CANARY * 50}, ["body", "secret_value"], "string_too_long"),
        (
            {"secret_name": "n", "secret_value": "abcd", "tool_name": ""},
            ["body", "tool_name"],
            "string_too_short",
        ),
        (
            {"secret_name": "n", "secret_value": "abcd", "tool_arg": _too_long()},
            ["body", "tool_arg"],
            "string_too_long",
        ),
        ({"secret_name": 123, "secret_value": "abcd"}, ["body", "secret_name"], "string_type"),
        ({"secret_name": "n", "secret_value": 12345678}, ["body", "secret_value"], "string_type"),
        ({"secret_name": "n", "secret_value": [CANARY]}, ["body", "secret_value"], "string_type"),
        ({"secret_name": "n", "secret_value": "abcd", "tool_name": 7}, ["body", "tool_name"], "string_type"),
        (
            {"secret_name": "n", "secret_value": "abcd", "is_default_for_tool": "true"},
            ["body", "is_default_for_tool"],
            "bool_type",
        ),
        (
            {"secret_name": "n", "secret_value": "abcd", "is_default_for_tool": 1},
            ["body", "is_default_for_tool"],
            "bool_type",
        ),
        ({"secret_value": CANARY}, ["body", "secret_name"], "missing"),
        ({"secret_name": "n"}, ["body", "secret_value"], "missing"),
        ([CANARY], ["body"], "model_attributes_type"),
    ],
)
def test_create_validation_is_a_fastapi_422_that_never_echoes_input(
    body: Any, loc: list[Any], error_type: str
) -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        response = await client.post(LIST, json=body)
        assert response.status_code == 422
        detail = checked(response, LIST)["detail"]
        assert {"loc": loc, "type": error_type} in [{"loc": d["loc"], "type": d["type"]} for d in detail]
        assert all(set(item) == {"loc", "msg", "type"} for item in detail)
        submitted = body if isinstance(body, list) else list(body.values())
        for value in submitted:
            if isinstance(value, str) and value not in ("", "n", "abcd"):
                assert value not in response.text
        assert "canary" not in response.text.lower()
        assert checked(await client.get(LIST), LIST)["data"] == []

    run(scenario)


@pytest.mark.parametrize(
    ("body", "loc", "error_type"),
    [
        ({"secret_name": ""}, ["body", "secret_name"], "string_too_short"),
        ({"secret_value": "q7z"}, ["body", "secret_value"], "string_too_short"),
        ({"secret_value": CANARY * 50}, ["body", "secret_value"], "string_too_long"),
        ({"secret_value": 12345678}, ["body", "secret_value"], "string_type"),
        ({"tool_arg": ""}, ["body", "tool_arg"], "string_too_short"),
        ({"is_default_for_tool": "yes"}, ["body", "is_default_for_tool"], "bool_type"),
    ],
)
def test_update_validation_is_a_422_that_changes_nothing(
    body: dict[str, Any], loc: list[Any], error_type: str
) -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        info = await create(client)
        response = await client.patch(url(info["secret_id"]), json=body)
        assert response.status_code == 422
        detail = checked(response, ONE)["detail"]
        assert [{"loc": d["loc"], "type": d["type"]} for d in detail] == [{"loc": loc, "type": error_type}]
        assert "canary" not in response.text.lower()
        assert checked(await client.get(url(info["secret_id"])), ONE) == info

    run(scenario)


def test_field_lengths_at_the_limits_are_accepted() -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        short = await create(client, secret_name="n", secret_value="abcd")
        assert short["display"] == "abcd"
        long = await create(
            client,
            secret_name="n" * 1024,
            secret_value="v" * 1024,
            tool_name="t" * 1024,
            tool_arg="a" * 1024,
        )
        assert len(long["secret_name"]) == 1024
        patched = await client.patch(url(short["secret_id"]), json={"secret_value": "é" * 1024})
        assert patched.status_code == 200

    run(scenario)


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_a_non_uuid_id_is_a_422(method: str) -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        response = await client.request(method, url("github-token"), json={} if method == "PATCH" else None)
        assert response.status_code == 422
        detail = checked(response, ONE)["detail"]
        assert [(d["loc"], d["type"]) for d in detail] == [(["path", "secret_id"], "uuid_parsing")]

    run(scenario)


def test_malformed_json_is_a_422_without_the_body() -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        raw = f'{{"secret_name": "n", "secret_value": "{CANARY}"'.encode()
        response = await client.post(LIST, content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 422
        assert [d["type"] for d in checked(response, LIST)["detail"]] == ["json_invalid"]
        assert CANARY not in response.text

    run(scenario)


# PATCH semantics


def test_patch_changes_only_the_fields_present_and_moves_updated_at() -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        info = await create(
            client, tool_name="agno__github__*", tool_arg="access_token", is_default_for_tool=True
        )
        steps: list[tuple[dict[str, Any], dict[str, Any]]] = [
            ({"secret_name": "renamed"}, {"secret_name": "renamed"}),
            ({"secret_value": "new-value-0123456789"}, {"display": mask("new-value-0123456789")}),
            ({"tool_arg": "token"}, {"tool_arg": "token"}),
            ({"is_default_for_tool": False}, {"is_default_for_tool": False}),
            ({}, {}),
        ]
        before = info
        for body, expected_changes in steps:
            response = await client.patch(url(info["secret_id"]), json=body)
            assert response.status_code == 200
            after = checked(await client.get(url(info["secret_id"])), ONE)
            assert_secret_info(after)
            assert {k: v for k, v in after.items() if k != "updated_at"} == {
                **{k: v for k, v in before.items() if k != "updated_at"},
                **expected_changes,
            }
            assert after["updated_at"] > before["updated_at"]
            assert after["created_at"] == info["created_at"]
            before = after

        # A PATCH without any body is an empty update, and still a successful one.
        response = await client.patch(url(info["secret_id"]))
        assert response.status_code == 200
        assert checked(await client.get(url(info["secret_id"])), ONE)["updated_at"] > before["updated_at"]

    run(scenario)


def test_updated_at_is_strictly_increasing_within_one_clock_tick() -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        info = await create(client)
        stamps = [info["updated_at"]]
        for _ in range(5):
            assert (await client.patch(url(info["secret_id"]), json={"tool_arg": "x"})).status_code == 200
            stamps.append(checked(await client.get(url(info["secret_id"])), ONE)["updated_at"])
        assert stamps == sorted(set(stamps))
        assert len({datetime.fromisoformat(s) for s in stamps}) == 6

    run(scenario, clock=lambda: 1_750_000_000_000_000)


def test_a_clock_offset_backdates_every_write() -> None:
    now_us = 1_750_000_000_000_000

    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        info = await create(client)
        stamped = datetime.fromisoformat(info["created_at"])
        assert stamped == datetime.fromisoformat("2025-06-15T15:06:40+00:00") - timedelta(days=2)
        assert info["updated_at"] == info["created_at"]

    run(scenario, EmulatorConfig(clock_offset_s=-2 * 86400), clock=lambda: now_us)
    with pytest.raises(UsageError, match="clock_offset_s"):
        EmulatorConfig(clock_offset_s=float("nan"))


ALL_NULL = {
    "secret_name": None,
    "secret_value": None,
    "tool_name": None,
    "tool_arg": None,
    "is_default_for_tool": None,
}


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("clear", {"tool_name": None, "tool_arg": None, "is_default_for_tool": False}),
        ("ignore", {"tool_name": "agno__github__*", "tool_arg": "access_token", "is_default_for_tool": True}),
    ],
)
def test_explicit_null_follows_patch_null_and_never_clears_name_or_value(
    mode: str, expected: dict[str, Any]
) -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        info = await create(
            client, tool_name="agno__github__*", tool_arg="access_token", is_default_for_tool=True
        )
        response = await client.patch(url(info["secret_id"]), json=ALL_NULL)
        assert response.status_code == 200
        after = checked(await client.get(url(info["secret_id"])), ONE)
        assert {k: after[k] for k in expected} == expected
        assert (after["secret_name"], after["display"]) == (info["secret_name"], info["display"])
        assert after["updated_at"] > info["updated_at"]

    run(scenario, EmulatorConfig(patch_null=mode))  # type: ignore[arg-type]


PATCH_FIELDS = {
    "secret_name": st.one_of(st.none(), st.text(min_size=1, max_size=12)),
    "secret_value": st.one_of(st.none(), st.text(min_size=4, max_size=24)),
    "tool_name": st.one_of(st.none(), st.text(min_size=1, max_size=12)),
    "tool_arg": st.one_of(st.none(), st.text(min_size=1, max_size=12)),
    "is_default_for_tool": st.one_of(st.none(), st.booleans()),
}
patch_bodies = st.fixed_dictionaries({}, optional=PATCH_FIELDS)


@settings(max_examples=40, deadline=None)
@given(mode=st.sampled_from(["clear", "ignore"]), bodies=st.lists(patch_bodies, min_size=1, max_size=6))
def test_patch_sequences_match_a_model(mode: str, bodies: list[dict[str, Any]]) -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        info = await create(client, tool_name="t", tool_arg="a")
        model: dict[str, Any] = {
            "secret_name": info["secret_name"],
            "secret_value": CANARY,
            "tool_name": "t",
            "tool_arg": "a",
            "is_default_for_tool": False,
        }
        previous = info["updated_at"]
        for body in bodies:
            assert (await client.patch(url(info["secret_id"]), json=body)).status_code == 200
            for name, value in body.items():
                if value is not None:
                    model[name] = value
                elif mode == "clear" and name not in ("secret_name", "secret_value"):
                    model[name] = False if name == "is_default_for_tool" else None
            got = checked(await client.get(url(info["secret_id"])), ONE)
            expected = {k: v for k, v in model.items() if k != "secret_value"}
            assert {k: got[k] for k in expected} == expected
            assert got["display"] == mask(model["secret_value"])
            assert got["updated_at"] > previous
            previous = got["updated_at"]

    run(scenario, EmulatorConfig(patch_null=mode))  # type: ignore[arg-type]


# display


def test_display_visible_counts_are_configurable() -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        info = await create(client, secret_value="ghp_abcdefghijklmnop")
        assert info["display"] == "gh****nop"
        assert (await create(client, secret_value="wxyz"))["display"] == "wxyz"

    run(scenario, EmulatorConfig(display_head=2, display_tail=3))


# List


async def _create_names(client: httpx.AsyncClient, names: list[str]) -> list[str]:
    return [(await create(client, secret_name=name))["secret_id"] for name in names]


def test_list_pages_in_creation_order() -> None:
    names = ["zeta", "alpha", "mid", "beta", "omega", "gamma", "aaa"]

    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        ids = await _create_names(client, names)
        seen: list[str] = []
        for page in (1, 2, 3):
            body = checked(await client.get(LIST, params={"page": page, "page_size": 3}), LIST)
            assert body["pagination"] == {
                "total": 7,
                "page": page,
                "page_size": 3,
                "total_pages": 3,
                "has_next": page < 3,
                "has_previous": page > 1,
            }
            seen += [s["secret_id"] for s in body["data"]]
        assert seen == ids
        beyond = checked(await client.get(LIST, params={"page": 4, "page_size": 3}), LIST)
        assert beyond["data"] == [] and beyond["pagination"]["has_next"] is False

        limited = checked(await client.get(LIST, params={"limit": 2}), LIST)
        assert [s["secret_id"] for s in limited["data"]] == ids[:2]
        assert limited["pagination"]["page_size"] == 2 and limited["pagination"]["total_pages"] == 4

    run(scenario, PAGED)


def test_list_defaults_to_pages_of_fifty() -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        await asyncio.gather(*(create(client, secret_name=f"s{i}") for i in range(60)))
        first = checked(await client.get(LIST), LIST)
        assert len(first["data"]) == 50
        assert first["pagination"]["page_size"] == 50 and first["pagination"]["has_next"] is True
        second = checked(await client.get(LIST, params={"page": 2}), LIST)
        assert len(second["data"]) == 10 and second["pagination"]["has_next"] is False

    run(scenario, PAGED)


def test_an_empty_account_lists_nothing() -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        body = checked(await client.get(LIST), LIST)
        assert body == {
            "data": [],
            "pagination": {
                "total": 0,
                "page": 1,
                "page_size": 50,
                "total_pages": 0,
                "has_next": False,
                "has_previous": False,
            },
        }
        assert checked(await client.get(LIST, params={"limit": 100, "offset": 0}), LIST) == {
            "data": [],
            "pagination": {
                "total": 0,
                "page": 1,
                "page_size": 100,
                "total_pages": 0,
                "has_next": False,
                "has_previous": False,
            },
        }

    run(scenario, PAGED)
    run(lambda _app, client: _lists_nothing(client), EmulatorConfig(list_style="offset"))
    run(lambda _app, client: _lists_nothing(client), EmulatorConfig(list_style="cursor"))


async def _lists_nothing(client: httpx.AsyncClient) -> None:
    body = checked(await client.get(LIST), LIST)
    assert body["data"] == [] and body.get("next_cursor") is None


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"page": 0}, ["query", "page"]),
        ({"page": "first"}, ["query", "page"]),
        ({"page_size": 0}, ["query", "page_size"]),
        ({"page_size": 101}, ["query", "page_size"]),
        ({"limit": 0}, ["query", "limit"]),
        ({"limit": 101}, ["query", "limit"]),
    ],
)
def test_out_of_range_paging_is_a_422(params: dict[str, Any], loc: list[str]) -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        response = await client.get(LIST, params=params)
        assert response.status_code == 422
        assert [d["loc"] for d in checked(response, LIST)["detail"]] == [loc]

    run(scenario, PAGED)


def test_the_paged_maximum_is_a_flag_and_beyond_it_is_a_422() -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        await _create_names(client, [f"s{i}" for i in range(30)])
        refused = await client.get(LIST, params={"page_size": 26})
        assert [d["loc"] for d in checked(refused, LIST)["detail"]] == [["query", "page_size"]]
        body = checked(await client.get(LIST, params={"page_size": 25}), LIST)
        assert len(body["data"]) == 25 and body["pagination"]["total_pages"] == 2
        assert checked(await client.get(LIST), LIST)["pagination"]["page_size"] == 10

    run(scenario, EmulatorConfig(list_style="paged", max_limit=25, default_limit=10))


def test_offset_style_windows_by_limit_and_offset_with_a_silent_maximum() -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        ids = await _create_names(client, [f"s{i}" for i in range(130)])
        first = checked(await client.get(LIST), LIST)
        assert set(first) == {"data"} and [s["secret_id"] for s in first["data"]] == ids[:10]
        wide = checked(await client.get(LIST, params={"limit": 500, "page_size": 500}), LIST)
        assert [s["secret_id"] for s in wide["data"]] == ids[:100]
        later = checked(await client.get(LIST, params={"limit": 100, "offset": 99}), LIST)
        assert [s["secret_id"] for s in later["data"]] == ids[99:]
        paged = checked(await client.get(LIST, params={"page": 3, "limit": 5}), LIST)
        assert [s["secret_id"] for s in paged["data"]] == ids[:5]  # page is not honoured
        assert checked(await client.get(LIST, params={"offset": 500}), LIST) == {"data": []}
        for params, loc in (({"offset": -1}, ["query", "offset"]), ({"limit": 0}, ["query", "limit"])):
            refused = await client.get(LIST, params=params)
            assert [d["loc"] for d in checked(refused, LIST)["detail"]] == [loc]

    run(scenario, EmulatorConfig(list_style="offset"))


def test_the_default_style_is_limit_offset_with_a_default_of_10_and_a_silent_maximum_of_100() -> None:
    assert EmulatorConfig().list_style == "offset"

    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        await _create_names(client, [f"s{i}" for i in range(120)])
        assert len(checked(await client.get(LIST), LIST)["data"]) == 10
        assert len(checked(await client.get(LIST, params={"limit": 1000}), LIST)["data"]) == 100

    run(scenario)


def test_cursor_style_follows_next_cursor_and_does_not_shift_when_secrets_go() -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        ids = await _create_names(client, [f"s{i}" for i in range(25)])
        first = checked(await client.get(LIST), LIST)
        assert [s["secret_id"] for s in first["data"]] == ids[:10] and first["next_cursor"]
        # A delete before the cursor moves nothing after it.
        assert (await client.delete(url(ids[0]))).status_code == 200
        second = checked(await client.get(LIST, params={"cursor": first["next_cursor"]}), LIST)
        assert [s["secret_id"] for s in second["data"]] == ids[10:20]
        third = checked(await client.get(LIST, params={"cursor": second["next_cursor"], "limit": 50}), LIST)
        assert [s["secret_id"] for s in third["data"]] == ids[20:] and third["next_cursor"] is None
        refused = await client.get(LIST, params={"cursor": "../x"})
        assert [d["loc"] for d in checked(refused, LIST)["detail"]] == [["query", "cursor"]]

    run(scenario, EmulatorConfig(list_style="cursor"))


@pytest.mark.parametrize("style", ["offset", "envelope", "array"])
def test_a_capped_server_answers_its_first_n_whatever_is_asked(style: str) -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        ids = await _create_names(client, [f"s{i}" for i in range(30)])
        for params in ({}, {"limit": 100}, {"offset": 20}, {"page": 2, "page_size": 5}, {"skip": 7}):
            body = (await client.get(LIST, params=params)).json()
            items = body if style == "array" else body["data"]
            assert [s["secret_id"] for s in items] == ids[:20]

    run(scenario, EmulatorConfig(list_style=style, cap=20))  # type: ignore[arg-type]


@pytest.mark.parametrize("style", ["envelope", "array"])
def test_other_list_styles_return_everything_at_once(style: str) -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        ids = await _create_names(client, [f"s{i}" for i in range(120)])
        response = await client.get(LIST, params={"limit": 10})
        assert response.status_code == 200
        body = response.json()
        if style == "envelope":
            validate_response("GET", LIST, 200, body)
            assert set(body) == {"data"}
            items = body["data"]
        else:
            assert isinstance(body, list)
            items = body
        for item in items:
            component("SecretInfo").validate(item)
        assert [s["secret_id"] for s in items] == ids

    run(scenario, EmulatorConfig(list_style=style))  # type: ignore[arg-type]


# Quota and duplicate names


def test_quota_refuses_with_413_and_changes_nothing() -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        first = await create(client, secret_name="a", secret_value="0123456789")  # 11 bytes
        await create(client, secret_name="b", secret_value="01234567")  # 9 bytes: 20 of 25
        refused = await client.post(LIST, json={"secret_name": "c", "secret_value": "01234"})  # 6 more
        assert refused.status_code == 413
        assert isinstance(checked(refused, LIST)["detail"], str)

        grow = await client.patch(url(first["secret_id"]), json={"secret_value": "0123456789abcdef"})
        assert grow.status_code == 413
        assert isinstance(checked(grow, ONE)["detail"], str)
        assert checked(await client.get(url(first["secret_id"])), ONE) == first
        assert [s["secret_name"] for s in checked(await client.get(LIST), LIST)["data"]] == ["a", "b"]

        fits = await client.post(LIST, json={"secret_name": "c", "secret_value": "012"})
        assert fits.status_code == 422  # validation comes before the quota
        assert (await client.post(LIST, json={"secret_name": "c", "secret_value": "0123"})).status_code == 200

    run(scenario, EmulatorConfig(quota_bytes=25))


def test_duplicate_names_are_allowed_by_default() -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        one = await create(client, secret_name="same")
        two = await create(client, secret_name="same")
        assert one["secret_id"] != two["secret_id"]

    run(scenario)


def test_duplicate_names_can_be_rejected_with_409() -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        await create(client, secret_name="same")
        other = await create(client, secret_name="other")
        again = await client.post(LIST, json={"secret_name": "same", "secret_value": CANARY})
        assert again.status_code == 409
        validate_undocumented_error(again.json())
        rename = await client.patch(url(other["secret_id"]), json={"secret_name": "same"})
        assert rename.status_code == 409
        assert checked(await client.get(url(other["secret_id"])), ONE) == other

    run(scenario, EmulatorConfig(duplicate_names="reject"))


def test_inprocess_client_helper_is_authenticated() -> None:
    async def main() -> None:
        async with inprocess_client(EmulatorConfig(), key="helper-key") as client:
            info = await create(client)
            assert info["user_id"] == account_id("helper-key")

    asyncio.run(main())


def test_json_bodies_are_plain_json() -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        response = await client.post(LIST, json={"secret_name": "n", "secret_value": CANARY})
        assert response.headers["content-type"] == "application/json"
        assert json.loads(response.content) == response.json()

    run(scenario)


@pytest.mark.parametrize("content_type", [None, "text/plain"])
def test_a_body_without_a_json_content_type_is_not_read_as_json(content_type: str | None) -> None:
    async def scenario(_app: FastAPI, client: httpx.AsyncClient) -> None:
        raw = json.dumps({"secret_name": "n", "secret_value": CANARY}).encode()
        headers = {"content-type": content_type} if content_type else {}
        response = await client.post(LIST, content=raw, headers=headers)
        assert response.status_code == 422
        assert [d["loc"] for d in checked(response, LIST)["detail"]] == [["body"]]
        assert CANARY not in response.text

    run(scenario)
