"""The remote secret an entry of the file manages: by its pinned id, its name or a previous name (pure)."""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.models import DesiredSecret, RemoteSecret


def match(
    want: DesiredSecret,
    by_name: Mapping[str, list[RemoteSecret]],
    by_id: Mapping[str, RemoteSecret],
    problems: list[str],
) -> tuple[RemoteSecret | None, str | None]:
    """The remote secret this entry manages, and the previous name it is renamed from, if any."""
    if want.secret_id is not None:
        pinned = by_id.get(want.secret_id)
        if pinned is None:
            problems.append(
                f"{want.secret_name!r} is pinned to secret_id {want.secret_id}, which does not exist "
                "remotely; remove the pin to create it anew"
            )
            return None, None
        previous = pinned.secret_name if pinned.secret_name != want.secret_name else None
        holders = [s for s in by_name.get(want.secret_name, []) if s.secret_id != pinned.secret_id]
        if previous is not None and holders:
            ids = ", ".join(sorted(s.secret_id for s in holders))
            problems.append(
                f"{want.secret_name!r} is pinned to secret_id {want.secret_id} (now named {previous!r}), "
                f"but another remote secret already has that name ({ids}); renaming would leave two "
                "secrets with one name: rename or delete the other one first"
            )
            return None, None
        return pinned, previous

    current = by_name.get(want.secret_name, [])
    if len(current) > 1:
        ids = ", ".join(sorted(s.secret_id for s in current))
        problems.append(
            f"{len(current)} remote secrets are named {want.secret_name!r} ({ids}); "
            "pin the one to manage with secret_id"
        )
        return None, None
    old = [(name, s) for name in want.previous_names for s in by_name.get(name, [])]
    if current and old:
        names = ", ".join(sorted({name for name, _ in old}))
        problems.append(
            f"{want.secret_name!r} exists remotely and so does its previous name ({names}); "
            "delete one of them or drop it from previous_names"
        )
        return None, None
    if current:
        return current[0], None
    if len(old) > 1:
        ids = ", ".join(sorted(f"{name}={s.secret_id}" for name, s in old))
        problems.append(
            f"{want.secret_name!r} could be renamed from several remote secrets ({ids}); "
            "pin the one to keep with secret_id"
        )
        return None, None
    if old:
        return old[0][1], old[0][0]
    return None, None
