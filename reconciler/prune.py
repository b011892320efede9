"""Prune: which unlisted remote secrets a plan deletes, the guards on how many, and its warnings (pure)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from fnmatch import fnmatchcase

from reconciler.errors import PlanError
from reconciler.models import Action, Change, DesiredState, FieldChange, RemoteSecret

DEFAULT_MAX_DELETES = 10


def deletes(
    desired: DesiredState,
    remote: tuple[RemoteSecret, ...],
    claimed: Mapping[str, str],
    renamed_from: set[str],
    *,
    enabled: bool,
    allow_empty: bool,
    max_deletes: int | None,
    kept_ids: frozenset[str],
    phase: int,
) -> list[Change]:
    """The deletes of unlisted secrets in prune's scope; PlanError past the guards.

    `claimed`: remote ids the file's entries matched; `renamed_from`: names a rename leaves;
    `kept_ids`: ids never deleted (protected or forgotten); `max_deletes` None: at most
    DEFAULT_MAX_DELETES and never more than half of what the plan manages.
    """
    if not enabled:
        return []
    check_not_empty(desired, enabled=enabled, allow_empty=allow_empty)

    def in_scope(name: str) -> bool:
        return not desired.prune.match or any(fnmatchcase(name, glob) for glob in desired.prune.match)

    protected_names = {s.secret_name for s in desired.secrets if s.protect}
    previous = {name for s in desired.secrets for name in s.previous_names}
    found: list[Change] = []
    for secret in sorted(remote, key=lambda s: (s.secret_name, s.secret_id)):
        if secret.secret_id in claimed or secret.secret_id in kept_ids:
            continue
        if secret.secret_name in previous or secret.secret_name in renamed_from:
            continue
        if secret.secret_name in protected_names or not in_scope(secret.secret_name):
            continue
        scope = (
            f"prune: matches {', '.join(desired.prune.match)}"
            if desired.prune.match
            else "prune: not listed in the desired file"
        )
        found.append(
            Change(
                action=Action.DELETE,
                secret_name=secret.secret_name,
                secret_id=secret.secret_id,
                fields=(FieldChange("secret_name", secret.secret_name, None),),
                reasons=(scope,),
                remote=secret,
                phase=phase,
            )
        )
    _guard(found, remote, claimed, in_scope, max_deletes)
    return found


def _guard(
    found: list[Change],
    remote: tuple[RemoteSecret, ...],
    claimed: Mapping[str, str],
    in_scope: Callable[[str], bool],
    max_deletes: int | None,
) -> None:
    """PlanError when the deletes pass --max-deletes, or (without it) half of what the plan manages."""
    limit = DEFAULT_MAX_DELETES if max_deletes is None else max_deletes
    if len(found) > limit:
        raise PlanError(
            f"the plan would delete {len(found)} secrets, more than --max-deletes {limit}; "
            "deletes on io.net are permanent. Check the file, or raise --max-deletes if this is meant"
        )
    # Managed: what the file lists plus what prune may touch (the whole account without globs).
    managed = sum(1 for s in remote if s.secret_id in claimed or in_scope(s.secret_name))
    if max_deletes is None and len(found) * 2 > managed:
        raise PlanError(
            f"the plan would delete {len(found)} of the {managed} secrets it manages (more than half); "
            "refusing. Check the file, or pass --max-deletes to confirm"
        )


def check_not_empty(desired: DesiredState, *, enabled: bool, allow_empty: bool) -> None:
    """An empty `secrets:` with prune on is how a broken merge looks: refused unless --allow-empty.

    `validate` calls this too, so the pre-commit hook catches what `plan` would refuse."""
    if enabled and desired.secrets_empty and not allow_empty:
        raise PlanError(
            f"{desired.path}: prune is on and the file lists no secrets, so every remote secret would be "
            "deleted; refusing (pass --allow-empty if that is really meant)"
        )


def warnings(
    desired: DesiredState,
    remote: tuple[RemoteSecret, ...],
    claimed: Mapping[str, str],
    renamed_from: set[str],
    count: int,
) -> tuple[str, ...]:
    """A prune that nothing but the file limits is said aloud, however it is spelled; `count` deletes."""
    if not count:
        return ()
    globs = desired.prune.match
    if not globs:
        # The file's `prune: true` or --prune alike.
        return (
            f"prune is on with no match globs: it deletes every remote secret not listed in the file "
            f"({count} in this plan); use prune: {{match: [GLOB]}} to limit what may be deleted",
        )
    spelled = ", ".join(globs)
    if any(set(glob) == {"*"} for glob in globs):
        return (
            f"prune: {{match: [{spelled}]}} matches every name, as prune: true does: it deletes every "
            f"remote secret not listed in the file ({count} in this plan); use narrower globs",
        )
    previous = {name for s in desired.secrets for name in s.previous_names} | renamed_from
    unlisted = [s for s in remote if s.secret_id not in claimed and s.secret_name not in previous]
    if len(unlisted) >= 2 and all(any(fnmatchcase(s.secret_name, g) for g in globs) for s in unlisted):
        return (
            f"prune: {{match: [{spelled}]}} matches every remote secret the file does not list "
            f"({len(unlisted)}), so here it limits nothing: {count} are deleted in this plan; check "
            "that the globs are as narrow as meant",
        )
    return ()
