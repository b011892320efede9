"""Field-level differences between desired entries and remote secrets (the only deepdiff user)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from reconciler.models import COMPARABLE_FIELDS, DesiredSecret, FieldChange, FieldValue, RemoteSecret

_WIDTH = len(COMPARABLE_FIELDS)
_POSITION = {name: position for position, name in enumerate(COMPARABLE_FIELDS)}


def desired_essence(desired: DesiredSecret) -> dict[str, FieldValue]:
    """The comparable fields the entry manages, normalised the way the API stores them."""
    essence: dict[str, FieldValue] = {"secret_name": desired.secret_name}
    for name in COMPARABLE_FIELDS[1:]:
        if name in desired.fields:
            value = desired.fields[name]
            # The API always answers a boolean here; "must be empty" for a flag means false.
            essence[name] = bool(value) if name == "is_default_for_tool" else value
    return essence


def remote_essence(
    remote: RemoteSecret, names: Sequence[str] | dict[str, FieldValue]
) -> dict[str, FieldValue]:
    return {name: remote.field_value(name) for name in names}


def field_changes(pairs: Sequence[tuple[DesiredSecret, RemoteSecret]]) -> list[tuple[FieldChange, ...]]:
    """For each (desired, remote) pair, what must change on the remote secret so its managed fields
    equal the desired ones, in render order.

    Secrets already in sync cost one comparison of a few fields; the ones that differ go through a
    single structural diff together (deepdiff is imported only then, and one call costs far less
    than one per secret).
    """
    results: list[tuple[FieldChange, ...]] = [()] * len(pairs)
    differing: list[tuple[int, dict[str, FieldValue], dict[str, FieldValue]]] = []
    # One flat mapping per side, keyed by pair and field position: deepdiff's cost is per node, and
    # integer keys at one level are its cheapest shape (a third of a mapping per secret).
    flat_before: dict[int, FieldValue] = {}
    flat_after: dict[int, FieldValue] = {}
    for index, (desired, remote) in enumerate(pairs):
        after = desired_essence(desired)
        before = remote_essence(remote, after)
        if before == after:
            continue
        differing.append((index, before, after))
        base = index * _WIDTH
        for name, value in after.items():
            flat_before[base + _POSITION[name]] = before[name]
            flat_after[base + _POSITION[name]] = value
    if not differing:
        return results
    changed = _deepdiff()(flat_before, flat_after).affected_root_keys
    for index, before, after in differing:
        base = index * _WIDTH
        results[index] = tuple(
            FieldChange(field=name, before=before[name], after=after[name])
            for position, name in enumerate(COMPARABLE_FIELDS)
            if base + position in changed
        )
    return results


def _deepdiff() -> Any:
    """deepdiff's DeepDiff, imported on first use."""
    if "deepdiff" not in sys.modules and "pydantic" not in sys.modules:
        # deepdiff imports pydantic, if present, only to recognise pydantic models, which never reach
        # it here; that is half of deepdiff's import time. Hidden for this one import.
        sys.modules["pydantic"] = None  # type: ignore[assignment]
        try:
            import deepdiff  # noqa: F401
        except ImportError:
            pass
        finally:
            del sys.modules["pydantic"]
    from deepdiff import DeepDiff

    return DeepDiff
