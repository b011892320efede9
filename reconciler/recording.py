"""What an apply records in the state file around its writes: what the plan learned, each answer as it
comes, creates whose answer was lost, and adopted baselines."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from reconciler import state as state_file
from reconciler.apply import Recorder
from reconciler.diff import desired_essence
from reconciler.models import (
    Action,
    ApplyReport,
    Change,
    DesiredSecret,
    PendingCreate,
    Plan,
    RemoteSecret,
    SecretValue,
    Status,
    Verdict,
)


def _timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def learn_from_plan(
    journal: state_file.Journal,
    plan: Plan,
    wanted: dict[str, DesiredSecret],
    unverified: set[str | None],
) -> None:
    """What the plan found that the state must know before any write: secrets gone, protection added,
    names the account changed, values written outside reconciler."""
    for item in plan.drift:
        # Gone from the account: the state must stop claiming it; a re-create records the new id.
        if item.verdict is Verdict.DELETED and item.secret_id is not None:
            journal.drop(item.secret_id)
    for change in plan.changes:
        if change.secret_id is None:
            continue
        want = wanted.get(change.secret_name)
        if want is not None:
            # `protect` added to an unchanged entry is remembered before anything else happens.
            journal.protect(change.secret_id, want.protect)
        entry = journal.get(change.secret_id)
        if entry is not None and change.remote is not None and entry.secret_name != change.remote.secret_name:
            # A rename whose answer was lost: the account, not the state, knows the name.
            journal.put(replace(entry, secret_name=change.remote.secret_name))
        if change.action is Action.NOOP and change.secret_id in unverified:
            journal.mark_unverified(change.secret_id)


def recorder(
    journal: state_file.Journal,
    wanted: dict[str, DesiredSecret],
    adopted: dict[str, DesiredSecret],
    unverified: set[str | None],
) -> Recorder:
    """What apply.execute calls around each write: a create journaled before it is sent, each answer
    recorded as it comes, a delete dropped before it is sent."""

    def record(change: Change, after: RemoteSecret | None) -> None:
        if change.action is Action.DELETE:
            if change.secret_id is not None:
                journal.drop(change.secret_id)
            return
        want = wanted.get(change.secret_name)
        sent = change.patch.get("secret_value")
        value = sent if isinstance(sent, SecretValue) else None
        if after is None:
            if change.action is Action.CREATE and want is not None and value is not None:
                # Journaled before it is sent: if the answer is lost, the next run looks for it.
                journal.pending_create(
                    PendingCreate(
                        change.secret_name,
                        journal.key.fingerprint(value),
                        state_file.fields_digest(journal.key, desired_essence(want)),
                        _timestamp(),
                    )
                )
            return
        journal.saw_user(after.user_id)
        if change.action is Action.CREATE:
            journal.settle(change.secret_name)
        if want is None:
            return
        sent_now = value is not None
        if value is None and after.secret_id in adopted:
            value = want.value
        record_write(
            journal, want, after, value, after.secret_id in unverified and value is None, sent=sent_now
        )

    return record


def settle_creates(journal: state_file.Journal, report: ApplyReport) -> None:
    """Creates that did not succeed: one whose answer was lost stays pending, in doubt; one answered but
    not checked stays pending as recorded, to be looked for; one never sent, or refused outright, cannot
    land later and leaves nothing to look for."""
    for outcome in report.outcomes:
        name = outcome.change.secret_name
        if outcome.change.action is not Action.CREATE or outcome.status is Status.OK or outcome.unsettled:
            continue
        if outcome.in_doubt:
            journal.in_doubt(name, _timestamp())
        elif outcome.status is Status.SKIPPED or outcome.secret_id is None:
            journal.settle(name)


def remote_by_id(plan: Plan) -> dict[str, RemoteSecret]:
    """The remote secret each change was planned against, by id (the first change naming it).

    One look-up table: searching the changes for each adopted secret was quadratic, minutes of CPU
    for `apply --adopt` on 50,000 secrets."""
    found: dict[str, RemoteSecret] = {}
    for change in plan.changes:
        if change.secret_id is not None and change.remote is not None:
            found.setdefault(change.secret_id, change.remote)
    return found


def settle_pending(
    journal: state_file.Journal,
    plan: Plan,
    remote: tuple[RemoteSecret, ...],
    wanted: dict[str, DesiredSecret],
) -> None:
    """Pending creates the account now answers: our own lost creates (by plan.recovered) are recorded
    without a write; a name that exists, or that the file no longer lists, has nothing left to find."""
    planned = remote_by_id(plan)
    for secret_id in plan.recovered:
        found = planned[secret_id]
        want = wanted[found.secret_name]
        record_write(journal, want, found, want.value, False)
        entry = journal.get(secret_id)
        if entry is not None:
            # Our create wrote the value; a write since then leaves it unproven, as after any apply.
            untouched = found.updated_at == found.created_at
            written_at = found.created_at if untouched else ""
            journal.put(replace(entry, value_written_at=written_at, value_unverified=not untouched))
    present = {s.secret_name for s in remote}
    for name in list(journal.pending):
        if name in present or name not in wanted:
            journal.settle(name)


def record_write(
    journal: state_file.Journal,
    want: DesiredSecret,
    after: RemoteSecret,
    value: SecretValue | None,
    unverified: bool,
    *,
    sent: bool = False,
) -> None:
    entry = state_file.entry_after_write(
        journal.key,
        journal.get(after.secret_id),
        after,
        value=value,
        protect=want.protect,
        unverified=unverified,
        sent=sent,
    )
    if entry is not None:
        journal.put(entry)


def record_adopted(
    journal: state_file.Journal, plan: Plan, adopted: dict[str, DesiredSecret], unverified: set[str | None]
) -> None:
    """`--adopt`: each adopted secret's baseline, from the remote it was planned against."""
    planned = remote_by_id(plan)
    for secret_id, want in adopted.items():
        record_write(journal, want, planned[secret_id], want.value, secret_id in unverified)
