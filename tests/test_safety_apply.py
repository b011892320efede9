"""engine.run_apply under faults, in process against the emulator app: exact reports, a state that
never lies, deletes forgotten before they are sent, a stop that lets writes in flight finish, 413
mid-apply. The engine is driven as the commands drive it, over a transport in front of the app."""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler import engine
from reconciler import settings as settings_module
from reconciler import state as state_file
from reconciler.emulator.app import create_app
from reconciler.emulator.config import EmulatorConfig
from reconciler.errors import ApiError
from reconciler.models import (
    PENDING_CREATE_HOLD_S,
    Action,
    ApplyReport,
    Change,
    DesiredSecret,
    DesiredState,
    Plan,
    Prune,
    SecretValue,
    Status,
    frozen_map,
)
from reconciler.plan import PlanOptions
from tests.e2e.test_faults import STATE_KEY, Secret, by_name, fingerprint, stored

T = TypeVar("T")
KEY = "apply-safety-key"
URL = "http://127.0.0.1:9"
STATE_KEY_OBJ = state_file.state_key({state_file.STATE_KEY_ENV: STATE_KEY}, KEY)
Wrap = Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport]


async def no_sleep(_delay: float) -> None:
    return None


def want(name: str, value: str, *, previous: tuple[str, ...] = (), **fields: Any) -> DesiredSecret:
    return DesiredSecret(
        secret_name=name, fields=frozen_map(fields), value=SecretValue(value), previous_names=previous
    )


def write_desired(path: Path, desired: DesiredState) -> dict[str, str]:
    """`desired` as a file the engine reads, each value an ${ENV} reference; returns the environment."""
    environ: dict[str, str] = {}
    lines = ["version: 1"]
    if desired.prune.enabled:
        match = json.dumps(list(desired.prune.match))
        lines.append(f"prune: {{match: {match}}}" if desired.prune.match else "prune: true")
    lines.append("secrets:")
    for number, secret in enumerate(desired.secrets):
        assert secret.value is not None
        environ[f"V{number}"] = secret.value.reveal()
        lines += [f"  - secret_name: {secret.secret_name}", f"    secret_value: ${{V{number}}}"]
        lines += [f"    {name}: {json.dumps(value)}" for name, value in secret.fields.items()]
        if secret.previous_names:
            lines.append(f"    previous_names: {json.dumps(list(secret.previous_names))}")
    path.write_text("\n".join(lines) + "\n")
    return environ


@dataclass
class Account:
    """An emulator database, a state file, and the history of what each secret held."""

    root: Path
    names: dict[str, set[str]] = field(default_factory=dict)
    values: dict[str, set[str]] = field(default_factory=dict)

    @property
    def db(self) -> Path:
        return self.root / "emulator.db"

    @property
    def state_path(self) -> Path:
        return self.root / "state.json"

    def app(self, **faults: Any) -> Any:
        return create_app(EmulatorConfig(db_path=str(self.db), **faults))

    def secrets(self) -> list[Secret]:
        return stored(self.db, KEY) if self.db.exists() else []

    def see(self) -> None:
        for secret in self.secrets():
            self.names.setdefault(secret.secret_id, set()).add(secret.secret_name)
            self.values.setdefault(secret.secret_id, set()).add(secret.secret_value)

    async def apply(
        self,
        desired: DesiredState,
        app: Any,
        *,
        options: PlanOptions | None = None,
        concurrency: int = 4,
        stop: asyncio.Event | None = None,
        wrap: Wrap | None = None,
        now: datetime | None = None,
    ) -> tuple[Plan, ApplyReport]:
        """`apply FILE --auto-approve` as the command runs it: engine.make_plan, then engine.run_apply.

        `now`: the time the plan is judged at (a run after a lost create's hold, say)."""
        path = self.root / "secrets.yaml"
        environ = {"IOINTELLIGENCE_API_KEY": KEY, state_file.STATE_KEY_ENV: STATE_KEY}
        environ.update(write_desired(path, desired))
        resolved = settings_module.resolve(
            desired_path=path, api_url=URL, state=self.state_path, concurrency=concurrency, environ=environ
        )
        transport: httpx.AsyncBaseTransport = httpx.ASGITransport(app=app)
        channel = engine.Channel(transport=wrap(transport) if wrap else transport, sleep=no_sleep)
        planning = replace(options or PlanOptions(max_deletes=50), now=now)
        result = await engine.make_plan(resolved, path, planning, channel=channel)
        report = await engine.run_apply(resolved, result, stop=stop, channel=channel)
        return result.plan, report

    def assert_state_truthful(self, *, strict_names: bool = False) -> None:
        remote = {s.secret_id: s for s in self.secrets()}
        data = state_file.load(self.state_path, STATE_KEY_OBJ)
        for secret_id, entry in data.entries.items():
            assert secret_id in remote, f"state entry {entry.secret_name} names a secret that is gone"
            secret = remote[secret_id]
            names = {secret.secret_name} | (set() if strict_names else self.names.get(secret_id, set()))
            assert entry.secret_name in names
            values = {secret.secret_value} | self.values.get(secret_id, set())
            assert entry.fingerprint in {fingerprint(v) for v in values}


def after_any_hold() -> datetime:
    """A time when no lost create is held any more: its answer cannot arrive later in process."""
    return datetime.now(UTC) + timedelta(seconds=PENDING_CREATE_HOLD_S + 60)


def initial() -> DesiredState:
    secrets = [
        want(f"s{i:02d}", f"first-value-{i:02d}", tool_name=f"tool-{i}", tool_arg="a") for i in range(8)
    ]
    secrets += [want(f"stray-{i}", f"stray-value-{i}") for i in range(3)]
    secrets.append(want("old-name", "renamed-value"))
    return DesiredState(path="secrets.yaml", secrets=tuple(secrets))


def target() -> DesiredState:
    secrets = [
        want(
            f"s{i:02d}",
            f"second-value-{i:02d}" if i % 3 == 0 else f"first-value-{i:02d}",
            tool_name=f"tool-{i}",
            tool_arg="b" if i % 2 else "a",
        )
        for i in range(8)
    ]
    secrets += [want(f"n{i:02d}", f"new-value-{i:02d}") for i in range(5)]
    secrets.append(want("new-name", "renamed-value", previous=("old-name",)))
    return DesiredState(path="secrets.yaml", secrets=tuple(secrets), prune=Prune(True, ("stray-*",)))


def holds(change: Change, secret_id: str | None, now: dict[str, Secret], desired: DesiredState) -> bool:
    """Whether what the report calls done is true in the account."""
    if change.action is Action.DELETE:
        return all(s.secret_id != change.secret_id for s in now.values())
    secret = now.get(change.secret_name)
    wanted = next(s for s in desired.secrets if s.secret_name == change.secret_name)
    assert wanted.value is not None
    return (
        secret is not None
        and secret.secret_id == secret_id
        and secret.secret_value == wanted.value.reveal()
        and all(getattr(secret, k) == v for k, v in wanted.fields.items())
    )


def converged(account: Account, desired: DesiredState) -> bool:
    now = by_name(account.secrets())
    expected = {}
    for secret in desired.secrets:
        assert secret.value is not None
        expected[secret.secret_name] = (secret.value.reveal(), dict(secret.fields))
    actual = {
        name: (s.secret_value, {k: getattr(s, k) for k in expected[name][1]}) if name in expected else None
        for name, s in now.items()
    }
    return actual == expected


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    fail_rate=st.sampled_from([0.3, 0.5, 0.7]),
    fail_after_rate=st.sampled_from([0.0, 0.2, 0.4]),
    concurrency=st.integers(1, 8),
)
def test_under_harsh_faults_reports_are_exact_and_the_state_never_lies(
    seed: int, fail_rate: float, fail_after_rate: float, concurrency: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        account = Account(Path(tmp))
        run(account.apply(initial(), account.app()))
        assert converged(account, initial())
        faulty = account.app(seed=seed, fail_rate=fail_rate, fail_after_rate=fail_after_rate)
        desired = target()
        for _ in range(30):
            account.see()
            try:
                # Each run is planned after any hold on a lost create: in process, a create whose
                # answer was lost has landed or never will, and the next run finds out which.
                _plan, report = run(
                    account.apply(desired, faulty, concurrency=concurrency, now=after_any_hold())
                )
            except ApiError as exc:
                # Listing gave up before anything was planned: a clear error, nothing written.
                assert str(exc) and "\n" not in str(exc)
                continue
            now = by_name(account.secrets())  # never two secrets of one name
            account.assert_state_truthful()
            for outcome in report.outcomes:
                if outcome.status is Status.OK:
                    assert holds(outcome.change, outcome.secret_id, now, desired), outcome
                elif outcome.status is Status.FAILED:
                    assert outcome.message and "\n" not in outcome.message
                    assert (
                        outcome.change.secret_name in outcome.message
                        or (outcome.change.secret_id or "?") in outcome.message
                    )
                else:
                    assert outcome.message.startswith("skipped")
            if not report.failed and converged(account, desired):
                break
        account.see()
        # Whatever happened, a calm apply finishes the job and the state then tells the truth.
        run(account.apply(desired, account.app(), now=after_any_hold()))
        assert converged(account, desired)
        account.assert_state_truthful()
        plan, _ = run(account.apply(desired, account.app()))
        assert not plan.has_changes


class DeleteWitness(httpx.AsyncBaseTransport):
    """Passes requests on; at each DELETE, notes the id and the ids the saved state file holds then."""

    def __init__(self, inner: httpx.AsyncBaseTransport, state_path: Path) -> None:
        self.inner = inner
        self.state_path = state_path
        self.deletes: list[tuple[str, set[str]]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            saved = state_file.load(self.state_path, STATE_KEY_OBJ).entries
            self.deletes.append((request.url.path.rsplit("/", 1)[-1], set(saved)))
        return await self.inner.handle_async_request(request)


def test_a_delete_is_dropped_from_the_state_before_it_is_sent(tmp_path: Path) -> None:
    account = Account(tmp_path)
    app = account.app()
    run(account.apply(initial(), app))
    ids = {s.secret_name: s.secret_id for s in account.secrets()}
    assert set(ids.values()) <= set(state_file.load(account.state_path, STATE_KEY_OBJ).entries)
    desired = DesiredState(
        path="s.yaml", secrets=initial().secrets[:8], prune=Prune(True, ("stray-*", "old-*"))
    )
    witnesses: list[DeleteWitness] = []

    def wrap(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        witnesses.append(DeleteWitness(inner, account.state_path))
        return witnesses[-1]

    _plan, report = run(account.apply(desired, app, options=PlanOptions(max_deletes=10), wrap=wrap))
    deleted = {ids[n] for n in ("stray-0", "stray-1", "stray-2", "old-name")}
    assert {o.change.secret_id for o in report.outcomes if o.change.action is Action.DELETE} == deleted
    assert all(o.status is Status.OK for o in report.outcomes)
    (witness,) = witnesses
    assert {secret_id for secret_id, _ in witness.deletes} == deleted
    for secret_id, saved in witness.deletes:
        assert secret_id not in saved, "a DELETE was sent while the saved state still claimed it"
    assert not deleted & set(state_file.load(account.state_path, STATE_KEY_OBJ).entries)


def test_stop_lets_writes_in_flight_finish_records_them_and_starts_nothing_new(tmp_path: Path) -> None:
    account = Account(tmp_path)
    desired = DesiredState(
        path="s.yaml", secrets=tuple(want(f"c{i:02d}", f"value-{i:04d}") for i in range(20))
    )
    stop = asyncio.Event()
    posts: list[str] = []

    class StopAfterThree(httpx.AsyncBaseTransport):
        def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
            self.inner = inner

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "POST":
                posts.append(request.url.path)
                if len(posts) == 3:
                    stop.set()  # as SIGINT would, while this and other writes are in flight
            return await self.inner.handle_async_request(request)

    _plan, report = run(account.apply(desired, account.app(), concurrency=2, stop=stop, wrap=StopAfterThree))
    assert report.interrupted
    written = account.secrets()
    assert len(posts) < 20 and len(written) == len(posts)
    ok = [o for o in report.outcomes if o.status is Status.OK]
    assert len(ok) == len(written)
    assert all(o.message == "not started: interrupted" for o in report.outcomes if o.status is Status.SKIPPED)
    assert set(state_file.load(account.state_path, STATE_KEY_OBJ).entries) == {s.secret_id for s in written}
    account.assert_state_truthful(strict_names=True)


def test_413_mid_apply_names_the_secret_keeps_what_was_written_and_the_rest_goes_on(tmp_path: Path) -> None:
    account = Account(tmp_path)
    first = DesiredState(
        path="s.yaml", secrets=(want("keep", "keep-value-0000"), want("stray", "stray-value-000"))
    )
    run(account.apply(first, account.app()))
    before = {s.secret_name: s for s in account.secrets()}
    creates = tuple(want(f"big{i}", "x" * 200 + f"{i:04d}") for i in range(4))
    desired = DesiredState(
        path="s.yaml",
        secrets=(want("keep", "keep-value-0000", tool_arg="changed"), *creates),
        prune=Prune(True, ("stray",)),
    )
    # Room for two of the four creates once the delete has freed its bytes.
    quota = sum(len(s.secret_name) + len(s.secret_value) for s in before.values()) + 2 * 210 - 10
    _plan, report = run(account.apply(desired, account.app(quota_bytes=quota)))
    status = {o.change.secret_name: o for o in report.outcomes}
    assert status["stray"].status is Status.OK and status["keep"].status is Status.OK
    failed = [o for o in report.outcomes if o.status is Status.FAILED]
    assert len(failed) == 2
    for outcome in failed:
        assert "413" in outcome.message and "quota" in outcome.message
        assert repr(outcome.change.secret_name) in outcome.message
    after = by_name(account.secrets())
    assert after["keep"].secret_value == "keep-value-0000" and after["keep"].tool_arg == "changed"
    assert sum(1 for name in after if name.startswith("big")) == 2
    recorded = state_file.load(account.state_path, STATE_KEY_OBJ).entries
    assert {e.secret_name for e in recorded.values()} == set(after)
    account.assert_state_truthful(strict_names=True)


class PatchThenFail(httpx.AsyncBaseTransport):
    """PATCH requests reach the server (or not) and are then answered 500, every time."""

    def __init__(self, inner: httpx.AsyncBaseTransport, *, forward: bool) -> None:
        self.inner = inner
        self.forward = forward

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "PATCH":
            return await self.inner.handle_async_request(request)
        if self.forward:
            await self.inner.handle_async_request(request)
        return httpx.Response(500, json={"detail": "Internal Server Error"})


@pytest.mark.parametrize("landed", [True, False])
def test_a_patch_answered_500_is_recorded_only_if_it_took_effect(tmp_path: Path, landed: bool) -> None:
    account = Account(tmp_path)
    run(account.apply(initial(), account.app()))
    before = by_name(account.secrets())
    desired = DesiredState(
        path="s.yaml",
        secrets=(
            want("new-name", "rotated-value-1", previous=("old-name",)),
            *(s for s in initial().secrets if s.secret_name != "old-name"),
        ),
    )

    def wrap(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        return PatchThenFail(inner, forward=landed)

    _plan, report = run(account.apply(desired, account.app(), wrap=wrap))
    (outcome,) = report.outcomes
    entry = state_file.load(account.state_path, STATE_KEY_OBJ).entries[before["old-name"].secret_id]
    if landed:
        assert outcome.status is Status.OK
        assert entry.secret_name == "new-name" and entry.fingerprint == fingerprint("rotated-value-1")
    else:
        assert outcome.status is Status.FAILED and "HTTP 500" in outcome.message
        assert entry.secret_name == "old-name" and entry.fingerprint == fingerprint("renamed-value")
    account.assert_state_truthful(strict_names=True)


class LandThenDark(httpx.AsyncBaseTransport):
    """The first PATCH reaches the server; its answer and everything after it are lost (500)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.dark = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.dark:
            return httpx.Response(500, json={"detail": "Internal Server Error"})
        if request.method == "PATCH":
            await self.inner.handle_async_request(request)
            self.dark = True
            return httpx.Response(500, json={"detail": "Internal Server Error"})
        return await self.inner.handle_async_request(request)


def test_the_next_apply_corrects_a_name_a_lost_answer_left_stale(tmp_path: Path) -> None:
    account = Account(tmp_path)
    run(account.apply(DesiredState(path="s.yaml", secrets=(want("old-name", "value-0001"),)), account.app()))
    renamed = DesiredState(path="s.yaml", secrets=(want("new-name", "value-0001", previous=("old-name",)),))

    _plan, report = run(account.apply(renamed, account.app(), wrap=LandThenDark))
    assert [o.status for o in report.outcomes] == [Status.FAILED]
    (stale,) = state_file.load(account.state_path, STATE_KEY_OBJ).entries.values()
    assert stale.secret_name == "old-name"  # the rename landed, but its answer never came

    plan, _report = run(account.apply(renamed, account.app()))
    assert not plan.has_changes
    (entry,) = state_file.load(account.state_path, STATE_KEY_OBJ).entries.values()
    assert entry.secret_name == "new-name"
    account.assert_state_truthful(strict_names=True)
