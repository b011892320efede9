"""The records every view formats: one masked projection of plans and reports, and the shared wording."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from reconciler.models import (
    SENSITIVE,
    SENSITIVE_FIELDS,
    Action,
    ApplyReport,
    Change,
    DriftItem,
    FieldChange,
    ListingNote,
    Outcome,
    PatchValue,
    Plan,
    SecretValue,
    Status,
)
from reconciler.text import plural

NO_CHANGES = "No changes. The account matches the desired state."


SYMBOL = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.RENAME: "~",
    Action.DELETE: "-",
    Action.NOOP: "=",
}
PAST = {
    Action.CREATE: "created",
    Action.UPDATE: "updated",
    Action.RENAME: "renamed",
    Action.DELETE: "deleted",
    Action.NOOP: "unchanged",
}
# What a reviewer must see first when a comment has to be cut: deletes are permanent on io.net.
PRIORITY = {Action.DELETE: 0, Action.UPDATE: 1, Action.RENAME: 1, Action.CREATE: 2, Action.NOOP: 3}

# Characters that would let a name rewrite the terminal or hide text: controls, bidi, separators.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})

JsonScalar = str | bool | None


@dataclass(frozen=True)
class FieldRow:
    field: str
    before: JsonScalar
    after: JsonScalar
    sensitive: bool


@dataclass(frozen=True)
class ChangeRow:
    action: Action
    secret_name: str
    secret_id: str | None
    previous_name: str | None
    fields: tuple[FieldRow, ...]
    patch: tuple[tuple[str, JsonScalar], ...]
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class DriftRow:
    secret_name: str
    secret_id: str | None
    verdict: str
    detail: str
    # before: found in the account; after: what the file says.
    fields: tuple[FieldRow, ...]
    age_days: float | None = None
    age_source: str | None = None


@dataclass(frozen=True)
class PlanView:
    summary: tuple[tuple[str, int], ...]
    changes: tuple[ChangeRow, ...]
    drift: tuple[DriftRow, ...]
    warnings: tuple[str, ...]
    workflows: tuple[tuple[str, str], ...] = ()
    # Values older than their max_age: notes of a plan, findings of a drift report.
    stale: tuple[DriftRow, ...] = ()
    notice: str = ""
    listing: ListingNote | None = None

    def count(self, action: Action) -> int:
        return dict(self.summary).get(action.value, 0)

    @property
    def workflow_errors(self) -> int:
        return sum(1 for severity, _ in self.workflows if severity == "error")


@dataclass(frozen=True)
class OutcomeRow:
    action: Action
    secret_name: str
    secret_id: str | None
    previous_name: str | None
    status: Status
    message: str


@dataclass(frozen=True)
class ApplyView:
    outcomes: tuple[OutcomeRow, ...]
    interrupted: bool
    adopted: tuple[str, ...] | None = None

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status is status)


def _scalar(value: object) -> JsonScalar:
    if isinstance(value, SecretValue):
        return SENSITIVE
    if value is None or isinstance(value, str | bool):
        return value
    # A type the models do not declare: we cannot know it is safe to print.
    return SENSITIVE


def _field_row(fc: FieldChange, action: Action | None) -> FieldRow:
    hidden = (
        fc.sensitive
        or fc.field in SENSITIVE_FIELDS
        or isinstance(fc.before, SecretValue)
        or isinstance(fc.after, SecretValue)
    )
    if hidden:
        # Both sides of a secret are unknown to us; only "there was one" / "there will be one" is.
        before: JsonScalar = None if action is Action.CREATE else SENSITIVE
        after: JsonScalar = None if action is Action.DELETE else SENSITIVE
        return FieldRow(fc.field, before, after, True)
    return FieldRow(fc.field, _scalar(fc.before), _scalar(fc.after), False)


def _patch_value(key: str, value: PatchValue) -> JsonScalar:
    if key in SENSITIVE_FIELDS:
        return SENSITIVE
    return _scalar(value)


def _previous_name(change: Change) -> str | None:
    if change.previous_name is not None:
        return change.previous_name
    if change.action is Action.RENAME:
        for fc in change.fields:
            if fc.field == "secret_name" and isinstance(fc.before, str):
                return fc.before
    return None


def _change_row(change: Change) -> ChangeRow:
    return ChangeRow(
        action=change.action,
        secret_name=change.secret_name,
        secret_id=change.secret_id,
        previous_name=_previous_name(change),
        fields=tuple(_field_row(fc, change.action) for fc in change.fields),
        patch=tuple((key, _patch_value(key, value)) for key, value in change.patch.items()),
        reasons=tuple(change.reasons),
    )


def _drift_row(item: DriftItem) -> DriftRow:
    return DriftRow(
        secret_name=item.secret_name,
        secret_id=item.secret_id,
        verdict=item.verdict.value,
        detail=item.detail,
        fields=tuple(_field_row(fc, None) for fc in item.fields),
        age_days=item.age_days,
        age_source=item.age_source,
    )


def project_plan(plan: Plan) -> PlanView:
    return PlanView(
        summary=tuple(plan.summary().items()),
        changes=tuple(_change_row(c) for c in plan.actionable),
        drift=tuple(_drift_row(d) for d in plan.drift),
        warnings=tuple(plan.warnings),
        workflows=tuple((note.severity, note.text) for note in plan.workflows),
        stale=tuple(_drift_row(d) for d in plan.stale),
        notice=plan.notice,
        listing=plan.listing,
    )


def outcome_row(outcome: Outcome) -> OutcomeRow:
    change = outcome.change
    return OutcomeRow(
        action=change.action,
        secret_name=change.secret_name,
        secret_id=outcome.secret_id or change.secret_id,
        previous_name=_previous_name(change),
        status=outcome.status,
        message=outcome.message,
    )


def project_apply(report: ApplyReport) -> ApplyView:
    return ApplyView(
        outcomes=tuple(outcome_row(o) for o in report.outcomes),
        interrupted=report.interrupted,
        adopted=report.adopted,
    )


# --- shared wording -----------------------------------------------------------------------------


def visible(text: str) -> str:
    """Escape characters that could move the cursor, recolour the terminal or reorder text."""
    if text.isprintable():
        return text
    out: list[str] = []
    for ch in text:
        if unicodedata.category(ch) in _INVISIBLE_CATEGORIES:
            code = ord(ch)
            width = 2 if code < 0x100 else 4 if code < 0x10000 else 8
            out.append(f"\\{'x' if width == 2 else 'u' if width == 4 else 'U'}{code:0{width}x}")
        else:
            out.append(ch)
    return "".join(out)


def _quote(text: str) -> str:
    return '"' + visible(text.replace("\\", "\\\\").replace('"', '\\"')) + '"'


def value_text(value: JsonScalar, sensitive: bool) -> str:
    if value is None:
        return "null"
    if sensitive:
        return SENSITIVE
    if isinstance(value, bool):
        return "true" if value else "false"
    return _quote(value)


def field_text(row: FieldRow, action: Action | None) -> str:
    """One line per field: a create shows what it will set, a value change reads `rotated`, everything
    else before → after."""
    name = visible(row.field)
    after = value_text(row.after, row.sensitive)
    if action is Action.CREATE:
        return f"{name}: {after}"
    if row.sensitive and action in (Action.UPDATE, Action.RENAME):
        # Neither side can be shown: one line that says what happens, instead of (sensitive) twice.
        return f"{name}: rotated {SENSITIVE}"
    return f"{name}: {value_text(row.before, row.sensitive)} → {after}"


def target(name: str, previous: str | None, secret_id: str | None) -> str:
    shown = visible(name)
    if previous is not None and previous != name:
        shown = f"{visible(previous)} → {shown}"
    return shown + (f" ({visible(secret_id)})" if secret_id else "")


def change_header(row: ChangeRow, symbol: str) -> str:
    return f"{symbol} {row.action.value} {target(row.secret_name, row.previous_name, row.secret_id)}"


def drift_lines(row: DriftRow, mark: str = "!") -> list[str]:
    ident = f" ({visible(row.secret_id)})" if row.secret_id else ""
    lines = [f"{mark} {visible(row.secret_name)}{ident}: {row.verdict}: {visible(row.detail)}"]
    for field in row.fields:
        lines.append(f"    {_drift_field_text(field)}")
    return lines


def _drift_field_text(row: FieldRow) -> str:
    """A field the way it drifted: what the file says, then what was found in the account."""
    name = visible(row.field)
    if row.sensitive:
        return f"{name}: {SENSITIVE} (the file) → another value (found: its display proves it)"
    return f"{name}: {value_text(row.after, False)} (the file) → {value_text(row.before, False)} (found)"


def plan_counts(view: PlanView) -> str:
    return (
        f"{view.count(Action.CREATE)} to create, {view.count(Action.UPDATE)} to update, "
        f"{view.count(Action.RENAME)} to rename, {view.count(Action.DELETE)} to delete."
    )


def delete_warning(deletes: int) -> str:
    return f"this plan deletes {plural(deletes, 'secret')} (permanent on io.net)"


def workflow_counts(view: PlanView) -> str:
    errors = view.workflow_errors
    return f"{plural(errors, 'error')}, {plural(len(view.workflows) - errors, 'warning')}"


def outcome_text(row: OutcomeRow) -> str:
    name = target(row.secret_name, row.previous_name, None)
    message = visible(row.message)
    if row.status is Status.OK:
        return f"✓ {PAST[row.action]} {name}"
    if row.status is Status.FAILED:
        return f"✗ {row.action.value} {name} failed" + (f": {message}" if message else "")
    return f"- skipped {name}" + (f": {message}" if message else "")


def apply_counts(view: ApplyView) -> str:
    return (
        f"{view.count(Status.OK)} succeeded, {view.count(Status.FAILED)} failed, "
        f"{view.count(Status.SKIPPED)} skipped."
    )


def apply_summary(view: ApplyView) -> str:
    if view.adopted is not None and not view.outcomes:
        if not view.adopted:
            return "Nothing to adopt: every secret in the file already has a baseline; nothing was written."
        return (
            f"Adopted {plural(len(view.adopted), 'secret')}: their baselines are recorded in the state; "
            "nothing was written."
        )
    return f"Apply {'interrupted' if view.interrupted else 'complete'}: {apply_counts(view)}"
