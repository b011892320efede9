"""planfile.rebuild with literal inputs: a saved plan comes back exactly, or is refused with every reason."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from reconciler import planfile
from reconciler.errors import PlanError
from reconciler.models import (
    Action,
    DesiredSecret,
    DesiredState,
    Prune,
    RemoteSecret,
    SecretValue,
    frozen_map,
)
from reconciler.plan import build_plan
from reconciler.state import StateKey

KEY = StateKey(b"k" * 32, "test")
URL = "http://127.0.0.1:9"
VALUE = "ghp_abcdefghijklmnop1234"
WHEN = "2026-01-01T00:00:00.000001Z"


def want(name: str, value: str = VALUE, previous: tuple[str, ...] = (), **fields: object) -> DesiredSecret:
    return DesiredSecret(
        secret_name=name,
        fields=frozen_map(fields),  # type: ignore[arg-type]
        value=SecretValue(value),
        value_ref="${X}",
        previous_names=previous,
    )


def remote(name: str, sid: str, updated_at: str = WHEN, **fields: object) -> RemoteSecret:
    return RemoteSecret(
        secret_id=sid,
        secret_name=name,
        display="ghp_****1234",
        updated_at=updated_at,
        **fields,  # type: ignore[arg-type]
    )


def desired(tmp_path: Path, *secrets: DesiredSecret) -> DesiredState:
    return DesiredState(
        path=str(tmp_path / "secrets.yaml"), secrets=secrets, prune=Prune(enabled=True), digest="d1"
    )


def saved(tmp_path: Path, file: DesiredState, account: tuple[RemoteSecret, ...]) -> planfile.SavedPlan:
    path = tmp_path / "plan.json"
    planfile.write(path, build_plan(file, account), file, KEY, URL)
    found = planfile.detect(path)
    assert found is not None
    planfile.verify(found, KEY, URL)
    return found


def test_a_plan_that_still_holds_comes_back_with_its_values(tmp_path: Path) -> None:
    file = desired(tmp_path, want("new"), want("kept", tool_arg="token"), want("moved", previous=("old",)))
    account = (remote("kept", "id1", tool_arg="key"), remote("old", "id2"), remote("unlisted", "id3"))
    plan = build_plan(file, account)

    rebuilt = planfile.rebuild(saved(tmp_path, file, account), file, account, KEY)

    assert [(c.action, c.secret_name, c.secret_id) for c in rebuilt.changes] == [
        (c.action, c.secret_name, c.secret_id) for c in plan.actionable
    ]
    assert [dict(c.patch) for c in rebuilt.changes] == [dict(c.patch) for c in plan.actionable]
    assert [c.fields for c in rebuilt.changes] == [c.fields for c in plan.actionable]
    assert {c.action for c in rebuilt.changes} == {Action.CREATE, Action.UPDATE, Action.RENAME, Action.DELETE}
    (create,) = (c for c in rebuilt.changes if c.action is Action.CREATE)
    assert create.patch["secret_value"] == SecretValue(VALUE)


Account = tuple[RemoteSecret, ...]
# What happened in the account since the plan, what the state keeps from deletion now, the refusal.
STALE: dict[str, tuple[Callable[[Account], Account], dict[str, frozenset[str]], str]] = {
    "a create whose name now exists": (
        lambda account: (*account, remote("new", "id9")),
        {},
        "new (now exists remotely)",
    ),
    "an update of a secret deleted since": (
        lambda account: tuple(s for s in account if s.secret_id != "id1"),
        {},
        "kept (no longer exists remotely)",
    ),
    "an update of a secret written since": (
        lambda account: tuple(
            replace(s, updated_at="2026-02-01T00:00:00Z") if s.secret_id == "id1" else s for s in account
        ),
        {},
        "kept (changed remotely since the plan)",
    ),
    "a delete of a secret forgotten since": (
        lambda account: account,
        {"forgotten": frozenset({"id3"})},
        "unlisted (forgotten since the plan: reconciler no longer manages it)",
    ),
    "a delete of a secret protected since": (
        lambda account: account,
        {"protected": frozenset({"id3"})},
        "unlisted (protected since the plan)",
    ),
    "a rename into a name taken since": (
        lambda account: (*account, remote("moved", "id8")),
        {},
        "moved (renamed from old: another secret, id8, took the name since the plan)",
    ),
}


@pytest.mark.parametrize("case", STALE)
def test_a_plan_that_no_longer_holds_is_refused_with_the_reason(tmp_path: Path, case: str) -> None:
    change_account, kept, words = STALE[case]
    file = desired(tmp_path, want("new"), want("kept", tool_arg="token"), want("moved", previous=("old",)))
    account = (remote("kept", "id1", tool_arg="key"), remote("old", "id2"), remote("unlisted", "id3"))
    plan = saved(tmp_path, file, account)

    with pytest.raises(PlanError) as refused:
        planfile.rebuild(plan, file, change_account(account), KEY, **kept)

    assert str(refused.value) == (
        f"{plan.path}: refusing to apply, nothing was written: stale plan: {words}. Plan again"
    )


def test_a_value_changed_since_the_plan_is_refused_with_every_other_reason(tmp_path: Path) -> None:
    file = desired(tmp_path, want("a"), want("b"))
    plan = saved(tmp_path, file, (remote("b", "id1"),))
    now = desired(tmp_path, want("a", "another-value-entirely"), want("b"))

    with pytest.raises(PlanError) as refused:
        planfile.rebuild(plan, now, (remote("a", "id7"),), KEY)

    assert str(refused.value) == (
        f"{plan.path}: refusing to apply, nothing was written: the value of a no longer matches the "
        "plan's fingerprint; stale plan: a (now exists remotely). Plan again"
    )


def test_a_desired_file_changed_since_the_plan_is_refused(tmp_path: Path) -> None:
    file = desired(tmp_path, want("a"))
    plan = saved(tmp_path, file, ())

    with pytest.raises(PlanError, match="changed since the plan was made"):
        planfile.rebuild(plan, replace(file, digest="d2"), (), KEY)
