"""`reconciler drift`: what changed outside reconciler since the last apply, and values past max_age."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from reconciler.options import connection_options, format_option, listing_option, output_options


@click.command("drift")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@format_option
@click.option(
    "--require-state",
    is_flag=True,
    help="Exit 1 when there is no state file (a lost CI cache) instead of comparing without one.",
)
@listing_option
@connection_options
@output_options
def command(file: Path, fmt: str, require_state: bool, **opts: Any) -> None:
    """Report what changed outside reconciler since the last apply, and values older than their
    max_age. Without a state, every difference from the file. Exit 2 when anything is found."""
    from reconciler import engine
    from reconciler.cli import _await, emit, step_summary
    from reconciler.commands.common import origin, settings_from
    from reconciler.errors import ExitCode
    from reconciler.render import render_drift

    settings = settings_from(file, opts)
    result = _await(engine.make_drift(settings, file, require_state=require_state))
    shown_from = origin(settings, file)
    emit(render_drift(result.plan, fmt, color=settings.color, origin=shown_from))
    step_summary(lambda: render_drift(result.plan, "markdown", origin=shown_from))
    if result.plan.drift or result.plan.stale:
        raise click.exceptions.Exit(int(ExitCode.CHANGES))
