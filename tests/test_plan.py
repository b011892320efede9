"""build_plan and diff with literal inputs: matching, renames, field diffs, values, prune guards, order."""

from __future__ import annotations

import subprocess
import sys

import pytest

from reconciler.diff import field_changes
from reconciler.errors import PlanError
from reconciler.models import (
    Action,
    DesiredSecret,
    DesiredState,
    FieldChange,
    Prune,
    RemoteSecret,
    SecretValue,
    StateEntry,
    Verdict,
    frozen_map,
)
from reconciler.plan import PlanOptions, StateView, build_plan

VALUE = "ghp_abcdefghijklmnop1234"
DISPLAY = "ghp_****1234"


def want(name: str, value: str = VALUE, **fields: object) -> DesiredSecret:
    extra = {k: fields.pop(k) for k in ("previous_names", "protect", "secret_id") if k in fields}
    return DesiredSecret(
        secret_name=name,
        fields=frozen_map(fields),  # type: ignore[arg-type]
        value=SecretValue(value),
        value_ref="${X}",
        **extra,  # type: ignore[arg-type]
    )


def remote(name: str, sid: str, display: str | None = DISPLAY, **fields: object) -> RemoteSecret:
    return RemoteSecret(
        secret_id=sid,
        secret_name=name,
        display=display,
        updated_at="2026-01-01T00:00:00.000001Z",
        **fields,  # type: ignore[arg-type]
    )


def state(*secrets: DesiredSecret, prune: Prune | None = None, empty: bool = False) -> DesiredState:
    return DesiredState(path="secrets.yaml", secrets=secrets, prune=prune or Prune(), secrets_empty=empty)


def test_missing_secret_is_created_with_every_desired_field() -> None:
    plan = build_plan(state(want("gh", tool_name="agno__github__*", is_default_for_tool=True)), ())
    (change,) = plan.changes
    assert change.action is Action.CREATE
    assert dict(change.patch) == {
        "secret_name": "gh",
        "secret_value": SecretValue(VALUE),
        "tool_name": "agno__github__*",
        "is_default_for_tool": True,
    }
    assert plan.summary()["create"] == 1


def test_in_sync_secret_is_noop_and_plan_has_no_changes() -> None:
    plan = build_plan(state(want("gh", tool_name="t")), (remote("gh", "id1", tool_name="t"),))
    assert not plan.has_changes
    assert plan.changes[0].action is Action.NOOP
    assert plan.summary() == {"create": 0, "update": 0, "rename": 0, "delete": 0, "noop": 1}


def test_update_patch_carries_only_the_changed_field() -> None:
    r = remote("gh", "id1", tool_name="agno__github__*", tool_arg="token", is_default_for_tool=True)
    w = want("gh", tool_name="agno__github__*", tool_arg="access_token", is_default_for_tool=True)
    (change,) = build_plan(state(w), (r,)).changes
    assert change.action is Action.UPDATE
    assert dict(change.patch) == {"tool_arg": "access_token"}
    assert change.fields == (FieldChange("tool_arg", "token", "access_token"),)


def test_fields_left_out_of_the_entry_are_not_managed() -> None:
    r = remote("gh", "id1", tool_name="something", tool_arg="x", is_default_for_tool=True)
    assert not build_plan(state(want("gh")), (r,)).has_changes


def test_explicit_null_means_must_be_empty() -> None:
    r = remote("gh", "id1", tool_name="something", is_default_for_tool=True)
    (change,) = build_plan(state(want("gh", tool_name=None, is_default_for_tool=None)), (r,)).changes
    assert dict(change.patch) == {"tool_name": None, "is_default_for_tool": False}


def test_display_proving_a_different_value_plans_a_value_patch_only() -> None:
    r = remote("gh", "id1", display="ghp_****9999")
    (change,) = build_plan(state(want("gh")), (r,)).changes
    assert set(change.patch) == {"secret_value"}
    assert change.fields == (FieldChange("secret_value", None, None, sensitive=True),)


def test_consistent_display_without_state_is_never_a_perpetual_diff() -> None:
    assert not build_plan(state(want("gh")), (remote("gh", "id1"),)).has_changes
    assert not build_plan(state(want("gh")), (remote("gh", "id1", display=None),)).has_changes


def test_force_values_resends_every_value() -> None:
    plan = build_plan(state(want("gh")), (remote("gh", "id1"),), options=PlanOptions(force_values=True))
    assert set(plan.changes[0].patch) == {"secret_value"}


def test_rename_keeps_the_id_and_patches_only_the_name() -> None:
    plan = build_plan(state(want("new", previous_names=("old",))), (remote("old", "id1"),))
    (change,) = plan.changes
    assert change.action is Action.RENAME
    assert change.secret_id == "id1"
    assert change.previous_name == "old"
    assert dict(change.patch) == {"secret_name": "new"}


def test_rename_refused_when_old_and_new_names_both_exist() -> None:
    with pytest.raises(PlanError, match="previous name"):
        build_plan(state(want("new", previous_names=("old",))), (remote("old", "a"), remote("new", "b")))


def test_two_remote_secrets_with_one_managed_name_is_an_error_listing_ids() -> None:
    with pytest.raises(PlanError) as info:
        build_plan(state(want("gh")), (remote("gh", "id-a"), remote("gh", "id-b")))
    assert "id-a" in str(info.value) and "id-b" in str(info.value) and "secret_id" in str(info.value)


def test_pinned_id_selects_among_duplicates_and_renames() -> None:
    plan = build_plan(state(want("gh", secret_id="id-b")), (remote("gh", "id-a"), remote("gh", "id-b")))
    (change,) = plan.changes
    assert change.action is Action.NOOP and change.secret_id == "id-b"
    plan = build_plan(state(want("gh", secret_id="id-b")), (remote("other", "id-b"),))
    (change,) = plan.changes
    assert change.action is Action.RENAME and change.secret_id == "id-b" and change.previous_name == "other"


def test_a_pinned_rename_into_a_name_another_secret_holds_is_a_conflict() -> None:
    with pytest.raises(PlanError) as info:
        build_plan(state(want("gh", secret_id="id-b")), (remote("gh", "id-a"), remote("other", "id-b")))
    message = str(info.value)
    assert "pinned to secret_id id-b" in message and "'other'" in message and "id-a" in message
    assert "two secrets with one name" in message


def test_pinned_id_missing_remotely_is_an_error() -> None:
    with pytest.raises(PlanError, match="does not exist"):
        build_plan(state(want("gh", secret_id="gone")), ())


def test_unlisted_remote_secrets_are_left_alone_without_prune() -> None:
    plan = build_plan(state(want("gh")), (remote("gh", "1"), remote("stray", "2")))
    assert not plan.has_changes


def test_prune_deletes_unlisted_but_never_protected_or_previous_names() -> None:
    desired = state(
        want("gh"),
        want("keep", protect=True),
        want("new", previous_names=("old",)),
        prune=Prune(enabled=True),
    )
    plan = build_plan(
        desired,
        (remote("gh", "1"), remote("keep", "2"), remote("old", "3"), remote("stray", "4"), remote("x", "5")),
        options=PlanOptions(max_deletes=5),
    )
    deletes = [c for c in plan.changes if c.action is Action.DELETE]
    assert [c.secret_name for c in deletes] == ["stray", "x"]
    assert plan.warnings  # prune: true is said loudly


def test_prune_match_limits_deletes_to_matching_names() -> None:
    desired = state(want("gh"), prune=Prune(enabled=True, match=("ci-*",)))
    plan = build_plan(desired, (remote("gh", "1"), remote("ci-old", "2"), remote("prod-db", "3")))
    assert [c.secret_name for c in plan.changes if c.action is Action.DELETE] == ["ci-old"]


@pytest.mark.parametrize("glob", ["*", "**"])
def test_a_prune_glob_of_only_stars_warns_as_prune_true_does(glob: str) -> None:
    desired = state(want("gh"), prune=Prune(enabled=True, match=("ci-*", glob)))
    remotes = (remote("gh", "1"), remote("ci-old", "2"), remote("prod-db", "3"))
    plan = build_plan(desired, remotes, options=PlanOptions(max_deletes=2))
    assert [c.secret_name for c in plan.changes if c.action is Action.DELETE] == ["ci-old", "prod-db"]
    (warning,) = plan.warnings
    assert f"match: [ci-*, {glob}]" in warning and "as prune: true does" in warning and "(2 in" in warning


def test_prune_globs_matching_every_unlisted_name_warn() -> None:
    desired = state(
        want("gh"), want("new", previous_names=("old",)), prune=Prune(enabled=True, match=("*-*",))
    )
    remotes = (remote("gh", "1"), remote("old", "o"), remote("ci-a", "2"), remote("prod-db", "3"))
    plan = build_plan(desired, remotes, options=PlanOptions(max_deletes=2))
    (warning,) = plan.warnings
    assert "matches every remote secret the file does not list (2)" in warning and "2 are deleted" in warning


def test_narrow_prune_globs_do_not_warn() -> None:
    desired = state(want("gh"), prune=Prune(enabled=True, match=("ci-*",)))
    # One unlisted name only, or names the globs leave alone: the globs do limit something.
    assert build_plan(desired, (remote("gh", "1"), remote("ci-a", "2"))).warnings == ()
    remotes = (remote("gh", "1"), remote("ci-a", "2"), remote("ci-b", "3"), remote("db", "4"))
    plan = build_plan(desired, remotes, options=PlanOptions(max_deletes=2))
    assert plan.summary()["delete"] == 2 and plan.warnings == ()
    # Nothing to delete, nothing to warn about.
    assert build_plan(desired, (remote("gh", "1"), remote("db", "4"))).warnings == ()


def test_state_remembered_protection_survives_the_entry_leaving_the_file() -> None:
    plan = build_plan(
        state(want("gh"), want("a"), want("b")),
        (remote("gh", "1"), remote("a", "a"), remote("b", "b"), remote("gone", "2")),
        options=PlanOptions(prune=True, protected_ids=frozenset({"2"})),
    )
    assert not plan.has_changes


def test_prune_with_empty_file_is_refused_unless_allowed() -> None:
    with pytest.raises(PlanError, match="--allow-empty"):
        build_plan(state(prune=Prune(enabled=True), empty=True), (remote("a", "1"),))
    plan = build_plan(
        state(prune=Prune(enabled=True), empty=True),
        (remote("a", "1"),),
        options=PlanOptions(allow_empty=True, max_deletes=1),
    )
    assert plan.summary()["delete"] == 1


def test_more_deletes_than_the_limit_are_refused() -> None:
    remotes = tuple(remote(f"s{i}", str(i)) for i in range(12))
    keep = tuple(want(f"k{i}") for i in range(20))
    remotes_kept = tuple(remote(f"k{i}", f"k{i}") for i in range(20))
    with pytest.raises(PlanError, match="--max-deletes"):
        build_plan(state(*keep, prune=Prune(enabled=True)), remotes + remotes_kept)
    plan = build_plan(
        state(*keep, prune=Prune(enabled=True)), remotes + remotes_kept, options=PlanOptions(max_deletes=12)
    )
    assert plan.summary()["delete"] == 12


def test_deleting_more_than_half_the_account_is_refused_by_default() -> None:
    with pytest.raises(PlanError, match="more than half"):
        build_plan(
            state(want("a"), prune=Prune(enabled=True)),
            (remote("a", "1"), remote("b", "2"), remote("c", "3")),
        )


def test_order_deletes_then_clear_default_then_updates_then_creates() -> None:
    desired = state(
        want("new-default", tool_name="t", tool_arg="a", is_default_for_tool=True),
        want("old-default", tool_name="t", tool_arg="a", is_default_for_tool=False),
        want("created"),
        want("renamed", previous_names=("freed",)),
        prune=Prune(enabled=True),
    )
    remotes = (
        remote("old-default", "1", tool_name="t", tool_arg="a", is_default_for_tool=True),
        remote("new-default", "2", tool_name="t", tool_arg="a", is_default_for_tool=False),
        remote("freed", "3"),
        remote("stray", "4"),
    )
    plan = build_plan(desired, remotes, options=PlanOptions(max_deletes=1))
    order = [(c.action.value, c.secret_name) for c in plan.actionable]
    assert order[0] == ("delete", "stray")
    assert order.index(("update", "old-default")) < order.index(("update", "new-default"))
    assert order.index(("rename", "renamed")) < order.index(("create", "created"))
    assert order[-1][0] == "create"


def test_same_inputs_give_equal_plans() -> None:
    desired = state(want("a", tool_name="x"), want("b"), prune=Prune(enabled=True))
    remotes = (remote("a", "1", tool_name="y"), remote("c", "3"), remote("d", "4"), remote("e", "5"))
    options = PlanOptions(max_deletes=3)
    assert build_plan(desired, remotes, options=options) == build_plan(desired, remotes, options=options)


def test_field_changes_are_in_render_order() -> None:
    r = remote("gh", "1", tool_name="a", tool_arg="b", is_default_for_tool=False)
    w = want("gh", is_default_for_tool=True, tool_arg="c", tool_name="d")
    assert [f.field for f in field_changes([(w, r)])[0]] == ["tool_name", "tool_arg", "is_default_for_tool"]


def test_field_changes_of_many_pairs_stay_with_their_own_pair() -> None:
    pairs = [
        (want("a", tool_name="x"), remote("a", "1", tool_name="x")),
        (want("b", tool_name="x", tool_arg=None), remote("b", "2", tool_name="y", tool_arg="t")),
        (want("c", is_default_for_tool=True), remote("c", "3")),
        (want("d2", tool_arg="t"), remote("d", "4", tool_arg="t")),
        (want("e", tool_name="x"), remote("e", "5", tool_name="x")),
    ]
    assert field_changes(pairs) == [
        (),
        (FieldChange("tool_name", "y", "x"), FieldChange("tool_arg", "t", None)),
        (FieldChange("is_default_for_tool", False, True),),
        (FieldChange("secret_name", "d", "d2"),),
        (),
    ]


def _modules_after(code: str) -> set[str]:
    """The top-level modules a fresh interpreter holds after running `code` (its own, not this one's)."""
    program = (
        "import sys\n"
        "from reconciler.models import DesiredSecret, DesiredState, RemoteSecret, frozen_map\n"
        "from reconciler.plan import build_plan\n"
        "entry = DesiredSecret('a', fields=frozen_map({'tool_arg': 'x'}))\n"
        "desired = DesiredState(path='f', secrets=(entry,))\n"
        f"{code}\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules if sys.modules[m] is not None})))\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def test_deepdiff_is_not_imported_when_nothing_differs() -> None:
    modules = _modules_after("build_plan(desired, (RemoteSecret('1', 'a', tool_arg='x'),))")
    assert "deepdiff" not in modules


def test_deepdiff_diffs_what_differs_and_leaves_pydantic_importable() -> None:
    modules = _modules_after(
        "plan = build_plan(desired, (RemoteSecret('1', 'a', tool_arg='y'),))\n"
        "assert [f.field for f in plan.changes[0].fields] == ['tool_arg']\n"
        "import pydantic"
    )
    assert {"deepdiff", "pydantic"} <= modules


def fingerprint(value: SecretValue) -> str:
    return "fp:" + str(len(value))  # a literal stand-in keyed function: equal values, equal prints


def entry(
    sid: str = "id1", fp: str = f"fp:{len(VALUE)}", updated: str = "2026-01-01T00:00:00.000001Z"
) -> StateEntry:
    return StateEntry(secret_id=sid, secret_name="gh", fingerprint=fp, updated_at=updated)


def test_metadata_edited_by_hand_gives_a_one_field_patch_and_unverified_drift() -> None:
    r = RemoteSecret("id1", "gh", tool_name="edited", display=DISPLAY, updated_at="2026-02-02T00:00:00Z")
    view = StateView(entries={"id1": entry()}, fingerprint=fingerprint)
    plan = build_plan(state(want("gh", tool_name="agno")), (r,), view)
    (change,) = plan.changes
    assert dict(change.patch) == {"tool_name": "agno"}
    verdicts = {d.verdict for d in plan.drift}
    assert verdicts == {Verdict.REMOTE_WRITTEN, Verdict.FIELDS_CHANGED}


def test_secret_deleted_by_hand_is_recreated_and_reported_as_drift() -> None:
    view = StateView(entries={"id1": entry()}, fingerprint=fingerprint)
    plan = build_plan(state(want("gh")), (), view)
    assert plan.changes[0].action is Action.CREATE
    assert [d.verdict for d in plan.drift] == [Verdict.DELETED]


def test_reasons_cover_every_changed_field_not_only_the_value() -> None:
    r = remote("gh", "id1", display="ghp_****9999", tool_arg="token")
    (change,) = build_plan(state(want("gh", tool_arg="access_token")), (r,)).changes
    assert set(change.patch) == {"tool_arg", "secret_value"}
    assert change.reasons == (
        "tool_arg: the account differs from the file",
        "the remote display shows a different value",
    )


def test_a_field_edited_by_hand_reads_as_set_back_and_a_rename_keeps_its_reason_first() -> None:
    r = RemoteSecret("id1", "old", tool_name="edited", display=DISPLAY, updated_at="2026-02-02T00:00:00Z")
    view = StateView(entries={"id1": entry()}, fingerprint=fingerprint)
    plan = build_plan(state(want("gh", tool_name="agno", previous_names=("old",))), (r,), view)
    (change,) = plan.changes
    assert change.action is Action.RENAME
    assert change.reasons[:2] == (
        "renamed from 'old' (previous_names); the secret_id is kept",
        "tool_name: edited outside reconciler since the last apply; set back to the file's",
    )
