"""Field-level differences between a desired entry and a remote secret (the only deepdiff user)."""

from __future__ import annotations

from reconciler.models import COMPARABLE_FIELDS, DesiredSecret, FieldChange, FieldValue, RemoteSecret


def desired_essence(desired: DesiredSecret) -> dict[str, FieldValue]:
    """The comparable fields the entry manages, normalised the way the API stores them."""
    essence: dict[str, FieldValue] = {"secret_name": desired.secret_name}
    for name in COMPARABLE_FIELDS[1:]:
        if name in desired.fields:
            value = desired.fields[name]
            # The API always answers a boolean here; "must be empty" for a flag means false.
            essence[name] = bool(value) if name == "is_default_for_tool" else value
    return essence


def remote_essence(remote: RemoteSecret, names: tuple[str, ...] | list[str]) -> dict[str, FieldValue]:
    return {name: remote.field_value(name) for name in names}


def field_changes(desired: DesiredSecret, remote: RemoteSecret) -> tuple[FieldChange, ...]:
    """What must change on `remote` so its managed fields equal `desired`'s, in render order."""
    after = desired_essence(desired)
    before = remote_essence(remote, list(after))
    if before == after:
        # The common case on a large in-sync account: no need to pay for a structural diff.
        return ()
    from deepdiff import DeepDiff

    changed = set(DeepDiff(before, after).affected_root_keys)
    return tuple(
        FieldChange(field=name, before=before[name], after=after[name])
        for name in COMPARABLE_FIELDS
        if name in changed
    )
