"""The Change records a plan is made of: creates, updates and renames, and the phase each runs in (pure)."""

from __future__ import annotations

from types import MappingProxyType

from reconciler import diff
from reconciler.models import Action, Change, DesiredSecret, FieldChange, PatchValue, RemoteSecret

# Execution phases: deletes free quota and names; clearing a default or renaming frees a slot or a
# name; then the remaining updates; creates last, when names and quota are free.
PHASE_DELETE = 0
PHASE_FREE = 1
PHASE_UPDATE = 2
PHASE_CREATE = 3
PHASE_NOOP = 9


def create_of(want: DesiredSecret) -> Change:
    """The create of `want`, with every field it states."""
    patch: dict[str, PatchValue] = {"secret_name": want.secret_name}
    if want.value is not None:
        patch["secret_value"] = want.value
    fields = [FieldChange("secret_name", None, want.secret_name)]
    for name, value in diff.desired_essence(want).items():
        if name != "secret_name" and value is not None:
            patch[name] = value
            fields.append(FieldChange(name, None, value))
    fields.append(FieldChange("secret_value", None, None, sensitive=True))
    return Change(
        action=Action.CREATE,
        secret_name=want.secret_name,
        fields=tuple(fields),
        patch=MappingProxyType(patch),
        phase=PHASE_CREATE,
    )


def update_of(
    want: DesiredSecret,
    remote: RemoteSecret,
    previous: str | None,
    fields: list[FieldChange],
    patch: dict[str, PatchValue],
    reasons: list[str],
) -> Change:
    """The update or rename of a matched secret whose patch is not empty."""
    if previous is not None:
        action, phase = Action.RENAME, PHASE_FREE
        reasons.insert(0, f"renamed from {previous!r} (previous_names); the secret_id is kept")
    else:
        action = Action.UPDATE
        phase = PHASE_FREE if patch.get("is_default_for_tool") is False else PHASE_UPDATE
    return Change(
        action=action,
        secret_name=want.secret_name,
        secret_id=remote.secret_id,
        fields=tuple(fields),
        patch=MappingProxyType(patch),
        reasons=tuple(reasons),
        remote=remote,
        phase=phase,
        previous_name=previous,
    )
