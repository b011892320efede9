"""Never plan from part of the account: every list dialect × account sizes around its window, with
secrets created and deleted while it is listed, in process against the emulator app. A provable listing
gives the exact plan; an unprovable one writes nothing; no plan creates a name that existed throughout."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pytest

from reconciler.apply import execute
from reconciler.client import Client, ClientConfig
from reconciler.emulator.app import account_id, create_app, state_of
from reconciler.emulator.config import EmulatorConfig
from reconciler.emulator.store import Store
from reconciler.errors import IncompleteListingError
from reconciler.models import Action, DesiredSecret, DesiredState, Plan, SecretValue
from reconciler.plan import PlanOptions, StateView, build_plan

T = TypeVar("T")
KEY = "listing-matrix-key"
USER = account_id(KEY)
URL = "http://127.0.0.1:9"
LIST = "/api/v1/secrets/"
VALUE = "value-of-every-secret"
NEW = ("new-a", "new-b")


@dataclass(frozen=True)
class Dialect:
    """An emulator configuration, its effective window, and the sizes at which it cannot be proven."""

    config: EmulatorConfig
    window: int
    # Given the account size, whether the listing must be refused.
    refused: Callable[[int], bool] = lambda _size: False


def _looks_capped(size: int) -> bool:
    return size in (10, 20, 25, 50, 100, 200, 250, 500, 1000)


DIALECTS = {
    "paged": Dialect(EmulatorConfig(list_style="paged"), 100),
    # page_size=100 is a 422 there: the client asks again without sizes and gets pages of 10.
    "paged-max-25": Dialect(EmulatorConfig(list_style="paged", max_limit=25, default_limit=10), 10),
    "offset": Dialect(EmulatorConfig(list_style="offset"), 100),
    "offset-max-25": Dialect(EmulatorConfig(list_style="offset", max_limit=25), 25),
    "cursor": Dialect(EmulatorConfig(list_style="cursor"), 100),
    "cursor-max-25": Dialect(EmulatorConfig(list_style="cursor", max_limit=25), 25),
    # Everything at once: an account of a round size looks capped and is refused (wrongly).
    "envelope": Dialect(EmulatorConfig(list_style="envelope"), 20, _looks_capped),
    "array": Dialect(EmulatorConfig(list_style="array"), 20, _looks_capped),
    # The first 20 whatever is asked: 20 and more can never be proven (and exactly 20 is refused
    # although it happens to be the whole account).
    "capped": Dialect(EmulatorConfig(list_style="offset", cap=20), 20, lambda size: size >= 20),
}


def sizes(window: int) -> list[int]:
    return [0, 1, window - 1, window, window + 1, 3 * window + 1]


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def no_sleep(_delay: float) -> None:
    return None


def names_of(size: int) -> list[str]:
    return [f"e{i:04}" for i in range(size)]


def desired(names: list[str]) -> DesiredState:
    wanted = tuple(DesiredSecret(name, value=SecretValue(VALUE)) for name in [*names, *NEW])
    return DesiredState(path="secrets.yaml", secrets=wanted)


@dataclass
class Counting(httpx.AsyncBaseTransport):
    """Counts requests by method; after the `at`-th listing request, changes the account once."""

    inner: httpx.AsyncBaseTransport
    store: Store
    change: str = ""
    at: int = 0
    delete: list[str] = field(default_factory=list)
    methods: Counter[str] = field(default_factory=Counter)
    lists: int = 0
    created: list[str] = field(default_factory=list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.methods[request.method] += 1
        response = await self.inner.handle_async_request(request)
        if request.method == "GET" and request.url.path == LIST:
            self.lists += 1
            if self.lists == self.at or self.at < 0:
                self.meddle()
        return response

    def meddle(self) -> None:
        if self.change in ("create", "both"):
            name = f"late-{self.lists}"
            self.store.create(USER, secret_name=name, secret_value=VALUE)
            self.created.append(name)
        if self.change in ("delete", "both") and self.delete is not None:
            # Every time, the next of the first secrets (those are read before any boundary).
            self.store.delete(USER, self.delete.pop(0))

    @property
    def writes(self) -> int:
        return self.methods["POST"] + self.methods["PATCH"] + self.methods["DELETE"]


@dataclass(frozen=True)
class Outcome:
    plan: Plan | None
    error: IncompleteListingError | None
    writes: int
    names_after: list[str]


async def plan_and_apply(
    dialect: Dialect, size: int, *, change: str = "", at: int = 0, known: bool = False
) -> Outcome:
    app = create_app(dialect.config)
    store = state_of(app).store
    made = [store.create(USER, secret_name=name, secret_value=VALUE) for name in names_of(size)]
    # The secret deleted mid-listing is one of the first: already read when it goes, so every
    # position after it shifts by one.
    transport = Counting(httpx.ASGITransport(app=app), store, change, at, [s.secret_id for s in made[2:]])
    state_ids = frozenset(s.secret_id for s in made) if known else frozenset()
    config = ClientConfig(api_url=URL, api_key=KEY, concurrency=4)
    async with Client(config, transport=transport, sleep=no_sleep, state_ids=state_ids) as client:
        try:
            listing = await client.list_secrets()
        except IncompleteListingError as exc:
            return Outcome(None, exc, transport.writes, sorted(s.secret_name for s in store.all(USER)))
        plan = build_plan(desired(names_of(size)), listing.secrets, StateView(), PlanOptions())
        report = await execute(plan, client, concurrency=4, account_size=len(listing.secrets))
        assert not report.failed, report
    return Outcome(plan, None, transport.writes, sorted(s.secret_name for s in store.all(USER)))


def creates(plan: Plan) -> list[str]:
    return sorted(c.secret_name for c in plan.changes if c.action is Action.CREATE)


CASES = [(name, size) for name, dialect in DIALECTS.items() for size in sizes(dialect.window)]
# A state that knows every secret makes the listing expect them all: past one window, the next pages
# are asked with the first question, and every dialect must come out the same.
KNOWN = pytest.mark.parametrize("known", [False, True], ids=["no-state", "state-knows"])


@KNOWN
@pytest.mark.parametrize(("name", "size"), CASES, ids=[f"{n}-{s}" for n, s in CASES])
def test_a_provable_listing_gives_the_exact_plan_and_an_unprovable_one_writes_nothing(
    name: str, size: int, known: bool
) -> None:
    dialect = DIALECTS[name]
    outcome = run(plan_and_apply(dialect, size, known=known))
    if dialect.refused(size):
        assert outcome.error is not None, f"{name} with {size} secrets must be refused"
        assert "--assume-complete-listing" in str(outcome.error)
        assert outcome.writes == 0
        assert outcome.names_after == names_of(size)
        return
    assert outcome.error is None, outcome.error
    assert outcome.plan is not None
    assert creates(outcome.plan) == sorted(NEW)
    assert [c.action for c in outcome.plan.changes].count(Action.NOOP) == size
    assert not [c for c in outcome.plan.actionable if c.action is not Action.CREATE]
    assert outcome.writes == len(NEW)
    assert outcome.names_after == sorted([*names_of(size), *NEW])


CHANGING = [
    (name, change, at)
    for name, dialect in DIALECTS.items()
    if not dialect.refused(3 * dialect.window + 1)
    for change in ("create", "delete", "both")
    for at in (1, 2)
]


@KNOWN
@pytest.mark.parametrize(
    ("name", "change", "at"), CHANGING, ids=[f"{n}-{c}-after-{a}" for n, c, a in CHANGING]
)
def test_a_listing_that_changes_while_read_never_plans_a_create_for_a_secret_that_existed_throughout(
    name: str, change: str, at: int, known: bool
) -> None:
    dialect = DIALECTS[name]
    size = 3 * dialect.window + 1
    outcome = run(plan_and_apply(dialect, size, change=change, at=at, known=known))
    if outcome.error is not None:
        assert outcome.writes == 0
        return
    assert outcome.plan is not None
    deleted = {names_of(size)[min(2, size - 1)]} if change in ("delete", "both") else set()
    # A create is right only for the new names, and for the one deleted meanwhile (it is gone).
    assert set(creates(outcome.plan)) - set(NEW) <= deleted
    assert set(NEW) <= set(creates(outcome.plan))
    after = Counter(outcome.names_after)
    assert [n for n, count in after.items() if count > 1] == [], "a duplicate was created"


def test_the_paged_dialect_reads_its_pages_twice_so_a_delete_and_a_create_between_pages_are_seen() -> None:
    # A delete before the page boundary and a create elsewhere leave the server's count unchanged
    # while one secret slips from page 2 onto page 1, already read: only a second reading shows it.
    dialect = DIALECTS["paged"]
    outcome = run(plan_and_apply(dialect, 201, change="both", at=1))
    assert outcome.error is None and outcome.plan is not None
    assert creates(outcome.plan) == sorted([*NEW, names_of(201)[2]])


@pytest.mark.parametrize("name", ["paged", "offset", "envelope"])
def test_an_account_that_changes_during_every_request_is_refused_after_three_attempts(name: str) -> None:
    dialect = DIALECTS[name]
    outcome = run(plan_and_apply(dialect, 3 * dialect.window + 1, change="both", at=-1))
    assert outcome.error is not None and "3 times" in str(outcome.error)
    assert outcome.writes == 0


def test_a_cap_of_a_size_that_is_not_round_is_caught_by_the_ids_the_state_knows() -> None:
    dialect = Dialect(EmulatorConfig(list_style="envelope", cap=27), 27)
    outcome = run(plan_and_apply(dialect, 29, known=True))
    assert outcome.error is not None and "the state knows" in str(outcome.error)
    assert outcome.writes == 0


def test_assume_complete_listing_goes_on_with_what_was_read_and_says_so() -> None:
    async def go() -> None:
        app = create_app(EmulatorConfig(list_style="offset", cap=20))
        store = state_of(app).store
        for name in names_of(25):
            store.create(USER, secret_name=name, secret_value=VALUE)
        config = ClientConfig(api_url=URL, api_key=KEY, assume_complete_listing=True)
        async with Client(config, transport=httpx.ASGITransport(app=app), sleep=no_sleep) as client:
            listing = await client.list_secrets()
        assert listing.assumed and len(listing.secrets) == 20
        assert "--assume-complete-listing" in listing.proof and "round window size" in listing.proof
        assert listing.note().assumed

    run(go())
