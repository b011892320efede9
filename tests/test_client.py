"""The client against the emulator app in-process, and against hostile answers through a mock transport."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from reconciler import client as client_module
from reconciler.answers import Answer
from reconciler.client import Client, ClientConfig
from reconciler.emulator.app import create_app
from reconciler.emulator.config import EmulatorConfig
from reconciler.errors import (
    ApiError,
    AuthError,
    IncompleteListingError,
    NotFoundError,
    QuotaError,
    RateLimitedError,
    ServerError,
    TransportError,
    UsageError,
    ValidationApiError,
)
from reconciler.models import SecretValue
from tests.support.emulator import PagesAsked

CANARY = "canary-7f3b9c1d-value-never-printed"
URL = "http://127.0.0.1:9"


class Sleeps:
    """Records the delays the client asks for instead of waiting them out."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def client_for(transport: httpx.AsyncBaseTransport, sleeps: Sleeps | None = None, **config: Any) -> Client:
    return Client(
        ClientConfig(api_url=URL, api_key="test-key", **config),
        transport=transport,
        sleep=sleeps or Sleeps(),
    )


def emulator(**options: Any) -> httpx.AsyncBaseTransport:
    return httpx.ASGITransport(app=create_app(EmulatorConfig(**options)))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# 260, not 250: an answer of a round window size (250) to every request looks like a cap, and is refused.
@pytest.mark.parametrize("style", ["paged", "offset", "cursor", "envelope", "array"])
def test_list_follows_every_shape_over_260_secrets(style: str) -> None:
    async def go() -> None:
        app = create_app(EmulatorConfig(list_style=style))  # type: ignore[arg-type]
        async with client_for(httpx.ASGITransport(app=app)) as client:
            for i in range(260):
                await client.create({"secret_name": f"s{i:03}", "secret_value": SecretValue(f"value-{i}")})
            listed = (await client.list_secrets()).secrets
        assert sorted(s.secret_name for s in listed) == [f"s{i:03}" for i in range(260)]
        assert len({s.secret_id for s in listed}) == 260

    run(go())


def test_a_page_read_again_with_the_same_bytes_is_not_decoded_again(monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[object] = []
    real = client_module.read_answer

    def counting(body: object) -> Answer:
        decoded.append(body)
        return real(body)

    monkeypatch.setattr(client_module, "read_answer", counting)

    async def go() -> None:
        app = create_app(EmulatorConfig(list_style="paged"))
        async with client_for(httpx.ASGITransport(app=app)) as client:
            made = [
                await client.create({"secret_name": f"s{i:03}", "secret_value": SecretValue(f"value-{i}")})
                for i in range(260)
            ]
            first = await client.list_secrets()
            assert (len(first.secrets), first.requests, len(decoded)) == (260, 6, 3)
            # One secret of the last page changes: only that page's new bytes are read anew.
            await client.update(made[-1].secret_id, {"tool_arg": "changed"})
            second = await client.list_secrets()
            assert len(decoded) == 4
            assert {s.secret_id: s.tool_arg for s in second.secrets}[made[-1].secret_id] == "changed"
            assert second.secrets[:200] == first.secrets[:200]

    run(go())


def test_crud_round_trip_and_404() -> None:
    async def go() -> None:
        async with client_for(emulator()) as client:
            made = await client.create(
                {"secret_name": "gh", "secret_value": SecretValue(CANARY), "tool_name": "agno__github__*"}
            )
            await client.update(made.secret_id, {"tool_arg": "access_token"})
            got = await client.get(made.secret_id)
            assert (got.tool_name, got.tool_arg, got.is_default_for_tool) == (
                "agno__github__*",
                "access_token",
                False,
            )
            await client.delete(made.secret_id)
            assert not await client.exists(made.secret_id)
            with pytest.raises(NotFoundError, match="404"):
                await client.get(made.secret_id)

    run(go())


def test_wrong_key_is_401_with_advice() -> None:
    async def go() -> None:
        async with client_for(emulator(api_keys=("right",))) as client:
            with pytest.raises(AuthError) as info:
                await client.list_secrets()
        assert "401" in str(info.value) and "IOINTELLIGENCE_API_KEY" in str(info.value)
        assert "test-key" not in str(info.value)

    run(go())


def test_quota_413_names_the_secret_and_says_nothing_was_written() -> None:
    async def go() -> None:
        async with client_for(emulator(quota_bytes=40)) as client:
            with pytest.raises(QuotaError) as info:
                await client.create({"secret_name": "big", "secret_value": SecretValue("x" * 100)})
            assert "'big'" in str(info.value) and "nothing was written" in str(info.value)
            assert (await client.list_secrets()).secrets == ()

    run(go())


def test_422_names_the_field_and_never_the_value() -> None:
    async def go() -> None:
        async with client_for(emulator()) as client:
            with pytest.raises(ValidationApiError) as info:
                await client.create({"secret_name": "gh", "secret_value": SecretValue("q7Z")})
        assert "secret_value" in str(info.value)
        assert "q7Z" not in str(info.value)

    run(go())


def test_rate_limit_is_retried_honouring_retry_after() -> None:
    sleeps = Sleeps()
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] <= 2:
            return httpx.Response(429, headers={"retry-after": "3"}, json={"detail": "slow down"})
        return httpx.Response(200, json={"data": []})

    async def go() -> None:
        async with client_for(httpx.MockTransport(handler), sleeps) as client:
            assert (await client.list_secrets()).secrets == ()

    run(go())
    assert sleeps.delays == [3.0, 3.0]


def test_each_retry_is_logged_with_its_reason_and_wait(caplog: pytest.LogCaptureFixture) -> None:
    """What `-v` shows: the attempt, the wait and why, for Retry-After and for back-off alike."""
    answers = iter(
        [
            httpx.Response(429, headers={"retry-after": "3"}, json={"detail": "slow down"}),
            httpx.Response(503, json={"detail": "maintenance"}),
            httpx.Response(200, json={"data": []}),
        ]
    )

    async def go() -> None:
        async with client_for(httpx.MockTransport(lambda r: next(answers))) as client:
            assert (await client.list_secrets()).secrets == ()

    with caplog.at_level("INFO", logger="reconciler.client"):
        run(go())
    first, second = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert first.startswith("retry 1 of 4 in 3.00s (as Retry-After asks): ")
    assert "HTTP 429" in first and "slow down" in first
    assert re.match(r"retry 2 of 4 in \d\.\d\ds \(backing off\): .*HTTP 503.*maintenance", second)
    assert "test-key" not in caplog.text


def test_rate_limit_gives_up_after_retries() -> None:
    sleeps = Sleeps()

    async def go() -> None:
        transport = httpx.MockTransport(lambda r: httpx.Response(429, json={"detail": "no"}))
        async with client_for(transport, sleeps, max_retries=3) as client:
            with pytest.raises(RateLimitedError, match="--concurrency"):
                await client.list_secrets()

    run(go())
    assert len(sleeps.delays) == 3
    assert sleeps.delays[0] < sleeps.delays[2]  # exponential, with jitter


def test_ambiguous_post_failure_never_creates_twice() -> None:
    app = create_app(EmulatorConfig())
    inner = httpx.ASGITransport(app=app)

    class ActThenFail(httpx.AsyncBaseTransport):
        """Forwards the first POST, then answers 502 as if the server failed after acting."""

        def __init__(self) -> None:
            self.posts = 0

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await inner.handle_async_request(request)
            if request.method == "POST":
                self.posts += 1
                if self.posts == 1:
                    await response.aread()
                    return httpx.Response(502, json={"detail": "bad gateway"})
            return response

    transport = ActThenFail()

    async def go() -> None:
        async with client_for(transport) as client:
            made = await client.create({"secret_name": "once", "secret_value": SecretValue(CANARY)})
            listed = (await client.list_secrets()).secrets
        assert [s.secret_id for s in listed] == [made.secret_id]

    run(go())
    assert transport.posts == 1


def test_post_that_failed_without_acting_is_sent_again() -> None:
    outcomes = iter([503, None])
    inner = emulator()

    class FailFirst(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "POST":
                status = next(outcomes)
                if status is not None:
                    return httpx.Response(status, json={"detail": "unavailable"})
            return await inner.handle_async_request(request)

    async def go() -> None:
        async with client_for(FailFirst()) as client:
            await client.create({"secret_name": "twice", "secret_value": SecretValue(CANARY)})
            assert [s.secret_name for s in (await client.list_secrets()).secrets] == ["twice"]

    run(go())


def hostile(handler: Callable[[httpx.Request], httpx.Response]) -> Client:
    return client_for(httpx.MockTransport(handler), max_retries=1)


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (httpx.Response(200, text="<html>oops</html>", headers={"content-type": "text/html"}), ServerError),
        (httpx.Response(200, json={"data": [{"secret_id": 5, "secret_name": "x"}]}), ServerError),
        (httpx.Response(200, json={"data": [{"secret_name": "x"}]}), ServerError),
        (httpx.Response(200, json={"items": []}), ServerError),
        (httpx.Response(200, json="just a string"), ServerError),
        (httpx.Response(502, text="<html>Bad gateway</html>"), ServerError),
        (httpx.Response(418, json={"detail": "teapot"}), ApiError),
    ],
)
def test_malformed_answers_are_clear_errors(response: httpx.Response, error: type[Exception]) -> None:
    async def go() -> None:
        async with hostile(lambda r: response) as client:
            with pytest.raises(error):
                await client.list_secrets()

    run(go())


def test_endless_pagination_with_nothing_new_stops_and_refuses() -> None:
    # An empty page that says more follow cannot end a listing: nothing proves the account is empty.
    page = {"data": [], "pagination": {"has_next": True}}

    async def go() -> None:
        async with hostile(lambda r: httpx.Response(200, json=page)) as client:
            with pytest.raises(IncompleteListingError, match="empty although the server said more"):
                await client.list_secrets()

    run(go())


def test_endless_pagination_with_new_ids_is_cut_off() -> None:
    counter = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        counter["n"] += 1
        item = {"secret_id": f"id-{counter['n']}", "secret_name": "x", "is_default_for_tool": False}
        return httpx.Response(200, json={"data": [item], "pagination": {"has_next": True}})

    async def go() -> None:
        async with hostile(handler) as client:
            with pytest.raises(ServerError, match="did not end"):
                await client.list_secrets()

    run(go())


def test_error_body_echoing_the_value_is_redacted() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)
        return httpx.Response(
            422,
            json={
                "detail": [
                    {"loc": ["body", "secret_value"], "msg": f"bad {sent['secret_value']}", "type": "x"}
                ]
            },
        )

    async def go() -> None:
        async with hostile(handler) as client:
            with pytest.raises(ValidationApiError) as info:
                await client.create({"secret_name": "gh", "secret_value": SecretValue(CANARY)})
        assert CANARY not in str(info.value)
        assert "secret_value" in str(info.value)

    run(go())


def test_connection_failure_is_a_transport_error_after_retries() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async def go() -> None:
        async with hostile(handler) as client:
            with pytest.raises(TransportError, match="cannot reach"):
                await client.list_secrets()

    run(go())


def test_plain_http_is_refused_except_loopback() -> None:
    with pytest.raises(UsageError, match="plain http"):
        Client(ClientConfig(api_url="http://api.example.com", api_key="k"))
    Client(ClientConfig(api_url="http://localhost:8765", api_key="k"))


def test_missing_key_is_an_error_before_any_request() -> None:
    with pytest.raises(AuthError, match="IOINTELLIGENCE_API_KEY"):
        Client(ClientConfig(api_url="https://api.example.com", api_key=""))


def test_config_repr_never_shows_the_key() -> None:
    assert "test-key" not in repr(ClientConfig(api_key="test-key"))


def test_pages_after_the_first_are_fetched_side_by_side_and_checked_in_order() -> None:
    in_flight = {"now": 0, "most": 0}

    async def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        in_flight["now"] += 1
        in_flight["most"] = max(in_flight["most"], in_flight["now"])
        await asyncio.sleep(0.01)
        in_flight["now"] -= 1
        items = [
            {"secret_id": f"id-{page}-{i}", "secret_name": f"s-{page}-{i}"}
            for i in range(100 if page < 5 else 30)
        ]
        pagination = {"total": 430, "page": page, "page_size": 100, "has_next": page < 5}
        return httpx.Response(200, json={"data": items, "pagination": pagination})

    class Slow(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return await handler(request)

    async def go() -> None:
        async with client_for(Slow(), concurrency=4) as client:
            listed = (await client.list_secrets()).secrets
        assert [s.secret_id for s in listed][:2] == ["id-1-0", "id-1-1"]
        assert len(listed) == 430 and listed[-1].secret_id == "id-5-29"

    run(go())
    assert in_flight["most"] == 4


@pytest.mark.parametrize(("known", "ahead"), [(0, []), (99, []), (260, ["2", "3"]), (420, ["2", "3", "4"])])
def test_a_listing_asks_with_its_first_question_the_pages_the_secrets_the_state_knows_fill(
    known: int, ahead: list[str]
) -> None:
    async def go() -> list[str]:
        app = create_app(EmulatorConfig(list_style="paged"))
        async with client_for(httpx.ASGITransport(app=app)) as client:
            for i in range(260):
                await client.create({"secret_name": f"s{i:03}", "secret_value": SecretValue(f"value-{i}")})
        transport = PagesAsked(httpx.ASGITransport(app=app))
        state_ids = frozenset(str(uuid.UUID(int=i + 1)) for i in range(known))
        config = ClientConfig(api_url=URL, api_key="test-key", concurrency=4)
        async with Client(config, transport=transport, sleep=Sleeps(), state_ids=state_ids) as client:
            listing = await client.list_secrets()
        # The ids the state knows are made up: read by id they do not exist, and the listing stands;
        # at most as many pages as the concurrency go with the first question.
        assert len(listing.secrets) == 260
        return transport.ahead

    assert run(go()) == ahead


def test_a_page_asked_ahead_that_the_server_refuses_past_its_last_is_no_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server that answers 404 for a page past its last (as some frameworks do), and a state that
    expects more secrets than there are: the listing stands on the pages that exist."""
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path != "/api/v1/secrets/":
            return httpx.Response(404, json={"detail": "Secret not found"})
        number = int(request.url.params.get("page", "1"))
        asked.append(str(number))
        if number > 2:
            return httpx.Response(404, json={"detail": "Invalid page."})
        items = [
            {"secret_id": f"id-{number}-{i}", "secret_name": f"s-{number}-{i}"}
            for i in range(100 if number == 1 else 50)
        ]
        return httpx.Response(200, json={"data": items, "pagination": {"total": 150, "has_next": number < 2}})

    async def go() -> int:
        config = ClientConfig(api_url=URL, api_key="test-key", concurrency=4)
        state_ids = frozenset(str(uuid.UUID(int=i + 1)) for i in range(300))
        transport = httpx.MockTransport(handler)
        async with Client(config, transport=transport, sleep=Sleeps(), state_ids=state_ids) as client:
            return len((await client.list_secrets()).secrets)

    with caplog.at_level("INFO", logger="reconciler.listing"):
        assert run(go()) == 150
    said = [r.getMessage() for r in caplog.records if "asked ahead" in r.getMessage()]
    assert said == ["a page asked ahead was not answered (HTTP 404); it is asked again if it is needed"]
    # Pages 2 and 3 went with the first question; the second reading asks only the two there are.
    assert sorted(asked[:3]) == ["1", "2", "3"] and sorted(asked[3:]) == ["1", "2"]


def test_a_failing_page_fetched_side_by_side_is_the_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        if page == 3:
            return httpx.Response(401, json={"detail": "no"})
        items = [{"secret_id": f"id-{page}-{i}", "secret_name": "x"} for i in range(100)]
        return httpx.Response(200, json={"data": items, "pagination": {"total": 500, "has_next": True}})

    async def go() -> None:
        async with hostile(handler) as client:
            with pytest.raises(AuthError):
                await client.list_secrets()

    run(go())


def test_the_look_up_after_an_ambiguous_create_failure_uses_the_same_proof() -> None:
    # 25 secrets behind a server that answers its first 20: the look-up cannot prove the name absent,
    # so the create is never sent again.
    app = create_app(EmulatorConfig(list_style="envelope", cap=20))
    inner = httpx.ASGITransport(app=app)
    posts: list[int] = []

    class ActThenFail(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await inner.handle_async_request(request)
            if request.method == "POST":
                posts.append(1)
                if len(posts) == 26:
                    await response.aread()
                    return httpx.Response(502, json={"detail": "bad gateway"})
            return response

    async def go() -> None:
        async with client_for(ActThenFail()) as client:
            for i in range(25):
                await client.create({"secret_name": f"s{i:02}", "secret_value": SecretValue(CANARY)})
            with pytest.raises(ServerError, match="could not be checked") as info:
                await client.create({"secret_name": "late", "secret_value": SecretValue(CANARY)})
        assert "not proven to hold every secret" in str(info.value)

    run(go())
    assert len(posts) == 26


@pytest.mark.parametrize(
    ("response", "said"),
    [
        (httpx.Response(404, json={"detail": "Not Found"}), "HTTP 404 (server said: Not Found): no secrets"),
        (
            httpx.Response(200, text="<html>Sign in</html>", headers={"content-type": "text/html"}),
            "answered 200 with text/html",
        ),
    ],
)
def test_a_404_or_a_web_page_where_the_list_should_be_says_to_check_the_api_url(
    response: httpx.Response, said: str
) -> None:
    async def go() -> None:
        async with hostile(lambda r: response) as client:
            with pytest.raises(ApiError) as info:
                await client.list_secrets()
        assert said in str(info.value) and "check --api-url" in str(info.value)
        assert "deleted" not in str(info.value)

    run(go())


def test_a_server_that_honours_skip_but_not_offset_is_listed_by_overlapping_windows() -> None:
    names = [f"s{i:02}" for i in range(70)]

    def handler(request: httpx.Request) -> httpx.Response:
        skip = int(request.url.params.get("skip", "0"))
        limit = min(int(request.url.params.get("limit", "10")), 30)
        items = [{"secret_id": f"id-{n}", "secret_name": n} for n in names[skip : skip + limit]]
        return httpx.Response(200, json={"data": items})

    async def go() -> None:
        async with hostile(handler) as client:
            listing = await client.list_secrets()
        assert [s.secret_name for s in listing.secrets] == names
        assert listing.dialect == "limit with offset or skip, {data}"

    run(go())


def test_a_next_link_to_another_origin_is_never_requested() -> None:
    hosts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        item = {"secret_id": "id-1", "secret_name": "s1"}
        return httpx.Response(200, json={"data": [item], "next": "https://collector.example/api/v1/secrets/"})

    async def go() -> None:
        async with hostile(handler) as client:
            with pytest.raises(ServerError, match="another origin"):
                await client.list_secrets()

    run(go())
    assert hosts == ["127.0.0.1"]
