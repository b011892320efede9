"""A create whose answer is lost, against the emulator app in process: the account is listed again
after 1, 2 and 4 s (within --timeout, on the client's own sleep) before any advice, and nothing is
ever sent twice."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from reconciler.client import Client, ClientConfig
from reconciler.emulator.app import create_app
from reconciler.emulator.config import EmulatorConfig
from reconciler.errors import ApiError, TransportError
from reconciler.models import SecretValue

URL = "http://127.0.0.1:9"
KEY = "create-key"
BODY = {"secret_name": "gh", "secret_value": SecretValue("value-for-a-late-create-0001")}


class LateLanding(httpx.AsyncBaseTransport):
    """The emulator behind a network that loses the POST's answer: the server carries the create out
    only just before listing number `lands_at` (never, when 0); listings from `fail_from` on fail."""

    def __init__(self, lands_at: int = 0, fail_from: int = 0, answer: int = 0) -> None:
        self.inner = httpx.ASGITransport(app=create_app(EmulatorConfig()))
        # An error status the POST is answered with, without acting, instead of losing its answer.
        self.answer = answer
        self.lands_at = lands_at
        self.fail_from = fail_from
        self.held: list[httpx.Request] = []
        self.posts = 0
        self.listings = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            self.posts += 1
            if self.answer:
                return httpx.Response(self.answer, json={"detail": "failed"})
            self.held.append(request)
            raise httpx.ReadTimeout("no answer", request=request)
        # A listing may take several requests (windows, and the one proving nothing follows): its first
        # asks for no position.
        if not any(name in request.url.params for name in ("offset", "skip", "page", "cursor")):
            self.listings += 1
            if self.listings == self.lands_at:
                landed = await self.inner.handle_async_request(self.held.pop())
                await landed.aread()
        if self.fail_from and self.listings >= self.fail_from:
            return httpx.Response(503, json={"detail": "unavailable"})
        return await self.inner.handle_async_request(request)


def create(transport: LateLanding, timeout: float = 30.0) -> tuple[list[float], object]:
    sleeps: list[float] = []

    async def sleep(delay: float) -> None:
        sleeps.append(delay)

    async def go() -> object:
        config = ClientConfig(api_url=URL, api_key=KEY, timeout=timeout, max_retries=0)
        async with Client(config, transport=transport, sleep=sleep) as client:
            try:
                return await client.create(BODY)
            except ApiError as exc:
                return exc

    return sleeps, asyncio.run(go())


def test_a_create_that_lands_late_is_found_by_listing_again_and_never_sent_twice() -> None:
    transport = LateLanding(lands_at=3)
    sleeps, made = create(transport)
    assert sleeps == [1.0, 2.0, 4.0]
    assert getattr(made, "secret_name", None) == "gh"
    assert transport.posts == 1 and transport.listings == 3


@pytest.mark.parametrize(("timeout", "waits"), [(30.0, [1.0, 2.0, 4.0]), (3.5, [1.0, 2.0]), (0.5, [])])
def test_a_create_still_missing_is_in_doubt_with_honest_advice(timeout: float, waits: list[float]) -> None:
    transport = LateLanding()
    sleeps, error = create(transport, timeout)
    assert sleeps == waits  # the waits fit within --timeout; at least one listing is made
    assert transport.posts == 1 and transport.listings == max(1, len(waits))
    assert isinstance(error, TransportError) and error.in_doubt
    message = str(error)
    assert "not sent again" in message and "pending create" in message and "10 minutes" in message
    assert "Not guaranteed" in message and "state file is lost" in message
    assert "\n" not in message


def test_a_create_whose_check_fails_is_in_doubt() -> None:
    transport = LateLanding(fail_from=1)
    _, error = create(transport)
    assert isinstance(error, TransportError) and error.in_doubt
    assert "could not be checked" in str(error) and transport.posts == 1


def test_an_answered_create_whose_check_fails_is_unsettled_not_held() -> None:
    # The server is done with a request it answered: whether it landed is for the next run's listing to
    # tell, with nothing to wait for. It is not sent again now, since it could not be checked.
    transport = LateLanding(fail_from=1, answer=500)
    _, error = create(transport)
    assert isinstance(error, ApiError) and error.unsettled and not error.in_doubt
    message = str(error)
    assert "could not be checked" in message and "looks for the name first" in message
    assert "minutes" not in message and transport.posts == 1
