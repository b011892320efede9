"""Rules across the entries of a desired-state file (unique names, ids, one default per tool), values."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from reconciler import values
from reconciler.desired.located import Issues, Map, Seq, path_text, short, value_position
from reconciler.desired.schema import UUID_PATTERN, is_name
from reconciler.desired_policy import MAX_AGE_HINT, is_max_age, schema_accepts
from reconciler.errors import LiteralValueError, ValueRefError
from reconciler.models import SecretValue
from reconciler.text import quoted
from reconciler.yaml_tree import PathKey

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class Values(NamedTuple):
    """Each entry's secret_value as parsed, and as resolved (unless not asked), by entry index."""

    references: dict[int, values.Reference]
    resolved: dict[int, SecretValue]


def check_entries(
    root: Map, issues: Issues, *, resolve: bool, base_dir: Path, environ: Mapping[str, str]
) -> Values:
    found = Values({}, {})
    secrets = root.get("secrets")
    if not isinstance(secrets, list):
        return found
    allow_plaintext = root.get("allow_plaintext") is True
    entries = [(i, e) for i, e in enumerate(secrets) if isinstance(e, Map)]
    _check_names(entries, issues)
    _check_ids(entries, issues)
    _check_defaults(entries, issues)
    for index, entry in entries:
        if "secret_value" not in entry or issues.is_silenced(("secrets", index, "secret_value")):
            continue
        try:
            # Parsed once: resolving it and describing it in the DesiredSecret read the same parse.
            reference = values.check(entry["secret_value"], allow_plaintext=allow_plaintext)
            found.references[index] = reference
            if resolve:
                found.resolved[index] = values.resolve(
                    reference, base_dir=base_dir, environ=environ, allow_plaintext=allow_plaintext
                )
        except ValueRefError as exc:
            _value_problem(index, entry, exc, issues)
    return found


def _value_problem(index: int, entry: Map, exc: ValueRefError, issues: Issues) -> None:
    """Report why an entry's secret_value cannot be used (worked out only for an entry that has one)."""
    name = entry.get("secret_name")
    owner = f"secret {quoted(name)}: " if isinstance(name, str) and is_name(name) else ""
    line, col = value_position(entry, "secret_value")
    key = path_text(["secrets", index, "secret_value"])
    if isinstance(exc, LiteralValueError):
        suggestion = values.suggested_env_name(name) if isinstance(name, str) else "NAME"
        issues.add(
            line,
            col,
            key,
            f"{owner}a literal value must not be committed; reference it instead, e.g. "
            f"secret_value: ${{{suggestion}}} (or {{from_env: {suggestion}}}, {{from_file: PATH}}), "
            "or set allow_plaintext: true for demos and tests",
        )
    else:
        issues.add(line, col, key, f"{owner}{exc.message}")


def _check_names(entries: list[tuple[int, Map]], issues: Issues) -> None:
    owners: dict[str, tuple[int, int]] = {}  # secret_name -> (entry index, line)
    for index, entry in entries:
        name = entry.get("secret_name")
        if not is_name(name):
            continue
        assert isinstance(name, str)
        if name in owners:
            line, col = value_position(entry, "secret_name")
            issues.add(
                line,
                col,
                path_text(["secrets", index, "secret_name"]),
                f"{quoted(name)} is listed twice (first in the entry at line {owners[name][1] + 1}); "
                "secret names must be unique",
            )
        else:
            owners[name] = (index, entry.line)
    previous: dict[str, tuple[int, int]] = {}  # previous name -> (index, line) of the first entry listing it
    for index, entry in entries:
        names = entry.get("previous_names")
        if not isinstance(names, Seq):
            continue
        own = entry.get("secret_name")
        for position, old in enumerate(names):
            if not is_name(old):
                continue
            # Positions are kept only on the pass that reports (see Issues).
            line, col = names.at[position] if position < len(names.at) else (names.line, names.col)
            key = path_text(["secrets", index, "previous_names", position])
            if old == own:
                issues.add(line, col, key, f"{quoted(old)} is this entry's own secret_name; remove it")
            elif old in owners and owners[old][0] != index:
                issues.add(
                    line,
                    col,
                    key,
                    f"{quoted(old)} is the secret_name of the entry at line {owners[old][1] + 1}; "
                    "a name cannot be both current and previous",
                )
            elif old in previous and previous[old][0] != index:
                issues.add(
                    line,
                    col,
                    key,
                    f"{quoted(old)} is also a previous name of the entry at line {previous[old][1] + 1}; "
                    "a rename needs a single target",
                )
            previous.setdefault(old, (index, entry.line))


def _check_ids(entries: list[tuple[int, Map]], issues: Issues) -> None:
    seen: dict[str, int] = {}
    for index, entry in entries:
        secret_id = entry.get("secret_id")
        if not isinstance(secret_id, str) or UUID_PATTERN.search(secret_id) is None:
            continue
        line, col = value_position(entry, "secret_id")
        key = path_text(["secrets", index, "secret_id"])
        if not _UUID.fullmatch(secret_id):
            issues.add(line, col, key, "must be a UUID such as 0b3e1c4a-2f7d-4c1e-9a8b-5d6f7e8a9b0c")
            continue
        canonical = secret_id.lower()
        if canonical in seen:
            issues.add(
                line,
                col,
                key,
                f"is also pinned by the entry at line {seen[canonical] + 1}; ids must be unique",
            )
        else:
            seen[canonical] = entry.line


def check_max_ages(root: Map, issues: Issues) -> None:
    """What the schema's pattern lets through but is no max_age: a value ending in a line break."""
    secrets = root.get("secrets")
    nodes: list[tuple[Map, list[PathKey]]] = [(root, [])]
    if isinstance(secrets, list):
        nodes += [(e, ["secrets", i]) for i, e in enumerate(secrets) if isinstance(e, Map)]
    for node, prefix in nodes:
        value = node.get("max_age")
        if schema_accepts(value) and not is_max_age(value):
            line, col = value_position(node, "max_age")
            issues.add(
                line, col, path_text([*prefix, "max_age"]), f"must be {MAX_AGE_HINT}, not {short(value)}"
            )


def _check_defaults(entries: list[tuple[int, Map]], issues: Issues) -> None:
    defaults: dict[tuple[object, object], int] = {}
    for index, entry in entries:
        if entry.get("is_default_for_tool") is not True:
            continue
        tool_name, tool_arg = entry.get("tool_name"), entry.get("tool_arg")
        # A default only competes with others for a tool it is bound to.
        if not isinstance(tool_name, str) or not (tool_arg is None or isinstance(tool_arg, str)):
            continue
        line, col = value_position(entry, "is_default_for_tool")
        binding = (tool_name, tool_arg)
        if binding in defaults:
            issues.add(
                line,
                col,
                path_text(["secrets", index, "is_default_for_tool"]),
                f"the entry at line {defaults[binding] + 1} is already the default for tool_name "
                f"{quoted(tool_name)} and tool_arg {'(none)' if tool_arg is None else quoted(tool_arg)}; "
                "only one secret can be",
            )
        else:
            defaults[binding] = entry.line
