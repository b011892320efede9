"""apply: writes read back from one reading of the pages; a secret that reading missed is read by itself."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

import httpx

from reconciler.apply import execute
from reconciler.client import Client, ClientConfig
from reconciler.emulator.app import account_id, create_app, state_of
from reconciler.emulator.config import EmulatorConfig
from reconciler.emulator.store import Store
from reconciler.models import DesiredSecret, DesiredState, SecretValue, Status
from reconciler.plan import PlanOptions, StateView, build_plan
from tests.support.emulator import PagesAsked

KEY = "apply-verify-key"
USER = account_id(KEY)
LIST = "/api/v1/secrets/"
VALUE = "value-of-every-secret"


@dataclass
class ShiftDuringCheck(httpx.AsyncBaseTransport):
    """After the first PATCH, as the second page of a listing is asked for, deletes `victim` and creates
    another secret: the count stays the same, but every secret after the victim moves up by one, so the
    one first on page 2 slides onto page 1, already read."""

    inner: httpx.AsyncBaseTransport
    store: Store
    victim: str
    requests: Counter[str] = field(default_factory=Counter)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        by_id = request.url.path != LIST
        kind = f"{request.method} id" if by_id else "list" if request.method == "GET" else request.method
        self.requests[kind] += 1
        second_page = kind == "list" and request.url.params.get("page") == "2"
        if second_page and self.requests["PATCH id"] and self.victim:
            self.store.delete(USER, self.victim)
            self.store.create(USER, secret_name="late", secret_value=VALUE)
            self.victim = ""
        return await self.inner.handle_async_request(request)


def test_writes_are_read_back_from_pages_read_once_and_a_secret_they_missed_by_itself() -> None:
    async def go() -> None:
        app = create_app(EmulatorConfig(list_style="paged"))
        store = state_of(app).store
        made = [store.create(USER, secret_name=f"e{i:03}", secret_value=VALUE) for i in range(250)]
        transport = ShiftDuringCheck(httpx.ASGITransport(app=app), store, made[0].secret_id)
        config = ClientConfig(api_url="http://127.0.0.1:9", api_key=KEY, concurrency=4)
        async with Client(config, transport=transport) as client:
            listing = await client.list_secrets()
            # Every secret but the first gets a tool_arg: 249 PATCHes, too many to read back one by one.
            wanted = tuple(
                DesiredSecret(s.secret_name, {"tool_arg": "token"} if i else {}, SecretValue(VALUE))
                for i, s in enumerate(listing.secrets)
            )
            plan = build_plan(DesiredState("f.yaml", wanted), listing.secrets, StateView(), PlanOptions())
            before = transport.requests.copy()
            report = await execute(plan, client, concurrency=4, account_size=len(listing.secrets))
        assert [o.status for o in report.outcomes] == [Status.OK] * 249
        sent = transport.requests - before
        # One reading of the three pages, and the secret that slid onto page 1 read by its id.
        assert sent == Counter({"PATCH id": 249, "list": 3, "GET id": 1})
        assert {s.tool_arg for s in store.all(USER) if s.secret_name != "late"} == {"token"}

    asyncio.run(go())


def test_the_read_back_asks_the_pages_the_account_fills_with_its_first_question() -> None:
    async def go() -> None:
        app = create_app(EmulatorConfig(list_style="paged"))
        store = state_of(app).store
        for i in range(250):
            store.create(USER, secret_name=f"e{i:03}", secret_value=VALUE)
        transport = PagesAsked(httpx.ASGITransport(app=app), armed="PATCH")
        config = ClientConfig(api_url="http://127.0.0.1:9", api_key=KEY, concurrency=4)
        async with Client(config, transport=transport) as client:
            listing = await client.list_secrets()
            wanted = tuple(DesiredSecret(s.secret_name, {"tool_arg": "token"}) for s in listing.secrets)
            plan = build_plan(DesiredState("f.yaml", wanted), listing.secrets, StateView(), PlanOptions())
            report = await execute(plan, client, concurrency=4, account_size=len(listing.secrets))
        assert [o.status for o in report.outcomes] == [Status.OK] * 250
        # 250 secrets fill three pages: pages 2 and 3 go with the first question, a round trip sooner.
        assert transport.ahead == ["2", "3"]

    asyncio.run(go())
