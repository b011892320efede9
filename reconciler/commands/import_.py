"""`reconciler import`: the account's secrets written into the desired-state file as ${ENV} references."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from reconciler.options import connection_options, listing_option, output_options


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), default="secrets.yaml")
@click.option(
    "--names", "globs", multiple=True, metavar="GLOB", help="Import only names matching (repeatable)."
)
@click.option("--dry-run", is_flag=True, help="Print the file as it would be; write nothing.")
@listing_option
@connection_options
@output_options
def command(file: Path, globs: tuple[str, ...], dry_run: bool, **opts: Any) -> None:
    """Write the account's secrets into FILE (default: secrets.yaml; new, or appended to with its
    comments kept).

    Each value becomes a ${ENV} reference; no value or display is ever written.
    """
    from reconciler import console, engine
    from reconciler.cli import _await, emit
    from reconciler.commands.common import settings_from

    settings = settings_from(file, opts)
    found, text = _await(engine.import_secrets(settings, file, globs, dry_run=dry_run))
    for reason in found.skipped:
        console.note(f"skipped {reason}")
    if not found.entries:
        console.note("Nothing to import.")
        return
    if dry_run:
        emit(text)
        return
    count = len(found.entries)
    click.echo(
        f"Imported {count} secret{'s' if count != 1 else ''} into {file}. Set these environment variables"
    )
    click.echo("to the secrets' current values (io.net never returns them), then run")
    click.echo(f"`reconciler apply {file} --adopt` to bring them under management without rotating them:")
    width = max(len(variable) for variable, _ in found.variables)
    for variable, name in found.variables:
        click.echo(f"  {variable.ljust(width)}  for {name}")
