"""`reconciler workflows`: coverage of io.net workflow files, and moving inline credentials out of them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from reconciler import console
from reconciler.options import output_options
from reconciler.text import plural

if TYPE_CHECKING:
    from reconciler.workflows import Extraction

# Only click, the output helpers and the standard library at the top: the CLI imports this module
# when the command runs, and everything else is imported inside the commands.


@click.group(name="workflows")
def command() -> None:
    """Keep io.net workflow files and the desired-state file in sync."""


@command.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--unused-as-errors", is_flag=True, help="Report secrets no workflow uses as errors.")
@output_options
def check(file: Path, unused_as_errors: bool) -> None:
    """Check the workflows FILE lists (its `workflows:` globs).

    Errors: a tool that needs a credential no secret covers, a credential written into a workflow, a
    workflow file that cannot be read. Warnings: secrets no workflow uses, globs that match nothing.
    Findings go to stdout, one per line; the summary to stderr. Exit 1 when there are errors.
    """
    from reconciler import desired, workflows
    from reconciler.errors import ExitCode

    state = desired.load(file, resolve=False)
    if not state.workflows:
        console.note(f"{file}: no `workflows:` globs; nothing to check")
        return
    report = workflows.check(state, unused_as_errors=unused_as_errors)
    for line in workflows.format_findings(report):
        click.echo(line)
    errors, warnings = len(report.errors), len(report.warnings)
    console.note(
        f"{file}: {plural(len(report.files), 'workflow file')}, {plural(report.tool_uses, 'tool use')}: "
        f"{plural(errors, 'error')}, {plural(warnings, 'warning')}"
    )
    if errors:
        raise click.exceptions.Exit(int(ExitCode.ERROR))


@command.command()
@click.argument("workflow_files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--into",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The desired-state file that receives the new entries (created when missing).",
)
@click.option("--dry-run", is_flag=True, help="Show the edits as a diff (values masked); write nothing.")
@output_options
def extract(workflow_files: tuple[Path, ...], into: Path, dry_run: bool) -> None:
    """Move credentials written into WORKFLOW_FILES into the desired-state file as ${ENV} references.

    Each inline credential is removed from its workflow (nothing else in the file changes) and becomes
    a secret bound to its tool with is_default_for_tool: true. The values are never written or
    printed: set the environment variables listed at the end.
    """
    from reconciler import workflows
    from reconciler.errors import ExitCode

    plan = workflows.plan_extraction(list(workflow_files), into)
    for note in plan.notes:
        console.note(str(note))
    if not plan.workflows:
        console.note(f"No inline credentials in {plural(plan.files_read, 'workflow file')}; nothing to do.")
        return
    if dry_run:
        click.echo(plan.diff, nl=False)
    else:
        workflows.apply_extraction(plan)
        for moved in plan.moved:
            click.echo(f"{moved.file}:{moved.line}:{moved.col}: {moved.message}")
        if plan.entries:
            click.echo(f"{plan.desired_path}: added {plural(len(plan.entries), 'secret')}")
    _env_instructions(plan, err=dry_run)
    for leftover in plan.leftovers:
        click.echo(str(leftover), err=True)
    if dry_run:
        console.note("Dry run: nothing was written.")
    if plan.leftovers:
        raise click.exceptions.Exit(int(ExitCode.ERROR))


def _env_instructions(plan: Extraction, *, err: bool) -> None:
    lines: list[str] = []
    if plan.env:
        verb = "would reference" if err else "reference"
        lines.append(
            f"The new secrets {verb} these environment variables; set them wherever reconciler runs "
            "(your CI's secret store), then run `reconciler plan`:"
        )
        width = max(len(env.name) for env in plan.env)
        for env in plan.env:
            sources = ", ".join(env.sources)
            lines.append(f"  {env.name:<{width}}  for {', '.join(env.secrets)} (was at {sources})")
    if plan.model_keys:
        from reconciler.workflows.coverage import AGENT_KEY_ENV

        places = ", ".join(f"{m.file}:{m.line}:{m.col}" for m in plan.model_keys)
        lines.append(
            f"The agents' model API key (removed at {places}) becomes no secret: set {AGENT_KEY_ENV} "
            "wherever the workflows run, and the SDK reads it from there."
        )
    lines.append("The removed values are still in git history: rotate them, and set the new ones.")
    if err:
        console.note("\n".join(lines))
    else:
        click.echo("\n".join(lines))
