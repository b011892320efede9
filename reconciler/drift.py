"""Verdicts on write-only values: what the state, the timestamps and the masked display prove (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.models import RemoteSecret, SecretValue, StateEntry, Verdict

# Characters a masked display may use to hide the middle of a value.
MASK_CHARS = frozenset("*•●·…")


def display_consistent(value: SecretValue, display: str | None) -> bool | None:
    """True when `display` could mask `value`, False when it proves a different value, None when unknown.

    The display keeps a visible start and end around a run of mask characters; a display without any
    mask character shows the whole (short) value.
    """
    if not display:
        return None
    plain = value.reveal()
    masked = [i for i, ch in enumerate(display) if ch in MASK_CHARS]
    if not masked:
        return plain == display
    head = display[: masked[0]]
    tail = display[masked[-1] + 1 :]
    if len(plain) < len(head) + len(tail):
        return False
    return plain.startswith(head) and plain.endswith(tail)


@dataclass(frozen=True)
class ValueVerdict:
    """The value's verdict for one matched secret and whether the plan re-sends the value."""

    verdict: Verdict
    send: bool
    reason: str
    # Reported as drift (a change made outside reconciler), not as a change the file asks for.
    drift: bool = False
    # The state must keep the value marked unverified after this apply.
    unverified: bool = False


def value_verdict(
    *,
    value: SecretValue,
    remote: RemoteSecret,
    entry: StateEntry | None,
    desired_fingerprint: str | None,
    heal: bool = False,
    force: bool = False,
) -> ValueVerdict:
    """Combine the three signals: our last write, the remote timestamp, and the masked display."""
    consistent = display_consistent(value, remote.display)
    verdict = _verdict(consistent, remote, entry, desired_fingerprint)
    if verdict is Verdict.DESIRED_CHANGED:
        return ValueVerdict(verdict, True, "the desired value changed since the last apply")
    if verdict is Verdict.REMOTE_VALUE_CHANGED:
        why = "the remote value was changed outside reconciler (its display no longer matches)"
        if entry is None:
            why = "the remote display shows a different value"
        return ValueVerdict(verdict, True, why, drift=entry is not None)
    if verdict is Verdict.REMOTE_WRITTEN:
        if heal or force:
            return ValueVerdict(verdict, True, "re-sending an unverified value (--heal)", drift=True)
        return ValueVerdict(
            verdict,
            False,
            "written outside reconciler after the last apply; the value is unverified "
            "(apply --heal re-sends it)",
            drift=True,
            unverified=True,
        )
    if force:
        return ValueVerdict(verdict, True, "re-sent on request (--force-values)")
    if verdict is Verdict.NO_BASELINE:
        return ValueVerdict(verdict, False, "no state for this secret; the display matches the desired value")
    return ValueVerdict(verdict, False, "in sync")


def _verdict(
    consistent: bool | None,
    remote: RemoteSecret,
    entry: StateEntry | None,
    desired_fingerprint: str | None,
) -> Verdict:
    if entry is None or desired_fingerprint is None:
        return Verdict.REMOTE_VALUE_CHANGED if consistent is False else Verdict.NO_BASELINE
    if entry.fingerprint != desired_fingerprint:
        return Verdict.DESIRED_CHANGED
    if consistent is False:
        return Verdict.REMOTE_VALUE_CHANGED
    if entry.value_unverified or remote.updated_at != entry.updated_at:
        return Verdict.REMOTE_WRITTEN
    return Verdict.IN_SYNC
