"""`workflows extract`: inline credentials out of workflow files, into the desired state as references."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reconciler import desired, values
from reconciler.desired.append import append_secrets
from reconciler.errors import DesiredFileError, Problem
from reconciler.fsutil import replace_text
from reconciler.models import SENSITIVE, DesiredState, SecretValue
from reconciler.text import quoted, shown, unique
from reconciler.workflows.catalogue import Catalogue, binds, catalogue, short_tool, slug
from reconciler.workflows.coverage import AGENT_KEY_ENV, MAX_VALUE_CHARS, env_names, line_of, too_long
from reconciler.workflows.findings import Finding, Kind, Severity
from reconciler.workflows.scan import InlineCredential, WorkflowScan, scan
from reconciler.yaml_edit import RemoveKeys, ReplaceScalar, ReplaceWithItem, YamlEdit, edit_yaml

# A value shorter than this is not searched for in the rest of a file after extraction: it would
# match ordinary text. (io.net refuses values under 4 characters anyway.)
_LEFTOVER_MIN_CHARS = 8
_MASK_MIN_CHARS = 4


# ---------------------------------------------------------------------------------------------
# Extraction: inline credentials out of workflow files, into the desired state as references.


@dataclass(frozen=True)
class FileChange:
    """A file's text before and after. `before` may hold credentials: it is never printed."""

    path: str
    before: str = field(repr=False)
    after: str = field(repr=False)


@dataclass(frozen=True)
class VariableToSet:
    """An environment variable the new entries reference, and the secrets and places it stands for."""

    name: str
    secrets: tuple[str, ...]
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Extraction:
    """Everything `workflows extract` would do; `apply_extraction` writes it."""

    desired_path: str
    workflows: tuple[FileChange, ...] = ()
    desired_change: FileChange | None = None
    entries: tuple[Mapping[str, object], ...] = ()
    env: tuple[VariableToSet, ...] = ()
    moved: tuple[Finding, ...] = ()
    leftovers: tuple[Finding, ...] = ()
    # Workflow files, or parts of them, that are not understood (nothing was read there).
    notes: tuple[Finding, ...] = ()
    # The changes as a unified diff, every extracted value masked.
    diff: str = ""
    files_read: int = 0

    @property
    def model_keys(self) -> tuple[Finding, ...]:
        """Agents' model keys removed: no secret stands for them, the SDK reads its own variable."""
        return tuple(m for m in self.moved if not m.tool)


def plan_extraction(workflow_paths: Sequence[Path], into: Path) -> Extraction:
    """Plan moving every inline credential of `workflow_paths` into the desired-state file `into`.

    Reads only. Each credential becomes an entry bound to its exact tool (`is_default_for_tool:
    true`, the value a `${NAME}` reference) and is removed from its workflow; an agent's model key
    is removed with no entry. Raises DesiredFileError with every located conflict (two values for
    one tool argument, a default already covering it, a value too long for a secret) or file that
    cannot be read or edited; then nothing is to be written.
    """
    into = Path(into)
    state = desired.load(into, resolve=False) if into.exists() else DesiredState(path=str(into))
    tools = catalogue(state.tool_credentials)
    problems: list[Problem] = []
    scans: list[WorkflowScan] = []
    seen: set[Path] = set()
    for path in workflow_paths:
        key = Path(path).resolve()
        if key in seen:
            continue
        seen.add(key)
        try:
            scans.append(scan(Path(path), tools))
        except DesiredFileError as exc:
            problems.extend(exc.problems)
    credentials = [c for result in scans for c in result.inline]
    entries, env, moved, conflicts = _new_entries(credentials, state, tools)
    problems.extend(conflicts)
    changes: list[FileChange] = []
    for result in scans:
        mine = [c for c in credentials if c.file == result.document.file]
        if not mine:
            continue
        try:
            after = edit_yaml(result.document, _edits(mine))
        except DesiredFileError as exc:
            problems.extend(exc.problems)
            continue
        changes.append(FileChange(result.document.file, result.document.text, after))
    if problems:
        raise DesiredFileError(problems)
    desired_change: FileChange | None = None
    if entries:
        before = into.read_text(encoding="utf-8") if into.exists() else ""
        desired_change = FileChange(str(into), before, append_secrets(into, entries, dry_run=True))
    all_changes = [*changes, *([desired_change] if desired_change else [])]
    return Extraction(
        desired_path=str(into),
        workflows=tuple(changes),
        desired_change=desired_change,
        entries=tuple(entries),
        env=tuple(env),
        moved=tuple(moved),
        leftovers=tuple(_leftovers(credentials, all_changes)),
        notes=tuple(note for result in scans for note in result.notes),
        diff=_masked_diff(credentials, scans, changes, desired_change),
        files_read=len(scans),
    )


def apply_extraction(extraction: Extraction) -> None:
    """Write the planned files, the desired-state file first: should a later write fail, no value
    is lost, it is still in its workflow."""
    if extraction.desired_change is not None:
        replace_text(Path(extraction.desired_change.path), extraction.desired_change.after)
    for change in extraction.workflows:
        replace_text(Path(change.path), change.after)


def _new_entries(
    credentials: Sequence[InlineCredential], state: DesiredState, tools: Catalogue
) -> tuple[list[dict[str, object]], list[VariableToSet], list[Finding], list[Problem]]:
    names = {s.secret_name for s in state.secrets}
    env_taken = env_names(state.secrets)
    groups: dict[tuple[str, str], list[InlineCredential]] = {}
    for credential in credentials:
        groups.setdefault((credential.tool, credential.arg), []).append(credential)
    entries: list[dict[str, object]] = []
    problems: list[Problem] = []
    moved: list[Finding] = []
    # (SDK prefix, arg, value) -> variable, so that one value pasted into several tools is one variable.
    env_for: list[tuple[str, str, SecretValue, str]] = []
    env_uses: dict[str, tuple[list[str], list[str]]] = {}
    for (tool, arg), group in groups.items():
        first = group[0]
        if first.form == "agent":
            moved.extend(_model_key_removed(c) for c in group)
            continue
        conflicts = _conflicts(tool, arg, group, state)
        if conflicts:
            problems.extend(conflicts)
            continue
        prefix = tools.env_prefix(tool)
        env = next((e for f, a, v, e in env_for if f == prefix and a == arg and v == first.value), None)
        if env is None:
            env = unique(values.suggested_env_name(f"{prefix}_{arg}"), env_taken, "_")
            env_taken.add(env)
            env_for.append((prefix, arg, first.value, env))
        name = unique(slug(f"{short_tool(tool)}-{arg}"), names, "-")
        names.add(name)
        entries.append(
            {
                "secret_name": name,
                "secret_value": "${" + env + "}",
                "tool_name": tool,
                "tool_arg": arg,
                "is_default_for_tool": True,
            }
        )
        secrets_of, sources_of = env_uses.setdefault(env, ([], []))
        secrets_of.append(name)
        for c in group:
            sources_of.append(f"{c.file}:{c.line}:{c.col}")
            message = (
                f"moved credential {shown(arg)} of tool {shown(tool)} to secret {quoted(name)} (${{{env}}})"
            )
            moved.append(Finding(c.file, c.line, c.col, message, Kind.MOVED, Severity.WARNING, tool, arg))
    env_vars = [VariableToSet(name, tuple(s), tuple(src)) for name, (s, src) in env_uses.items()]
    return entries, env_vars, moved, problems


def _conflicts(tool: str, arg: str, group: Sequence[InlineCredential], state: DesiredState) -> list[Problem]:
    """Why a tool argument's inline values cannot become one new default secret, at each place."""
    existing = next(
        (
            s
            for s in state.secrets
            if s.fields.get("is_default_for_tool") is True
            and s.fields.get("tool_arg") == arg
            and isinstance(s.fields.get("tool_name"), str)
            and binds(str(s.fields["tool_name"]), tool)
        ),
        None,
    )
    if existing is not None:
        bound = str(existing.fields["tool_name"])
        through = "" if bound == tool else f" through {shown(bound)}"
        message = (
            f"secret {quoted(existing.secret_name)} ({line_of(existing)}) is already the default for "
            f"{shown(tool)} {shown(arg)}{through}; remove this inline value by hand (a second default "
            "would leave io.net to pick one of them)"
        )
        return [Problem(c.file, c.line, c.col, arg, message) for c in group]
    oversized = [c for c in group if too_long(c)]
    if oversized:
        message = (
            f"the value is over {MAX_VALUE_CHARS:,} characters, more than an io.net secret holds, so it "
            "cannot become one: keep the file outside the workflow and pass its path (by hand)"
        )
        return [Problem(c.file, c.line, c.col, arg, message) for c in oversized]
    first = group[0]
    message = (
        f"differs from the value at {first.file}:{first.line} for the same tool and argument; only one "
        f"secret can be the default for {shown(tool)} {shown(arg)}: make them agree first"
    )
    return [Problem(c.file, c.line, c.col, arg, message) for c in group if c.value != first.value]


def _model_key_removed(credential: InlineCredential) -> Finding:
    return Finding(
        credential.file,
        credential.line,
        credential.col,
        f"removed the model API key (api_key) of agent {quoted(credential.agent)}; no secret is added: "
        f"the SDK reads it from {AGENT_KEY_ENV} when the workflow leaves it out",
        Kind.MOVED,
        Severity.WARNING,
        arg=credential.arg,
    )


def _edits(credentials: Sequence[InlineCredential]) -> list[YamlEdit]:
    by_holder: dict[int, list[InlineCredential]] = {}
    for credential in credentials:
        by_holder.setdefault(id(credential.holder), []).append(credential)
    edits: list[YamlEdit] = []
    for group in by_holder.values():
        holder = group[0].holder
        args = tuple(dict.fromkeys(c.arg for c in group))
        if holder.kind == "scalar":
            assert isinstance(holder.scalar, str)
            edits.append(ReplaceScalar(holder, _without_keys(holder.scalar, set(args))))
            continue
        pair = group[0].pair
        own_keys = {key.scalar for key, _ in holder.pairs}
        alone = pair is not None and all(c.pair is pair for c in group) and not pair.alias
        if (
            alone
            and pair is not None
            and len(pair.items) == 2
            and pair.items[1] is holder
            and own_keys <= set(args)
        ):
            # Nothing else is passed to the tool: [tool, {}] becomes plain `tool`.
            edits.append(ReplaceWithItem(pair, 0))
        else:
            edits.append(RemoveKeys(holder, args))
    return edits


def _without_keys(text: str, keys: set[str]) -> str:
    """A JSON object's text without `keys`, written the way the original was when that can be told."""
    data = json.loads(text)
    kept = {k: v for k, v in data.items() if k not in keys}
    for separators in ((", ", ": "), (",", ":")):
        for ascii_only in (True, False):
            if json.dumps(data, separators=separators, ensure_ascii=ascii_only) == text:
                return json.dumps(kept, separators=separators, ensure_ascii=ascii_only)
    return json.dumps(kept)


def _leftovers(credentials: Sequence[InlineCredential], changes: Sequence[FileChange]) -> list[Finding]:
    findings: list[Finding] = []
    for credential in credentials:
        value = credential.value.reveal()
        if len(value) < _LEFTOVER_MIN_CHARS:
            continue
        for change in changes:
            at = change.after.find(value)
            while at >= 0:
                line = change.after.count("\n", 0, at) + 1
                col = at - (change.after.rfind("\n", 0, at) + 1) + 1
                findings.append(
                    Finding(
                        change.path,
                        line,
                        col,
                        f"the value of {shown(credential.arg)} moved out of "
                        f"{credential.file}:{credential.line} is also written here; "
                        "remove it by hand (and rotate it: it is in git history)",
                        Kind.LEFTOVER,
                        tool=credential.tool,
                        arg=credential.arg,
                    )
                )
                at = change.after.find(value, at + len(value))
    return _dedupe(findings)


def _dedupe(findings: Iterable[Finding]) -> list[Finding]:
    return list(dict.fromkeys(findings))


def _masked_diff(
    credentials: Sequence[InlineCredential],
    scans: Sequence[WorkflowScan],
    changes: Sequence[FileChange],
    desired_change: FileChange | None,
) -> str:
    pieces: list[str] = []
    for change in changes:
        document = next(s.document for s in scans if s.document.file == change.path)
        mine = [c for c in credentials if c.file == change.path]
        before = _mask(document.text, mine)
        pieces.extend(_diff(change.path, before, change.after, context=3))
    if desired_change is not None:
        # No context: the lines around could be literal values of an allow_plaintext file.
        pieces.extend(_diff(desired_change.path, desired_change.before, desired_change.after, context=0))
    text = "".join(pieces)
    for credential in credentials:
        value = credential.value.reveal()
        if len(value) >= _MASK_MIN_CHARS:
            text = text.replace(value, SENSITIVE)
    return text


def _mask(text: str, credentials: Sequence[InlineCredential]) -> str:
    """The text with every credential value's characters replaced, for showing a diff."""
    spans: list[tuple[int, int]] = []
    for credential in credentials:
        value = credential.value.reveal()
        if credential.value_node is not None:
            spans.append((credential.value_node.start, credential.value_node.end))
            continue
        holder = credential.holder
        source = text[holder.start : holder.end]
        if "\n" in source:
            # A long fn_self string is folded over lines, and a value with spaces with it: the
            # whole string is masked, as no search for the value could be trusted to find it.
            spans.append((holder.start, holder.end))
            continue
        for needle in {value, json.dumps(value)[1:-1], json.dumps(value)[1:-1].replace("\\", "\\\\")}:
            at = source.find(needle) if needle else -1
            while at >= 0:
                spans.append((holder.start + at, holder.start + at + len(needle)))
                at = source.find(needle, at + len(needle))
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    masked = text
    for start, end in reversed(merged):
        masked = masked[:start] + SENSITIVE + masked[end:]
    return masked


def _diff(path: str, before: str, after: str, *, context: int) -> list[str]:
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=f"a/{path}",
        tofile=f"b/{path}",
        n=context,
    )
    return [line if line.endswith("\n") else line + "\n" for line in lines]
