"""`reconciler validate`: check desired-state files without touching the account."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from reconciler.options import output_options

if TYPE_CHECKING:
    from reconciler.errors import Problem


@click.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--offline", is_flag=True, help="Do not resolve value references (no secrets needed).")
@click.option("--allow-empty", is_flag=True, help="Accept an empty `secrets:` list with prune on.")
@output_options
def command(files: tuple[Path, ...], offline: bool, allow_empty: bool) -> None:
    """Check FILE...: schema, API limits, and (unless --offline) that every value reference resolves.

    A file that `plan` would refuse for its own content fails here too (an empty `secrets:` list with
    prune on), so a pre-commit hook catches a broken merge.
    """
    from reconciler.errors import DesiredFileError, ReconcilerError

    problems: list[Problem] = []
    failed: list[str] = []
    for file in files:
        _check(file, offline=offline, allow_empty=allow_empty, problems=problems, failed=failed)
    if problems:
        raise DesiredFileError(problems)
    if failed:
        raise ReconcilerError("\n".join(failed))


def _check(
    file: Path, *, offline: bool, allow_empty: bool, problems: list[Problem], failed: list[str]
) -> None:
    """One file: its problems (or why it fails) are added to the lists, or it is said to be valid."""
    from reconciler import console, desired
    from reconciler.errors import DesiredFileError, PlanError
    from reconciler.prune import check_not_empty

    try:
        state = desired.load(file, resolve=not offline)
    except DesiredFileError as exc:
        problems.extend(exc.problems)
        return
    try:
        check_not_empty(state, enabled=state.prune.enabled, allow_empty=allow_empty)
    except PlanError as exc:
        failed.append(exc.message)
        return
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
            return
    click.echo(f"{file}: valid, {count} secret{'s' if count != 1 else ''}{mode}")
