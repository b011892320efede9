"""Frozen value types shared by every layer: secrets desired and remote, changes, plans, outcomes."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Literal, NoReturn

FieldValue = str | bool | None
SENSITIVE = "(sensitive)"


@dataclass(frozen=True)
class SecretField:
    """One field of an io.net secret, and what reconciler does with it."""

    name: str
    # Its JSON type in the API (an answer may send null instead).
    json_type: Literal["string", "boolean"]
    # What it reads as when an answer leaves it out or sends null.
    default: FieldValue = None
    # An answer without it, or with null, is malformed.
    required: bool = False
    # The API answers it (an attribute of RemoteSecret, in this table's order); the value is write-only.
    answered: bool = True
    # A desired-state entry manages it: compared with the account, and sent when it differs. In the
    # file a managed string is null or 1 to 1024 characters and a boolean is null, true or false,
    # as its property in schemas/desired-state.schema.json says (a test holds the two together).
    managed: bool = False
    # Never printed: every output reads (sensitive) instead, and RemoteSecret keeps it out of repr.
    sensitive: bool = False


# Every field of a secret, read by the answer parser, the desired-state schema and loader, diff,
# import and render. A new API field is a row here and its RemoteSecret attribute, plus, when a
# desired-state file may state it, its property in the JSON Schema.
SECRET_FIELDS: tuple[SecretField, ...] = (
    SecretField("secret_id", "string", required=True),
    SecretField("secret_name", "string", required=True, managed=True),
    SecretField("tool_name", "string", managed=True),
    SecretField("tool_arg", "string", managed=True),
    SecretField("is_default_for_tool", "boolean", default=False, managed=True),
    SecretField("created_at", "string", default=""),
    SecretField("updated_at", "string", default=""),
    SecretField("user_id", "string", default=""),
    SecretField("display", "string", sensitive=True),
    # Sent, never answered nor compared: plan decides it from fingerprints and the display.
    SecretField("secret_value", "string", answered=False, sensitive=True),
)
ANSWERED_FIELDS: tuple[SecretField, ...] = tuple(f for f in SECRET_FIELDS if f.answered)
# The managed fields in render order; all but the name are managed only where an entry states them.
COMPARABLE_FIELDS: tuple[str, ...] = tuple(f.name for f in SECRET_FIELDS if f.managed)
OPTIONAL_FIELDS: tuple[str, ...] = tuple(f.name for f in SECRET_FIELDS if f.managed and not f.required)
BOOLEAN_FIELDS: frozenset[str] = frozenset(f.name for f in SECRET_FIELDS if f.json_type == "boolean")
SENSITIVE_FIELDS: frozenset[str] = frozenset(f.name for f in SECRET_FIELDS if f.sensitive)
# A create whose answer was lost may still land on the server this long after it was sent: until then
# the name is looked for, never sent again.
PENDING_CREATE_HOLD_S = 600


class SecretValue:
    """A resolved secret value. Only `reveal()` gives the plain text; every other view is masked."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return f"SecretValue({SENSITIVE!r})"

    def __str__(self) -> str:
        return SENSITIVE

    def __format__(self, spec: str) -> str:
        return SENSITIVE

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretValue):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(("SecretValue", self._value))

    def __reduce__(self) -> NoReturn:
        raise TypeError("SecretValue cannot be pickled")


def frozen_map(data: Mapping[str, FieldValue] | None = None) -> Mapping[str, FieldValue]:
    return MappingProxyType(dict(data or {}))


# Types held once or more per secret have slots: a 50,000-secret plan holds about 200,000 of them,
# and an instance without a __dict__ is a third smaller.
@dataclass(frozen=True, slots=True)
class Location:
    """Where a node sits in a user-written file (1-based line and column)."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Prune:
    """Whether unlisted remote secrets are deleted, and which names are in scope (empty: all)."""

    enabled: bool = False
    match: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DesiredSecret:
    """One entry of the desired-state file, its value resolved (or None when offline)."""

    secret_name: str
    # Only the fields the entry states are managed; an explicit None means "must be empty".
    fields: Mapping[str, FieldValue] = field(default_factory=frozen_map)
    value: SecretValue | None = None
    # A printable description of where the value comes from, e.g. "${GITHUB_TOKEN}"; never the value.
    value_ref: str = ""
    previous_names: tuple[str, ...] = ()
    protect: bool = False
    secret_id: str | None = None
    location: Location | None = None
    # The rotation policy in hours (`max_age`), None when the entry states none.
    max_age_hours: int | None = None


@dataclass(frozen=True)
class DesiredState:
    """The whole desired-state file."""

    path: str
    secrets: tuple[DesiredSecret, ...] = ()
    prune: Prune = Prune()
    allow_plaintext: bool = False
    workflows: tuple[str, ...] = ()
    # sha256 of the file's bytes, so a saved plan can tell that the file changed.
    digest: str = ""
    # True when `secrets:` was missing or empty in the file.
    secrets_empty: bool = False
    # `tool_credentials:` of the file: (tool name glob, credential arguments), in file order.
    tool_credentials: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # The top-level `max_age` in hours: the policy of every entry that states none.
    max_age_hours: int | None = None


@dataclass(frozen=True, slots=True)
class RemoteSecret:
    """One secret as the API reports it: the answered fields of SECRET_FIELDS, in its order.
    `display` is sensitive: it is kept out of repr."""

    secret_id: str
    secret_name: str
    tool_name: str | None = None
    tool_arg: str | None = None
    is_default_for_tool: bool = False
    created_at: str = ""
    updated_at: str = ""
    user_id: str = ""
    display: str | None = field(default=None, repr=False)

    def field_value(self, name: str) -> FieldValue:
        value: FieldValue = getattr(self, name)
        return value


@dataclass(frozen=True, slots=True)
class StateEntry:
    """What reconciler last wrote for one secret: keyed fingerprints only, never a value or display."""

    secret_id: str
    secret_name: str
    # HMAC-SHA256 of the value we last wrote (or adopted), under the state key; empty when the state
    # was written under a key that is gone (the entry keeps its watermark).
    fingerprint: str = ""
    # The watermark: `updated_at` as seen right after our own write.
    updated_at: str = ""
    # Someone wrote the secret after us and nothing proved the value; stays set until re-sent.
    value_unverified: bool = False
    protect: bool = False
    # The remote `updated_at` of the write that first sent the value now fingerprinted: how old the
    # value is. Empty when unknown (adopted, or recorded before the state knew it).
    value_written_at: str = ""


@dataclass(frozen=True)
class PendingCreate:
    """A create sent whose answer may be lost: recorded before the POST, removed once settled."""

    secret_name: str
    # Keyed fingerprints of the value and of the other fields sent, never the value.
    fingerprint: str
    fields_digest: str
    # When it was sent (UTC, ISO 8601, this machine's clock).
    sent_at: str
    # Its answer was lost while the server may still be working on it (a timeout): held back from
    # being sent again for PENDING_CREATE_HOLD_S. Otherwise the run ended before the create settled
    # (killed), and the next run only looks for the name first.
    in_doubt: bool = False


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    RENAME = "rename"
    DELETE = "delete"
    NOOP = "noop"


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field's before and after. For `secret_value` both sides are hidden."""

    field: str
    before: FieldValue
    after: FieldValue
    sensitive: bool = False


PatchValue = FieldValue | SecretValue
# The patch of every change that sends nothing, shared (it cannot be changed).
_NO_PATCH: Mapping[str, PatchValue] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Change:
    """One secret's planned change. `patch` is the exact request body (POST or PATCH)."""

    action: Action
    secret_name: str
    secret_id: str | None = None
    fields: tuple[FieldChange, ...] = ()
    patch: Mapping[str, PatchValue] = field(default_factory=lambda: _NO_PATCH)
    # Why this change is planned, in reviewer's words ("value differs from display", "prune: true").
    reasons: tuple[str, ...] = ()
    # The remote secret the change was planned against (None for create): the apply precondition.
    remote: RemoteSecret | None = None
    # Execution phase: lower phases finish before higher ones start (deletes free quota and names).
    phase: int = 0
    previous_name: str | None = None


class Verdict(StrEnum):
    IN_SYNC = "in_sync"
    DESIRED_CHANGED = "desired_changed"
    REMOTE_VALUE_CHANGED = "remote_value_changed"
    REMOTE_WRITTEN = "remote_written"
    NO_BASELINE = "no_baseline"
    FIELDS_CHANGED = "fields_changed"
    DELETED = "deleted_remotely"
    ADDED = "added_remotely"
    DIFFERS_NO_BASELINE = "differs_no_baseline"
    MISSING_NO_BASELINE = "missing_no_baseline"
    STALE = "stale"


@dataclass(frozen=True, slots=True)
class DriftItem:
    """Something that changed outside reconciler, kept apart from what the file asks for."""

    secret_name: str
    secret_id: str | None
    verdict: Verdict
    detail: str
    # before: what the account holds (found), after: what the file says; drift reads after -> before.
    fields: tuple[FieldChange, ...] = ()
    # For `stale`: the value's age in days, and what it is measured from ("value_write": our recorded
    # write of the value; "updated_at": the remote timestamp, a lower bound since any write moves it).
    age_days: float | None = None
    age_source: str | None = None


@dataclass(frozen=True)
class WorkflowNote:
    """A workflow coverage finding shown beside a plan: one located line, never a value."""

    severity: str
    text: str


@dataclass(frozen=True)
class ListingNote:
    """How the account was read: the dialect its list spoke, what proved the listing whole, counts.

    `assumed`: nothing proved it whole; `--assume-complete-listing` said to go on anyway.
    """

    dialect: str
    proof: str
    secrets: int
    requests: int
    assumed: bool = False


@dataclass(frozen=True)
class Plan:
    """Everything `apply` would do, in execution order, plus drift and warnings."""

    changes: tuple[Change, ...] = ()
    drift: tuple[DriftItem, ...] = ()
    warnings: tuple[str, ...] = ()
    workflows: tuple[WorkflowNote, ...] = ()
    # Values older than their max_age: findings of `drift`, notes of `plan` (never a change).
    stale: tuple[DriftItem, ...] = ()
    # Said once at the top of a drift report when there is no state to compare with.
    notice: str = ""
    # Secrets found to be our own creates whose answer was lost: apply records them without a write.
    recovered: tuple[str, ...] = ()
    # The listing the plan was made from (None for a plan built without one, as in tests).
    listing: ListingNote | None = None

    def summary(self) -> dict[str, int]:
        counts = {a.value: 0 for a in Action}
        for change in self.changes:
            counts[change.action.value] += 1
        return counts

    @property
    def actionable(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action is not Action.NOOP)

    @property
    def has_changes(self) -> bool:
        return any(c.action is not Action.NOOP for c in self.changes)


class Status(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one change during apply."""

    change: Change
    status: Status
    message: str = ""
    secret_id: str | None = None
    # A failed write that may still have taken effect (a timed-out create, say).
    in_doubt: bool = False
    # A failed create the server answered, but that could not be checked for having landed.
    unsettled: bool = False


@dataclass(frozen=True)
class ApplyReport:
    outcomes: tuple[Outcome, ...] = ()
    interrupted: bool = False
    # `apply --adopt`: the secrets whose baselines were recorded without a write (None: not asked).
    adopted: tuple[str, ...] | None = None

    @property
    def failed(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.status is Status.FAILED)
