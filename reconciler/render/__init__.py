"""Rendering: plans, drift and apply reports projected to text, Markdown and JSON (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reconciler.errors import UsageError

if TYPE_CHECKING:
    from reconciler.models import ApplyReport, ListingNote, Outcome, Plan
    from reconciler.render.records import ApplyView, DriftRow, FieldRow, JsonScalar, PlanView

__all__ = [
    "FORMATS",
    "GITHUB_COMMENT_LIMIT",
    "Origin",
    "outcome_line",
    "render_apply",
    "render_drift",
    "render_plan",
]

# The views are imported when a report is rendered, not when the command line starts: every command
# imports FORMATS for its --format choice.
FORMATS: tuple[str, ...] = ("text", "markdown", "json")
FORMAT_VERSION = "1"
# GitHub refuses comments over 65,536 characters; the default leaves room for a bot's own header.
GITHUB_COMMENT_LIMIT = 65_000


@dataclass(frozen=True)
class Origin:
    """What a report is about, for its reader: the account's host and the desired file (never the key),
    and the saved plan it was or will be applied from."""

    host: str = ""
    file: str = ""
    plan_id: str = ""
    plan_path: str = ""


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise UsageError(f"unknown output format {fmt!r}: use one of {', '.join(FORMATS)}")


def _dumps(payload: object) -> str:
    import json

    return json.dumps(payload, sort_keys=True, indent=2, ensure_ascii=False)


def render_plan(
    plan: Plan,
    fmt: str,
    *,
    color: bool = False,
    limit: int = GITHUB_COMMENT_LIMIT,
    origin: Origin | None = None,
) -> str:
    """The plan as `text`, `markdown` (a pull-request comment of at most `limit` chars) or `json`."""
    from reconciler.render.records import project_plan

    _check_format(fmt)
    view = project_plan(plan)
    origin = origin or Origin()
    if fmt == "json":
        return _dumps(_plan_json(view))
    if fmt == "markdown":
        from reconciler.render.markdown import plan_markdown

        return plan_markdown(view, limit, origin)
    from reconciler.render.text import plan_text

    return plan_text(view, color, origin)


def render_drift(plan: Plan, fmt: str, *, color: bool = False, origin: Origin | None = None) -> str:
    """Only the plan's drift and stale values, for scheduled runs: `No drift.` or one entry per
    finding, after the notice (said once, first) when there was no state to compare with."""
    from reconciler.render.records import project_plan

    _check_format(fmt)
    view = project_plan(plan)
    found = (*view.drift, *view.stale)
    if fmt == "json":
        items = [_drift_json(d) for d in found]
        notice = view.notice or None
        listing = _listing_json(view.listing)
        return _dumps(
            {"format_version": FORMAT_VERSION, "notice": notice, "drift": items, "listing": listing}
        )
    if fmt == "markdown":
        from reconciler.render.markdown import drift_markdown

        return drift_markdown(found, view.notice, origin or Origin())
    from reconciler.render.text import drift_text

    return drift_text(view, color)


def render_apply(report: ApplyReport, fmt: str, *, color: bool = False, origin: Origin | None = None) -> str:
    """What apply did, one line per outcome in order, then a summary line."""
    from reconciler.render.records import project_apply

    _check_format(fmt)
    view = project_apply(report)
    if fmt == "json":
        return _dumps(_apply_json(view))
    if fmt == "markdown":
        from reconciler.render.markdown import apply_markdown

        return apply_markdown(view, origin or Origin())
    from reconciler.render.text import apply_text

    return apply_text(view, color)


def outcome_line(outcome: Outcome) -> str:
    """One outcome as the text report words it, for progress lines while apply runs."""
    from reconciler.render.records import outcome_row, outcome_text

    return outcome_text(outcome_row(outcome))


# --- JSON ---------------------------------------------------------------------------------------


def _fields_json(rows: Sequence[FieldRow]) -> dict[str, dict[str, JsonScalar]]:
    return {row.field: {"before": row.before, "after": row.after} for row in rows}


def _drift_json(row: DriftRow) -> dict[str, object]:
    entry: dict[str, object] = {
        "secret_name": row.secret_name,
        "secret_id": row.secret_id,
        "verdict": row.verdict,
        "detail": row.detail,
        "fields": _fields_json(row.fields),
        # The direction it happened: what the file says, and what was found in the account.
        "file": {f.field: f.after for f in row.fields},
        "found": {f.field: f.before for f in row.fields},
    }
    if row.age_days is not None:
        entry["age_days"] = row.age_days
        entry["age_source"] = row.age_source
    return entry


def _listing_json(note: ListingNote | None) -> dict[str, object] | None:
    if note is None:
        return None
    return {
        "dialect": note.dialect,
        "proof": note.proof,
        "secrets": note.secrets,
        "requests": note.requests,
        "assumed": note.assumed,
    }


def _plan_json(view: PlanView) -> dict[str, object]:
    changes: list[dict[str, object]] = []
    for row in view.changes:
        entry: dict[str, object] = {
            "action": row.action.value,
            "secret_name": row.secret_name,
            "secret_id": row.secret_id,
            "fields": _fields_json(row.fields),
            "patch": dict(row.patch),
            "reasons": list(row.reasons),
        }
        if row.previous_name is not None:
            entry["previous_name"] = row.previous_name
        changes.append(entry)
    return {
        "format_version": FORMAT_VERSION,
        "summary": dict(view.summary),
        "changes": changes,
        "drift": [_drift_json(d) for d in view.drift],
        "notes": [_drift_json(d) for d in view.stale],
        "warnings": list(view.warnings),
        "workflows": [{"severity": severity, "finding": text} for severity, text in view.workflows],
        "listing": _listing_json(view.listing),
    }


def _apply_json(view: ApplyView) -> dict[str, object]:
    from reconciler.models import Status

    outcomes: list[dict[str, object]] = []
    for row in view.outcomes:
        entry: dict[str, object] = {
            "action": row.action.value,
            "secret_name": row.secret_name,
            "secret_id": row.secret_id,
            "status": row.status.value,
            "message": row.message,
        }
        if row.previous_name is not None:
            entry["previous_name"] = row.previous_name
        outcomes.append(entry)
    return {
        "format_version": FORMAT_VERSION,
        "interrupted": view.interrupted,
        "outcomes": outcomes,
        "adopted": None if view.adopted is None else list(view.adopted),
        "summary": {
            "succeeded": view.count(Status.OK),
            "failed": view.count(Status.FAILED),
            "skipped": view.count(Status.SKIPPED),
        },
    }
