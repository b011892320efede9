"""The command line: click commands only, one error boundary, exit codes from errors.ExitCode."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from reconciler.errors import ExitCode, ReconcilerError, UsageError
from reconciler.options import (
    break_lock_option,
    connection_options,
    format_option,
    listing_option,
    output_options,
    plan_options,
)

if TYPE_CHECKING:
    from reconciler.engine import PlanResult
    from reconciler.models import ApplyReport
    from reconciler.plan import PlanOptions
    from reconciler.render import Origin
    from reconciler.settings import Settings

# Subcommands defined in their own modules are imported only when invoked, to keep start-up fast.
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "emulator": ("reconciler.emulator.command", "command"),
    "forget": ("reconciler.forget_command", "command"),
    "workflows": ("reconciler.workflows_command", "command"),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            module_name, attr = LAZY_COMMANDS[cmd_name]
            import importlib

            command: click.Command = getattr(importlib.import_module(module_name), attr)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="reconciler")
def cli() -> None:
    """Keep io.net IO Intelligence secrets in sync with a desired-state YAML file in git."""


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--offline", is_flag=True, help="Do not resolve value references (no secrets needed).")
@click.option("--allow-empty", is_flag=True, help="Accept an empty `secrets:` list with prune on.")
@output_options
def validate(files: tuple[Path, ...], offline: bool, allow_empty: bool) -> None:
    """Check FILE...: schema, API limits, and (unless --offline) that every value reference resolves.

    A file that `plan` would refuse for its own content fails here too (an empty `secrets:` list with
    prune on), so a pre-commit hook catches a broken merge.
    """
    from reconciler import console, desired
    from reconciler.errors import DesiredFileError, PlanError, Problem
    from reconciler.prune import check_not_empty

    problems: list[Problem] = []
    failed: list[str] = []
    for file in files:
        try:
            state = desired.load(file, resolve=not offline)
        except DesiredFileError as exc:
            problems.extend(exc.problems)
            continue
        try:
            check_not_empty(state, enabled=state.prune.enabled, allow_empty=allow_empty)
        except PlanError as exc:
            failed.append(exc.message)
            continue
        count = len(state.secrets)
        mode = " (offline: references not resolved)" if offline else ""
        if not offline:
            from reconciler.drift import ASSUMED_HEAD, ASSUMED_TAIL, exposure

            # Offline there is no value to measure; without an account, io.net's display is assumed.
            source = "assumed: io.net does not document them"
            for line in exposure(state.secrets, ASSUMED_HEAD, ASSUMED_TAIL, source):
                console.note(f"Warning: {file}: {line}")
        if state.workflows:
            from reconciler import workflows

            report = workflows.check(state)
            for finding in report.findings:
                # Errors always reach stderr; warnings are notes, which -q silences.
                if finding in report.errors:
                    click.echo(str(finding), err=True)
                else:
                    console.note(str(finding))
            if report.errors:
                failed.append(f"{file}: {len(report.errors)} workflow problem(s) (above)")
                continue
        click.echo(f"{file}: valid, {count} secret{'s' if count != 1 else ''}{mode}")
    if problems:
        raise DesiredFileError(problems)
    if failed:
        raise ReconcilerError("\n".join(failed))


def _settings(file: Path, opts: dict[str, Any], concurrency: int | None = None) -> Settings:
    from reconciler import console, settings
    from reconciler.endpoint import shown

    console.configure_logging()
    resolved = settings.resolve(
        desired_path=file,
        api_url=opts["api_url"],
        auth_header=opts["auth_header"],
        state=opts["state_path"],
        ignore_state=bool(opts["ignore_state"]),
        timeout=opts["timeout"],
        concurrency=concurrency,
        color=console.color(sys.stdout.isatty()),
        verbosity=console.output().verbose,
        is_tty=sys.stdout.isatty(),
        assume_complete_listing=bool(opts.get("assume_complete_listing")),
    )
    console.detail(f"API: {shown(resolved.api_url)} (key sent as {resolved.auth_header})")
    ignored = " (ignored: --ignore-state)" if resolved.ignore_state else ""
    console.detail(f"state: {resolved.state_path}{ignored}")
    return resolved


def _plan_options(opts: dict[str, Any]) -> PlanOptions:
    from reconciler.plan import PlanOptions

    return PlanOptions(
        prune=opts["prune"],
        force_values=bool(opts["force_values"]),
        heal=bool(opts["heal"]),
        allow_empty=bool(opts["allow_empty"]),
        max_deletes=opts["max_deletes"],
    )


def _origin(settings: Settings, file: Path, plan_id: str = "", plan_path: Path | None = None) -> Origin:
    from reconciler.endpoint import host
    from reconciler.render import Origin

    return Origin(
        host=host(settings.api_url), file=str(file), plan_id=plan_id, plan_path=str(plan_path or "")
    )


@cli.command()
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
def plan(file: Path, fmt: str, detailed_exitcode: bool, out: Path | None, **opts: Any) -> None:
    """Show what apply would change in the account to match FILE, field by field."""
    from reconciler import console, engine, planfile
    from reconciler.render import render_plan

    settings = _settings(file, opts)
    if out is not None:
        planfile.desired_path_for(out, file)
    result = _await(engine.make_plan(settings, file, _plan_options(opts)))
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
    origin = _origin(settings, file, plan_id, out)
    _emit(render_plan(result.plan, fmt, color=settings.color, origin=origin))
    _step_summary(lambda: render_plan(result.plan, "markdown", origin=origin))
    if unsaved is not None:
        raise unsaved
    if out is not None:
        console.note(f"Saved the plan to {out}. It is the approval: `reconciler apply {out}` applies it.")
    if detailed_exitcode and result.plan.has_changes:
        raise click.exceptions.Exit(int(ExitCode.CHANGES))


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--auto-approve",
    is_flag=True,
    help="Apply FILE without asking (for CI). A saved PLAN never asks: it was the approval.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    metavar="N",
    help="Writes in flight at once, 1 to 64. Default: 4.",
)
@click.option(
    "--adopt",
    is_flag=True,
    help="Only record baselines for existing secrets whose display matches; refused if the plan writes.",
)
@break_lock_option
@format_option
@plan_options
@listing_option
@connection_options
@output_options
def apply(
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
    from reconciler import engine, planfile
    from reconciler import state as state_file
    from reconciler.render import render_apply, render_plan

    saved = planfile.detect(file)
    if saved is not None:
        _refuse_planning_flags(file)
    settings = _settings(saved.desired_path if saved else file, opts, concurrency)
    if saved is not None:
        # Before any request and any file operation: a forged or edited plan must not send the key.
        planfile.verify(saved, engine.state_key(settings), settings.api_url)
    origin = _origin(settings, saved.desired_path, saved.plan_id, file) if saved else _origin(settings, file)
    with state_file.lock(settings.state_path, break_lock=break_lock):
        if saved is not None:
            result = _await(engine.make_saved_plan(settings, saved))
        else:
            result = _await(engine.make_plan(settings, file, _plan_options(opts)))
        if adopt:
            engine.adoptable(result)  # refuses, before anything is shown or asked, a plan that writes
        # JSON output is one document: the apply report. Text and Markdown show the plan first.
        nothing_to_do = not result.plan.has_changes and not adopt and not result.plan.drift
        if fmt != "json" or nothing_to_do:
            _emit(render_plan(result.plan, fmt, color=settings.color, origin=origin))
        if result.plan.has_changes and saved is None and not auto_approve:
            _confirm()
        # Even with nothing to write this runs: the state still learns protection and renames.
        report = _await(_apply_with_signals(settings, result, adopt, saved.plan_id if saved else None))
    if nothing_to_do:
        return
    if fmt != "json":
        click.echo("")
    # The report first: the writes happened, and a job summary that cannot be written must not hide them.
    _emit(render_apply(report, fmt, color=settings.color, origin=origin))
    _step_summary(lambda: render_apply(report, "markdown", origin=origin))
    if report.interrupted:
        raise click.exceptions.Exit(int(ExitCode.INTERRUPTED))
    if report.failed:
        raise click.exceptions.Exit(int(ExitCode.ERROR))


def _refuse_planning_flags(plan_path: Path) -> None:
    """A saved plan is what was reviewed: a flag that would change it is refused, as Terraform does."""
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


@cli.command()
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
def drift(file: Path, fmt: str, require_state: bool, **opts: Any) -> None:
    """Report what changed outside reconciler since the last apply, and values older than their
    max_age. Without a state, every difference from the file. Exit 2 when anything is found."""
    from reconciler import engine
    from reconciler.render import render_drift

    settings = _settings(file, opts)
    result = _await(engine.make_drift(settings, file, require_state=require_state))
    origin = _origin(settings, file)
    _emit(render_drift(result.plan, fmt, color=settings.color, origin=origin))
    _step_summary(lambda: render_drift(result.plan, "markdown", origin=origin))
    if result.plan.drift or result.plan.stale:
        raise click.exceptions.Exit(int(ExitCode.CHANGES))


@cli.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), default="secrets.yaml")
@click.option(
    "--names", "globs", multiple=True, metavar="GLOB", help="Import only names matching (repeatable)."
)
@click.option("--dry-run", is_flag=True, help="Print the file as it would be; write nothing.")
@listing_option
@connection_options
@output_options
def import_(file: Path, globs: tuple[str, ...], dry_run: bool, **opts: Any) -> None:
    """Write the account's secrets into FILE (default: secrets.yaml; new, or appended to with its
    comments kept).

    Each value becomes a ${ENV} reference; no value or display is ever written.
    """
    from reconciler import console, engine

    settings = _settings(file, opts)
    found, text = _await(engine.import_secrets(settings, file, globs, dry_run=dry_run))
    for reason in found.skipped:
        console.note(f"skipped {reason}")
    if not found.entries:
        console.note("Nothing to import.")
        return
    if dry_run:
        _emit(text)
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


STEP_SUMMARY_LIMIT = 1024 * 1024


def _step_summary(markdown: Callable[[], str]) -> None:
    """In GitHub Actions, also append the Markdown report to the job summary (GitHub caps it at 1 MiB).

    The report is rendered only there: elsewhere it would be a second rendering for nothing.
    """
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return
    try:
        _append_summary(Path(target), markdown)
    except OSError as exc:
        # The report is already printed: a summary that cannot be written is no reason to fail.
        reason = exc.strerror or type(exc).__name__
        click.echo(
            f"Warning: GITHUB_STEP_SUMMARY {target}: cannot write the job summary ({reason})", err=True
        )


def _append_summary(path: Path, markdown: Callable[[], str]) -> None:
    from reconciler.fsutil import NotRegularFile

    # Non-blocking: a FIFO with no reader fails at once instead of holding the run.
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC
    fd = os.open(path, flags, 0o644)
    with os.fdopen(fd, "ab") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile(0, "not a regular file", str(path))
        room = STEP_SUMMARY_LIMIT - info.st_size - 1
        if room <= 0:
            return
        data = (markdown().rstrip("\n") + "\n").encode()
        if len(data) > room:
            note = b"\n\n_(cut: the job summary is limited to 1 MiB)_\n"
            data = data[: max(0, room - len(note))].decode(errors="ignore").encode() + note
        handle.write(data)


T = TypeVar("T")


def _await(work: Coroutine[Any, Any, T]) -> T:
    # asyncio costs a fifth of start-up; only commands that talk to io.net pay for it.
    import asyncio

    # The result leaves by a side door: on Python 3.11 and 3.12 asyncio.run, restoring the SIGINT
    # handler, formats the finished task, result included, into an error message it then drops. A
    # 50,000-secret plan would be rendered into text twice for nothing.
    box: list[T] = []

    async def run() -> None:
        box.append(await work)

    asyncio.run(run())
    return box[0]


def _emit(text: str) -> None:
    click.echo(text, nl=not text.endswith("\n"))


def _run(entry: click.Command, args: list[str] | None) -> int:
    try:
        # Without standalone mode click returns the code of a raised Exit instead of exiting.
        result = entry.main(args=args, prog_name="reconciler", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.Abort as exc:
        # click turns Ctrl-C (and SIGTERM, handled alike) into Abort; EOF at a prompt too.
        stopped = isinstance(exc.__cause__, KeyboardInterrupt)
        click.echo("Interrupted." if stopped else "Aborted.", err=True)
        return int(ExitCode.INTERRUPTED)
    except click.ClickException as exc:
        # Usage errors exit 1 like every other error; 2 is reserved for "changes present".
        exc.show()
        return int(ExitCode.ERROR)
    except ReconcilerError as exc:
        click.echo(f"Error: {exc}" if "\n" not in exc.message else exc.message, err=True)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return int(ExitCode.INTERRUPTED)
    except Exception as exc:  # the one boundary: an unexpected failure is a bug, reported without its text
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb is not None else "?"
        click.echo(
            f"Internal error: {type(exc).__name__} at {where}. This is a bug in reconciler; "
            "please report it (the message is withheld because it might contain a secret).",
            err=True,
        )
        return int(ExitCode.INTERNAL)
    return result if isinstance(result, int) else int(ExitCode.OK)


# A plan holds a few objects per secret, none of them cyclic garbage; with the default threshold the
# collector walks them all again and again, a fifth of the CPU of a 50,000-secret plan. A larger young
# generation keeps cycles collected at a fraction of the cost.
GC_THRESHOLDS = (100_000, 50, 100)


def main(args: list[str] | None = None) -> None:
    import gc

    gc.set_threshold(*GC_THRESHOLDS)
    code = _run(cli, args)
    sys.exit(code)
