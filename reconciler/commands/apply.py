"""`reconciler apply`: make the account match FILE, or carry out a saved PLAN exactly."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from reconciler.options import (
    break_lock_option,
    connection_options,
    format_option,
    listing_option,
    output_options,
    plan_options,
    stack,
)

if TYPE_CHECKING:
    from reconciler.engine import PlanResult
    from reconciler.models import ApplyReport
    from reconciler.settings import Settings

apply_options = stack(
    click.option(
        "--auto-approve",
        is_flag=True,
        help="Apply FILE without asking (for CI). A saved PLAN never asks: it was the approval.",
    ),
    click.option(
        "--concurrency",
        type=click.IntRange(1, 64),
        metavar="N",
        help="Writes in flight at once, 1 to 64. Default: 4.",
    ),
    click.option(
        "--adopt",
        is_flag=True,
        help="Only record baselines for existing secrets whose display matches; refused if the plan writes.",
    ),
)


@click.command("apply")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@apply_options
@break_lock_option
@format_option
@plan_options
@listing_option
@connection_options
@output_options
def command(
    file: Path,
    auto_approve: bool,
    concurrency: int | None,
    adopt: bool,
    break_lock: bool,
    fmt: str,
    **opts: Any,
) -> None:
    """Make the account match FILE, or carry out a PLAN saved by `plan --out`, exactly.

    FILE: plans, asks for confirmation (or --auto-approve), writes, and verifies each write by
    reading it back. PLAN: the reviewed plan is the approval; it is applied as it is, without asking,
    or refused if anything it assumed has changed. Planning flags are refused with it.
    """
    from reconciler import engine
    from reconciler.cli import _await, emit, step_summary
    from reconciler.commands.common import origin, plan_options_from, settings_from
    from reconciler.errors import ExitCode
    from reconciler.render import render_apply, render_plan

    target = engine.apply_target(file)
    if target.saved is not None:
        _refuse_planning_flags(file)
    settings = settings_from(target.desired_path, opts, concurrency)
    engine.check_target(settings, target)
    shown_from = origin(settings, target.desired_path, target.plan_id or "", file if target.saved else None)
    with engine.apply_lock(settings, break_lock=break_lock):
        result = _await(engine.plan_apply(settings, target, plan_options_from(opts), adopt=adopt))
        # JSON output is one document: the apply report. Text and Markdown show the plan first.
        nothing_to_do = not result.plan.has_changes and not adopt and not result.plan.drift
        if fmt != "json" or nothing_to_do:
            emit(render_plan(result.plan, fmt, color=settings.color, origin=shown_from))
        if result.plan.has_changes and target.saved is None and not auto_approve:
            _confirm()
        # Even with nothing to write this runs: the state still learns protection and renames.
        report = _await(_apply_with_signals(settings, result, adopt, target.plan_id))
    if nothing_to_do:
        return
    if fmt != "json":
        click.echo("")
    # The report first: the writes happened, and a job summary that cannot be written must not hide them.
    emit(render_apply(report, fmt, color=settings.color, origin=shown_from))
    step_summary(lambda: render_apply(report, "markdown", origin=shown_from))
    if report.interrupted:
        raise click.exceptions.Exit(int(ExitCode.INTERRUPTED))
    if report.failed:
        raise click.exceptions.Exit(int(ExitCode.ERROR))


def _refuse_planning_flags(plan_path: Path) -> None:
    """A saved plan is what was reviewed: a flag that would change it is refused, as Terraform does."""
    from reconciler.errors import UsageError
    from reconciler.options import planning_flags_given

    given = planning_flags_given(click.get_current_context())
    if given:
        listed = ", ".join(given)
        raise UsageError(
            f"{plan_path} is a saved plan, applied exactly as it was reviewed: {listed} cannot change it "
            f"(nothing was changed). Pass {'them' if len(given) > 1 else 'it'} to `reconciler plan --out` "
            "and review the new plan"
        )


def _confirm() -> None:
    from reconciler.errors import ExitCode, UsageError

    if not sys.stdin.isatty():
        raise UsageError(
            "apply FILE needs confirmation and there is no terminal to ask on: pass --auto-approve, or "
            "apply a plan saved by `reconciler plan --out` (nothing was changed)"
        )
    answer = click.prompt("Apply these changes? Only 'yes' is accepted", default="", show_default=False)
    if answer.strip() != "yes":
        click.echo("Apply cancelled; nothing was changed.", err=True)
        raise click.exceptions.Exit(int(ExitCode.ERROR))


async def _apply_with_signals(
    settings: Settings, result: PlanResult, adopt: bool, plan_id: str | None
) -> ApplyReport:
    """SIGINT stops new work, lets writes in flight finish and the state be saved; a second one aborts."""
    import asyncio
    import signal

    from reconciler import console, engine
    from reconciler.models import Outcome
    from reconciler.render import outcome_line

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_sigint() -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        click.echo(
            "Interrupted: finishing writes in flight, then stopping (Ctrl-C again to abort).", err=True
        )
        stop.set()

    # Removing a loop's handler resets the signal to the system default: what was there comes back.
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        loop.add_signal_handler(sig, on_sigint)
    try:
        with console.WriteProgress(len(result.plan.actionable)) as progress:

            def reported(outcome: Outcome) -> None:
                progress(outcome_line(outcome))

            return await engine.run_apply(
                settings, result, adopt=adopt, plan_id=plan_id, progress=reported, stop=stop
            )
    finally:
        for sig, handler in previous.items():
            loop.remove_signal_handler(sig)
            signal.signal(sig, handler)
