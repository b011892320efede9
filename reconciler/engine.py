"""One call per command: read the file, the account and the state, plan, and apply with state kept."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from reconciler import desired as desired_file
from reconciler import importer, planfile, recording
from reconciler import state as state_file
from reconciler.apply import Progress, execute
from reconciler.client import ASGIApp, Client, ClientConfig, Sleep, Transport
from reconciler.desired.append import append_secrets
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
    Plan,
    RemoteSecret,
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


@dataclass(frozen=True)
class Channel:
    """How the client reaches the account when not over the network at the configured URL: an ASGI app
    served in-process, or (in tests) a transport in front of one and a sleep that does not wait."""

    app: ASGIApp | None = None
    transport: Transport | None = None
    sleep: Sleep = asyncio.sleep


def local_channel(settings: Settings) -> Channel | None:
    """`--api-url local`: the embedded emulator, served in-process from the state directory."""
    if canonical(settings.api_url) != LOCAL:
        return None
    from reconciler.emulator.app import create_app
    from reconciler.emulator.config import EmulatorConfig

    settings.local_db.parent.mkdir(parents=True, exist_ok=True)
    return Channel(app=create_app(EmulatorConfig(db_path=str(settings.local_db))))


def connect(
    settings: Settings,
    state_ids: frozenset[str] = frozenset(),
    *,
    displays: Iterable[str | None] = (),
    channel: Channel | None = None,
) -> Client:
    """A client for the configured account, over `channel` when one is given.

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
    via = channel or local_channel(settings) or Channel()
    return Client(
        config,
        app=via.app,
        transport=via.transport,
        sleep=via.sleep,
        displays=displays,
        state_ids=state_ids,
    )


def state_key(settings: Settings) -> state_file.StateKey:
    return state_file.state_key(settings.environ, _api_key(settings))


def _api_key(settings: Settings) -> str:
    return settings.api_key or "local"


def _now() -> datetime:
    return datetime.now(UTC)


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


async def make_plan(
    settings: Settings, path: Path, options: PlanOptions, *, channel: Channel | None = None
) -> PlanResult:
    """Load the file and list the account at once (parsing overlaps the network), then plan.

    The plan is judged at `options.now` when it is given (tests), else at the time of the run."""
    key = state_key(settings)
    # Read under another key, the state is kept for its own account only: check_account below.
    current = None if settings.ignore_state else state_file.load(settings.state_path, key, rekey=True)
    ids = known_ids(settings, current)
    async with connect(settings, ids, channel=channel) as client:
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
    options = replace(options, now=options.now or _now())
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


async def make_drift(
    settings: Settings, path: Path, *, require_state: bool = False, channel: Channel | None = None
) -> PlanResult:
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
    return await make_plan(settings, path, PlanOptions(prune=False, for_drift=True), channel=channel)


async def import_secrets(
    settings: Settings,
    path: Path,
    names: tuple[str, ...],
    *,
    dry_run: bool = False,
    channel: Channel | None = None,
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
    async with connect(settings, ids, channel=channel) as client:
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


async def make_saved_plan(
    settings: Settings, saved: planfile.SavedPlan, *, channel: Channel | None = None
) -> PlanResult:
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
    async with connect(settings, ids, channel=channel) as client:
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


@dataclass(frozen=True)
class ApplyTarget:
    """What `apply` was given: a desired-state file, or a plan saved by `plan --out` (and its file)."""

    path: Path
    saved: planfile.SavedPlan | None = None

    @property
    def desired_path(self) -> Path:
        return self.saved.desired_path if self.saved is not None else self.path

    @property
    def plan_id(self) -> str | None:
        return self.saved.plan_id if self.saved is not None else None


def apply_target(path: Path) -> ApplyTarget:
    """A saved plan is recognised by its content, whatever its name; anything else is a desired file."""
    return ApplyTarget(path, planfile.detect(path))


def check_target(settings: Settings, target: ApplyTarget) -> None:
    """Before any request and any file operation: a forged or edited plan must not send the key."""
    if target.saved is not None:
        planfile.verify(target.saved, state_key(settings), settings.api_url)


@contextmanager
def apply_lock(settings: Settings, *, break_lock: bool = False) -> Iterator[None]:
    """One apply at a time per state file, held from planning until the state is written."""
    with state_file.lock(settings.state_path, break_lock=break_lock):
        yield


async def plan_apply(
    settings: Settings,
    target: ApplyTarget,
    options: PlanOptions,
    *,
    adopt: bool = False,
    channel: Channel | None = None,
) -> PlanResult:
    """The plan `apply` carries out: the saved one, checked against now, or a new one from the file.

    With `adopt`, a plan that writes is refused here, before anything is shown or asked."""
    if target.saved is not None:
        result = await make_saved_plan(settings, target.saved, channel=channel)
    else:
        result = await make_plan(settings, target.path, options, channel=channel)
    if adopt:
        adoptable(result)
    return result


async def run_apply(
    settings: Settings,
    result: PlanResult,
    *,
    adopt: bool = False,
    plan_id: str | None = None,
    progress: Progress | None = None,
    stop: asyncio.Event | None = None,
    channel: Channel | None = None,
) -> ApplyReport:
    """Carry out the plan, recording every verified write in the state file as it goes."""
    journal = _open_journal(settings, result)
    wanted = {s.secret_name: s for s in result.desired.secrets}
    unverified = {d.secret_id for d in result.plan.drift if d.verdict is Verdict.REMOTE_WRITTEN}
    adopted = adoptable(result) if adopt else {}
    recording.settle_pending(journal, result.plan, result.remote, wanted)
    recording.learn_from_plan(journal, result.plan, wanted, unverified)
    recording.record_adopted(journal, result.plan, adopted, unverified)
    if plan_id is not None:
        journal.plan_applied(plan_id)
    journal.flush()
    settings = replace(settings, assume_complete_listing=result.assume_complete_listing)
    # The displays the plan's listing saw: no error text of this run may repeat them.
    displays = [s.display for s in result.remote]
    async with connect(settings, result.known_ids, displays=displays, channel=channel) as client:
        report = await execute(
            result.plan,
            client,
            concurrency=settings.concurrency,
            recorder=recording.recorder(journal, wanted, adopted, unverified),
            checkpoint=journal.flush,
            progress=progress,
            stop=stop,
            account_size=len(result.remote),
        )
    recording.settle_creates(journal, report)
    journal.flush()
    if not adopt:
        return report
    return replace(report, adopted=tuple(sorted(want.secret_name for want in adopted.values())))


def _open_journal(settings: Settings, result: PlanResult) -> state_file.Journal:
    """The journal over the state the plan read (or a new one keeping the guards), bound to the account."""
    key = state_key(settings)
    base = result.state
    if base is None:
        protected, forgotten = state_file.load_guards(settings.state_path)
        base = state_file.State(settings.state_path, key, forgotten=forgotten, protected=protected)
    journal = state_file.Journal(base)
    users = (s.user_id for s in result.remote)
    journal.bind(state_file.bind(key, settings.api_url, _api_key(settings), users, base.account))
    return journal
