"""`reconciler import`: which remote secrets become desired-state entries, each with a ${ENV} reference."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from reconciler.desired.schema import MAX_NAME_CHARS
from reconciler.models import OPTIONAL_FIELDS, RemoteSecret
from reconciler.text import shown, unique
from reconciler.values import suggested_env_name

_SHOWN_CHARS = 60


@dataclass(frozen=True)
class Imported:
    """The entries to append, the variables they reference, and what was left out and why."""

    entries: tuple[dict[str, object], ...]
    variables: tuple[tuple[str, str], ...]  # (ENV_NAME, secret_name)
    skipped: tuple[str, ...]


def select(
    remote: Iterable[RemoteSecret],
    *,
    managed: set[str],
    taken_variables: frozenset[str] = frozenset(),
    names: tuple[str, ...] = (),
) -> Imported:
    """Remote secrets not yet in the file (matching a `names` glob, if any), as entries. Pure."""
    secrets = sorted(remote, key=lambda s: (s.secret_name, s.secret_id))
    counts = Counter(s.secret_name for s in secrets)
    used = set(taken_variables)
    entries: list[dict[str, object]] = []
    variables: list[tuple[str, str]] = []
    skipped: list[str] = []
    for secret in secrets:
        name = secret.secret_name
        if names and not any(fnmatchcase(name, glob) for glob in names):
            continue
        unwritable = _unwritable(name)
        if unwritable:
            skipped.append(
                f"{shown(name, _SHOWN_CHARS)} ({secret.secret_id}): {unwritable}; "
                "manage it by hand, if at all"
            )
            continue
        if name in managed:
            skipped.append(f"{name}: already in the file")
            continue
        if counts[name] > 1:
            skipped.append(
                f"{name} ({secret.secret_id}): {counts[name]} remote secrets share this name; "
                "add the one to manage by hand with secret_id"
            )
            continue
        variable = unique(suggested_env_name(name), used, "_")
        used.add(variable)
        entry: dict[str, object] = {"secret_name": name, "secret_value": "${" + variable + "}"}
        for field in OPTIONAL_FIELDS:
            # An empty field is left out: the entry then leaves it alone rather than clearing it.
            value = secret.field_value(field)
            if value is not None:
                entry[field] = value
        entries.append(entry)
        variables.append((variable, name))
    return Imported(tuple(entries), tuple(variables), tuple(skipped))


def _unwritable(name: str) -> str | None:
    """Why a remote name cannot become an entry of the desired file, or None when it can."""
    if not name:
        return "the name is empty"
    if len(name) > MAX_NAME_CHARS:
        return f"the name is {len(name)} characters long, more than a desired file takes ({MAX_NAME_CHARS})"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "the name is not valid UTF-8 text"
    if not name.isprintable():
        # Line breaks (U+0085, U+2028) and control characters do not survive a YAML file and a review.
        odd = next(ch for ch in name if not ch.isprintable())
        return f"the name holds an invisible or control character (U+{ord(odd):04X})"
    return None
