"""build_plan's findings beyond changes, from literal inputs: drift without a baseline, stale values,
what a display gives away, and creates whose answer was lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reconciler.drift import ASSUMED_HEAD, ASSUMED_TAIL, display_shape, exposure, value_age
from reconciler.errors import PlanError
from reconciler.models import (
    Action,
    DesiredSecret,
    DesiredState,
    PendingCreate,
    RemoteSecret,
    SecretValue,
    StateEntry,
    Verdict,
    frozen_map,
)
from reconciler.plan import PlanOptions, StateView, build_plan

VALUE = "ghp_abcdefghijklmnop1234"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WRITTEN = "2026-01-01T00:00:00.000001+00:00"


def fingerprint(value: SecretValue) -> str:
    return "fp:" + value.reveal()[::-1]


def want(name: str, value: str = VALUE, max_age: int | None = None, **fields: object) -> DesiredSecret:
    return DesiredSecret(
        secret_name=name,
        fields=frozen_map(fields),  # type: ignore[arg-type]
        value=SecretValue(value),
        value_ref="${X}",
        max_age_hours=max_age,
    )


def remote(name: str, sid: str, display: str | None = "ghp_****1234", **fields: object) -> RemoteSecret:
    stamps = {"updated_at": WRITTEN, "created_at": WRITTEN, **fields}
    return RemoteSecret(secret_id=sid, secret_name=name, display=display, **stamps)  # type: ignore[arg-type]


def desired(*secrets: DesiredSecret, max_age: int | None = None) -> DesiredState:
    return DesiredState(path="secrets.yaml", secrets=secrets, max_age_hours=max_age)


def entry(sid: str, name: str, value: str = VALUE, **extra: object) -> StateEntry:
    fields = {"updated_at": WRITTEN, **extra}
    return StateEntry(sid, name, fingerprint=fingerprint(SecretValue(value)), **fields)  # type: ignore[arg-type]


def view(*entries: StateEntry, absent: str = "", pending: tuple[PendingCreate, ...] = ()) -> StateView:
    return StateView(
        entries={e.secret_id: e for e in entries},
        fingerprint=fingerprint,
        pending={p.secret_name: p for p in pending},
        absent=absent,
    )


DRIFT = PlanOptions(prune=False, for_drift=True, now=NOW)


# --- no baseline --------------------------------------------------------------------------------


def test_without_a_state_drift_reports_every_difference_with_its_own_verdict() -> None:
    """The issue's scenario: the value (its display proves it) and tool_arg changed by hand."""
    wanted = desired(want("gh", tool_arg="access_token"), want("gone"), want("same", tool_arg="a"))
    found = (
        remote("gh", "id-1", display="zzz_****9999", tool_arg="token"),
        remote("same", "id-3", tool_arg="a"),
    )
    plan = build_plan(wanted, found, StateView(absent="--ignore-state"), DRIFT)
    by_name = {d.secret_name: d for d in plan.drift}
    assert set(by_name) == {"gh", "gone"}
    gh = by_name["gh"]
    assert gh.verdict is Verdict.DIFFERS_NO_BASELINE and gh.secret_id == "id-1"
    assert [(f.field, f.before, f.after, f.sensitive) for f in gh.fields] == [
        ("tool_arg", "token", "access_token", False),
        ("secret_value", None, None, True),
    ]
    assert "tool_arg, secret_value" in gh.detail
    assert by_name["gone"].verdict is Verdict.MISSING_NO_BASELINE
    assert plan.notice.startswith("--ignore-state: ") and "same first and last characters" in plan.notice


def test_a_plan_without_a_state_plans_the_changes_and_reports_no_such_drift() -> None:
    wanted = desired(want("gh", tool_arg="access_token"), want("gone"))
    found = (remote("gh", "id-1", tool_arg="token"),)
    plan = build_plan(wanted, found, StateView(absent="--ignore-state"), PlanOptions(now=NOW))
    assert plan.drift == ()
    assert [c.action for c in plan.changes] == [Action.UPDATE, Action.CREATE]


def test_a_state_without_an_entry_for_a_secret_gives_it_the_no_baseline_verdict() -> None:
    wanted = desired(want("kept", tool_arg="a"), want("new", tool_arg="a"), want("fine"), want("absent"))
    found = (
        remote("kept", "id-1", tool_arg="a"),
        remote("new", "id-2", tool_arg="b"),
        remote("fine", "id-3"),
    )
    plan = build_plan(wanted, found, view(entry("id-1", "kept")), DRIFT)
    assert [(d.secret_name, d.verdict) for d in plan.drift] == [("new", Verdict.DIFFERS_NO_BASELINE)]
    # A state exists: a file entry not in the account is a create to come, not drift.
    assert plan.notice == ""


def test_a_secret_replaced_by_hand_under_a_name_the_state_knows_is_added_remotely() -> None:
    wanted = desired(want("gh", tool_arg="a"))
    plan = build_plan(wanted, (remote("gh", "id-new", tool_arg="b"),), view(entry("id-old", "gh")), DRIFT)
    verdicts = {(d.secret_id, d.verdict) for d in plan.drift}
    assert verdicts == {("id-new", Verdict.ADDED), ("id-old", Verdict.DELETED)}
    added = next(d for d in plan.drift if d.verdict is Verdict.ADDED)
    assert "id-old" in added.detail and [f.field for f in added.fields] == ["tool_arg"]


def test_with_a_baseline_a_value_changed_by_hand_names_the_value() -> None:
    plan = build_plan(
        desired(want("gh")), (remote("gh", "id-1", display="zzz_****0000"),), view(entry("id-1", "gh")), DRIFT
    )
    (item,) = plan.drift
    assert item.verdict is Verdict.REMOTE_VALUE_CHANGED
    assert [(f.field, f.sensitive) for f in item.fields] == [("secret_value", True)]


# --- how old a value is -------------------------------------------------------------------------


def test_a_value_older_than_its_max_age_is_stale_from_our_recorded_write() -> None:
    recorded = entry("id-1", "gh", value_written_at="2026-02-01T12:00:00Z")
    plan = build_plan(desired(want("gh", max_age=24 * 14)), (remote("gh", "id-1"),), view(recorded), DRIFT)
    (item,) = plan.stale
    assert item.verdict is Verdict.STALE and item.age_source == "value_write"
    assert item.age_days == 28.0
    assert "28 days old (sent by reconciler)" in item.detail and "max_age 2w" in item.detail
    # Stale is a finding of its own, never drift and never a change.
    assert plan.drift == () and not plan.has_changes


def test_without_a_recorded_write_the_age_is_at_least_the_remote_updated_at() -> None:
    for state in (view(), view(entry("id-1", "gh")), StateView(absent="--ignore-state")):
        plan = build_plan(desired(want("gh"), max_age=24), (remote("gh", "id-1"),), state, DRIFT)
        (item,) = plan.stale
        assert item.age_source == "updated_at" and "at least 59 days" in item.detail


def test_a_write_after_ours_makes_the_recorded_age_unreliable() -> None:
    recorded = entry("id-1", "gh", value_written_at="2025-01-01T00:00:00Z")
    later = remote("gh", "id-1", updated_at="2026-02-28T12:00:00Z")
    assert value_age(recorded, later, NOW) == (timedelta(days=1), "updated_at")
    assert value_age(recorded, remote("gh", "id-1"), NOW) is not None
    unverified = entry("id-1", "gh", value_written_at="2025-01-01T00:00:00Z", value_unverified=True)
    assert value_age(unverified, remote("gh", "id-1"), NOW) == (
        NOW - datetime(2026, 1, 1, 0, 0, 0, 1, UTC),
        "updated_at",
    )


def test_the_entry_policy_overrides_the_default_and_young_values_are_not_stale() -> None:
    secrets = (want("strict", max_age=24), want("loose", max_age=24 * 365), want("default"))
    found = (remote("strict", "1"), remote("loose", "2"), remote("default", "3"))
    plan = build_plan(desired(*secrets, max_age=24 * 90), found, view(), DRIFT)
    assert [s.secret_name for s in plan.stale] == ["strict"]
    assert build_plan(desired(*secrets), found, view(), PlanOptions()).stale == ()  # no clock, no age


def test_a_new_value_in_the_file_is_said_and_the_account_is_still_stale() -> None:
    recorded = entry("id-1", "gh", value="ghp_theOldValue000000000", value_written_at=WRITTEN)
    plan = build_plan(desired(want("gh", max_age=24)), (remote("gh", "id-1"),), view(recorded), DRIFT)
    (item,) = plan.stale
    assert "the file holds a new value not applied yet" in item.detail


# --- what the display gives away ----------------------------------------------------------------


def test_display_shape_is_read_from_the_accounts_masked_displays() -> None:
    found = [remote("a", "1", display="ghp_****1234"), remote("b", "2", display="ab****c"), remote("c", "3")]
    assert display_shape(found) == (4, 4)
    assert display_shape([remote("a", "1", display="abcd"), remote("b", "2", display=None)]) is None


@pytest.mark.parametrize(("length", "warned"), [(4, True), (6, True), (16, True), (17, False), (40, False)])
def test_a_value_whose_display_shows_half_of_it_is_warned_about(length: int, warned: bool) -> None:
    value = "Zq7#Xw!k" * 5
    plan = build_plan(desired(want("short", value[:length])), (remote("other", "1"),))
    warnings = [w for w in plan.warnings if "'short'" in w]
    assert bool(warnings) is warned
    for warning in warnings:
        assert f"{min(8, length)} of the value's {length} characters" in warning
        assert "as the account's displays show" in warning
        assert value[:2] not in warning.replace("'short'", "")


def test_the_display_counts_come_from_the_account_else_are_assumed() -> None:
    six = desired(want("six", "Zq7#Xw"))
    (read,) = build_plan(six, (remote("x", "1", display="ab****yz"),)).warnings
    assert "4 of the value's 6 characters (2 first and 2 last, as the account's displays show)" in read
    (assumed,) = build_plan(six, ()).warnings
    assert f"({ASSUMED_HEAD} first and {ASSUMED_TAIL} last, assumed" in assumed
    # A display that shows little of a long value draws nothing.
    assert (
        build_plan(desired(want("long", "Zq7#Xw" * 3)), (remote("x", "1", display="ab****yz"),)).warnings
        == ()
    )
    assert exposure(six.secrets, 1, 1, "assumed") == ()


# --- creates whose answer was lost --------------------------------------------------------------


def pending(name: str, minutes_ago: float, value: str = VALUE, in_doubt: bool = True) -> PendingCreate:
    sent = (NOW - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return PendingCreate(name, fingerprint(SecretValue(value)), "fields", sent, in_doubt=in_doubt)


def test_a_create_in_doubt_younger_than_ten_minutes_is_refused_saying_when_to_retry() -> None:
    state = view(pending=(pending("gh", 3),))
    with pytest.raises(PlanError) as info:
        build_plan(desired(want("gh")), (), state, PlanOptions(now=NOW))
    message = str(info.value)
    assert "'gh'" in message and "may still land" in message
    assert "before 2026-03-01T12:07:00Z (in 7 min)" in message
    # A drift report writes nothing: it leaves the create out instead of refusing.
    plan = build_plan(desired(want("gh")), (), state, DRIFT)
    assert plan.changes == () and plan.drift == ()


def test_a_create_in_doubt_is_sent_again_once_the_hold_is_over() -> None:
    (change,) = build_plan(
        desired(want("gh")), (), view(pending=(pending("gh", 11),)), PlanOptions(now=NOW)
    ).changes
    assert change.action is Action.CREATE
    assert "got no answer, and the name is not in the account; sent again" in change.reasons[0]


def test_a_create_left_unsettled_by_a_killed_run_is_only_looked_for() -> None:
    state = view(pending=(pending("gh", 1, in_doubt=False),))
    (change,) = build_plan(desired(want("gh")), (), state, PlanOptions(now=NOW)).changes
    assert change.action is Action.CREATE and "could not tell whether it landed" in change.reasons[0]


def test_our_own_create_found_by_name_is_recovered_without_a_write() -> None:
    state = view(entry("id-0", "other"), pending=(pending("gh", 1),))
    found = (remote("gh", "id-1"), remote("other", "id-0"))
    plan = build_plan(desired(want("gh"), want("other")), found, state, DRIFT)
    assert plan.recovered == ("id-1",)
    assert plan.drift == () and not plan.has_changes
    # Another value (the file changed since), or a display that disproves it: not ours to record.
    moved = view(pending=(pending("gh", 1, value="ghp_somethingElse0000000"),))
    assert build_plan(desired(want("gh")), found[:1], moved, DRIFT).recovered == ()
    other = (remote("gh", "id-1", display="zzz_****0000"),)
    assert build_plan(desired(want("gh")), other, view(pending=(pending("gh", 1),)), DRIFT).recovered == ()
