"""Field-level differences between desired entries and remote secrets (the only deepdiff user)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from reconciler.models import (
    BOOLEAN_FIELDS,
    OPTIONAL_FIELDS,
    DesiredSecret,
    FieldChange,
    FieldValue,
    RemoteSecret,
)

# The fields an entry manages where it states them, in render order, and whether each is a boolean.
_OPTIONAL = tuple((name, name in BOOLEAN_FIELDS) for name in OPTIONAL_FIELDS)


def desired_essence(desired: DesiredSecret) -> dict[str, FieldValue]:
    """The comparable fields the entry manages, normalised the way the API stores them."""
    essence: dict[str, FieldValue] = {"secret_name": desired.secret_name}
    stated = desired.fields
    for name, boolean in _OPTIONAL:
        if name in stated:
            value = stated[name]
            # The API always answers a boolean for a flag; "must be empty" there means false.
            essence[name] = bool(value) if boolean else value
    return essence


def remote_essence(
    remote: RemoteSecret, names: Sequence[str] | dict[str, FieldValue]
) -> dict[str, FieldValue]:
    # getattr rather than field_value: this runs for every secret of the account.
    return {name: getattr(remote, name) for name in names}


def field_changes(pairs: Sequence[tuple[DesiredSecret, RemoteSecret]]) -> list[tuple[FieldChange, ...]]:
    """For each (desired, remote) pair, what must change on the remote secret so its managed fields
    equal the desired ones, in render order.

    Secrets already in sync cost one comparison of a few fields; the ones that differ go through a
    single structural diff together (deepdiff is imported only then, and one call costs far less
    than one per secret).
    """
    results: list[tuple[FieldChange, ...]] = [()] * len(pairs)
    differing: list[tuple[int, dict[str, FieldValue], dict[str, FieldValue]]] = []
    # One flat mapping per side, one key per field of each pair that differs: deepdiff's cost is per
    # node, and one level of short text keys is its cheapest shape (integer keys are re-parsed).
    flat_before: dict[str, FieldValue] = {}
    flat_after: dict[str, FieldValue] = {}
    for index, (desired, remote) in enumerate(pairs):
        after = desired_essence(desired)
        before = remote_essence(remote, after)
        if before == after:
            continue
        differing.append((index, before, after))
        for name, value in after.items():
            old = before[name]
            # The fields that compare equal are left out: for text, flags and nulls deepdiff could only
            # agree, and its cost is per field.
            if old != value or type(old) is not type(value):
                flat_before[f"{index}.{name}"] = old
                flat_after[f"{index}.{name}"] = value
    if not differing:
        return results
    changed = _deepdiff()(flat_before, flat_after, view="tree").affected_root_keys
    for index, before, after in differing:
        # `after` holds the fields in render order (desired_essence follows SECRET_FIELDS).
        results[index] = tuple(
            FieldChange(field=name, before=before[name], after=value)
            for name, value in after.items()
            if f"{index}.{name}" in changed
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
