"""The text views: plans like Terraform's, drift and apply reports, coloured only when asked."""

from __future__ import annotations

from reconciler.models import Action, Status
from reconciler.render import Origin
from reconciler.render.records import (
    NO_CHANGES,
    SYMBOL,
    ApplyView,
    PlanView,
    apply_summary,
    change_header,
    delete_warning,
    drift_lines,
    field_text,
    outcome_text,
    plan_counts,
    visible,
    workflow_counts,
)
from reconciler.text import plural

_GREEN = "\x1b[32m"
_YELLOW = "\x1b[33m"
_RED = "\x1b[31m"
_BOLD_RED = "\x1b[1;31m"
_RESET = "\x1b[0m"

_COLOUR = {
    Action.CREATE: _GREEN,
    Action.UPDATE: _YELLOW,
    Action.RENAME: _YELLOW,
    Action.DELETE: _RED,
    Action.NOOP: "",
}
_STATUS_COLOUR = {Status.OK: _GREEN, Status.FAILED: _RED, Status.SKIPPED: _YELLOW}


def _paint(text: str, colour: str, color: bool) -> str:
    return f"{colour}{text}{_RESET}" if color and colour else text


def plan_text(view: PlanView, color: bool, origin: Origin) -> str:
    out: list[str] = []
    deletes = view.count(Action.DELETE)
    if deletes:
        out += [_paint(f"WARNING: {delete_warning(deletes)}", _BOLD_RED, color), ""]
    for row in view.changes:
        out.append(_paint(change_header(row, SYMBOL[row.action]), _COLOUR[row.action], color))
        out.extend(f"    # {visible(reason)}" for reason in row.reasons)
        for field in row.fields:
            out.append(f"    {field_text(field, row.action)}")
        out.append("")
    out.append(f"Plan: {plan_counts(view)}" if view.changes else NO_CHANGES)
    if view.warnings:
        out += ["", "Warnings:"]
        out.extend(_paint(f"  - {visible(w)}", _YELLOW, color) for w in view.warnings)
    if view.drift:
        out += ["", "Drift (changed outside reconciler):"]
        for item in view.drift:
            first, *rest = drift_lines(item)
            out.append(_paint(first, _YELLOW, color))
            out.extend(rest)
    if view.stale:
        out += ["", "Notes (values older than their max_age; not a change):"]
        out.extend(line for item in view.stale for line in drift_lines(item, "-"))
    if view.workflows and view.workflow_errors:
        out += ["", f"Workflows (tools and the secrets that cover them): {workflow_counts(view)}"]
        for severity, text in view.workflows:
            out.append(_paint(f"  {visible(text)}", _RED if severity == "error" else _YELLOW, color))
    elif view.workflows:
        # Warnings alone are lint, shown in full by `validate` and `workflows check`: one line here,
        # so a plan run at every step does not repeat them.
        command = f"reconciler workflows check {visible(origin.file)}" if origin.file else "workflows check"
        count = plural(len(view.workflows), "warning")
        out += ["", f"Workflows: {count}, no errors (`{command}` lists them)."]
    return "\n".join(out)


def drift_text(view: PlanView, color: bool) -> str:
    found = (*view.drift, *view.stale)
    out = [_paint(f"Note: {visible(view.notice)}", _YELLOW, color), ""] if view.notice else []
    if not found:
        return "\n".join([*out, "No drift."])
    for item in found:
        first, *rest = drift_lines(item)
        out.append(_paint(first, _YELLOW, color))
        out.extend(rest)
    out += ["", f"Drift found: {plural(len(found), 'item')}."]
    return "\n".join(out)


def apply_text(view: ApplyView, color: bool) -> str:
    out = [_paint(outcome_text(row), _STATUS_COLOUR[row.status], color) for row in view.outcomes]
    out.append(apply_summary(view))
    return "\n".join(out)
