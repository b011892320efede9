"""The command line: the group, lazy command loading, the one error boundary, and output helpers."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from reconciler.errors import ExitCode, ReconcilerError

# Each command lives in its own module of reconciler.commands, imported only when it is named (or
# listed by --help): start-up loads click and nothing a command needs to do its work.
LAZY_COMMANDS: dict[str, str] = {
    "apply": "apply",
    "drift": "drift",
    "emulator": "emulator",
    "forget": "forget",
    "import": "import_",
    "plan": "plan",
    "validate": "validate",
    "workflows": "workflows",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(LAZY_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in LAZY_COMMANDS:
            return None
        import importlib

        module = importlib.import_module(f"reconciler.commands.{LAZY_COMMANDS[cmd_name]}")
        command: click.Command = module.command
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="reconciler")
def cli() -> None:
    """Keep io.net IO Intelligence secrets in sync with a desired-state YAML file in git."""


STEP_SUMMARY_LIMIT = 1024 * 1024


def step_summary(markdown: Callable[[], str]) -> None:
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


def emit(text: str) -> None:
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
