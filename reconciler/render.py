"""Rendering: plans, drift and apply reports projected to text, Markdown and JSON (pure, no I/O)."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reconciler.errors import UsageError
from reconciler.models import (
    SENSITIVE,
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

FORMATS: tuple[str, ...] = ("text", "markdown", "json")
FORMAT_VERSION = "1"
# GitHub refuses comments over 65,536 characters; the default leaves room for a bot's own header.
GITHUB_COMMENT_LIMIT = 65_000
NO_CHANGES = "No changes. The account matches the desired state."

# Fields that hold a secret or a partial copy of one, masked even if a record forgot its flag.
_SENSITIVE_FIELDS = frozenset({"secret_value", "display"})

_GREEN = "\x1b[32m"
_YELLOW = "\x1b[33m"
_RED = "\x1b[31m"
_BOLD_RED = "\x1b[1;31m"
_RESET = "\x1b[0m"

_SYMBOL = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.RENAME: "~",
    Action.DELETE: "-",
    Action.NOOP: "=",
}
_COLOUR = {
    Action.CREATE: _GREEN,
    Action.UPDATE: _YELLOW,
    Action.RENAME: _YELLOW,
    Action.DELETE: _RED,
    Action.NOOP: "",
}
# GitHub's diff highlighting knows +, - and ! (changed); ~ would render uncoloured.
_DIFF_SYMBOL = {**_SYMBOL, Action.UPDATE: "!", Action.RENAME: "!", Action.NOOP: " "}
_PAST = {
    Action.CREATE: "created",
    Action.UPDATE: "updated",
    Action.RENAME: "renamed",
    Action.DELETE: "deleted",
    Action.NOOP: "unchanged",
}
# What a reviewer must see first when a comment has to be cut: deletes are permanent on io.net.
_PRIORITY = {Action.DELETE: 0, Action.UPDATE: 1, Action.RENAME: 1, Action.CREATE: 2, Action.NOOP: 3}

# Characters that would let a name rewrite the terminal or hide text: controls, bidi, separators.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
# Inline Markdown and HTML syntax, plus what GitHub turns into links, math or emoji
# (@mentions, #refs, URLs, $math$, :shortcodes:). Line-start syntax (-, +, =) cannot occur mid-line.
_MARKDOWN_SPECIALS = frozenset("\\`*_{}[]()#.!|~<>&\"'@:$")

JsonScalar = str | bool | None


# --- the records: one projection of the models, formatted three ways below ---------------------


@dataclass(frozen=True)
class _FieldRow:
    field: str
    before: JsonScalar
    after: JsonScalar
    sensitive: bool


@dataclass(frozen=True)
class _ChangeRow:
    action: Action
    secret_name: str
    secret_id: str | None
    previous_name: str | None
    fields: tuple[_FieldRow, ...]
    patch: tuple[tuple[str, JsonScalar], ...]
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class _DriftRow:
    secret_name: str
    secret_id: str | None
    verdict: str
    detail: str
    # before: found in the account; after: what the file says.
    fields: tuple[_FieldRow, ...]
    age_days: float | None = None
    age_source: str | None = None


@dataclass(frozen=True)
class _PlanView:
    summary: tuple[tuple[str, int], ...]
    changes: tuple[_ChangeRow, ...]
    drift: tuple[_DriftRow, ...]
    warnings: tuple[str, ...]
    workflows: tuple[tuple[str, str], ...] = ()
    # Values older than their max_age: notes of a plan, findings of a drift report.
    stale: tuple[_DriftRow, ...] = ()
    notice: str = ""
    listing: ListingNote | None = None

    def count(self, action: Action) -> int:
        return dict(self.summary).get(action.value, 0)


@dataclass(frozen=True)
class _OutcomeRow:
    action: Action
    secret_name: str
    secret_id: str | None
    previous_name: str | None
    status: Status
    message: str


@dataclass(frozen=True)
class _ApplyView:
    outcomes: tuple[_OutcomeRow, ...]
    interrupted: bool

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status is status)


def _scalar(value: object) -> JsonScalar:
    if isinstance(value, SecretValue):
        return SENSITIVE
    if value is None or isinstance(value, str | bool):
        return value
    # A type the models do not declare: we cannot know it is safe to print.
    return SENSITIVE


def _field_row(fc: FieldChange, action: Action | None) -> _FieldRow:
    hidden = (
        fc.sensitive
        or fc.field in _SENSITIVE_FIELDS
        or isinstance(fc.before, SecretValue)
        or isinstance(fc.after, SecretValue)
    )
    if hidden:
        # Both sides of a secret are unknown to us; only "there was one" / "there will be one" is.
        before: JsonScalar = None if action is Action.CREATE else SENSITIVE
        after: JsonScalar = None if action is Action.DELETE else SENSITIVE
        return _FieldRow(fc.field, before, after, True)
    return _FieldRow(fc.field, _scalar(fc.before), _scalar(fc.after), False)


def _patch_value(key: str, value: PatchValue) -> JsonScalar:
    if key in _SENSITIVE_FIELDS:
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


def _change_row(change: Change) -> _ChangeRow:
    return _ChangeRow(
        action=change.action,
        secret_name=change.secret_name,
        secret_id=change.secret_id,
        previous_name=_previous_name(change),
        fields=tuple(_field_row(fc, change.action) for fc in change.fields),
        patch=tuple((key, _patch_value(key, value)) for key, value in change.patch.items()),
        reasons=tuple(change.reasons),
    )


def _drift_row(item: DriftItem) -> _DriftRow:
    return _DriftRow(
        secret_name=item.secret_name,
        secret_id=item.secret_id,
        verdict=item.verdict.value,
        detail=item.detail,
        fields=tuple(_field_row(fc, None) for fc in item.fields),
        age_days=item.age_days,
        age_source=item.age_source,
    )


def _project_plan(plan: Plan) -> _PlanView:
    return _PlanView(
        summary=tuple(plan.summary().items()),
        changes=tuple(_change_row(c) for c in plan.actionable),
        drift=tuple(_drift_row(d) for d in plan.drift),
        warnings=tuple(plan.warnings),
        workflows=tuple((note.severity, note.text) for note in plan.workflows),
        stale=tuple(_drift_row(d) for d in plan.stale),
        notice=plan.notice,
        listing=plan.listing,
    )


def _project_apply(report: ApplyReport) -> _ApplyView:
    def row(outcome: Outcome) -> _OutcomeRow:
        change = outcome.change
        return _OutcomeRow(
            action=change.action,
            secret_name=change.secret_name,
            secret_id=outcome.secret_id or change.secret_id,
            previous_name=_previous_name(change),
            status=outcome.status,
            message=outcome.message,
        )

    return _ApplyView(outcomes=tuple(row(o) for o in report.outcomes), interrupted=report.interrupted)


# --- shared wording -----------------------------------------------------------------------------


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _visible(text: str) -> str:
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
    return '"' + _visible(text.replace("\\", "\\\\").replace('"', '\\"')) + '"'


def _value(value: JsonScalar, sensitive: bool) -> str:
    if value is None:
        return "null"
    if sensitive:
        return SENSITIVE
    if isinstance(value, bool):
        return "true" if value else "false"
    return _quote(value)


def _field_text(row: _FieldRow, action: Action | None) -> str:
    """One line per field: a create shows what it will set, everything else before → after."""
    after = _value(row.after, row.sensitive)
    if action is Action.CREATE:
        return f"{_visible(row.field)}: {after}"
    return f"{_visible(row.field)}: {_value(row.before, row.sensitive)} → {after}"


def _field_diff(row: _FieldRow, action: Action) -> list[str]:
    """The same field as diff lines: an update reads as the old line removed and the new one added."""
    name = _visible(row.field)
    if action is Action.CREATE:
        return [f"+   {_field_text(row, action)}"]
    if action is Action.DELETE:
        return [f"-   {_field_text(row, action)}"]
    return [
        f"-   {name}: {_value(row.before, row.sensitive)}",
        f"+   {name}: {_value(row.after, row.sensitive)}",
    ]


def _target(name: str, previous: str | None, secret_id: str | None) -> str:
    shown = _visible(name)
    if previous is not None and previous != name:
        shown = f"{_visible(previous)} → {shown}"
    return shown + (f" ({_visible(secret_id)})" if secret_id else "")


def _change_header(row: _ChangeRow, symbol: str) -> str:
    return f"{symbol} {row.action.value} {_target(row.secret_name, row.previous_name, row.secret_id)}"


def _drift_lines(row: _DriftRow, mark: str = "!") -> list[str]:
    ident = f" ({_visible(row.secret_id)})" if row.secret_id else ""
    lines = [f"{mark} {_visible(row.secret_name)}{ident}: {row.verdict}: {_visible(row.detail)}"]
    for field in row.fields:
        lines.append(f"    {_drift_field_text(field)}")
    return lines


def _drift_field_text(row: _FieldRow) -> str:
    """A field the way it drifted: what the file says, then what was found in the account."""
    name = _visible(row.field)
    if row.sensitive:
        return f"{name}: {SENSITIVE} (the file) → another value (found: its display proves it)"
    return f"{name}: {_value(row.after, False)} (the file) → {_value(row.before, False)} (found)"


def _plan_counts(view: _PlanView) -> str:
    return (
        f"{view.count(Action.CREATE)} to create, {view.count(Action.UPDATE)} to update, "
        f"{view.count(Action.RENAME)} to rename, {view.count(Action.DELETE)} to delete."
    )


def _delete_warning(deletes: int) -> str:
    return f"this plan deletes {_plural(deletes, 'secret')} (permanent on io.net)"


def _paint(text: str, colour: str, color: bool) -> str:
    return f"{colour}{text}{_RESET}" if color and colour else text


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise UsageError(f"unknown output format {fmt!r}: use one of {', '.join(FORMATS)}")


def _dumps(payload: object) -> str:
    return json.dumps(payload, sort_keys=True, indent=2, ensure_ascii=False)


# --- Markdown helpers ---------------------------------------------------------------------------


def _md_inline(text: str) -> str:
    """Text safe inside HTML and Markdown: specials become numeric character references."""
    return "".join(f"&#{ord(ch)};" if ch in _MARKDOWN_SPECIALS else ch for ch in _visible(text))


def _md_code(text: str) -> str:
    # GitHub does not turn @names or #numbers inside <code> into mentions or links.
    return f"<code>{_md_inline(text)}</code>"


_BACKTICKS = re.compile(r"`+")


def _fence(lines: Sequence[str]) -> str:
    """A backtick fence longer than any backtick run in the body, so no line can close it."""
    longest = max((len(m.group()) for line in lines for m in _BACKTICKS.finditer(line)), default=0)
    return "`" * max(3, longest + 1)


def _fenced(lines: Sequence[str], lang: str, fence: str = "") -> str:
    fence = fence or _fence(lines)
    return f"{fence}{lang}\n" + "\n".join(lines) + f"\n{fence}"


def _fenced_prefix(lines: Sequence[str], lang: str, budget: int, fence: str = "") -> tuple[str, int]:
    """The longest prefix of `lines` whose fenced block fits in `budget` characters."""
    fence = fence or _fence(lines)
    size = len(fence) * 2 + len(lang) + 2
    taken = 0
    for line in lines:
        if size + len(line) + 1 > budget:
            break
        size += len(line) + 1
        taken += 1
    if taken == 0:
        return "", 0
    return _fenced(lines[:taken], lang, fence), taken


def _md_details(summary: str, body: str, *, open_: bool = False) -> str:
    # Blank lines around the body end the HTML block so GitHub renders the fence inside it.
    return f"<details{' open' if open_ else ''}><summary>{summary}</summary>\n\n{body}\n\n</details>"


def _hard_cut(text: str, limit: int) -> str:
    # Only reached when the limit cannot even hold the headline; never split a character reference.
    if len(text) <= limit:
        return text
    cut = text[:limit]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut


# --- plan ---------------------------------------------------------------------------------------


def render_plan(
    plan: Plan, fmt: str, *, color: bool = False, limit: int = GITHUB_COMMENT_LIMIT, source: str = ""
) -> str:
    """The plan as `text`, `markdown` (a pull-request comment of at most `limit` chars) or `json`."""
    _check_format(fmt)
    view = _project_plan(plan)
    if fmt == "json":
        return _dumps(_plan_json(view))
    if fmt == "markdown":
        return _plan_markdown(view, limit, source)
    return _plan_text(view, color)


def _plan_text(view: _PlanView, color: bool) -> str:
    out: list[str] = []
    deletes = view.count(Action.DELETE)
    if deletes:
        out += [_paint(f"WARNING: {_delete_warning(deletes)}", _BOLD_RED, color), ""]
    for row in view.changes:
        colour = _COLOUR[row.action]
        out.append(_paint(_change_header(row, _SYMBOL[row.action]), colour, color))
        out.extend(f"    # {_visible(reason)}" for reason in row.reasons)
        for field in row.fields:
            out.append(f"    {_field_text(field, row.action)}")
        out.append("")
    out.append(f"Plan: {_plan_counts(view)}" if view.changes else NO_CHANGES)
    if view.warnings:
        out += ["", "Warnings:"]
        out.extend(_paint(f"  - {_visible(w)}", _YELLOW, color) for w in view.warnings)
    if view.drift:
        out += ["", "Drift (changed outside reconciler):"]
        for item in view.drift:
            first, *rest = _drift_lines(item)
            out.append(_paint(first, _YELLOW, color))
            out.extend(rest)
    if view.stale:
        out += ["", "Notes (values older than their max_age; not a change):"]
        out.extend(line for item in view.stale for line in _drift_lines(item, "-"))
    if view.workflows:
        out += ["", "Workflows (tools and the secrets that cover them):"]
        for severity, text in view.workflows:
            out.append(_paint(f"  {_visible(text)}", _RED if severity == "error" else _YELLOW, color))
    return "\n".join(out)


def _fields_json(rows: Sequence[_FieldRow]) -> dict[str, dict[str, JsonScalar]]:
    return {row.field: {"before": row.before, "after": row.after} for row in rows}


def _drift_json(row: _DriftRow) -> dict[str, object]:
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


def _plan_json(view: _PlanView) -> dict[str, object]:
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


def _md_plan_headline(view: _PlanView) -> str:
    deletes = view.count(Action.DELETE)
    if view.changes:
        line = f"**Plan:** {_plan_counts(view)}"
        if deletes:
            line += f" :warning: **deletes {_plural(deletes, 'secret')} (permanent on io.net)**"
    else:
        line = "**No changes.** The account matches the desired state."
    if view.warnings:
        line += f" · {_plural(len(view.warnings), 'warning')}"
    if view.drift:
        line += f" · drift: {_plural(len(view.drift), 'item')}"
    if view.listing is not None:
        line += "\n\n" + _md_listing(view.listing)
    return line


def _md_listing(note: ListingNote) -> str:
    proof = f"**{_md_inline(note.proof)}**" if note.assumed else f"complete: {_md_inline(note.proof)}"
    return (
        f"<sub>Account read: {_plural(note.secrets, 'secret')} in {_plural(note.requests, 'request')}, "
        f"{_md_inline(note.dialect)}; {proof}.</sub>"
    )


def _md_change_block(row: _ChangeRow) -> str:
    lines = [_change_header(row, _DIFF_SYMBOL[row.action])]
    lines.extend(f"  # {_visible(reason)}" for reason in row.reasons)
    for field in row.fields:
        lines.extend(_field_diff(field, row.action))
    name = _md_code(row.secret_name)
    if row.previous_name is not None and row.previous_name != row.secret_name:
        name = f"{_md_code(row.previous_name)} → {name}"
    summary = f"<b>{row.action.value}</b> {name}"
    return _md_details(summary, _fenced(lines, "diff"), open_=row.action is Action.DELETE)


def _md_warnings(warnings: Sequence[str]) -> str:
    return "**Warnings**\n\n" + _fenced([f"- {_visible(w)}" for w in warnings], "text")


def _md_drift(drift: Sequence[_DriftRow]) -> str:
    lines = [line for item in drift for line in _drift_lines(item)]
    return _md_details(
        f"Drift (changed outside reconciler): {_plural(len(drift), 'item')}", _fenced(lines, "text")
    )


def _md_plan_footer(left_out: int, total: int, extras: Sequence[str], source: str) -> str:
    what = [f"{left_out} of {_plural(total, 'change')}"] if left_out else []
    what += list(extras)
    target = source or "FILE"
    return (
        f"_Left out to fit the comment size limit: {', '.join(what)}. "
        f"Run <code>reconciler plan {_md_inline(target)} --format text</code> to see all "
        f"{_plural(total, 'change')}._"
    )


def _md_notes(stale: Sequence[_DriftRow]) -> str:
    lines = [line for item in stale for line in _drift_lines(item, "-")]
    return "**Notes** (values older than their max_age; not a change)\n\n" + _fenced(lines, "text")


def _md_workflows(notes: Sequence[tuple[str, str]]) -> str:
    return "**Workflows**\n\n" + _fenced([f"{_visible(text)}" for _, text in notes], "text")


def _md_short_intro(count: int) -> str:
    return f"**{_plural(count, 'more change')} in short form:**\n\n"


def _plan_markdown(view: _PlanView, limit: int, source: str) -> str:
    headline = _md_plan_headline(view)
    ordered = sorted(view.changes, key=lambda r: _PRIORITY[r.action])
    blocks = [_md_change_block(row) for row in ordered]
    warnings = _md_warnings(view.warnings) if view.warnings else ""
    drift = _md_drift(view.drift) if view.drift else ""
    notes = _md_notes(view.stale) if view.stale else ""
    flows = _md_workflows(view.workflows) if view.workflows else ""
    whole = "\n\n".join(part for part in (headline, warnings, *blocks, drift, notes, flows) if part)
    if len(whole) <= limit:
        return whole

    total = len(ordered)
    reserve = len(_md_plan_footer(total, total, ("warnings", "drift", "notes", "workflows"), source)) + 2
    budget = limit - reserve
    parts = [headline]
    used = len(headline)

    def add(text: str) -> bool:
        nonlocal used
        if used + 2 + len(text) > budget:
            return False
        parts.append(text)
        used += 2 + len(text)
        return True

    extras: list[str] = []
    if warnings and not add(warnings):
        extras.append("warnings")

    # Every delete is listed at least in short form; within that promise, as many changes as fit
    # get a full block in priority order, and what remains is listed one line each while room lasts.
    short = [_change_header(row, _DIFF_SYMBOL[row.action]) for row in ordered]
    fence = _fence(short)
    intro_max = len(_md_short_intro(total))
    deletes = sum(1 for row in ordered if row.action is Action.DELETE)

    def short_size(lines: Sequence[str]) -> int:
        if not lines:
            return 0
        return 2 + intro_max + 2 * len(fence) + len("diff") + 2 + sum(len(line) + 1 for line in lines)

    shown = 0
    blocks_size = 0
    while shown < total:
        grown = blocks_size + 2 + len(blocks[shown])
        if used + grown + short_size(short[shown + 1 : deletes]) > budget:
            break
        blocks_size = grown
        shown += 1
    for block in blocks[:shown]:
        add(block)
    rest = short[shown:]
    if rest:
        room = budget - used - 2 - intro_max
        body, taken = _fenced_prefix(rest, "diff", room, fence)
        if taken:
            add(f"{_md_short_intro(taken)}{body}")
            shown += taken
    if drift and not add(drift):
        extras.append("drift")
    if notes and not add(notes):
        extras.append("notes")
    if flows and not add(flows):
        extras.append("workflows")
    if shown < total or extras:
        parts.append(_md_plan_footer(total - shown, total, extras, source))
    return _hard_cut("\n\n".join(parts), limit)


# --- drift --------------------------------------------------------------------------------------


def render_drift(plan: Plan, fmt: str, *, color: bool = False) -> str:
    """Only the plan's drift and stale values, for scheduled runs: `No drift.` or one entry per
    finding, after the notice (said once, first) when there was no state to compare with."""
    _check_format(fmt)
    view = _project_plan(plan)
    found = (*view.drift, *view.stale)
    if fmt == "json":
        items = [_drift_json(d) for d in found]
        notice = view.notice or None
        listing = _listing_json(view.listing)
        return _dumps(
            {"format_version": FORMAT_VERSION, "notice": notice, "drift": items, "listing": listing}
        )
    if fmt == "markdown":
        return _drift_markdown(found, view.notice)
    out = [_paint(f"Note: {_visible(view.notice)}", _YELLOW, color), ""] if view.notice else []
    if not found:
        return "\n".join([*out, "No drift."])
    for item in found:
        first, *rest = _drift_lines(item)
        out.append(_paint(first, _YELLOW, color))
        out.extend(rest)
    out += ["", f"Drift found: {_plural(len(found), 'item')}."]
    return "\n".join(out)


def _drift_markdown(drift: Sequence[_DriftRow], notice: str) -> str:
    said = f":information_source: {_md_inline(notice)}\n\n" if notice else ""
    if not drift:
        return f"{said}**No drift.**"
    headline = f"{said}:warning: **Drift found:** {_plural(len(drift), 'item')}."
    lines = [line for item in drift for line in _drift_lines(item)]
    return _md_lines_cut(
        headline,
        lines,
        lambda left: (
            f"_{_plural(left, 'line')} left out to fit the comment size limit; "
            "run <code>reconciler drift</code> with <code>--format text</code> to see all._"
        ),
    )


def _md_lines_cut(headline: str, lines: Sequence[str], footer: Callable[[int], str]) -> str:
    whole = f"{headline}\n\n{_fenced(lines, 'text')}"
    if len(whole) <= GITHUB_COMMENT_LIMIT:
        return whole
    budget = GITHUB_COMMENT_LIMIT - len(headline) - 4 - len(footer(len(lines))) - 2
    body, taken = _fenced_prefix(lines, "text", budget)
    parts = [headline, body, footer(len(lines) - taken)] if body else [headline, footer(len(lines))]
    return _hard_cut("\n\n".join(parts), GITHUB_COMMENT_LIMIT)


# --- apply --------------------------------------------------------------------------------------


def render_apply(report: ApplyReport, fmt: str, *, color: bool = False) -> str:
    """What apply did, one line per outcome in order, then a summary line."""
    _check_format(fmt)
    view = _project_apply(report)
    if fmt == "json":
        return _dumps(_apply_json(view))
    if fmt == "markdown":
        return _apply_markdown(view)
    out = [_paint(_outcome_line(row), _STATUS_COLOUR[row.status], color) for row in view.outcomes]
    out.append(_apply_summary(view))
    return "\n".join(out)


_STATUS_COLOUR = {Status.OK: _GREEN, Status.FAILED: _RED, Status.SKIPPED: _YELLOW}


def _outcome_line(row: _OutcomeRow) -> str:
    target = _target(row.secret_name, row.previous_name, None)
    message = _visible(row.message)
    if row.status is Status.OK:
        return f"✓ {_PAST[row.action]} {target}"
    if row.status is Status.FAILED:
        return f"✗ {row.action.value} {target} failed" + (f": {message}" if message else "")
    return f"- skipped {target}" + (f": {message}" if message else "")


def _apply_counts(view: _ApplyView) -> str:
    return (
        f"{view.count(Status.OK)} succeeded, {view.count(Status.FAILED)} failed, "
        f"{view.count(Status.SKIPPED)} skipped."
    )


def _apply_summary(view: _ApplyView) -> str:
    return f"Apply {'interrupted' if view.interrupted else 'complete'}: {_apply_counts(view)}"


def _apply_json(view: _ApplyView) -> dict[str, object]:
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
        "summary": {
            "succeeded": view.count(Status.OK),
            "failed": view.count(Status.FAILED),
            "skipped": view.count(Status.SKIPPED),
        },
    }


def _apply_markdown(view: _ApplyView) -> str:
    word = "interrupted" if view.interrupted else "complete"
    headline = f"**Apply {word}:** {_apply_counts(view)}"
    failed = view.count(Status.FAILED)
    if failed:
        headline += f" :x: **{failed} failed**"
    if view.interrupted:
        headline = f":warning: {headline}"
    if not view.outcomes:
        return headline
    # Failures matter most when the comment has to be cut; the order is kept otherwise.
    rank = {Status.FAILED: 0, Status.SKIPPED: 1, Status.OK: 2}
    rows = list(view.outcomes)
    whole = [_outcome_line(r) for r in rows]
    if len(headline) + len(_fenced(whole, "text")) + 2 > GITHUB_COMMENT_LIMIT:
        rows.sort(key=lambda r: rank[r.status])
    return _md_lines_cut(
        headline,
        [_outcome_line(r) for r in rows],
        lambda left: (
            f"_{_plural(left, 'outcome')} left out to fit the comment size limit; "
            "use <code>--format text</code> or <code>--format json</code> for the full report._"
        ),
    )
