"""The Markdown views: pull-request comments and job summaries as GitHub renders them, within its limit."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reconciler.models import Action, ListingNote, Status
from reconciler.render import GITHUB_COMMENT_LIMIT, Origin
from reconciler.render.records import (
    PRIORITY,
    ApplyView,
    ChangeRow,
    DriftRow,
    FieldRow,
    PlanView,
    apply_counts,
    apply_summary,
    change_header,
    drift_lines,
    field_text,
    outcome_text,
    plan_counts,
    value_text,
    visible,
    workflow_counts,
)
from reconciler.text import plural

# Inline Markdown and HTML syntax, plus what GitHub turns into links, math or emoji
# (@mentions, #refs, URLs, $math$, :shortcodes:). Line-start syntax (-, +, =) cannot occur mid-line.
_MARKDOWN_SPECIALS = frozenset("\\`*_{}[]()#.!|~<>&\"'@:$")
# GitHub's diff highlighting knows +, - and ! (changed); ~ would render uncoloured.
_DIFF_SYMBOL = {
    Action.CREATE: "+",
    Action.UPDATE: "!",
    Action.RENAME: "!",
    Action.DELETE: "-",
    Action.NOOP: " ",
}
_BACKTICKS = re.compile(r"`+")


def _inline(text: str) -> str:
    """Text safe inside HTML and Markdown: specials become numeric character references."""
    return "".join(f"&#{ord(ch)};" if ch in _MARKDOWN_SPECIALS else ch for ch in visible(text))


def _code(text: str) -> str:
    # GitHub does not turn @names or #numbers inside <code> into mentions or links.
    return f"<code>{_inline(text)}</code>"


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


def _details(summary: str, body: str, *, open_: bool = False) -> str:
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


def _header(command: str, origin: Origin) -> str:
    """Which file and which account a report is for, so two environments' comments cannot be confused."""
    if not origin.file and not origin.host:
        return ""
    line = f"#### reconciler {command}"
    if origin.file:
        line += f" for {_code(origin.file)}"
    if origin.host == "local":
        line += " on the local emulator"
    elif origin.host:
        line += f" on {_code(origin.host)}"
    return line


def _saved_footer(origin: Origin, applied: bool) -> str:
    if not origin.plan_id:
        return ""
    if applied:
        return f"<sub>Applied from the saved plan {_code(origin.plan_id)}.</sub>"
    where = origin.plan_path or "PLAN"
    return (
        f"<sub>Saved plan {_code(origin.plan_id)}: <code>reconciler apply {_inline(where)}</code> applies "
        "exactly this plan, or refuses it if anything changed since.</sub>"
    )


# --- plan ---------------------------------------------------------------------------------------


def _headline(view: PlanView) -> str:
    deletes = view.count(Action.DELETE)
    if view.changes:
        line = f"**Plan:** {plan_counts(view)}"
        if deletes:
            line += f" :warning: **deletes {plural(deletes, 'secret')} (permanent on io.net)**"
    else:
        line = "**No changes.** The account matches the desired state."
    if view.warnings:
        line += f" · {plural(len(view.warnings), 'warning')}"
    if view.drift:
        line += f" · drift: {plural(len(view.drift), 'item')}"
    if view.listing is not None:
        line += "\n\n" + _listing(view.listing)
    return line


def _listing(note: ListingNote) -> str:
    proof = f"**{_inline(note.proof)}**" if note.assumed else f"complete: {_inline(note.proof)}"
    return (
        f"<sub>Account read: {plural(note.secrets, 'secret')} in {plural(note.requests, 'request')}, "
        f"{_inline(note.dialect)}; {proof}.</sub>"
    )


def _field_diff(row: FieldRow, action: Action) -> list[str]:
    """A field as diff lines: an update reads as the old line removed and the new one added, and a
    value, whose sides are both unknown, as one changed line."""
    if action is Action.CREATE:
        return [f"+   {field_text(row, action)}"]
    name = visible(row.field)
    if action is Action.DELETE:
        return [f"-   {name}: {value_text(row.before, row.sensitive)}"]
    if row.sensitive:
        return [f"!   {field_text(row, action)}"]
    return [f"-   {name}: {value_text(row.before, False)}", f"+   {name}: {value_text(row.after, False)}"]


def _what_changes(row: ChangeRow, drifted: bool) -> str:
    """The summary line of a change: what a reviewer learns without opening it."""
    name = _code(row.secret_name)
    plain = [_inline(f.field) for f in row.fields if not f.sensitive and f.field != "secret_name"]
    value = any(f.sensitive for f in row.fields)
    if row.action is Action.DELETE:
        return f":x: <b>delete</b> {name}: <b>deleted for good</b> (permanent on io.net)"
    if row.action is Action.CREATE:
        what = "new secret: " + ", ".join([*(["value"] if value else []), *plain])
    else:
        parts: list[str] = []
        if row.previous_name is not None and row.previous_name != row.secret_name:
            parts.append(f"renamed from {_code(row.previous_name)}")
        if plain:
            parts.append(f"{', '.join(plain)} changed")
        if value:
            parts.append("value rotated")
        what = ", ".join(parts)
    summary = f"<b>{row.action.value}</b> {name}: {what}"
    if drifted:
        summary += " · :warning: <b>drift</b>: changed outside reconciler, set back to the file"
    return summary


def _change_block(row: ChangeRow, drifted: bool) -> str:
    lines = [change_header(row, _DIFF_SYMBOL[row.action])]
    lines.extend(f"  # {visible(reason)}" for reason in row.reasons)
    for field in row.fields:
        lines.extend(_field_diff(field, row.action))
    return _details(_what_changes(row, drifted), _fenced(lines, "diff"), open_=row.action is Action.DELETE)


def _warnings(warnings: Sequence[str]) -> str:
    return "**Warnings**\n\n" + _fenced([f"- {visible(w)}" for w in warnings], "text")


def _drift(drift: Sequence[DriftRow]) -> str:
    lines = [line for item in drift for line in drift_lines(item)]
    summary = f"Drift (changed outside reconciler): {plural(len(drift), 'item')}"
    return _details(summary, _fenced(lines, "text"))


def _notes(stale: Sequence[DriftRow]) -> str:
    lines = [line for item in stale for line in drift_lines(item, "-")]
    return "**Notes** (values older than their max_age; not a change)\n\n" + _fenced(lines, "text")


def _workflows(view: PlanView) -> str:
    body = _fenced([visible(text) for _, text in view.workflows], "text")
    if view.workflow_errors:
        return f"**Workflows:** {workflow_counts(view)}\n\n{body}"
    # Warnings alone fold away: they are lint, and the comment is about what changes.
    return _details(f"Workflows: {plural(len(view.workflows), 'warning')}, no errors", body)


def _cut_note(left_out: int, total: int, extras: Sequence[str], origin: Origin) -> str:
    what = [f"{left_out} of {plural(total, 'change')}"] if left_out else []
    what += list(extras)
    target = origin.file or "FILE"
    return (
        f"_Left out to fit the comment size limit: {', '.join(what)}. "
        f"Run <code>reconciler plan {_inline(target)} --format text</code> to see all "
        f"{plural(total, 'change')}._"
    )


def _short_intro(count: int) -> str:
    return f"**{plural(count, 'more change')} in short form:**\n\n"


def plan_markdown(view: PlanView, limit: int, origin: Origin) -> str:
    drifted = {d.secret_id for d in view.drift if d.secret_id}
    ordered = sorted(view.changes, key=lambda r: PRIORITY[r.action])
    parts = _PlanParts(
        top=[part for part in (_header("plan", origin), _headline(view)) if part],
        warnings=_warnings(view.warnings) if view.warnings else "",
        ordered=ordered,
        blocks=[_change_block(row, row.secret_id in drifted) for row in ordered],
        drift=_drift(view.drift) if view.drift else "",
        notes=_notes(view.stale) if view.stale else "",
        flows=_workflows(view) if view.workflows else "",
        tail=[part for part in (_saved_footer(origin, applied=False),) if part],
    )
    whole = "\n\n".join(
        part
        for part in (
            *parts.top,
            parts.warnings,
            *parts.blocks,
            parts.drift,
            parts.notes,
            parts.flows,
            *parts.tail,
        )
        if part
    )
    if len(whole) <= limit:
        return whole
    return _plan_cut(parts, limit, origin)


@dataclass(frozen=True)
class _PlanParts:
    """A plan comment's parts, each rendered whole; empty when the plan has none of it."""

    top: list[str]
    warnings: str
    ordered: list[ChangeRow]
    # One per change, in the order of `ordered`.
    blocks: list[str]
    drift: str
    notes: str
    flows: str
    tail: list[str]


class _Room:
    """The parts taken so far and the characters they use, within a budget."""

    def __init__(self, parts: list[str], budget: int) -> None:
        self.parts = list(parts)
        self.used = len("\n\n".join(parts))
        self.budget = budget

    def add(self, text: str) -> bool:
        if self.used + 2 + len(text) > self.budget:
            return False
        self.parts.append(text)
        self.used += 2 + len(text)
        return True


def _plan_cut(parts: _PlanParts, limit: int, origin: Origin) -> str:
    """The plan comment over `limit` cut to fit, with a note saying what was left out."""
    total = len(parts.ordered)
    reserve = len(_cut_note(total, total, ("warnings", "drift", "notes", "workflows"), origin)) + 2
    reserve += sum(len(part) + 2 for part in parts.tail)
    room = _Room(parts.top, limit - reserve)
    extras: list[str] = []
    if parts.warnings and not room.add(parts.warnings):
        extras.append("warnings")
    shown = _add_changes(parts.ordered, parts.blocks, room)
    for text, name in ((parts.drift, "drift"), (parts.notes, "notes"), (parts.flows, "workflows")):
        if text and not room.add(text):
            extras.append(name)
    if shown < total or extras:
        room.parts.append(_cut_note(total - shown, total, extras, origin))
    room.parts.extend(parts.tail)
    return _hard_cut("\n\n".join(room.parts), limit)


def _add_changes(ordered: Sequence[ChangeRow], blocks: Sequence[str], room: _Room) -> int:
    """Add what fits of the changes to `room`; how many are shown, in full or in short form.

    Every delete is listed at least in short form; within that promise, as many changes as fit get a
    full block in priority order, and what remains is listed one line each while room lasts.
    """
    total = len(ordered)
    short = [change_header(row, _DIFF_SYMBOL[row.action]) for row in ordered]
    fence = _fence(short)
    intro_max = len(_short_intro(total))
    deletes = sum(1 for row in ordered if row.action is Action.DELETE)

    def short_size(lines: Sequence[str]) -> int:
        if not lines:
            return 0
        return 2 + intro_max + 2 * len(fence) + len("diff") + 2 + sum(len(line) + 1 for line in lines)

    shown = 0
    blocks_size = 0
    while shown < total:
        grown = blocks_size + 2 + len(blocks[shown])
        if room.used + grown + short_size(short[shown + 1 : deletes]) > room.budget:
            break
        blocks_size = grown
        shown += 1
    for block in blocks[:shown]:
        room.add(block)
    rest = short[shown:]
    if rest:
        body, taken = _fenced_prefix(rest, "diff", room.budget - room.used - 2 - intro_max, fence)
        if taken:
            room.add(f"{_short_intro(taken)}{body}")
            shown += taken
    return shown


# --- drift and apply ----------------------------------------------------------------------------


def drift_markdown(drift: Sequence[DriftRow], notice: str, origin: Origin) -> str:
    header = _header("drift", origin)
    said = f":information_source: {_inline(notice)}" if notice else ""
    if not drift:
        return "\n\n".join(part for part in (header, said, "**No drift.**") if part)
    found = f":warning: **Drift found:** {plural(len(drift), 'item')}."
    headline = "\n\n".join(part for part in (header, said, found) if part)
    lines = [line for item in drift for line in drift_lines(item)]
    return _lines_cut(
        headline,
        lines,
        lambda left: (
            f"_{plural(left, 'line')} left out to fit the comment size limit; "
            "run <code>reconciler drift</code> with <code>--format text</code> to see all._"
        ),
    )


def _lines_cut(headline: str, lines: Sequence[str], footer: Callable[[int], str], tail: str = "") -> str:
    end = f"\n\n{tail}" if tail else ""
    whole = f"{headline}\n\n{_fenced(lines, 'text')}{end}"
    if len(whole) <= GITHUB_COMMENT_LIMIT:
        return whole
    budget = GITHUB_COMMENT_LIMIT - len(headline) - 4 - len(footer(len(lines))) - 2 - len(end)
    body, taken = _fenced_prefix(lines, "text", budget)
    parts = [headline, body, footer(len(lines) - taken)] if body else [headline, footer(len(lines))]
    return _hard_cut("\n\n".join(parts) + end, GITHUB_COMMENT_LIMIT)


def apply_markdown(view: ApplyView, origin: Origin) -> str:
    header = _header("apply", origin)
    tail = _saved_footer(origin, applied=True)
    if view.adopted is not None and not view.outcomes:
        headline = f"**{apply_summary(view)}**"
    else:
        word = "interrupted" if view.interrupted else "complete"
        headline = f"**Apply {word}:** {apply_counts(view)}"
    failed = view.count(Status.FAILED)
    if failed:
        headline += f" :x: **{failed} failed**"
    if view.interrupted:
        headline = f":warning: {headline}"
    if header:
        headline = f"{header}\n\n{headline}"
    if not view.outcomes:
        return "\n\n".join(part for part in (headline, tail) if part)
    # Failures matter most when the comment has to be cut; the order is kept otherwise.
    rank = {Status.FAILED: 0, Status.SKIPPED: 1, Status.OK: 2}
    rows = list(view.outcomes)
    whole = [outcome_text(r) for r in rows]
    if len(headline) + len(_fenced(whole, "text")) + 2 + len(tail) > GITHUB_COMMENT_LIMIT:
        rows.sort(key=lambda r: rank[r.status])
    return _lines_cut(
        headline,
        [outcome_text(r) for r in rows],
        lambda left: (
            f"_{plural(left, 'outcome')} left out to fit the comment size limit; "
            "use <code>--format text</code> or <code>--format json</code> for the full report._"
        ),
        tail,
    )
