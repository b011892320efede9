"""`reconciler import`: which remote secrets become desired-state entries, each with a ${ENV} reference."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from reconciler.models import RemoteSecret
from reconciler.values import suggested_env_name


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
        if name in managed:
            skipped.append(f"{name}: already in the file")
            continue
        if counts[name] > 1:
            skipped.append(
                f"{name} ({secret.secret_id}): {counts[name]} remote secrets share this name; "
                "add the one to manage by hand with secret_id"
            )
            continue
        variable = _unique(suggested_env_name(name), used)
        entry: dict[str, object] = {"secret_name": name, "secret_value": "${" + variable + "}"}
        if secret.tool_name is not None:
            entry["tool_name"] = secret.tool_name
        if secret.tool_arg is not None:
            entry["tool_arg"] = secret.tool_arg
        entry["is_default_for_tool"] = secret.is_default_for_tool
        entries.append(entry)
        variables.append((variable, name))
    return Imported(tuple(entries), tuple(variables), tuple(skipped))


def _unique(variable: str, used: set[str]) -> str:
    candidate, n = variable, 2
    while candidate in used:
        candidate, n = f"{variable}_{n}", n + 1
    used.add(candidate)
    return candidate
