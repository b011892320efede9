"""`reconciler plan`: what apply would change, field by field, optionally saved for `apply PLAN`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from reconciler.options import connection_options, format_option, listing_option, output_options, plan_options


@click.command("plan")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@format_option
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes, 0 when none.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save the plan (no values: fingerprints) for `reconciler apply PLAN`, which applies exactly it.",
)
@plan_options
@listing_option
@connection_options
@output_options
def command(file: Path, fmt: str, detailed_exitcode: bool, out: Path | None, **opts: Any) -> None:
    """Show what apply would change in the account to match FILE, field by field."""
    from reconciler import console, engine, planfile
    from reconciler.cli import _await, emit, step_summary
    from reconciler.commands.common import origin, plan_options_from, settings_from
    from reconciler.errors import ExitCode, ReconcilerError
    from reconciler.render import render_plan

    settings = settings_from(file, opts)
    if out is not None:
        planfile.desired_path_for(out, file)
    result = _await(engine.make_plan(settings, file, plan_options_from(opts)))
    plan_id = ""
    unsaved: ReconcilerError | None = None
    if out is not None:
        # Saved before anything is shown, so the comment names the plan it describes; a plan that
        # cannot be saved is still shown (without an id), then the error.
        try:
            key = engine.state_key(settings)
            plan_id = planfile.write(out, result.plan, result.desired, key, settings.api_url)
        except ReconcilerError as exc:
            unsaved = exc
    shown_from = origin(settings, file, plan_id, out)
    emit(render_plan(result.plan, fmt, color=settings.color, origin=shown_from))
    step_summary(lambda: render_plan(result.plan, "markdown", origin=shown_from))
    if unsaved is not None:
        raise unsaved
    if out is not None:
        console.note(f"Saved the plan to {out}. It is the approval: `reconciler apply {out}` applies it.")
    if detailed_exitcode and result.plan.has_changes:
        raise click.exceptions.Exit(int(ExitCode.CHANGES))
