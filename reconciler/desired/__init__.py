"""The desired-state file: `load` reads, validates and resolves it into a DesiredState; `locate` finds keys.

Its rooms: compose (the file's plain data with positions, read from yaml_tree's nodes), located
(positions, paths and the problems found), schema (the JSON Schema, its fast mirror and messages),
rules (rules across entries, value references), append (new entries).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from reconciler import values
from reconciler.desired import schema
from reconciler.desired.compose import read_data
from reconciler.desired.located import Issues, Map, Unlocated, kind_of, start_of
from reconciler.desired.rules import Values, check_entries, check_max_ages
from reconciler.desired_policy import max_age_hours
from reconciler.errors import DesiredFileError
from reconciler.models import (
    OPTIONAL_FIELDS,
    DesiredSecret,
    DesiredState,
    FieldValue,
    Location,
    Prune,
    frozen_map,
)
from reconciler.yaml_tree import is_merge_key, read_file, read_yaml


def load(path: Path, *, resolve: bool = True, environ: Mapping[str, str] | None = None) -> DesiredState:
    """Read, validate and (unless resolve=False) resolve the desired-state file at `path`.

    Every problem in the file is collected and raised together as one DesiredFileError.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    path = Path(path)
    file = str(path)
    raw = read_file(path)
    try:
        return _load(raw, file, path.parent, Issues(file, located=False), resolve=resolve, environ=env)
    except Unlocated:
        # A problem: read again keeping positions, to say where each problem is.
        return _load(raw, file, path.parent, Issues(file), resolve=resolve, environ=env)


def _load(
    raw: bytes, file: str, base_dir: Path, issues: Issues, *, resolve: bool, environ: Mapping[str, str]
) -> DesiredState:
    root, ok = read_data(raw, issues)
    if not ok:
        raise DesiredFileError(issues.problems())
    if not isinstance(root, Map):
        if root is None:
            issues.add(0, 0, "(file)", "is empty; a desired-state file starts with 'version: 1'")
        else:
            line, col = start_of(root)
            issues.add(
                line, col, "(file)", f"must be a mapping with 'version: 1' and 'secrets', not {kind_of(root)}"
            )
        raise DesiredFileError(issues.problems())
    schema.validate(root, issues)
    if schema.future_version(root):
        # Another format version: its other rules are unknown here, so only the version is reported.
        issues.items = [i for i in issues.items if i[3] == "version"]
        raise DesiredFileError(issues.problems())
    checked = check_entries(root, issues, resolve=resolve, base_dir=base_dir, environ=environ)
    check_max_ages(root, issues)
    if issues:
        raise DesiredFileError(issues.problems())
    return _build_state(root, file, hashlib.sha256(raw).hexdigest(), checked)


def locate(path: Path, keys: Sequence[str | int]) -> Location | None:
    """Where the node reached by `keys` (e.g. ("secrets", 3, "secret_name")) sits in the file.

    A mapping key leads to its value's position, an index to the item's position; () is the document.
    None when the file cannot be read or parsed, or the keys lead nowhere (a key merged in with `<<`
    has no position of its own in the mapping).
    """
    try:
        node = read_yaml(path).root
    except DesiredFileError:
        return None
    line, col = 1, 1
    for key in keys:
        if node is None:
            return None
        if node.kind == "map" and isinstance(key, str):
            node = next((v for k, v in reversed(node.pairs) if k.scalar == key and not is_merge_key(k)), None)
        elif node.kind == "seq" and isinstance(key, int) and not isinstance(key, bool):
            node = node.items[key] if 0 <= key < len(node.items) else None
        else:
            return None
        if node is None:
            return None
        line, col = node.line, node.col
    return Location(str(path), line, col)


# ---------------------------------------------------------------------------------------------
# The validated document as model values.


def _build_state(root: Map, file: str, digest: str, checked: Values) -> DesiredState:
    raw_secrets = root.get("secrets") or []
    bindings: dict[tuple[tuple[str, FieldValue], ...], Mapping[str, FieldValue]] = {}
    secrets = tuple(
        _build_secret(entry, file, checked, index, bindings) for index, entry in enumerate(raw_secrets)
    )
    prune_value = root.get("prune", False)
    if isinstance(prune_value, dict):
        prune = Prune(enabled=True, match=tuple(prune_value["match"]))
    else:
        prune = Prune(enabled=bool(prune_value))
    return DesiredState(
        path=file,
        secrets=secrets,
        prune=prune,
        allow_plaintext=root.get("allow_plaintext") is True,
        workflows=tuple(root.get("workflows") or ()),
        tool_credentials=tuple(
            (entry["pattern"], tuple(entry["args"])) for entry in root.get("tool_credentials") or ()
        ),
        digest=digest,
        secrets_empty=not raw_secrets,
        max_age_hours=max_age_hours(root.get("max_age")),
    )


def _build_secret(
    entry: Map,
    file: str,
    checked: Values,
    index: int,
    bindings: dict[tuple[tuple[str, FieldValue], ...], Mapping[str, FieldValue]],
) -> DesiredSecret:
    stated = tuple((key, entry[key]) for key in OPTIONAL_FIELDS if key in entry)
    # Secrets with the same binding share one read-only mapping: a large file names a few hundred
    # tools for tens of thousands of secrets, and a mapping each is a tenth of a large plan's memory.
    fields = bindings.get(stated)
    if fields is None:
        fields = bindings[stated] = frozen_map(dict(stated))
    secret_id = entry.get("secret_id")
    return DesiredSecret(
        secret_name=entry["secret_name"],
        fields=fields,
        value=checked.resolved.get(index),
        value_ref=values.describe(checked.references.get(index, entry["secret_value"])),
        previous_names=tuple(entry.get("previous_names") or ()),
        protect=entry.get("protect") is True,
        # The API reports ids in lower case; a pin written in upper case still matches.
        secret_id=str(uuid.UUID(secret_id)) if isinstance(secret_id, str) else None,
        location=Location(file, entry.line + 1, entry.col + 1),
        max_age_hours=max_age_hours(entry.get("max_age")),
    )
