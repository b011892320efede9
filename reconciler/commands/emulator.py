"""`reconciler emulator`: serve the local io.net secrets API over HTTP until SIGINT or SIGTERM."""

from __future__ import annotations

import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import fields
from types import FrameType
from typing import Any

import click

from reconciler.emulator.config import (
    DEFAULT_DB_PATH,
    DUPLICATE_NAMES_CHOICES,
    LIST_STYLE_CHOICES,
    PATCH_NULL_CHOICES,
    EmulatorConfig,
)
from reconciler.options import F, output_options, stack

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
GRACEFUL_SHUTDOWN_S = 5
_COUNT = click.IntRange(min=0)
_POSITIVE = click.IntRange(min=1)
_SHARE = click.FloatRange(0.0, 1.0)


def _api_key(_ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    if any(not key.strip() for key in value):
        raise click.BadParameter("an API key must not be empty")
    return tuple(key.strip() for key in value)


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket, bound before the server starts so --port 0 can report the port it got."""
    from reconciler.errors import UsageError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio turns on TCP_NODELAY only for sockets that say so, and without
    # it every response waits for the client's delayed ACK (about 40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
            "choose another --host/--port (or --port 0)"
        ) from None
    return sock


def _log_level() -> str:
    """The server's own log: errors only with -q, start-up and shutdown with -v, else warnings."""
    from reconciler import console

    output = console.output()
    return "error" if output.quiet else "info" if output.verbose else "warning"


def base_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(EmulatorConfig)}
# The command's database survives a restart; EmulatorConfig's (for tests) keeps nothing.
_DEFAULTS["db_path"] = DEFAULT_DB_PATH


def _option(flags: str, name: str, text: str, **kwargs: Any) -> Callable[[F], F]:
    """One option of EmulatorConfig's field `name`, with that field's default (shown when it has one)."""
    default = _DEFAULTS[name]
    shown = default not in (None, ()) and not kwargs.get("is_flag")
    return click.option(*flags.split(), name, default=default, show_default=shown, help=text, **kwargs)


# Every flag is one EmulatorConfig field: flags, field, help, and how click reads it.
emulator_options = stack(
    _option("--host", "host", "Interface to listen on."),
    _option(
        "--port",
        "port",
        "Port to listen on; 0 picks a free one (the printed URL tells which).",
        type=click.IntRange(0, 65535),
    ),
    _option(
        "--db",
        "db_path",
        "SQLite file holding the secrets; they survive a restart. ':memory:' keeps nothing.",
    ),
    _option(
        "--api-key",
        "api_keys",
        "Accept only this key (repeatable). Without it any non-empty key is accepted as its own account.",
        multiple=True,
        callback=_api_key,
    ),
    _option(
        "--patch-null",
        "patch_null",
        "What an explicit null in a PATCH does to tool_name, tool_arg, is_default_for_tool.",
        type=click.Choice(PATCH_NULL_CHOICES),
    ),
    _option("--display-head", "display_head", "Visible leading characters of display.", type=_COUNT),
    _option("--display-tail", "display_tail", "Visible trailing characters of display.", type=_COUNT),
    _option(
        "--list-style",
        "list_style",
        "How the list pages: limit/offset in {data}; page/page_size in {data, pagination}; a "
        "next_cursor; or everything at once in {data} or a bare array.",
        type=click.Choice(LIST_STYLE_CHOICES),
    ),
    _option(
        "--default-limit",
        "default_limit",
        "Window when none is asked for. Default: 10 (50 for paged).",
        type=_POSITIVE,
    ),
    _option(
        "--max-limit",
        "max_limit",
        "Largest window: offset and cursor give it silently for more; paged answers 422.",
        type=_POSITIVE,
    ),
    _option(
        "--cap",
        "cap",
        "Answer the first N secrets to every list request, whatever paging is asked for.",
        type=_POSITIVE,
    ),
    _option(
        "--quota-bytes",
        "quota_bytes",
        "Cap on an account's total UTF-8 bytes of names and values (413 beyond it).",
        type=_POSITIVE,
    ),
    _option(
        "--duplicate-names",
        "duplicate_names",
        "Whether two secrets of one account may share a name (reject answers 409).",
        type=click.Choice(DUPLICATE_NAMES_CHOICES),
    ),
    _option("--seed", "seed", "Seed for injected faults, so a run can be repeated.", type=int),
    _option("--latency-ms", "latency_ms", "Delay added to every API request.", type=_COUNT),
    _option(
        "--fail-rate", "fail_rate", "Share of requests answered 500/502/503 without acting.", type=_SHARE
    ),
    _option(
        "--fail-after-rate",
        "fail_after_rate",
        "Share of successful requests that act, then answer 500.",
        type=_SHARE,
    ),
    _option(
        "--fail-echo-rate",
        "fail_echo_rate",
        "Share of requests refused by an error repeating the caller's key and displays (leak tests).",
        type=_SHARE,
    ),
    _option(
        "--rate-limit",
        "rate_limit",
        "Requests per second per account; beyond it 429 with Retry-After.",
        type=click.FloatRange(min=0.0, min_open=True),
    ),
    _option(
        "--clock-offset",
        "clock_offset_s",
        "Shift the clock that stamps created_at/updated_at (negative backdates: secrets look old).",
        type=float,
        metavar="SECONDS",
    ),
    _option("--inspect", "inspect", "Serve GET /_emulator/requests and POST /_emulator/reset.", is_flag=True),
    _option(
        "--log-requests/--no-log-requests",
        "log_requests",
        "Log one line per API request to stderr (never a key or value).",
    ),
)


@click.command("emulator")
@emulator_options
@output_options
def command(**options: Any) -> None:
    """Serve a local io.net IO Intelligence secrets API (for tests, demos and benchmarks).

    Prints the base URL on one line once it accepts connections; stops cleanly on Ctrl-C or SIGTERM.
    """
    stop_requested: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        # Before the server runs, a signal ends start-up; while it runs, uvicorn owns these signals
        # and re-raises them here once it has shut down, where they must not turn into an error.
        stop_requested.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    try:
        _serve(options, stop_requested)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve(options: dict[str, Any], stop_requested: list[int]) -> None:
    import asyncio

    import uvicorn

    from reconciler.emulator.app import create_app, state_of
    from reconciler.emulator.config import EmulatorConfig

    config = EmulatorConfig(**options)
    app = create_app(config)
    try:
        sock = _listen(config.host, config.port)
        url = base_url(config.host, sock.getsockname()[1])

        class Server(uvicorn.Server):
            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets=sockets)
                if self.started:
                    sys.stdout.write(url + "\n")
                    sys.stdout.flush()

        server = Server(
            uvicorn.Config(
                app,
                lifespan="off",
                access_log=False,
                log_level=_log_level(),
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
                server_header=False,
            )
        )
        if stop_requested:
            sock.close()
        else:
            asyncio.run(server.serve(sockets=[sock]))
    finally:
        state_of(app).store.close()
