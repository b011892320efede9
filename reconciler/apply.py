"""Carries out a Plan: phases in order, bounded concurrency, read-back verification, per-item outcomes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from reconciler.client import Client
from reconciler.diff import remote_essence
from reconciler.drift import display_consistent
from reconciler.errors import ApiError
from reconciler.models import Action, ApplyReport, Change, Outcome, Plan, RemoteSecret, SecretValue, Status

log = logging.getLogger("reconciler.apply")

# Called after each verified write with the change and the secret as read back. A delete or a create
# is recorded (with None) before it is sent as well: a state must never claim a secret that may
# already be gone, and must know of a create whose answer may be lost.
Recorder = Callable[[Change, RemoteSecret | None], None]
# Called with each change's outcome as soon as it is known (verified, failed or skipped), in any order.
Progress = Callable[[Outcome], None]
# A change sent: its index in the plan's actionable changes, the change, and the secret a create made.
Written = tuple[int, Change, RemoteSecret | None]


class VerificationError(ApiError):
    """The secret read back after a write does not hold what was written."""


@dataclass
class _Blocked:
    """Names and default slots that a failed change was meant to free; work needing them waits."""

    names: set[str] = field(default_factory=set)
    defaults: set[tuple[object, object]] = field(default_factory=set)

    def reason(self, change: Change) -> str | None:
        if change.action in (Action.CREATE, Action.RENAME) and change.secret_name in self.names:
            return f"skipped: the name {change.secret_name!r} was to be freed by a change that failed"
        if change.patch.get("is_default_for_tool") is True:
            slot = _slot(change)
            if slot in self.defaults:
                return "skipped: another secret still holds the default for this tool and argument"
        return None

    def fail(self, change: Change) -> None:
        if change.action is Action.DELETE:
            self.names.add(change.secret_name)
        if change.previous_name is not None:
            self.names.add(change.previous_name)
        if change.patch.get("is_default_for_tool") is False:
            self.defaults.add(_slot(change))


def _slot(change: Change) -> tuple[object, object]:
    remote = change.remote
    tool = change.patch.get("tool_name", remote.tool_name if remote else None)
    arg = change.patch.get("tool_arg", remote.tool_arg if remote else None)
    return (tool, arg)


async def execute(
    plan: Plan,
    client: Client,
    *,
    concurrency: int = 4,
    recorder: Recorder | None = None,
    checkpoint: Callable[[], None] | None = None,
    progress: Progress | None = None,
    stop: asyncio.Event | None = None,
    account_size: int = 0,
) -> ApplyReport:
    """Apply every actionable change; one failure does not stop the others. Outcomes in plan order.

    Phases run one after another (deletes, then what frees names or defaults, then updates, then
    creates); inside a phase up to `concurrency` writes are in flight.
    """
    work = list(plan.actionable)
    run = _Run(client, asyncio.Semaphore(max(1, concurrency)), recorder, checkpoint, progress, stop)
    for phase in sorted({c.phase for c in work}):
        batch = [(i, c) for i, c in enumerate(work) if c.phase == phase]
        run.announce([c for _, c in batch if c.action in (Action.DELETE, Action.CREATE)])
        results = await asyncio.gather(*(run.write(i, c) for i, c in batch))
        written = [r for r in results if r is not None]
        await _verify_all(written, client, run.limit, account_size, run.verified)
        if checkpoint is not None:
            checkpoint()
    return ApplyReport(outcomes=tuple(run.outcomes[i] for i in range(len(work))), interrupted=run.stopped)


@dataclass
class _Run:
    """One apply under way: what it calls back, what is blocked, and the outcomes known so far."""

    client: Client
    limit: asyncio.Semaphore
    recorder: Recorder | None
    checkpoint: Callable[[], None] | None
    progress: Progress | None
    stop: asyncio.Event | None
    blocked: _Blocked = field(default_factory=_Blocked)
    # By the change's index in the plan's actionable changes.
    outcomes: dict[int, Outcome] = field(default_factory=dict)

    @property
    def stopped(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def settle(self, index: int, outcome: Outcome) -> None:
        self.outcomes[index] = outcome
        if self.progress is not None:
            self.progress(outcome)

    def announce(self, announced: list[Change]) -> None:
        """Record the deletes and creates of a phase before any of them is sent."""
        if not announced or self.recorder is None or self.stopped:
            return
        # Forget first, then delete: killed in between, the state lacks an entry for a secret
        # that still exists (the next plan sees it again) instead of holding one that is gone.
        # A create is journaled before it is sent, so that a lost answer is looked for next time.
        for change in announced:
            self.recorder(change, None)
        if self.checkpoint is not None:
            self.checkpoint()

    async def write(self, index: int, change: Change) -> Written | None:
        """Send one change, unless the run stopped or a failure blocks it; None once it is settled."""
        async with self.limit:
            if self.stopped:
                self.settle(index, Outcome(change, Status.SKIPPED, "not started: interrupted"))
                return None
            why = self.blocked.reason(change)
            if why is not None:
                self.settle(index, Outcome(change, Status.SKIPPED, why, change.secret_id))
                return None
            try:
                created = await _write(change, self.client)
            except ApiError as exc:
                # An attempt the server carried out before answering with an error is a write that
                # happened: it is verified and recorded like any other, so the state does not lag it.
                if not await _landed(change, self.client):
                    self.blocked.fail(change)
                    failed = Outcome(
                        change,
                        Status.FAILED,
                        str(exc),
                        change.secret_id,
                        in_doubt=exc.in_doubt,
                        unsettled=exc.unsettled,
                    )
                    self.settle(index, failed)
                    return None
                log.info(
                    "%s %r took effect although the server answered an error",
                    change.action,
                    change.secret_name,
                )
                created = None
            return index, change, created

    def verified(self, index: int, outcome: Outcome, after: RemoteSecret | None) -> None:
        """Record a verified write; a failed one blocks what it was meant to free."""
        if outcome.status is Status.OK and self.recorder is not None:
            self.recorder(outcome.change, after)
        elif outcome.status is Status.FAILED:
            self.blocked.fail(outcome.change)
        self.settle(index, outcome)


async def _write(change: Change, client: Client) -> RemoteSecret | None:
    """Send one change; a create returns the new secret so its id is known."""
    if change.action is Action.DELETE:
        assert change.secret_id is not None
        await client.delete(change.secret_id)
        return None
    if change.action is Action.CREATE:
        return await client.create(change.patch)
    assert change.secret_id is not None
    await client.update(change.secret_id, change.patch)
    return None


async def _landed(change: Change, client: Client) -> bool:
    """Whether a PATCH that failed took effect anyway: the secret moved on since it was planned and
    holds every field written (and a display consistent with the value written)."""
    if change.action not in (Action.UPDATE, Action.RENAME) or change.secret_id is None:
        return False
    if change.remote is None or not change.remote.updated_at:
        return False
    try:
        after = await client.get(change.secret_id)
        if after.updated_at == change.remote.updated_at:
            return False
        _verify(change, after)
    except ApiError:
        return False
    return True


async def _verify_all(
    written: list[Written],
    client: Client,
    limit: asyncio.Semaphore,
    account_size: int,
    verified: Callable[[int, Outcome, RemoteSecret | None], None],
) -> None:
    """Read every written secret back, handing each outcome to `verified` as soon as it is known.
    Many writes are checked against one listing, which costs a request per hundred secrets instead of
    one request per write."""
    if not written:
        return
    listed: dict[str, RemoteSecret] = {}
    # Only a listing proven whole shows that a secret it lacks is gone; without one, each secret it
    # lacks is read by itself.
    whole = False
    if len(written) > account_size // 100 + 3:
        # Reading writes back needs pages read once; a delete is proven gone by a listing read twice.
        once = all(change.action is not Action.DELETE for _, change, _ in written)
        try:
            listing = await client.list_secrets(once=once, expect=account_size)
        except ApiError:
            listing = None
        if listing is not None:
            listed = {s.secret_id: s for s in listing.secrets}
            whole = listing.whole and not listing.assumed

    async def check(item: Written) -> None:
        index, change, created = item
        secret_id = created.secret_id if created is not None else change.secret_id
        assert secret_id is not None
        try:
            after = listed.get(secret_id) if whole or secret_id in listed else await _read(change, secret_id)
        except ApiError as exc:
            unread = (
                f"{change.action.value} {change.secret_name!r} was sent, but reading it back failed, so it "
                f"is neither verified nor recorded ({exc}); plan again"
            )
            verified(index, Outcome(change, Status.FAILED, unread, secret_id), None)
            return
        try:
            _verify(change, after)
        except ApiError as exc:
            verified(index, Outcome(change, Status.FAILED, str(exc), secret_id), None)
            return
        verified(index, Outcome(change, Status.OK, "", secret_id), after)

    async def _read(change: Change, secret_id: str) -> RemoteSecret | None:
        async with limit:
            if change.action is Action.DELETE:
                return await client.get(secret_id) if await client.exists(secret_id) else None
            return await client.get(secret_id)

    await asyncio.gather(*(check(item) for item in written))


def _verify(change: Change, after: RemoteSecret | None) -> None:
    if change.action is Action.DELETE:
        if after is not None:
            raise VerificationError(f"deleted {change.secret_name!r} but it can still be read back")
        return
    if after is None:
        raise VerificationError(
            f"{change.action.value} {change.secret_name!r}: the server accepted the write but the "
            "secret cannot be read back; plan again"
        )
    fields = [name for name in change.patch if name != "secret_value"]
    expected = {name: change.patch[name] for name in fields}
    actual = remote_essence(after, fields)
    wrong = sorted(name for name in fields if expected[name] != actual[name])
    value = change.patch.get("secret_value")
    if isinstance(value, SecretValue) and display_consistent(value, after.display) is False:
        wrong.append("secret_value")
    if wrong:
        raise VerificationError(
            f"{change.action.value} {change.secret_name!r}: read back after writing, "
            f"{', '.join(wrong)} {'does' if len(wrong) == 1 else 'do'} not hold the value written; "
            "plan again to see the difference"
        )
