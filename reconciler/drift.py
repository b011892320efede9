"""Verdicts on write-only values: what the state, the timestamps and the masked display prove, how old
a value is, and how much of it the display gives away (pure)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from reconciler.models import DesiredSecret, DriftItem, RemoteSecret, SecretValue, StateEntry, Verdict

# Characters a masked display may use to hide the middle of a value.
MASK_CHARS = frozenset("*•●·…")
_MASK = "[" + "".join(sorted(MASK_CHARS)) + "]"
# The visible start (before the first mask character) and end (after the last one) of a display.
_MASKED = re.compile(f"([^{_MASK[1:]}*){_MASK}(?:.*{_MASK})?([^{_MASK[1:]}*)", re.DOTALL)


def display_consistent(value: SecretValue, display: str | None) -> bool | None:
    """True when `display` could mask `value`, False when it proves a different value, None when unknown.

    The display keeps a visible start and end around a run of mask characters; a display without any
    mask character shows the whole (short) value.
    """
    if not display:
        return None
    plain = value.reveal()
    masked = _MASKED.fullmatch(display)
    if masked is None:
        return plain == display
    head, tail = masked.group(1, 2)
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
        return _NO_BASELINE
    return _IN_SYNC


# The verdicts of nearly every secret of a large account, made once.
_NO_BASELINE = ValueVerdict(
    Verdict.NO_BASELINE, False, "no state for this secret; the display matches the desired value"
)
_IN_SYNC = ValueVerdict(Verdict.IN_SYNC, False, "in sync")


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


# --- how old a value is ----------------------------------------------------------------------------

AGE_FROM_VALUE_WRITE = "value_write"
AGE_FROM_UPDATED_AT = "updated_at"


def parse_time(text: str) -> datetime | None:
    """An ISO 8601 timestamp as an aware datetime (UTC when it names no zone); None when unreadable."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def hours_text(hours: int) -> str:
    """A max_age as the file would write it: 2w, 30d, 12h."""
    if hours % 168 == 0:
        return f"{hours // 168}w"
    if hours % 24 == 0:
        return f"{hours // 24}d"
    return f"{hours}h"


def _age_text(age: timedelta) -> str:
    hours = int(age.total_seconds() // 3600)
    if hours >= 48:
        return f"{hours // 24} days"
    return f"{hours} hour{'' if hours == 1 else 's'}"


def value_age(entry: StateEntry | None, remote: RemoteSecret, now: datetime) -> tuple[timedelta, str] | None:
    """How old the remote value is, and from what: our recorded write of it while nothing has written
    the secret since; otherwise the remote `updated_at`, a lower bound (any write moves it)."""
    recorded = (
        entry is not None
        and entry.value_written_at
        and not entry.value_unverified
        and remote.updated_at == entry.updated_at
    )
    if recorded:
        assert entry is not None
        since, source = parse_time(entry.value_written_at), AGE_FROM_VALUE_WRITE
    else:
        since, source = parse_time(remote.updated_at), AGE_FROM_UPDATED_AT
    if since is None:
        return None
    return max(now - since, timedelta(0)), source


def stale_finding(
    name: str,
    remote: RemoteSecret,
    entry: StateEntry | None,
    *,
    now: datetime,
    max_age_hours: int,
    new_value_planned: bool = False,
) -> DriftItem | None:
    """A finding when the value is older than its max_age; None when it is not, or cannot be told."""
    measured = value_age(entry, remote, now)
    if measured is None:
        return None
    age, source = measured
    if age <= timedelta(hours=max_age_hours):
        return None
    policy = hours_text(max_age_hours)
    if source == AGE_FROM_VALUE_WRITE:
        detail = f"the value is {_age_text(age)} old (sent by reconciler), older than its max_age {policy}"
    else:
        detail = (
            f"the value is at least {_age_text(age)} old (by the secret's updated_at: any write moves it, "
            f"so it may be older), older than its max_age {policy}"
        )
    detail += "; the file holds a new value not applied yet" if new_value_planned else "; rotate it"
    days = round(age.total_seconds() / 86400, 2)
    return DriftItem(name, remote.secret_id, Verdict.STALE, detail, age_days=days, age_source=source)


# --- what the display gives away ------------------------------------------------------------------

# io.net does not document how many characters a display shows; these are what validate assumes.
ASSUMED_HEAD = 4
ASSUMED_TAIL = 4


def display_shape(remote: Iterable[RemoteSecret]) -> tuple[int, int] | None:
    """The most leading and trailing characters the account's masked displays show, or None when the
    account has no masked display to read them from."""
    head = tail = -1
    for secret in remote:
        masked = _MASKED.fullmatch(secret.display or "")
        if masked is not None:
            head = max(head, len(masked.group(1)))
            tail = max(tail, len(masked.group(2)))
    return (head, tail) if head >= 0 else None


def exposure_warnings(secrets: Iterable[DesiredSecret], remote: Iterable[RemoteSecret]) -> tuple[str, ...]:
    """Display warnings for a plan, with the head and tail counts read from the account's displays."""
    shape = display_shape(remote)
    if shape is None:
        return exposure(secrets, ASSUMED_HEAD, ASSUMED_TAIL, "assumed: the account shows no masked display")
    return exposure(secrets, shape[0], shape[1], "as the account's displays show")


def exposure(secrets: Iterable[DesiredSecret], head: int, tail: int, source: str) -> tuple[str, ...]:
    """A warning per value whose display shows at least half of it: visible = min(head + tail, n).

    Names the secret and how many characters show, never which ones.
    """
    found: list[str] = []
    for secret in secrets:
        if secret.value is None:
            continue
        length = len(secret.value)
        visible = min(head + tail, length)
        if length and visible * 2 >= length:
            found.append(
                f"{secret.secret_name!r}: io.net's display shows {visible} of the value's {length} "
                f"characters ({head} first and {tail} last, {source}), at least half of it, to anyone "
                "who can read the account; use a longer value"
            )
    return tuple(found)
