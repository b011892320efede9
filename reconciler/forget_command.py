"""`reconciler forget`: stop managing secrets without deleting them (Terraform's `removed` block)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from reconciler.state import State


@click.command("forget")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="State file. Default: .reconciler/state.json beside FILE.",
)
@click.option("--break-lock", is_flag=True, help="Take the state lock even if another run holds it.")
@click.option(
    "--api-url",
    metavar="URL",
    help="Accepted for symmetry with the other commands; forget reads only the state file.",
)
@click.option(
    "--auth-header",
    type=click.Choice(["bearer", "x-api-key"]),
    help="Accepted for symmetry with the other commands.",
)
@click.option("--timeout", type=float, help="Accepted for symmetry with the other commands.")
@click.option("-v", "--verbose", count=True, help="More detail on stderr (never values).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
@click.option("--no-color", is_flag=True, help="No colour (also when NO_COLOR is set).")
def command(
    file: Path,
    names: tuple[str, ...],
    state_path: Path | None,
    break_lock: bool,
    **opts: Any,
) -> None:
    """Stop managing the secrets NAME... of FILE without deleting them.

    Their state entries are removed and their ids remembered as forgotten: prune leaves them alone
    (even unlisted, even if they were protected) until an apply writes them again. NAME may also be a
    secret id, to choose between entries that share a name. Needs no network.
    """
    from reconciler import engine, settings
    from reconciler import state as state_file

    resolved = settings.resolve(
        desired_path=file,
        api_url=opts["api_url"],
        auth_header=opts["auth_header"],
        state=state_path,
        verbosity=int(opts["verbose"]),
        color=False,
    )
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
        click.echo(
            f"Note: {file} still lists {name}; remove the entry, or the next apply that writes it "
            "manages it again.",
            err=True,
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
