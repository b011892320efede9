"""Deletion guards of build_plan (pure): prune scope, --max-deletes, the half-the-account guard, empty
files, protection remembered by the state, and forgotten secrets. Property-based where it can be."""

from __future__ import annotations

from fnmatch import fnmatchcase

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.errors import PlanError
from reconciler.models import Action, DesiredSecret, DesiredState, Prune, RemoteSecret, SecretValue
from reconciler.plan import PlanOptions, build_plan
from reconciler.prune import DEFAULT_MAX_DELETES


def want(name: str, *, protect: bool = False, previous: tuple[str, ...] = ()) -> DesiredSecret:
    return DesiredSecret(name, value=SecretValue(f"{name}-value"), protect=protect, previous_names=previous)


def remote(name: str, secret_id: str) -> RemoteSecret:
    return RemoteSecret(secret_id, name, display=None)


def desired(*secrets: DesiredSecret, prune: Prune, empty: bool = False) -> DesiredState:
    return DesiredState(path="secrets.yaml", secrets=secrets, prune=prune, secrets_empty=empty)


def deleted(plan_changes: object) -> list[str]:
    return [c.secret_name for c in plan_changes if c.action is Action.DELETE]  # type: ignore[attr-defined]


NAMES = st.text("abcx-*", min_size=1, max_size=5).filter(lambda n: "*" not in n)
GLOBS = st.lists(st.text("abcx-*?", min_size=1, max_size=4), max_size=3)


@settings(max_examples=200, deadline=None)
@given(
    remote_names=st.lists(NAMES, max_size=14),
    listed=st.lists(NAMES, max_size=6, unique=True),
    globs=GLOBS,
    protected_names=st.sets(NAMES, max_size=3),
    protected_ids=st.sets(st.integers(0, 13), max_size=3),
    forgotten_ids=st.sets(st.integers(0, 13), max_size=3),
    previous=st.sets(NAMES, max_size=2),
)
def test_prune_deletes_exactly_the_unlisted_unprotected_unforgotten_names_in_scope(
    remote_names: list[str],
    listed: list[str],
    globs: list[str],
    protected_names: set[str],
    protected_ids: set[int],
    forgotten_ids: set[int],
    previous: set[str],
) -> None:
    # Remote names are unique here: duplicates are a plan error of their own, tested elsewhere.
    remotes = tuple(remote(n, f"id{i}") for i, n in enumerate(dict.fromkeys(remote_names)))
    secrets = [want(n, protect=n in protected_names) for n in listed]
    secrets += [want(n, protect=True) for n in sorted(protected_names - set(listed))]
    if previous:
        secrets.append(want("renamed-target", previous=tuple(sorted(previous))))
    state = desired(*secrets, prune=Prune(True, tuple(globs)))
    options = PlanOptions(
        max_deletes=100,
        protected_ids=frozenset(f"id{i}" for i in protected_ids),
        forgotten_ids=frozenset(f"id{i}" for i in forgotten_ids),
    )
    try:
        plan = build_plan(state, remotes, options=options)
    except PlanError as exc:
        assert any(why in str(exc) for why in ("previous name", "could be renamed", "both match"))
        return
    names_listed = {s.secret_name for s in secrets}
    expected = sorted(
        r.secret_name
        for r in remotes
        if r.secret_name not in names_listed
        and r.secret_name not in previous
        and r.secret_id not in options.protected_ids
        and r.secret_id not in options.forgotten_ids
        and (not globs or any(fnmatchcase(r.secret_name, g) for g in globs))
    )
    assert sorted(deleted(plan.changes)) == expected
    # A glob made only of stars is prune: true spelled otherwise, and said as loudly.
    everything = not globs or any(set(g) == {"*"} for g in globs)
    if expected and everything:
        assert any("deletes every remote secret not listed" in w for w in plan.warnings)
    if not everything:
        assert not any("deletes every remote secret" in w for w in plan.warnings)


def test_the_prune_flag_without_globs_is_said_loudly_too() -> None:
    plan = build_plan(
        desired(want("a"), prune=Prune()),
        (remote("a", "1"), remote("b", "2"), remote("c", "3")),
        options=PlanOptions(prune=True, max_deletes=2),
    )
    assert deleted(plan.changes) == ["b", "c"]
    assert any("2 in this plan" in w for w in plan.warnings)


def test_no_prune_no_delete_whatever_else_is_unlisted() -> None:
    remotes = tuple(remote(f"s{i}", str(i)) for i in range(30))
    plan = build_plan(desired(want("s0"), prune=Prune()), remotes)
    assert deleted(plan.changes) == []


def keep_and_strays(keep: int, strays: int) -> tuple[DesiredState, tuple[RemoteSecret, ...]]:
    secrets = tuple(want(f"k{i:02d}") for i in range(keep))
    remotes = tuple(remote(f"k{i:02d}", f"k{i}") for i in range(keep)) + tuple(
        remote(f"s{i:02d}", f"s{i}") for i in range(strays)
    )
    return desired(*secrets, prune=Prune(True)), remotes


def test_more_than_ten_deletes_are_refused_by_default_even_under_half() -> None:
    state, remotes = keep_and_strays(keep=40, strays=DEFAULT_MAX_DELETES + 1)
    with pytest.raises(PlanError, match="more than --max-deletes 10"):
        build_plan(state, remotes)
    state, remotes = keep_and_strays(keep=40, strays=DEFAULT_MAX_DELETES)
    assert len(deleted(build_plan(state, remotes).changes)) == DEFAULT_MAX_DELETES


def test_more_than_half_of_the_managed_secrets_is_refused_by_default_even_under_ten() -> None:
    state, remotes = keep_and_strays(keep=2, strays=3)
    with pytest.raises(PlanError, match="more than half"):
        build_plan(state, remotes)
    # Exactly half is not more than half.
    state, remotes = keep_and_strays(keep=3, strays=3)
    assert len(deleted(build_plan(state, remotes).changes)) == 3


def test_a_single_delete_of_the_only_secret_is_more_than_half() -> None:
    state = desired(want("new"), prune=Prune(True))
    with pytest.raises(PlanError, match="more than half"):
        build_plan(state, (remote("old", "1"),))
    assert deleted(build_plan(state, (remote("old", "1"),), options=PlanOptions(max_deletes=1)).changes) == [
        "old"
    ]


def test_with_globs_managed_means_listed_plus_in_scope() -> None:
    # 3 in scope, 1 listed: deleting all 3 is more than half of the 4 managed, whatever the account size.
    secrets = (want("ci-keep"),)
    remotes = (
        remote("ci-keep", "k"),
        *(remote(f"ci-old{i}", f"c{i}") for i in range(3)),
        *(remote(f"prod{i}", f"p{i}") for i in range(50)),
    )
    state = desired(*secrets, prune=Prune(True, ("ci-*",)))
    with pytest.raises(PlanError, match="3 of the 4 secrets it manages"):
        build_plan(state, remotes)


@pytest.mark.parametrize("limit", [0, 3, 25])
def test_an_explicit_max_deletes_replaces_both_guards(limit: int) -> None:
    state, remotes = keep_and_strays(keep=1, strays=limit)
    assert len(deleted(build_plan(state, remotes, options=PlanOptions(max_deletes=limit)).changes)) == limit
    state, remotes = keep_and_strays(keep=1, strays=limit + 1)
    with pytest.raises(PlanError, match=f"--max-deletes {limit}"):
        build_plan(state, remotes, options=PlanOptions(max_deletes=limit))


@pytest.mark.parametrize("prune", [Prune(True), Prune(True, ("*",))])
def test_an_empty_or_missing_secrets_list_with_prune_is_refused_unless_allowed(prune: Prune) -> None:
    state = desired(prune=prune, empty=True)
    with pytest.raises(PlanError, match="--allow-empty"):
        build_plan(state, (remote("a", "1"),), options=PlanOptions(max_deletes=5))
    plan = build_plan(state, (remote("a", "1"),), options=PlanOptions(allow_empty=True, max_deletes=5))
    assert deleted(plan.changes) == ["a"]
    # --allow-empty lifts only the empty-file refusal, not the other guards.
    with pytest.raises(PlanError, match="more than half"):
        build_plan(state, (remote("a", "1"),), options=PlanOptions(allow_empty=True))


def test_protection_remembered_by_id_survives_the_entry_and_its_protect_leaving_together() -> None:
    state = desired(want("a"), prune=Prune(True))
    remotes = (remote("a", "1"), remote("was-protected", "2"))
    assert deleted(build_plan(state, remotes, options=PlanOptions(max_deletes=5)).changes) == [
        "was-protected"
    ]
    options = PlanOptions(max_deletes=5, protected_ids=frozenset({"2"}))
    assert deleted(build_plan(state, remotes, options=options).changes) == []


def test_a_forgotten_secret_is_never_deleted_even_when_unlisted_and_in_scope() -> None:
    state = desired(want("a"), prune=Prune(True, ("*",)))
    options = PlanOptions(max_deletes=5, forgotten_ids=frozenset({"2"}))
    plan = build_plan(state, (remote("a", "1"), remote("forgotten", "2")), options=options)
    assert deleted(plan.changes) == []


def test_an_empty_file_with_prune_is_refused_by_the_check_validate_shares() -> None:
    from reconciler.prune import check_not_empty

    empty = desired(prune=Prune(enabled=True), empty=True)
    with pytest.raises(PlanError, match="--allow-empty"):
        check_not_empty(empty, enabled=True, allow_empty=False)
    check_not_empty(empty, enabled=True, allow_empty=True)
    check_not_empty(empty, enabled=False, allow_empty=False)
    check_not_empty(desired(want("a"), prune=Prune(enabled=True)), enabled=True, allow_empty=False)
