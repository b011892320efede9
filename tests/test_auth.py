"""The auth schemes: the names the command line offers, the header each sends, the 401 hint, no key shown."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from reconciler.auth import AUTH_SCHEMES
from reconciler.client import Client, ClientConfig
from reconciler.endpoint import AUTH_HEADERS
from reconciler.errors import AuthError, UsageError

URL = "http://127.0.0.1:9"


async def no_sleep(_delay: float) -> None:
    return None


def test_every_auth_name_the_command_line_offers_is_a_scheme_of_the_client() -> None:
    # The names live where click reads them without loading httpx; the schemes live here.
    assert tuple(AUTH_SCHEMES) == AUTH_HEADERS


@pytest.mark.parametrize(
    ("scheme", "header", "value", "hint"),
    [
        ("bearer", "authorization", "Bearer test-key", "now Authorization: Bearer;"),
        ("x-api-key", "x-api-key", "test-key", "now x-api-key;"),
    ],
)
def test_each_auth_scheme_sends_the_key_in_its_header_and_a_401_names_it(
    scheme: str, header: str, value: str, hint: str
) -> None:
    seen: list[httpx.Headers] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        if len(seen) > 1:
            return httpx.Response(401, json={"detail": "Invalid API key"})
        return httpx.Response(200, json=[])

    async def go() -> None:
        config = ClientConfig(api_url=URL, api_key="test-key", auth_header=scheme)
        async with Client(config, transport=httpx.MockTransport(handler), sleep=no_sleep) as client:
            await client.list_secrets()
            with pytest.raises(AuthError) as refused:
                await client.get("6f1c2b1e-8d4e-4e8b-9a77-0c1d2e3f4a5b")
        assert hint in str(refused.value) and "test-key" not in str(refused.value)

    asyncio.run(go())
    assert seen[0][header] == value
    # Only the one header: the key never travels twice.
    other = {"authorization", "x-api-key"} - {header}
    assert not other & set(seen[0])


def test_an_unknown_auth_scheme_is_refused_before_any_request() -> None:
    with pytest.raises(UsageError, match="--auth-header must be one of bearer, x-api-key"):
        Client(ClientConfig(api_url=URL, api_key="k", auth_header="basic"))


def test_an_auth_scheme_never_shows_the_key() -> None:
    for make in AUTH_SCHEMES.values():
        assert "test-key" not in repr(make("test-key"))
