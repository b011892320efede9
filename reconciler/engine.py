"""One call per command: read the file, the account and the state, plan, and apply with state kept."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from reconciler import desired as desired_file
from reconciler import importer, planfile
from reconciler import state as state_file
from reconciler.apply import Progress, execute
from reconciler.client import Client, ClientConfig
from reconciler.desired.append import append_secrets
from reconciler.diff import desired_essence
from reconciler.drift import display_consistent
from reconciler.endpoint import LOCAL, canonical
from reconciler.errors import PlanError, ReconcilerError, StateError, UsageError
from reconciler.listing import Listing
from reconciler.models import (
    Action,
    ApplyReport,
    Change,
    DesiredSecret,
    DesiredState,
    PendingCreate,
    Plan,
    RemoteSecret,
    SecretValue,
    Status,
    Verdict,
    WorkflowNote,
)
from reconciler.plan import PlanOptions, StateView, build_plan
from reconciler.settings import Settings


@dataclass(frozen=True)
class PlanResult:
    """A plan and the inputs it was built from."""

    desired: DesiredState
    remote: tuple[RemoteSecret, ...]
    state: state_file.State | None
    plan: Plan
    # The secrets the state knows: every later listing of this run must hold those that exist.
    known_ids: frozenset[str] = frozenset()
    # --assume-complete-listing, given or recorded in the saved plan: apply's listings assume it too.
    assume_complete_listing: bool = False


def connect(
    settings: Settings, state_ids: frozenset[str] = frozenset(), *, displays: Iterable[str | None] = ()
) -> Client:
    """A client for the configured account; `--api-url local` serves the emulator in-process.

    `state_ids`: the secrets the state knows; every listing must hold those that exist.
    `displays`: those this run has already listed, never to be repeated by an error message.
    """
    config = ClientConfig(
        api_url=settings.api_url,
        api_key=settings.api_key,
        auth_header=settings.auth_header,
        timeout=settings.timeout,
        concurrency=settings.concurrency,
        assume_complete_listing=settings.assume_complete_listing,
    )
    if canonical(settings.api_url) != LOCAL:
        return Client(config, displays=displays, state_ids=state_ids)
    from reconciler.emulator.app import create_app
    from reconciler.emulator.config import EmulatorConfig

    settings.local_db.parent.mkdir(parents=True, exist_ok=True)
    app = create_app(EmulatorConfig(db_path=str(settings.local_db)))
    return Client(config, app=app, displays=displays, state_ids=state_ids)


def state_key(settings: Settings) -> state_file.StateKey:
    return state_file.state_key(settings.environ, _api_key(settings))


def _api_key(settings: Settings) -> str:
    return settings.api_key or "local"


def _now() -> datetime:
    return datetime.now(UTC)


def _timestamp() -> str:
    return _now().strftime("%Y-%m-%dT%H:%M:%SZ")


def known_ids(settings: Settings, current: state_file.State | None) -> frozenset[str]:
    """Every secret id the state knows (entries, protected, forgotten), with or without its key."""
    if current is not None:
        return frozenset(current.entries) | current.protected_ids | current.forgotten
    protected, forgotten = state_file.load_guards(settings.state_path)
    return protected | forgotten


def with_listing(plan: Plan, listing: Listing) -> Plan:
    """The plan with the listing it was made from, and a warning when nothing proved that listing whole."""
    warnings = plan.warnings
    if listing.assumed:
        warnings += (
            f"planned from a listing that is {listing.proof}; a secret it missed would be created "
            "again, and prune cannot delete it",
        )
    return replace(plan, listing=listing.note(), warnings=warnings)


async def make_plan(settings: Settings, path: Path, options: PlanOptions) -> PlanResult:
    """Load the file and list the account at once (parsing overlaps the network), then plan."""
    key = state_key(settings)
    # Read under another key, the state is kept for its own account only: check_account below.
    current = None if settings.ignore_state else state_file.load(settings.state_path, key, rekey=True)
    ids = known_ids(settings, current)
    async with connect(settings, ids) as client:
        loading = asyncio.create_task(asyncio.to_thread(desired_file.load, path, environ=settings.environ))
        reading = asyncio.create_task(client.list_secrets())
        done = await asyncio.gather(loading, reading, return_exceptions=True)
    wanted, listing = done
    # The file's own problems come first: they are what the user can fix without the network.
    if isinstance(wanted, BaseException):
        raise wanted
    if isinstance(listing, BaseException):
        raise listing
    remote = listing.secrets
    options = replace(options, now=_now())
    if current is not None:
        state_file.check_account(current, settings.api_url, _api_key(settings), remote)
        absent = f"no state file at {settings.state_path}" if current.missing else ""
        rekeyed = state_file.rekey_notice(current)
        view = StateView(current.entries, key.fingerprint, current.pending, absent, rekeyed)
        options = replace(options, protected_ids=current.protected_ids, forgotten_ids=current.forgotten)
    else:
        view = StateView(absent="--ignore-state")
        # Ignoring the state's fingerprints never drops what it protects from deletion.
        protected, forgotten = state_file.load_guards(settings.state_path)
        options = replace(options, protected_ids=protected, forgotten_ids=forgotten)
    plan = build_plan(wanted, remote, view, options)
    plan = replace(with_listing(plan, listing), workflows=workflow_notes(wanted))
    return PlanResult(wanted, remote, current, plan, ids, settings.assume_complete_listing)


async def make_drift(settings: Settings, path: Path, *, require_state: bool = False) -> PlanResult:
    """What changed outside reconciler. Deletes are what the file asks for, not drift, so prune (and
    the guards that refuse a large prune) play no part: a scheduled drift run never fails on them.

    Without a state the account is still compared with the file; --require-state makes that an error.
    """
    if require_state:
        if settings.ignore_state:
            raise UsageError("--require-state and --ignore-state contradict each other; pass one of them")
        if not settings.state_path.exists():
            raise StateError(
                f"{settings.state_path}: no state file, and --require-state is set. Without it drift cannot "
                "tell who changed what, nor see a value rewritten with the same visible ends: restore it "
                "(from the cache that keeps it), or run apply to write one"
            )
    return await make_plan(settings, path, PlanOptions(prune=False, for_drift=True))


async def import_secrets(
    settings: Settings, path: Path, names: tuple[str, ...], *, dry_run: bool = False
) -> tuple[importer.Imported, str]:
    """Append the account's secrets that `path` does not manage yet; returns them and the new text."""
    managed: set[str] = set()
    if path.exists():
        current = desired_file.load(path, resolve=False)
        managed = {s.secret_name for s in current.secrets}
        managed.update(name for s in current.secrets for name in s.previous_names)
    try:
        state = None if settings.ignore_state else state_file.load(settings.state_path, state_key(settings))
        ids = known_ids(settings, state)
    except StateError:
        # Import writes no state, so it needs none: an unreadable one only tells fewer secrets.
        ids = frozenset()
    async with connect(settings, ids) as client:
        remote = (await client.list_secrets()).secrets
    found = importer.select(remote, managed=managed, names=names)
    if not found.entries:
        return found, ""
    return found, append_secrets(path, found.entries, dry_run=dry_run)


def workflow_notes(wanted: DesiredState) -> tuple[WorkflowNote, ...]:
    """Coverage of the workflows the file lists, as lines for the plan's own section."""
    if not wanted.workflows:
        return ()
    from reconciler import workflows

    report = workflows.check(wanted)
    return tuple(WorkflowNote(str(f.severity), str(f)) for f in report.findings)


async def make_saved_plan(settings: Settings, saved: planfile.SavedPlan) -> PlanResult:
    """A saved plan (already `planfile.verify`-ed), checked against the file, the values and the account
    as they are now."""
    key = state_key(settings)
    current = None if settings.ignore_state else state_file.load(settings.state_path, key, rekey=True)
    if current is not None and saved.plan_id in current.applied_plans:
        raise PlanError(f"{saved.path}: this plan was already applied; plan again for any further change")
    try:
        wanted = desired_file.load(saved.desired_path, environ=settings.environ)
    except ReconcilerError as exc:
        # The path is the plan's, relative to the plan: say so, or the error reads as the user's own.
        raise PlanError(
            f"{saved.path}: the desired-state file this plan was made from, {saved.desired_path} "
            f"(relative to the plan), cannot be used; nothing was sent:\n{exc.message}"
        ) from None
    # The plan was reviewed with the listing it was made from: it is read under the same assumption.
    settings = replace(settings, assume_complete_listing=saved.assume_complete_listing)
    ids = known_ids(settings, current)
    async with connect(settings, ids) as client:
        listing = await client.list_secrets()
    remote = listing.secrets
    if current is not None:
        state_file.check_account(current, settings.api_url, _api_key(settings), remote)
        forgotten, protected = current.forgotten, current.protected_ids
    else:
        protected, forgotten = state_file.load_guards(settings.state_path)
    rebuilt = planfile.rebuild(saved, wanted, remote, key, forgotten=forgotten, protected=protected)
    plan = with_listing(rebuilt, listing)
    if current is not None:
        held = sorted(
            c.secret_name
            for c in plan.changes
            if c.action is Action.CREATE and c.secret_name in current.pending
        )
        if held:
            raise PlanError(
                f"{saved.path}: refusing to apply, nothing was written: a create of {', '.join(held)} was "
                "sent by a later run and its answer was lost, so it may still land. Plan again"
            )
    return PlanResult(wanted, remote, current, plan, ids, saved.assume_complete_listing)


def adoptable(result: PlanResult) -> dict[str, DesiredSecret]:
    """Secrets with no state entry whose display is consistent with the desired value, by id.

    `--adopt` only records baselines: a plan that would write anything is refused, with its writes.
    A display that disagrees (or is missing) cannot prove the value: adoption is refused rather than
    silently rotating or silently trusting it.
    """
    entries = result.state.entries if result.state is not None else {}

    def write(change: Change) -> str:
        line = f"{change.action.value} {change.secret_name}"
        if change.patch:
            line += f" ({', '.join(change.patch)})"
        remote = change.remote
        if "secret_value" in change.patch and remote is not None and remote.secret_id not in entries:
            line += ": its display shows a value other than the one set"
        return line

    writes = [write(change) for change in result.plan.actionable]
    if writes:
        raise PlanError(
            "--adopt only records baselines and writes nothing, but this plan writes:\n  "
            + "\n  ".join(writes)
            + "\n  set the values the account holds (or apply without --adopt to make these changes), "
            "then adopt; nothing was changed"
        )
    wanted = {s.secret_name: s for s in result.desired.secrets}
    found: dict[str, DesiredSecret] = {}
    refused: list[str] = []
    # What remains is unchanged secrets: adopted when their display can vouch for the value.
    for change in result.plan.changes:
        remote = change.remote
        want = wanted.get(change.secret_name)
        known = entries.get(remote.secret_id) if remote is not None else None
        # An entry whose fingerprint was written under a key that is gone can be adopted again.
        if remote is None or want is None or want.value is None or (known is not None and known.fingerprint):
            continue
        if display_consistent(want.value, remote.display) is None:
            refused.append(f"{want.secret_name!r}: the server shows no display to check the value against")
            continue
        found[remote.secret_id] = want
    if refused:
        raise PlanError(
            "cannot adopt without rotating:\n  "
            + "\n  ".join(refused)
            + "\n  apply without --adopt to overwrite these values, or fix the desired values"
        )
    return found


async def run_apply(
    settings: Settings,
    result: PlanResult,
    *,
    adopt: bool = False,
    plan_id: str | None = None,
    progress: Progress | None = None,
    stop: asyncio.Event | None = None,
) -> ApplyReport:
    """Carry out the plan, recording every verified write in the state file as it goes."""
    key = state_key(settings)
    base = result.state
    if base is None:
        protected, forgotten = state_file.load_guards(settings.state_path)
        base = state_file.State(settings.state_path, key, forgotten=forgotten, protected=protected)
    journal = state_file.Journal(base)
    journal.bind(
        state_file.bind(
            key, settings.api_url, _api_key(settings), (s.user_id for s in result.remote), base.account
        )
    )
    wanted = {s.secret_name: s for s in result.desired.secrets}
    unverified = {d.secret_id for d in result.plan.drift if d.verdict is Verdict.REMOTE_WRITTEN}
    adopted = adoptable(result) if adopt else {}
    _settle_pending(journal, result, wanted)

    for item in result.plan.drift:
        # Gone from the account: the state must stop claiming it; a re-create records the new id.
        if item.verdict is Verdict.DELETED and item.secret_id is not None:
            journal.drop(item.secret_id)
    for change in result.plan.changes:
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
    planned = _remote_by_id(result.plan)
    for secret_id, want in adopted.items():
        _record(journal, want, planned[secret_id], want.value, secret_id in unverified)

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
        _record(journal, want, after, value, after.secret_id in unverified and value is None, sent=sent_now)

    if plan_id is not None:
        journal.plan_applied(plan_id)
    journal.flush()
    settings = replace(settings, assume_complete_listing=result.assume_complete_listing)
    # The displays the plan's listing saw: no error text of this run may repeat them.
    displays = [s.display for s in result.remote]
    async with connect(settings, result.known_ids, displays=displays) as client:
        report = await execute(
            result.plan,
            client,
            concurrency=settings.concurrency,
            recorder=record,
            checkpoint=journal.flush,
            progress=progress,
            stop=stop,
            account_size=len(result.remote),
        )
    for outcome in report.outcomes:
        name = outcome.change.secret_name
        if outcome.change.action is not Action.CREATE or outcome.status is Status.OK:
            continue
        if outcome.in_doubt:
            journal.in_doubt(name, _timestamp())
        elif outcome.status is Status.SKIPPED or outcome.secret_id is None:
            # Never sent, or refused outright: it cannot land later, there is nothing to look for.
            journal.settle(name)
    journal.flush()
    if not adopt:
        return report
    return replace(report, adopted=tuple(sorted(want.secret_name for want in adopted.values())))


def _remote_by_id(plan: Plan) -> dict[str, RemoteSecret]:
    """The remote secret each change was planned against, by id (the first change naming it).

    One look-up table: searching the changes for each adopted secret was quadratic, minutes of CPU
    for `apply --adopt` on 50,000 secrets."""
    found: dict[str, RemoteSecret] = {}
    for change in plan.changes:
        if change.secret_id is not None and change.remote is not None:
            found.setdefault(change.secret_id, change.remote)
    return found


def _settle_pending(
    journal: state_file.Journal, result: PlanResult, wanted: dict[str, DesiredSecret]
) -> None:
    """Pending creates the account now answers: our own lost creates (by plan.recovered) are recorded
    without a write; a name that exists, or that the file no longer lists, has nothing left to find."""
    planned = _remote_by_id(result.plan)
    for secret_id in result.plan.recovered:
        remote = planned[secret_id]
        want = wanted[remote.secret_name]
        _record(journal, want, remote, want.value, False)
        entry = journal.get(secret_id)
        if entry is not None:
            # Our create wrote the value; a write since then leaves it unproven, as after any apply.
            untouched = remote.updated_at == remote.created_at
            written_at = remote.created_at if untouched else ""
            journal.put(replace(entry, value_written_at=written_at, value_unverified=not untouched))
    present = {s.secret_name for s in result.remote}
    for name in list(journal.pending):
        if name in present or name not in wanted:
            journal.settle(name)


def _record(
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
