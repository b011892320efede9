"""Tests for reconciler.render: literal plans and reports rendered as text, Markdown and JSON."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import replace
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.errors import ReconcilerError, UsageError
from reconciler.models import (
    Action,
    ApplyReport,
    Change,
    DriftItem,
    FieldChange,
    ListingNote,
    Outcome,
    PatchValue,
    Plan,
    RemoteSecret,
    SecretValue,
    Status,
    Verdict,
)
from reconciler.render import Origin, render_apply, render_drift, render_plan

FORMATS = ("text", "markdown", "json")
CANARY = "canary-7f3a9c1e-do-not-print"
DISPLAY_CANARY = "canary-display-41b2"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def patch(**items: PatchValue) -> MappingProxyType[str, PatchValue]:
    return MappingProxyType(dict(items))


def create(name: str, value: str = "v4lue-create") -> Change:
    return Change(
        Action.CREATE,
        name,
        fields=(
            FieldChange("secret_value", None, None, sensitive=True),
            FieldChange("tool_name", None, "agno__github__*"),
            FieldChange("is_default_for_tool", None, True),
        ),
        patch=patch(
            secret_name=name,
            secret_value=SecretValue(value),
            tool_name="agno__github__*",
            is_default_for_tool=True,
        ),
        reasons=("not on io.net",),
    )


def update(name: str, sid: str, value: str = "v4lue-update") -> Change:
    return Change(
        Action.UPDATE,
        name,
        sid,
        fields=(
            FieldChange("secret_value", None, None, sensitive=True),
            FieldChange("tool_arg", "api_key", "api_token"),
            FieldChange("is_default_for_tool", True, False),
            FieldChange("tool_name", "agno__linear__*", None),
        ),
        patch=patch(secret_value=SecretValue(value), tool_arg="api_token", is_default_for_tool=False),
        reasons=("value differs from display",),
    )


def rename(old: str, new: str, sid: str) -> Change:
    return Change(
        Action.RENAME,
        new,
        sid,
        fields=(FieldChange("secret_name", old, new),),
        patch=patch(secret_name=new),
        previous_name=old,
    )


def delete(name: str, sid: str) -> Change:
    return Change(Action.DELETE, name, sid, reasons=("prune: true",), phase=0)


def noop(name: str, sid: str) -> Change:
    return Change(Action.NOOP, name, sid)


def sample_plan() -> Plan:
    return Plan(
        changes=(
            delete("old-key", "id-del"),
            create("github-token"),
            update("linear-key", "id-upd"),
            rename("linear-api-key", "linear-key-2", "id-ren"),
            noop("steady", "id-noop"),
        ),
        drift=(
            DriftItem(
                "linear-key",
                "id-upd",
                Verdict.REMOTE_VALUE_CHANGED,
                "display changed since the last apply",
                fields=(FieldChange("tool_arg", "a", "b"),),
            ),
        ),
        warnings=("2 remote secrets are not in the file; set prune: true to delete them",),
    )


def lines_of(text: str) -> list[str]:
    return text.split("\n")


# --- text ---------------------------------------------------------------------------------------


def test_text_blocks_follow_plan_order_with_fields_and_reasons() -> None:
    out = render_plan(sample_plan(), "text")
    lines = lines_of(out)
    headers = [line for line in lines if re.match(r"^[+~-] ", line)]
    assert headers == [
        "- delete old-key (id-del)",
        "+ create github-token",
        "~ update linear-key (id-upd)",
        "~ rename linear-api-key → linear-key-2 (id-ren)",
    ]
    create_at = lines.index("+ create github-token")
    assert lines[create_at + 1 : create_at + 5] == [
        "    # not on io.net",
        "    secret_value: (sensitive)",
        '    tool_name: "agno__github__*"',
        "    is_default_for_tool: true",
    ]
    update_at = lines.index("~ update linear-key (id-upd)")
    assert lines[update_at + 1 : update_at + 6] == [
        "    # value differs from display",
        "    secret_value: rotated (sensitive)",
        '    tool_arg: "api_key" → "api_token"',
        "    is_default_for_tool: true → false",
        '    tool_name: "agno__linear__*" → null',
    ]
    assert '    secret_name: "linear-api-key" → "linear-key-2"' in lines
    assert "    # prune: true" in lines
    assert "steady" not in out


def test_text_summary_and_delete_marker_first() -> None:
    lines = lines_of(render_plan(sample_plan(), "text"))
    assert lines[0] == "WARNING: this plan deletes 1 secret (permanent on io.net)"
    assert "Plan: 1 to create, 1 to update, 1 to rename, 1 to delete." in lines


def test_text_delete_marker_counts_and_absent_without_deletes() -> None:
    plan = Plan(changes=(delete("a", "1"), delete("b", "2"), create("c")))
    assert lines_of(render_plan(plan, "text"))[0] == (
        "WARNING: this plan deletes 2 secrets (permanent on io.net)"
    )
    out = render_plan(Plan(changes=(create("c"),)), "text")
    assert "WARNING" not in out
    assert out.startswith("+ create c")


def test_text_no_changes() -> None:
    plan = Plan(changes=(noop("a", "1"), noop("b", "2")))
    assert render_plan(plan, "text") == "No changes. The account matches the desired state."
    assert render_plan(Plan(), "text") == "No changes. The account matches the desired state."


def test_text_warnings_and_drift_sections() -> None:
    lines = lines_of(render_plan(sample_plan(), "text"))
    warn_at = lines.index("Warnings:")
    assert lines[warn_at + 1] == "  - 2 remote secrets are not in the file; set prune: true to delete them"
    drift_at = next(i for i, line in enumerate(lines) if line.startswith("Drift"))
    assert drift_at > warn_at
    assert lines[drift_at + 1] == (
        "! linear-key (id-upd): remote_value_changed: display changed since the last apply"
    )
    # Drift reads the way it happened: from the file's value to the one found.
    assert lines[drift_at + 2] == '    tool_arg: "b" (the file) → "a" (found)'


def test_text_drift_without_changes_still_says_no_changes() -> None:
    plan = Plan(drift=(DriftItem("x", None, Verdict.ADDED, "added on io.net"),))
    lines = lines_of(render_plan(plan, "text"))
    assert lines[0] == "No changes. The account matches the desired state."
    assert "! x: added_remotely: added on io.net" in lines


def test_text_colour_only_when_asked() -> None:
    plain = render_plan(sample_plan(), "text", color=False)
    assert "\x1b" not in plain
    coloured = render_plan(sample_plan(), "text", color=True)
    assert "\x1b[32m+ create github-token\x1b[0m" in coloured
    assert "\x1b[33m~ update linear-key (id-upd)\x1b[0m" in coloured
    assert "\x1b[33m~ rename linear-api-key → linear-key-2 (id-ren)\x1b[0m" in coloured
    assert "\x1b[31m- delete old-key (id-del)\x1b[0m" in coloured
    assert ANSI.sub("", coloured) == plain


def test_colour_flag_does_not_touch_json_or_markdown() -> None:
    for fmt in ("json", "markdown"):
        out = render_plan(sample_plan(), fmt, color=True)
        assert "\x1b" not in out
        assert out == render_plan(sample_plan(), fmt, color=False)


def test_text_quotes_and_escapes_string_values() -> None:
    plan = Plan(
        changes=(Change(Action.UPDATE, "n", "1", fields=(FieldChange("tool_arg", 'a"b\\c', "d\ne"),)),)
    )
    assert '    tool_arg: "a\\"b\\\\c" → "d\\x0ae"' in lines_of(render_plan(plan, "text"))


def test_text_delete_with_fields_shows_before_to_null() -> None:
    change = Change(
        Action.DELETE,
        "x",
        "1",
        fields=(FieldChange("secret_value", None, None, sensitive=True), FieldChange("tool_arg", "t", None)),
    )
    lines = lines_of(render_plan(Plan(changes=(change,)), "text"))
    assert "    secret_value: (sensitive) → null" in lines
    assert '    tool_arg: "t" → null' in lines


def test_text_unicode_names_kept() -> None:
    name = "clé-日本語-🔑"
    out = render_plan(Plan(changes=(create(name), delete("ünï", "id-ü"))), "text")
    assert f"+ create {name}" in lines_of(out)
    assert "- delete ünï (id-ü)" in lines_of(out)


HOSTILE = (
    "evil\x1b[2J\x1b[31mred",
    "new\nline + create fake",
    "rtl\u202etxt.exe",
    "zero\u200bwidth",
    "bell\x07tab\t",
    "<script>alert(1)</script>",
    "```` fence ```",
    "@everyone #1 [x](http://e.vil) **bold** :warning: $x$",
    "</details><details>",
)


def _unsafe_chars(text: str) -> list[str]:
    return [ch for ch in text if ch != "\n" and unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"}]


def test_text_hostile_names_cannot_control_the_terminal() -> None:
    plan = Plan(
        changes=tuple(create(n) for n in HOSTILE),
        drift=(DriftItem(HOSTILE[0], "i\x1bd", Verdict.ADDED, "detail\x1b[0m\r"),),
        warnings=("warn\x1b]0;title\x07",),
    )
    out = render_plan(plan, "text")
    assert _unsafe_chars(out) == []
    assert "+ create evil\\x1b[2J\\x1b[31mred" in lines_of(out)
    assert "+ create new\\x0aline + create fake" in lines_of(out)
    assert "+ create rtl\\u202etxt.exe" in lines_of(out)
    # A hostile name cannot forge a block of its own: one header per change.
    assert sum(1 for line in lines_of(out) if line.startswith("+ create ")) == len(HOSTILE)
    coloured = render_plan(plan, "text", color=True)
    assert _unsafe_chars(ANSI.sub("", coloured)) == []


# --- json ---------------------------------------------------------------------------------------


def test_json_shape() -> None:
    doc = json.loads(render_plan(sample_plan(), "json"))
    assert set(doc) == {
        "format_version",
        "summary",
        "changes",
        "drift",
        "notes",
        "warnings",
        "workflows",
        "listing",
    }
    assert doc["listing"] is None
    assert doc["format_version"] == "1"
    assert doc["summary"] == {"create": 1, "update": 1, "rename": 1, "delete": 1, "noop": 1}
    assert [c["action"] for c in doc["changes"]] == ["delete", "create", "update", "rename"]
    by_action = {c["action"]: c for c in doc["changes"]}
    assert by_action["create"] == {
        "action": "create",
        "secret_name": "github-token",
        "secret_id": None,
        "fields": {
            "secret_value": {"before": None, "after": "(sensitive)"},
            "tool_name": {"before": None, "after": "agno__github__*"},
            "is_default_for_tool": {"before": None, "after": True},
        },
        "patch": {
            "secret_name": "github-token",
            "secret_value": "(sensitive)",
            "tool_name": "agno__github__*",
            "is_default_for_tool": True,
        },
        "reasons": ["not on io.net"],
    }
    assert by_action["update"]["fields"]["secret_value"] == {"before": "(sensitive)", "after": "(sensitive)"}
    assert by_action["update"]["fields"]["tool_name"] == {"before": "agno__linear__*", "after": None}
    assert by_action["rename"]["previous_name"] == "linear-api-key"
    assert "previous_name" not in by_action["create"]
    assert by_action["delete"]["secret_id"] == "id-del"
    assert doc["drift"] == [
        {
            "secret_name": "linear-key",
            "secret_id": "id-upd",
            "verdict": "remote_value_changed",
            "detail": "display changed since the last apply",
            "fields": {"tool_arg": {"before": "a", "after": "b"}},
            "file": {"tool_arg": "b"},
            "found": {"tool_arg": "a"},
        }
    ]
    assert doc["warnings"] == list(sample_plan().warnings)


def test_json_is_deterministic_and_round_trips() -> None:
    first = render_plan(sample_plan(), "json")
    assert first == render_plan(sample_plan(), "json")
    assert json.dumps(json.loads(first), sort_keys=True, indent=2, ensure_ascii=False) == first


def test_json_rename_without_previous_name_uses_the_name_field() -> None:
    change = Change(Action.RENAME, "new", "1", fields=(FieldChange("secret_name", "old", "new"),))
    doc = json.loads(render_plan(Plan(changes=(change,)), "json"))
    assert doc["changes"][0]["previous_name"] == "old"
    assert "~ rename old → new (1)" in render_plan(Plan(changes=(change,)), "text")


def test_json_empty_plan() -> None:
    doc = json.loads(render_plan(Plan(changes=(noop("a", "1"),)), "json"))
    assert doc["changes"] == []
    assert doc["summary"]["noop"] == 1
    assert sum(doc["summary"].values()) == 1


def test_json_keeps_hostile_and_unicode_names_exactly() -> None:
    names = (*HOSTILE, "clé-日本語-🔑")
    doc = json.loads(render_plan(Plan(changes=tuple(create(n) for n in names)), "json"))
    assert [c["secret_name"] for c in doc["changes"]] == list(names)


# --- markdown -----------------------------------------------------------------------------------


def fenced_blocks(markdown: str) -> list[list[str]]:
    """Split a comment into its fenced blocks the way CommonMark does for backtick fences."""
    blocks: list[list[str]] = []
    lines = lines_of(markdown)
    i = 0
    while i < len(lines):
        opening = re.match(r"^(`{3,})[a-z]*$", lines[i])
        if opening:
            fence = opening.group(1)
            body: list[str] = []
            i += 1
            while not re.match(rf"^`{{{len(fence)},}}\s*$", lines[i]):
                body.append(lines[i])
                i += 1
            blocks.append(body)
        i += 1
    return blocks


def outside_fences(markdown: str) -> str:
    kept: list[str] = []
    inside: str | None = None
    for line in lines_of(markdown):
        if inside is None:
            opening = re.match(r"^(`{3,})[a-z]*$", line)
            if opening:
                inside = opening.group(1)
            else:
                kept.append(line)
        elif re.match(rf"^`{{{len(inside)},}}\s*$", line):
            inside = None
    assert inside is None, "a fence was left open"
    return "\n".join(kept)


def test_markdown_headline_and_blocks() -> None:
    out = render_plan(sample_plan(), "markdown")
    headline = lines_of(out)[0]
    assert "1 to create, 1 to update, 1 to rename, 1 to delete" in headline
    assert ":warning: **deletes 1 secret" in headline
    assert out.count("<details") == out.count("</details>") == 5  # four changes and the drift
    assert (
        "<details open><summary>:x: <b>delete</b> <code>old-key</code>: <b>deleted for good</b> "
        "(permanent on io.net)</summary>"
    ) in out
    bodies = fenced_blocks(out)
    delete_body = next(b for b in bodies if b and b[0].startswith("- delete"))
    assert delete_body == ["- delete old-key (id-del)", "  # prune: true"]
    update_body = next(b for b in bodies if b and b[0].startswith("! update"))
    # A value change is one line: neither side is known, so there is no before and after to show.
    assert "!   secret_value: rotated (sensitive)" in update_body
    assert not any(line.startswith(("-   secret_value", "+   secret_value")) for line in update_body)
    assert '-   tool_arg: "api_key"' in update_body
    assert '+   tool_arg: "api_token"' in update_body
    assert any("- 2 remote secrets are not in the file" in line for b in bodies for line in b)
    assert "steady" not in out


def test_markdown_orders_deletes_then_updates_then_creates() -> None:
    plan = Plan(
        changes=(
            create("c1"),
            update("u1", "1"),
            delete("d1", "2"),
            rename("r0", "r1", "3"),
            delete("d2", "4"),
        )
    )
    out = render_plan(plan, "markdown")
    order = [m.group(1) for m in re.finditer(r"<summary>(?::x: )?<b>(\w+)</b> <code>([^<]*)</code>", out)]
    assert order == ["delete", "delete", "update", "rename", "create"]
    assert out.index("d1") < out.index("d2")


def test_markdown_no_changes_headline() -> None:
    out = render_plan(Plan(changes=(noop("a", "1"),)), "markdown")
    assert lines_of(out)[0].startswith("**No changes.**")
    assert "<details" not in out
    assert ":warning:" not in out


def test_markdown_no_delete_marker_without_deletes() -> None:
    out = render_plan(Plan(changes=(create("a"),)), "markdown")
    assert ":warning:" not in out
    assert "deletes" not in lines_of(out)[0]


def test_markdown_escapes_hostile_names() -> None:
    plan = Plan(changes=(*(create(n) for n in HOSTILE), delete("<img src=x onerror=alert(1)>", "i<d>")))
    out = render_plan(plan, "markdown")
    outside = outside_fences(out)
    # Outside code blocks a name never brings markup of its own: only ours remains.
    assert "<script>" not in outside
    assert "<img" not in outside
    assert "@everyone" not in outside
    assert ":warning:" not in outside.replace(":warning: **deletes", "")
    assert "[x](http" not in outside
    assert set(re.findall(r"</?([a-z]+)", outside)) <= {"details", "summary", "b", "code"}
    assert outside.count("<details") == outside.count("</details>") == len(plan.changes)
    # Every fence closes where it should: each body is exactly the change's lines.
    bodies = fenced_blocks(out)
    assert len(bodies) == len(plan.changes)
    assert any(b[0] == "+ create ```` fence ```" for b in bodies)
    assert _unsafe_chars(out) == []


def test_markdown_fits_when_small_and_has_no_cut_note() -> None:
    out = render_plan(sample_plan(), "markdown", origin=Origin(file="secrets.yaml"))
    assert "left out" not in out.lower()


def big_plan(deletes: int = 150, updates: int = 650, creates: int = 1200) -> Plan:
    changes: list[Change] = []
    for i in range(creates):
        changes.append(create(f"service-{i:04d}-api-credential-for-the-build-pipeline"))
        if i < updates:
            changes.append(update(f"updated-{i:04d}-token", f"0000-upd-{i:04d}"))
        if i < deletes:
            changes.append(delete(f"retired-{i:04d}-key", f"0000-del-{i:04d}"))
    return Plan(changes=tuple(changes), warnings=("a warning",))


def test_markdown_cut_keeps_every_delete_and_says_what_was_left_out() -> None:
    plan = big_plan()
    assert len(plan.actionable) == 2000
    out = render_plan(plan, "markdown", origin=Origin(file="infra/secrets.yaml"))
    assert len(out) <= 65_000
    assert lines_of(out)[2].startswith("**Plan:** 1200 to create, 650 to update, 0 to rename, 150 to delete.")
    assert ":warning: **deletes 150 secrets" in lines_of(out)[2]
    for i in range(150):
        assert f"retired-{i:04d}-key" in out
    shown = sum(1 for c in plan.actionable if re.search(rf"\b{re.escape(c.secret_name)}\b", out))
    left_out = 2000 - shown
    assert left_out > 0
    assert f"{left_out} of 2000 changes" in out
    assert "reconciler plan infra/secrets&#46;yaml --format text" in out
    assert "see all 2000 changes" in out
    # What is shown is the most important: no create is shown while an update is left out, and
    # updates come before creates.
    shown_updates = {i for i in range(650) if f"updated-{i:04d}-token" in out}
    shown_creates = [m.start() for m in re.finditer(r"service-\d{4}-api", out)]
    if shown_creates:
        assert len(shown_updates) == 650
        assert max(m.start() for m in re.finditer(r"updated-\d{4}-token", out)) < min(shown_creates)
    assert out.index("retired-0149-key") < out.index("updated-0000-token")
    assert outside_fences(out).count("<details") == outside_fences(out).count("</details>")


@pytest.mark.parametrize("limit", [1_500, 4_000, 20_000, 65_000])
def test_markdown_respects_any_reasonable_limit(limit: int) -> None:
    out = render_plan(big_plan(deletes=40, updates=200, creates=400), "markdown", limit=limit)
    assert len(out) <= limit
    assert lines_of(out)[0].startswith("**Plan:**")
    assert "changes left out" not in out  # wording below is "N of M changes"
    assert re.search(r"\d+ of 640 changes", out)
    outside_fences(out)


def test_markdown_degenerate_limit_still_bounded() -> None:
    out = render_plan(big_plan(deletes=5, updates=5, creates=5), "markdown", limit=40)
    assert len(out) <= 40


def test_markdown_cut_lists_remaining_deletes_in_short_form() -> None:
    # Too many deletes for full blocks: the rest still appear, one line each.
    plan = Plan(changes=tuple(delete(f"doomed-{i:04d}", f"id-{i:04d}") for i in range(800)))
    out = render_plan(plan, "markdown", limit=30_000)
    assert len(out) <= 30_000
    assert "more changes in short form" in out
    assert all(f"doomed-{i:04d}" in out for i in range(800))
    assert "left out" not in out


# --- drift --------------------------------------------------------------------------------------


def drift_plan() -> Plan:
    return Plan(
        changes=(create("a"),),
        drift=(
            DriftItem(
                "linear-key", "id-1", Verdict.REMOTE_VALUE_CHANGED, "display differs from the last apply"
            ),
            DriftItem(
                "gh",
                "id-2",
                Verdict.FIELDS_CHANGED,
                "edited on io.net",
                fields=(FieldChange("tool_arg", "a", "b"),),
            ),
        ),
    )


def test_drift_text() -> None:
    assert render_drift(Plan(changes=(create("a"),)), "text") == "No drift."
    lines = lines_of(render_drift(drift_plan(), "text"))
    assert lines[0] == "! linear-key (id-1): remote_value_changed: display differs from the last apply"
    assert lines[1] == "! gh (id-2): fields_changed: edited on io.net"
    assert lines[2] == '    tool_arg: "b" (the file) → "a" (found)'
    assert lines[-1] == "Drift found: 2 items."
    assert "create" not in "\n".join(lines)


def test_drift_colour() -> None:
    assert "\x1b" not in render_drift(drift_plan(), "text")
    coloured = render_drift(drift_plan(), "text", color=True)
    assert "\x1b[33m! gh (id-2)" in coloured
    assert ANSI.sub("", coloured) == render_drift(drift_plan(), "text")


def test_drift_json() -> None:
    out = render_drift(drift_plan(), "json")
    assert out == render_drift(drift_plan(), "json")
    doc = json.loads(out)
    assert set(doc) == {"format_version", "notice", "drift", "listing"}
    assert [d["verdict"] for d in doc["drift"]] == ["remote_value_changed", "fields_changed"]
    # `fields` keeps its meaning (before: the account, after: the plan); file/found say how it drifted.
    assert doc["drift"][1]["fields"] == {"tool_arg": {"before": "a", "after": "b"}}
    assert doc["drift"][1]["file"] == {"tool_arg": "b"} and doc["drift"][1]["found"] == {"tool_arg": "a"}
    assert json.loads(render_drift(Plan(), "json")) == {
        "format_version": "1",
        "notice": None,
        "drift": [],
        "listing": None,
    }


NOTICE = "no state file at s.json: the account is compared with the file alone"
STALE = DriftItem(
    "old-key", "id-9", Verdict.STALE, "the value is 40 days old", age_days=40.25, age_source="value_write"
)
UNBASELINED = DriftItem(
    "gh",
    "id-2",
    Verdict.DIFFERS_NO_BASELINE,
    "the account differs from the file (tool_arg, secret_value)",
    fields=(FieldChange("tool_arg", "token", "access_token"), FieldChange("secret_value", None, None, True)),
)


def test_drift_without_a_state_says_so_once_at_the_top_of_every_format() -> None:
    plan = Plan(drift=(UNBASELINED,), stale=(STALE,), notice=NOTICE)
    text = lines_of(render_drift(plan, "text"))
    assert text[0] == f"Note: {NOTICE}" and sum(NOTICE in line for line in text) == 1
    assert text[3] == '    tool_arg: "access_token" (the file) → "token" (found)'
    assert text[4] == (
        "    secret_value: (sensitive) (the file) → another value (found: its display proves it)"
    )
    assert text[-1] == "Drift found: 2 items."
    markdown = render_drift(plan, "markdown")
    assert markdown.startswith(":information_source: no state file at s&#46;json&#58;")
    assert markdown.count("information_source") == 1
    doc = json.loads(render_drift(plan, "json"))
    assert doc["notice"] == NOTICE
    unbaselined, stale = doc["drift"]
    assert unbaselined["file"] == {"tool_arg": "access_token", "secret_value": "(sensitive)"}
    assert unbaselined["found"] == {"tool_arg": "token", "secret_value": "(sensitive)"}
    assert (stale["verdict"], stale["age_days"], stale["age_source"]) == ("stale", 40.25, "value_write")
    # With nothing to report, the notice still comes first.
    assert lines_of(render_drift(Plan(notice=NOTICE), "text")) == [f"Note: {NOTICE}", "", "No drift."]


def test_a_plan_shows_stale_values_as_notes_never_as_changes_or_drift() -> None:
    plan = Plan(changes=(noop("old-key", "id-9"),), stale=(STALE,))
    lines = lines_of(render_plan(plan, "text"))
    assert lines[0] == "No changes. The account matches the desired state."
    at = lines.index("Notes (values older than their max_age; not a change):")
    assert lines[at + 1] == "- old-key (id-9): stale: the value is 40 days old"
    assert not any(line.startswith("Drift") for line in lines)
    doc = json.loads(render_plan(plan, "json"))
    assert doc["drift"] == [] and doc["notes"][0]["age_days"] == 40.25
    assert doc["summary"]["update"] == 0
    assert "**Notes**" in render_plan(plan, "markdown")


LISTING = ListingNote(
    dialect="limit with offset or skip, {data}",
    proof="3 windows of up to 100, each starting with the secret the previous one ended with",
    secrets=250,
    requests=4,
)


def test_the_listing_a_plan_was_made_from_is_in_its_json_and_one_markdown_line() -> None:
    plan = replace(sample_plan(), listing=LISTING)
    doc = json.loads(render_plan(plan, "json"))
    assert doc["listing"] == {
        "dialect": LISTING.dialect,
        "proof": LISTING.proof,
        "secrets": 250,
        "requests": 4,
        "assumed": False,
    }
    assert json.loads(render_drift(plan, "json"))["listing"] == doc["listing"]
    markdown = render_plan(plan, "markdown")
    (line,) = [x for x in lines_of(markdown) if x.startswith("<sub>Account read:")]
    assert line.startswith("<sub>Account read: 250 secrets in 4 requests, limit with offset or skip, ")
    assert "complete: 3 windows" in line and "{" not in line
    assumed = replace(plan, listing=replace(LISTING, assumed=True, proof="not proven, assumed"))
    assert "; **not proven, assumed**.</sub>" in render_plan(assumed, "markdown")
    # The text view stays the plan alone: -v tells how the account was read.
    assert render_plan(plan, "text") == render_plan(sample_plan(), "text")


def test_drift_markdown() -> None:
    assert render_drift(Plan(), "markdown") == "**No drift.**"
    out = render_drift(drift_plan(), "markdown")
    assert "**Drift found:** 2 items." in lines_of(out)[0]
    (body,) = fenced_blocks(out)
    assert body[0].startswith("! linear-key (id-1)")


def test_drift_markdown_cut() -> None:
    items = tuple(
        DriftItem(f"name-{i:05d}", f"id-{i}", Verdict.ADDED, "added on io.net " * 4) for i in range(3000)
    )
    out = render_drift(Plan(drift=items), "markdown")
    assert len(out) <= 65_000
    left = 3000 - sum(1 for i in range(3000) if f"name-{i:05d}" in out)
    assert left > 0
    assert f"{left} lines left out" in out
    outside_fences(out)


# --- apply --------------------------------------------------------------------------------------


def sample_report(interrupted: bool = False) -> ApplyReport:
    return ApplyReport(
        outcomes=(
            Outcome(create("github-token"), Status.OK, secret_id="new-id"),
            Outcome(update("linear-key", "id-upd"), Status.FAILED, "422: tool_arg too long; shorten it"),
            Outcome(rename("old", "new", "id-ren"), Status.OK),
            Outcome(delete("gone", "id-del"), Status.SKIPPED, "an earlier change failed"),
        ),
        interrupted=interrupted,
    )


def test_apply_text() -> None:
    assert lines_of(render_apply(sample_report(), "text")) == [
        "✓ created github-token",
        "✗ update linear-key failed: 422: tool_arg too long; shorten it",
        "✓ renamed old → new",
        "- skipped gone: an earlier change failed",
        "Apply complete: 2 succeeded, 1 failed, 1 skipped.",
    ]
    assert lines_of(render_apply(sample_report(interrupted=True), "text"))[-1] == (
        "Apply interrupted: 2 succeeded, 1 failed, 1 skipped."
    )
    assert render_apply(ApplyReport(), "text") == "Apply complete: 0 succeeded, 0 failed, 0 skipped."


def test_apply_colour() -> None:
    plain = render_apply(sample_report(), "text")
    assert "\x1b" not in plain
    coloured = render_apply(sample_report(), "text", color=True)
    assert "\x1b[32m✓ created github-token\x1b[0m" in coloured
    assert "\x1b[31m✗ update linear-key failed" in coloured
    assert ANSI.sub("", coloured) == plain


def test_apply_json() -> None:
    out = render_apply(sample_report(), "json")
    assert out == render_apply(sample_report(), "json")
    doc = json.loads(out)
    assert doc["format_version"] == "1"
    assert doc["summary"] == {"succeeded": 2, "failed": 1, "skipped": 1}
    assert doc["interrupted"] is False
    assert doc["outcomes"][0] == {
        "action": "create",
        "secret_name": "github-token",
        "secret_id": "new-id",
        "status": "ok",
        "message": "",
    }
    assert doc["outcomes"][1]["status"] == "failed"
    assert doc["outcomes"][1]["secret_id"] == "id-upd"
    assert doc["outcomes"][2]["previous_name"] == "old"
    assert json.loads(render_apply(sample_report(True), "json"))["interrupted"] is True


def test_apply_markdown() -> None:
    out = render_apply(sample_report(), "markdown")
    headline = lines_of(out)[0]
    assert "2 succeeded, 1 failed, 1 skipped." in headline
    assert ":x: **1 failed**" in headline
    (body,) = fenced_blocks(out)
    assert body == lines_of(render_apply(sample_report(), "text"))[:-1]
    ok_only = ApplyReport(outcomes=(Outcome(create("a"), Status.OK),))
    assert ":x:" not in render_apply(ok_only, "markdown")
    assert "interrupted" in lines_of(render_apply(sample_report(True), "markdown"))[0]


def test_apply_markdown_cut_keeps_failures() -> None:
    outcomes = [Outcome(create(f"made-{i:05d}-" + "x" * 40), Status.OK) for i in range(3000)]
    outcomes.append(Outcome(delete("the-failed-one", "id"), Status.FAILED, "server said no"))
    out = render_apply(ApplyReport(outcomes=tuple(outcomes)), "markdown")
    assert len(out) <= 65_000
    assert "✗ delete the-failed-one failed: server said no" in out
    assert re.search(r"\d+ outcomes left out", out)


# --- formats and secrecy ------------------------------------------------------------------------


@pytest.mark.parametrize("render", [render_plan, render_drift, render_apply])
def test_unknown_format_is_a_usage_error(render: Callable[..., str]) -> None:
    arg = ApplyReport() if render is render_apply else Plan()
    with pytest.raises(UsageError) as info:
        render(arg, "yaml")
    assert isinstance(info.value, ReconcilerError)
    assert "\n" not in str(info.value)
    assert "text, markdown, json" in str(info.value)


def canary_plan() -> Plan:
    remote = RemoteSecret("id-1", "leaky", tool_name="t", display=DISPLAY_CANARY)
    return Plan(
        changes=(
            create("fresh", value=CANARY + "-create"),
            Change(
                Action.UPDATE,
                "leaky",
                "id-1",
                # A record that forgot its sensitive flag, or carried the value itself, still hides it.
                fields=(
                    FieldChange("secret_value", CANARY + "-before", CANARY + "-after"),
                    FieldChange("display", DISPLAY_CANARY, None),
                    FieldChange("tool_arg", "a", "b", sensitive=True),
                ),
                patch=patch(secret_value=SecretValue(CANARY + "-update"), display=DISPLAY_CANARY),
                reasons=("value differs from display",),
                remote=remote,
            ),
            Change(Action.DELETE, "old", "id-2", remote=remote),
        ),
        drift=(
            DriftItem(
                "leaky",
                "id-1",
                Verdict.REMOTE_VALUE_CHANGED,
                "display changed",
                fields=(FieldChange("secret_value", CANARY, CANARY + "x"),),
            ),
        ),
    )


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("color", [False, True])
def test_canary_never_rendered(fmt: str, color: bool) -> None:
    plan = canary_plan()
    report = ApplyReport(outcomes=tuple(Outcome(c, Status.OK) for c in plan.changes))
    outputs = [
        render_plan(plan, fmt, color=color),
        render_plan(plan, fmt, color=color, limit=600),
        render_drift(plan, fmt, color=color),
        render_apply(report, fmt, color=color),
    ]
    for out in outputs:
        assert "canary" not in out
    assert "(sensitive)" in outputs[0]


def test_canary_fields_are_masked_not_dropped() -> None:
    doc = json.loads(render_plan(canary_plan(), "json"))
    update_change = doc["changes"][1]
    assert update_change["fields"]["secret_value"] == {"before": "(sensitive)", "after": "(sensitive)"}
    assert update_change["fields"]["tool_arg"] == {"before": "(sensitive)", "after": "(sensitive)"}
    assert update_change["patch"] == {"secret_value": "(sensitive)", "display": "(sensitive)"}
    assert doc["changes"][0]["patch"]["secret_value"] == "(sensitive)"
    assert doc["drift"][0]["fields"]["secret_value"] == {"before": "(sensitive)", "after": "(sensitive)"}


# --- properties ---------------------------------------------------------------------------------

names = st.text(min_size=1, max_size=40)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["create", "update", "delete"]), names), min_size=1, max_size=8))
def test_any_names_render_safely_in_every_format(entries: list[tuple[str, str]]) -> None:
    changes = tuple(
        create(n) if kind == "create" else update(n, f"id-{i}") if kind == "update" else delete(n, f"id-{i}")
        for i, (kind, n) in enumerate(entries)
    )
    plan = Plan(changes=changes)
    doc = json.loads(render_plan(plan, "json"))
    assert [c["secret_name"] for c in doc["changes"]] == [n for _, n in entries]
    text = render_plan(plan, "text")
    assert _unsafe_chars(text) == []
    assert sum(1 for line in lines_of(text) if re.match(r"^[+~-] (create|update|delete) ", line)) == len(
        entries
    )
    markdown = render_plan(plan, "markdown")
    assert _unsafe_chars(markdown) == []
    outside = outside_fences(markdown)
    assert outside.count("<details") == outside.count("</details>") == len(entries)
    assert set(re.findall(r"</?([a-z]+)", outside)) <= {"details", "summary", "b", "code"}
    assert len(fenced_blocks(markdown)) == len(entries)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=300, max_value=70_000), st.integers(min_value=0, max_value=300))
def test_markdown_never_exceeds_limit(limit: int, count: int) -> None:
    changes = tuple(delete(f"d-{i}", f"id-{i}") if i % 3 == 0 else create(f"c-{i}") for i in range(count))
    out = render_plan(Plan(changes=changes, warnings=("w",)), "markdown", limit=limit)
    assert len(out) <= limit
    outside_fences(out)


def test_workflow_findings_have_their_own_section_in_every_format() -> None:
    from reconciler.models import WorkflowNote

    note = WorkflowNote("error", "flows/digest.yaml:8:9: error: agno__github__list_issues is not covered")
    plan = Plan(workflows=(note,))
    assert "Workflows" in render_plan(plan, "text") and note.text in render_plan(plan, "text")
    assert note.text in render_plan(plan, "markdown")
    assert json.loads(render_plan(plan, "json"))["workflows"] == [{"severity": "error", "finding": note.text}]
