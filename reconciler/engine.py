"""One call per command: read the file, the account and the state, plan, and apply with state kept."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from pathlib import Path

from reconciler import desired as desired_file
from reconciler import importer, planfile
from reconciler import state as state_file
from reconciler.apply import Progress, execute
from reconciler.client import Client, ClientConfig
from reconciler.diff import desired_essence
from reconciler.drift import display_consistent
from reconciler.endpoint import LOCAL, canonical
from reconciler.errors import PlanError
from reconciler.models import (
    Action,
    ApplyReport,
    Change,
    DesiredSecret,
    DesiredState,
    DriftItem,
    Plan,
    RemoteSecret,
    SecretValue,
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


def connect(settings: Settings) -> Client:
    """A client for the configured account; `--api-url local` serves the emulator in-process."""
    config = ClientConfig(
        api_url=settings.api_url,
        api_key=settings.api_key,
        auth_header=settings.auth_header,
        timeout=settings.timeout,
        concurrency=settings.concurrency,
    )
    if canonical(settings.api_url) != LOCAL:
        return Client(config)
    from reconciler.emulator.app import create_app
    from reconciler.emulator.config import EmulatorConfig

    settings.local_db.parent.mkdir(parents=True, exist_ok=True)
    return Client(config, app=create_app(EmulatorConfig(db_path=str(settings.local_db))))


def state_key(settings: Settings) -> state_file.StateKey:
    return state_file.state_key(settings.environ, settings.api_key or "local")


async def make_plan(settings: Settings, path: Path, options: PlanOptions) -> PlanResult:
    """Load the file and list the account at once (parsing overlaps the network), then plan."""
    key = state_key(settings)
    current = None if settings.ignore_state else state_file.load(settings.state_path, key)
    async with connect(settings) as client:
        loading = asyncio.create_task(asyncio.to_thread(desired_file.load, path, environ=settings.environ))
        listing = asyncio.create_task(client.list_secrets())
        done = await asyncio.gather(loading, listing, return_exceptions=True)
    wanted, remote = done
    # The file's own problems come first: they are what the user can fix without the network.
    if isinstance(wanted, BaseException):
        raise wanted
    if isinstance(remote, BaseException):
        raise remote
    view = StateView()
    if current is not None:
        view = StateView(entries=current.entries, fingerprint=key.fingerprint)
        options = replace(options, protected_ids=current.protected_ids, forgotten_ids=current.forgotten)
    else:
        # Ignoring the state's fingerprints never drops what it protects from deletion.
        protected, forgotten = state_file.load_guards(settings.state_path)
        options = replace(options, protected_ids=protected, forgotten_ids=forgotten)
    plan = build_plan(wanted, remote, view, options)
    plan = replace(
        plan,
        drift=plan.drift + _added_by_hand(wanted, remote, current, plan),
        workflows=workflow_notes(wanted),
    )
    return PlanResult(wanted, remote, current, plan)


async def make_drift(settings: Settings, path: Path) -> PlanResult:
    """What changed outside reconciler. Deletes are what the file asks for, not drift, so prune (and
    the guards that refuse a large prune) play no part: a scheduled drift run never fails on them."""
    return await make_plan(settings, path, PlanOptions(prune=False))


async def import_secrets(
    settings: Settings, path: Path, names: tuple[str, ...], *, dry_run: bool = False
) -> tuple[importer.Imported, str]:
    """Append the account's secrets that `path` does not manage yet; returns them and the new text."""
    managed: set[str] = set()
    if path.exists():
        current = desired_file.load(path, resolve=False)
        managed = {s.secret_name for s in current.secrets}
        managed.update(name for s in current.secrets for name in s.previous_names)
    async with connect(settings) as client:
        remote = await client.list_secrets()
    found = importer.select(remote, managed=managed, names=names)
    if not found.entries:
        return found, ""
    return found, desired_file.append_secrets(path, found.entries, dry_run=dry_run)


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
    current = None if settings.ignore_state else state_file.load(settings.state_path, key)
    if current is not None and saved.plan_id in current.applied_plans:
        raise PlanError(f"{saved.path}: this plan was already applied; plan again for any further change")
    wanted = desired_file.load(saved.desired_path, environ=settings.environ)
    async with connect(settings) as client:
        remote = await client.list_secrets()
    plan = planfile.rebuild(saved, wanted, remote, key)
    return PlanResult(wanted, remote, current, plan)


def _added_by_hand(
    wanted: DesiredState, remote: tuple[RemoteSecret, ...], current: state_file.State | None, plan: Plan
) -> tuple[DriftItem, ...]:
    """Secrets created outside reconciler under a name the file manages, since state was kept."""
    if current is None or not current.entries:
        return ()
    names = {s.secret_name for s in wanted.secrets}
    known = set(current.entries)
    return tuple(
        DriftItem(s.secret_name, s.secret_id, Verdict.ADDED, "created outside reconciler; not in the state")
        for s in remote
        if s.secret_name in names and s.secret_id not in known
    )


def adoptable(result: PlanResult) -> dict[str, DesiredSecret]:
    """Secrets with no state entry whose display is consistent with the desired value, by id.

    A display that disagrees (or is missing) cannot prove the value: adoption is refused rather than
    silently rotating or silently trusting it.
    """
    entries = result.state.entries if result.state is not None else {}
    wanted = {s.secret_name: s for s in result.desired.secrets}
    found: dict[str, DesiredSecret] = {}
    refused: list[str] = []
    for change in result.plan.changes:
        remote = change.remote
        want = wanted.get(change.secret_name)
        if remote is None or want is None or want.value is None or remote.secret_id in entries:
            continue
        if "secret_value" in change.patch:
            refused.append(f"{want.secret_name!r}: its display shows a different value")
            continue
        consistent = display_consistent(want.value, remote.display)
        if consistent is None:
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
    wanted = {s.secret_name: s for s in result.desired.secrets}
    unverified = {d.secret_id for d in result.plan.drift if d.verdict is Verdict.REMOTE_WRITTEN}
    adopted = adoptable(result) if adopt else {}

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
    for secret_id, want in adopted.items():
        remote = next(c.remote for c in result.plan.changes if c.secret_id == secret_id and c.remote)
        _record(journal, want, remote, want.value, secret_id in unverified)

    def record(change: Change, after: RemoteSecret | None) -> None:
        if change.action is Action.DELETE:
            if change.secret_id is not None:
                journal.drop(change.secret_id)
            return
        want = wanted.get(change.secret_name)
        if want is None or after is None:
            return
        sent = change.patch.get("secret_value")
        value = sent if isinstance(sent, SecretValue) else None
        if value is None and after.secret_id in adopted:
            value = want.value
        _record(journal, want, after, value, after.secret_id in unverified and value is None)

    if plan_id is not None:
        journal.plan_applied(plan_id)
    journal.flush()
    async with connect(settings) as client:
        return await execute(
            result.plan,
            client,
            concurrency=settings.concurrency,
            recorder=record,
            checkpoint=journal.flush,
            progress=progress,
            stop=stop,
            account_size=len(result.remote),
        )


def _record(
    journal: state_file.Journal,
    want: DesiredSecret,
    after: RemoteSecret,
    value: SecretValue | None,
    unverified: bool,
) -> None:
    entry = state_file.entry_after_write(
        journal.key,
        journal.get(after.secret_id),
        after,
        value=value,
        protect=want.protect,
        unverified=unverified,
        managed=desired_essence(want),
    )
    if entry is not None:
        journal.put(entry)
