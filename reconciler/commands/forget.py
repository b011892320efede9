"""`reconciler forget`: stop managing secrets without deleting them (Terraform's `removed` block)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from reconciler.options import break_lock_option, output_options, state_option

if TYPE_CHECKING:
    from reconciler.state import State


@click.command("forget")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@state_option
@break_lock_option
@output_options
def command(file: Path, names: tuple[str, ...], state_path: Path | None, break_lock: bool) -> None:
    """Stop managing the secrets NAME... of FILE without deleting them.

    Their state entries are removed and their ids remembered as forgotten: prune leaves them alone
    (even unlisted, even if they were protected) until an apply writes them again. NAME may also be a
    secret id, to choose between entries that share a name. Needs no network.
    """
    from reconciler import console, engine, settings
    from reconciler import state as state_file

    resolved = settings.resolve(desired_path=file, state=state_path, color=False)
    console.detail(f"state: {resolved.state_path}")
    key = engine.state_key(resolved)
    with state_file.lock(resolved.state_path, break_lock=break_lock):
        current = state_file.load(resolved.state_path, key)
        chosen = _choose(current, names)
        journal = state_file.Journal(current)
        for secret_id in chosen:
            journal.forget(secret_id)
        journal.flush()
    listed = _still_listed(file, {current.entries[sid].secret_name for sid in chosen})
    for secret_id in chosen:
        entry = current.entries[secret_id]
        protected = "; it was protected, and prune still leaves it alone" if entry.protect else ""
        click.echo(f"Forgot {entry.secret_name} ({secret_id}): no longer managed, not deleted{protected}.")
    for name in sorted(listed):
        console.note(
            f"Note: {file} still lists {name}; remove the entry, or the next apply that writes it "
            "manages it again."
        )


def _choose(current: State, names: tuple[str, ...]) -> list[str]:
    """The state entry ids the arguments name; every argument is checked before anything changes."""
    from reconciler.errors import UsageError

    entries = current.entries
    chosen: list[str] = []
    problems: list[str] = []
    for name in dict.fromkeys(names):
        if name in entries:
            found = [name]
        else:
            found = sorted(sid for sid, entry in entries.items() if entry.secret_name == name)
        if not found:
            problems.append(
                f"{name!r} is not in the state file {current.path} (never applied by reconciler, "
                "or already forgotten)"
            )
        elif len(found) > 1:
            problems.append(
                f"{len(found)} state entries are named {name!r} ({', '.join(found)}); forget one by its id"
            )
        else:
            chosen.extend(sid for sid in found if sid not in chosen)
    if problems:
        raise UsageError("; ".join(problems) + "; nothing was forgotten")
    return chosen


def _still_listed(file: Path, names: set[str]) -> set[str]:
    """Which of `names` the desired file still lists; a file that cannot be read lists none."""
    from reconciler import desired
    from reconciler.errors import ReconcilerError

    try:
        wanted = desired.load(file, resolve=False)
    except ReconcilerError:
        return set()
    return names & {s.secret_name for s in wanted.secrets}
