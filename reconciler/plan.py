"""build_plan: match desired to remote, diff fields, decide values, guard deletes, order the work (pure)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from operator import itemgetter
from types import MappingProxyType

from reconciler import diff, matching, prune
from reconciler.changes import PHASE_CREATE, PHASE_DELETE, PHASE_NOOP, create_of, update_of
from reconciler.drift import (
    ValueVerdict,
    display_consistent,
    exposure_warnings,
    parse_time,
    stale_finding,
    value_verdict,
)
from reconciler.errors import PlanError
from reconciler.models import (
    PENDING_CREATE_HOLD_S,
    Action,
    Change,
    DesiredSecret,
    DesiredState,
    DriftItem,
    FieldChange,
    PatchValue,
    PendingCreate,
    Plan,
    RemoteSecret,
    SecretValue,
    StateEntry,
    Verdict,
)

Fingerprint = Callable[[SecretValue], str]


@dataclass(frozen=True)
class PlanOptions:
    """The plan-time switches; every default is the safe one."""

    # None: the file decides; --prune / --no-prune override it.
    prune: bool | None = None
    force_values: bool = False
    heal: bool = False
    allow_empty: bool = False
    # None: at most prune.DEFAULT_MAX_DELETES and never more than half the account; a number given on the
    # command line is the user's explicit confirmation and replaces both guards.
    max_deletes: int | None = None
    # Secrets the state remembers as protected, by id, even if their entry left the file.
    protected_ids: frozenset[str] = frozenset()
    # Ids the state stopped managing via `forget`: never deleted by prune in this run.
    forgotten_ids: frozenset[str] = frozenset()
    # The time of the run, for ages and pending creates; None leaves both unjudged (and holds creates).
    now: datetime | None = None
    # The plan is made for a drift report: without a baseline, differences are findings of their own,
    # and a create that may still land is only left out, never refused (drift writes nothing).
    for_drift: bool = False


@dataclass(frozen=True)
class StateView:
    """The parts of the state file the pure planner reads."""

    entries: Mapping[str, StateEntry] = field(default_factory=lambda: MappingProxyType({}))
    fingerprint: Fingerprint | None = None
    # Creates sent whose answer may be lost, by name.
    pending: Mapping[str, PendingCreate] = field(default_factory=lambda: MappingProxyType({}))
    # Why there is no state at all ("no state file at PATH", "--ignore-state"); empty when there is one.
    absent: str = ""
    # What a state read under another state key costs (its value fingerprints are gone); else empty.
    rekeyed: str = ""


@dataclass(frozen=True)
class _Matched:
    """One desired secret's change and what was found about it."""

    change: Change
    drift: list[DriftItem]
    # Differences between the account and the file (non-name fields, and a value the display disproves).
    found: list[FieldChange]
    verdict: ValueVerdict | None


def build_plan(
    desired: DesiredState,
    remote: tuple[RemoteSecret, ...],
    state: StateView | None = None,
    options: PlanOptions | None = None,
) -> Plan:
    """The smallest set of changes that makes `remote` match `desired`. Same inputs, equal plan."""
    options = options or PlanOptions()
    state = state or StateView()
    by_name: dict[str, list[RemoteSecret]] = {}
    by_id: dict[str, RemoteSecret] = {}
    for secret in remote:
        by_name.setdefault(secret.secret_name, []).append(secret)
        by_id[secret.secret_id] = secret

    matches = _match_all(desired, by_name, by_id, state, options)
    compared = _compare(desired, matches.steps, matches.pairs, state, options)
    changes = matches.creates + compared.changes
    drift = compared.drift
    _record_state_drift(state, by_id, drift)
    deletes = prune.deletes(
        desired,
        remote,
        matches.claimed,
        matches.renamed_from,
        enabled=desired.prune.enabled if options.prune is None else options.prune,
        allow_empty=options.allow_empty,
        max_deletes=options.max_deletes,
        kept_ids=options.protected_ids | options.forgotten_ids,
        phase=PHASE_DELETE,
    )
    changes.extend((PHASE_DELETE, i, c) for i, c in enumerate(deletes))
    changes.sort(key=itemgetter(0, 1))
    warnings = [*prune.warnings(desired, remote, matches.claimed, matches.renamed_from, len(deletes))]
    warnings.extend(exposure_warnings(desired.secrets, remote))
    return Plan(
        changes=tuple(c for _, _, c in changes),
        drift=tuple(drift),
        warnings=tuple(warnings),
        stale=tuple(compared.stale),
        notice=_notice(state.absent) or state.rekeyed,
        recovered=tuple(compared.recovered),
    )


# A matched pair, in file order: its index, the entry, the remote secret and the name it is renamed from.
_Pair = tuple[int, DesiredSecret, RemoteSecret, str | None]


@dataclass(frozen=True)
class _Matching:
    """Which remote secret each entry manages, before any field is compared."""

    # remote secret_id -> the entry's name that claimed it.
    claimed: dict[str, str]
    renamed_from: set[str]
    # (phase, file index, change) of every create.
    creates: list[tuple[int, int, Change]]
    # In file order: a finding about a secret to create, or a matched pair.
    steps: list[DriftItem | _Pair]
    pairs: list[tuple[DesiredSecret, RemoteSecret]]


def _match_all(
    desired: DesiredState,
    by_name: Mapping[str, list[RemoteSecret]],
    by_id: Mapping[str, RemoteSecret],
    state: StateView,
    options: PlanOptions,
) -> _Matching:
    """Match every entry to its remote secret; every problem found in one PlanError."""
    problems: list[str] = []
    matches = _Matching(claimed={}, renamed_from=set(), creates=[], steps=[], pairs=[])
    claimed = matches.claimed
    for index, want in enumerate(desired.secrets):
        known_problems = len(problems)
        match, previous = matching.match(want, by_name, by_id, problems)
        if len(problems) > known_problems:
            continue
        if match is None:
            create = _held_create(want, state, options, problems)
            if create is not None:
                matches.creates.append((PHASE_CREATE, index, create))
                if state.absent and options.for_drift:
                    matches.steps.append(
                        DriftItem(
                            want.secret_name,
                            None,
                            Verdict.MISSING_NO_BASELINE,
                            "in the file but not in the account; without a state it cannot tell whether "
                            "it was deleted outside reconciler or never created",
                        )
                    )
            continue
        owner = claimed.get(match.secret_id)
        if owner is not None:
            problems.append(
                f"secrets {owner!r} and {want.secret_name!r} both match remote secret {match.secret_id}"
            )
            continue
        claimed[match.secret_id] = want.secret_name
        if previous is not None:
            matches.renamed_from.add(previous)
        matches.steps.append((index, want, match, previous))
        matches.pairs.append((want, match))

    if problems:
        raise PlanError("cannot plan:\n  " + "\n  ".join(problems))
    return matches


@dataclass(frozen=True)
class _Compared:
    """What comparing the matched pairs found: their changes and every finding about them."""

    changes: list[tuple[int, int, Change]]
    drift: list[DriftItem]
    stale: list[DriftItem]
    recovered: list[str]


def _compare(
    desired: DesiredState,
    steps: list[DriftItem | _Pair],
    pairs: list[tuple[DesiredSecret, RemoteSecret]],
    state: StateView,
    options: PlanOptions,
) -> _Compared:
    """Each matched pair's change and findings, in file order."""
    compared = _Compared(changes=[], drift=[], stale=[], recovered=[])
    drift = compared.drift
    known_ids: dict[str, set[str]] = {}
    for secret_id, known in state.entries.items():
        known_ids.setdefault(known.secret_name, set()).add(secret_id)
    # Every matched pair's field differences at once: the secrets that differ share one diff.
    differences = iter(diff.field_changes(pairs))
    for step in steps:
        if isinstance(step, DriftItem):
            drift.append(step)
            continue
        index, want, match, previous = step
        matched = _update(want, match, previous, next(differences), state, options)
        drift.extend(matched.drift)
        drift.extend(_unbaselined(want, match, matched.found, known_ids, state, options))
        if _recovered(want, match, state):
            compared.recovered.append(match.secret_id)
        max_age = want.max_age_hours or desired.max_age_hours
        if max_age is not None and options.now is not None:
            new_value = matched.verdict is not None and matched.verdict.verdict is Verdict.DESIRED_CHANGED
            found = stale_finding(
                want.secret_name,
                match,
                state.entries.get(match.secret_id),
                now=options.now,
                max_age_hours=max_age,
                new_value_planned=new_value,
            )
            if found is not None:
                compared.stale.append(found)
        compared.changes.append((matched.change.phase, index, matched.change))
    return compared


def _notice(absent: str) -> str:
    if not absent:
        return ""
    return (
        f"{absent}: the account is compared with the file alone. Every difference is reported, but not "
        "who made it, and a value rewritten by hand with the same first and last characters cannot be seen"
    )


def _held_create(
    want: DesiredSecret, state: StateView, options: PlanOptions, problems: list[str]
) -> Change | None:
    """The create of `want`, unless an earlier create of that name may still land on the server.

    Its answer was lost, and the name is not in the account yet. Within PENDING_CREATE_HOLD_S of
    sending it, sending it again could make a duplicate: refused (left out of a drift report).
    """
    create = create_of(want)
    pending = state.pending.get(want.secret_name)
    if pending is None:
        return create
    sent = parse_time(pending.sent_at)
    until = sent + timedelta(seconds=PENDING_CREATE_HOLD_S) if sent is not None else None
    if not pending.in_doubt or (until is not None and options.now is not None and options.now >= until):
        unsettled = "was left unsettled (its run could not tell whether it landed)"
        lost = "got no answer" if pending.in_doubt else unsettled
        reason = f"a create sent at {pending.sent_at} {lost}, and the name is not in the account; sent again"
        return replace(create, reasons=(reason,))
    if options.for_drift:
        return None
    if until is None or options.now is None:
        when = "until the account shows it"
    else:
        minutes = max(1, -(-int((until - options.now).total_seconds()) // 60))
        when = f"before {until.strftime('%Y-%m-%dT%H:%M:%SZ')} (in {minutes} min)"
    problems.append(
        f"{want.secret_name!r}: a create sent at {pending.sent_at} got no answer and may still land on the "
        f"server; it is not sent again {when}. Apply again then: if it landed, it is recorded without a write"
    )
    return None


def _unbaselined(
    want: DesiredSecret,
    remote: RemoteSecret,
    found: list[FieldChange],
    known_ids: Mapping[str, set[str]],
    state: StateView,
    options: PlanOptions,
) -> list[DriftItem]:
    """Findings about a matched secret the state has no entry for, or no value baseline."""
    entry = state.entries.get(remote.secret_id)
    if entry is not None:
        return _value_unbaselined(want, remote, found, entry, options)
    others = sorted(known_ids.get(want.secret_name, set()) - {remote.secret_id})
    if others:
        return [
            DriftItem(
                want.secret_name,
                remote.secret_id,
                Verdict.ADDED,
                f"created outside reconciler: the state knows this name as {', '.join(others)}",
                tuple(found),
            )
        ]
    if not options.for_drift or not found:
        return []
    return [
        DriftItem(
            want.secret_name,
            remote.secret_id,
            Verdict.DIFFERS_NO_BASELINE,
            f"the account differs from the file ({', '.join(f.field for f in found)}); with no state "
            "for this secret it cannot tell who changed it",
            tuple(found),
        )
    ]


def _value_unbaselined(
    want: DesiredSecret,
    remote: RemoteSecret,
    found: list[FieldChange],
    entry: StateEntry,
    options: PlanOptions,
) -> list[DriftItem]:
    """A value the display shows differs, for an entry whose fingerprint could not be read: who changed
    it cannot be told (its fields still have their watermark, reported as fields_changed)."""
    rows = tuple(f for f in found if f.sensitive)
    if entry.fingerprint or not options.for_drift or not rows:
        return []
    return [
        DriftItem(
            want.secret_name,
            remote.secret_id,
            Verdict.DIFFERS_NO_BASELINE,
            "the value differs from the file's (its display shows it); the state's fingerprint of it was "
            "written under another state key, so it cannot tell who changed it",
            rows,
        )
    ]


def _recovered(want: DesiredSecret, remote: RemoteSecret, state: StateView) -> bool:
    """Whether `remote` is our own create whose answer was lost: its name is pending, the file's value
    is the one that was sent, and the display does not disprove it."""
    pending = state.pending.get(want.secret_name)
    if pending is None or remote.secret_id in state.entries or want.value is None:
        return False
    if state.fingerprint is None or state.fingerprint(want.value) != pending.fingerprint:
        return False
    return display_consistent(want.value, remote.display) is not False


def _update(
    want: DesiredSecret,
    remote: RemoteSecret,
    previous: str | None,
    field_changes: tuple[FieldChange, ...],
    state: StateView,
    options: PlanOptions,
) -> _Matched:
    """The change of a matched secret, and what was found about it."""
    fields = list(field_changes)
    patch: dict[str, PatchValue] = {f.field: f.after for f in fields}
    reasons: list[str] = []
    drift: list[DriftItem] = []
    entry = state.entries.get(remote.secret_id)
    found = [f for f in fields if f.field != "secret_name"]
    verdict: ValueVerdict | None = None
    # Written since our last apply (the state knows it), a field that differs was edited by hand.
    by_hand = entry is not None and state.fingerprint is not None and remote.updated_at != entry.updated_at
    if found:
        reasons.append(_fields_reason(found, by_hand=by_hand))

    if want.value is not None:
        # An entry without a fingerprint (written under a key that is gone) has no value baseline.
        valued = entry if entry is not None and entry.fingerprint else None
        fingerprint = state.fingerprint(want.value) if state.fingerprint and valued else None
        verdict = value_verdict(
            value=want.value,
            remote=remote,
            entry=valued,
            desired_fingerprint=fingerprint,
            heal=options.heal,
            force=options.force_values,
        )
        value_row = FieldChange("secret_value", None, None, sensitive=True)
        if verdict.send:
            patch["secret_value"] = want.value
            fields.append(value_row)
            reasons.append(verdict.reason)
        elif verdict.unverified:
            reasons.append(verdict.reason)
        if verdict.verdict is Verdict.REMOTE_VALUE_CHANGED:
            found.append(value_row)
        if verdict.drift:
            rows = (value_row,) if verdict.verdict is Verdict.REMOTE_VALUE_CHANGED else ()
            drift.append(DriftItem(want.secret_name, remote.secret_id, verdict.verdict, verdict.reason, rows))
    if by_hand and found:
        drift.extend(_fields_edited(want, remote, found))

    if not patch:
        noop = Change(Action.NOOP, want.secret_name, remote.secret_id, remote=remote, phase=PHASE_NOOP)
        return _Matched(noop, drift, found, verdict)
    return _Matched(update_of(want, remote, previous, fields, patch, reasons), drift, found, verdict)


def _fields_edited(want: DesiredSecret, remote: RemoteSecret, found: list[FieldChange]) -> list[DriftItem]:
    """The finding about fields that differ and were written since our last apply."""
    edits = tuple(f for f in found if not f.sensitive)
    if not edits:
        return []
    names = ", ".join(f.field for f in edits)
    return [
        DriftItem(
            want.secret_name,
            remote.secret_id,
            Verdict.FIELDS_CHANGED,
            f"fields edited outside reconciler: {names}",
            edits,
        )
    ]


def _fields_reason(found: list[FieldChange], *, by_hand: bool) -> str:
    """Every changed field has its reason, not only the value; one edited by hand is also drift."""
    names = ", ".join(f.field for f in found)
    if by_hand:
        return f"{names}: edited outside reconciler since the last apply; set back to the file's"
    return f"{names}: the account differs from the file"


def _record_state_drift(state: StateView, by_id: Mapping[str, RemoteSecret], drift: list[DriftItem]) -> None:
    for secret_id, entry in sorted(state.entries.items(), key=lambda item: item[1].secret_name):
        if secret_id not in by_id:
            drift.append(
                DriftItem(
                    entry.secret_name,
                    secret_id,
                    Verdict.DELETED,
                    "deleted outside reconciler since the last apply",
                )
            )
