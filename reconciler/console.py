"""stderr for people: the -v/-q/--no-color switches, notes -q silences, detail -v adds, write progress."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any

import click

_META_KEY = "reconciler.output"


@dataclass(frozen=True)
class Output:
    """The output switches of this run: -v (counted), -q, --no-color."""

    verbose: int = 0
    quiet: bool = False
    no_color: bool = False


def remember(ctx: click.Context, name: str, value: Any) -> None:
    """Record one output switch as click parses it, and apply what is known so far."""
    current: Output = ctx.meta.get(_META_KEY, Output())
    if name == "verbose":
        current = replace(current, verbose=int(value))
    else:
        current = replace(current, **{name: bool(value)})
    if current.verbose and current.quiet:
        raise click.UsageError("-v and -q cannot be used together", ctx)
    ctx.meta[_META_KEY] = current


def output() -> Output:
    ctx = click.get_current_context(silent=True)
    found: Output = ctx.meta.get(_META_KEY, Output()) if ctx is not None else Output()
    return found


def color(is_tty: bool) -> bool:
    """Colour only on a terminal, and never with --no-color or NO_COLOR."""
    return is_tty and not output().no_color and not os.environ.get("NO_COLOR")


def note(text: str) -> None:
    """Something a person running the command should know; silenced by -q."""
    if not output().quiet:
        click.echo(text, err=True)


def detail(text: str) -> None:
    """What -v adds: where the run talks to and keeps its state."""
    current = output()
    if current.verbose and not current.quiet:
        click.echo(text, err=True)


def configure_logging() -> None:
    """Log levels from -v/-q, for the commands that talk to io.net (only the client and apply log)."""
    import logging

    current = output()
    if current.quiet:
        level = logging.ERROR
    elif current.verbose:
        level = logging.INFO if current.verbose == 1 else logging.DEBUG
    else:
        level = logging.WARNING
    logging.basicConfig(stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("reconciler").setLevel(level)
    # httpx and httpcore log URLs and connection details; never let them speak above warnings.
    for noisy in ("httpx", "httpcore", "hpack", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class WriteProgress:
    """Each write's outcome as it completes: one line on stderr each without a terminal (CI logs),
    a bar on a terminal, nothing with -q. The final report on stdout keeps plan order."""

    def __init__(self, total: int, *, terminal: bool | None = None) -> None:
        self.total = total
        self.done = 0
        quiet = output().quiet or total == 0
        terminal = sys.stderr.isatty() if terminal is None else terminal
        self._lines = not quiet and not terminal
        self._bar: Any = None
        if not quiet and terminal:
            self._bar = click.progressbar(length=total, label="Applying", show_pos=True, file=sys.stderr)

    def __enter__(self) -> WriteProgress:
        if self._bar is not None:
            self._bar.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(exc_type, exc, tb)

    def __call__(self, line: str) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.update(1)
        elif self._lines:
            click.echo(f"[{self.done}/{self.total}] {line}", err=True)
