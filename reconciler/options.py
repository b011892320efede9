"""Every shared click option, once, and the table of planning flags a saved plan refuses."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from reconciler import console
from reconciler.endpoint import AUTH_HEADERS
from reconciler.render import FORMATS

F = TypeVar("F", bound=Callable[..., Any])


def stack(*options: Callable[[F], F]) -> Callable[[F], F]:
    """One decorator applying `options` so that --help lists them in the order given."""

    def apply(func: F) -> F:
        for option in reversed(options):
            func = option(func)
        return func

    return apply


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    # The output switches are read through `console.output()`, not passed to every command function.
    assert param.name is not None
    console.remember(ctx, param.name, value)
    return value


output_options = stack(
    click.option(
        "-v",
        "--verbose",
        count=True,
        expose_value=False,
        callback=_remember,
        help="More detail on stderr: the API URL, the state file, every retry and its reason (never values).",
    ),
    click.option(
        "-q",
        "--quiet",
        is_flag=True,
        expose_value=False,
        callback=_remember,
        help="Only errors on stderr; stdout keeps its payload.",
    ),
    click.option(
        "--no-color",
        is_flag=True,
        expose_value=False,
        callback=_remember,
        help="No colour (also when NO_COLOR is set or stdout is not a terminal).",
    ),
)
"""-v/-q/--no-color: every command takes them."""

state_option = click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="State file. Default: .reconciler/state.json beside FILE.",
)

break_lock_option = click.option(
    "--break-lock", is_flag=True, help="Take the state lock even if another run holds it."
)

connection_options = stack(
    click.option(
        "--api-url",
        metavar="URL",
        help="io.net API base URL, or 'local' for the embedded emulator (env RECONCILER_API_URL).",
    ),
    click.option(
        "--auth-header",
        type=click.Choice(AUTH_HEADERS),
        help="How the API key (env IOINTELLIGENCE_API_KEY) is sent. Default: bearer.",
    ),
    state_option,
    click.option("--ignore-state", is_flag=True, help="Plan from the remote alone, without the state file."),
    click.option("--timeout", type=float, help="Seconds to wait for each answer. Default: 30."),
)
"""Where the account is and how to reach it: every command that talks to io.net takes them."""

plan_options = stack(
    click.option(
        "--prune/--no-prune",
        default=None,
        help="Delete remote secrets the file does not list (default: the file's `prune:`).",
    ),
    click.option("--force-values", is_flag=True, help="Re-send every managed value (rotation)."),
    click.option("--heal", is_flag=True, help="Re-send values written outside reconciler (unverified)."),
    click.option("--allow-empty", is_flag=True, help="Allow prune with an empty `secrets:` list."),
    click.option(
        "--max-deletes",
        type=click.IntRange(min=0),
        metavar="N",
        help="Allow up to N deletes. Default: 10, and never more than half of the secrets this file "
        "manages (those it lists, plus those prune may delete).",
    ),
)
"""What is planned: `plan` and `apply FILE` take them."""

listing_option = click.option(
    # listing.FLAG owns the spelling; importing listing here would load asyncio for every command.
    "--assume-complete-listing",
    is_flag=True,
    help="Go on when the account's listing cannot be proven to hold every secret (a secret it "
    "missed would be created again). Only when you know the account holds no other secret.",
)
"""The one way past a listing that cannot be proven to hold every secret (README: "How the listing
is trusted"); never on by default."""

format_option = click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)

# A saved plan is what was reviewed: any flag that would change what it does is refused with it.
# Parameter name -> how the flag reads; a new planning flag is one more line here.
PLANNING_FLAGS: Mapping[str, str] = {
    "prune": "--prune/--no-prune",
    "force_values": "--force-values",
    "heal": "--heal",
    "allow_empty": "--allow-empty",
    "max_deletes": "--max-deletes",
    "adopt": "--adopt",
    "ignore_state": "--ignore-state",
    "assume_complete_listing": "--assume-complete-listing",
}


def planning_flags_given(ctx: click.Context) -> list[str]:
    """The planning flags of PLANNING_FLAGS given on the command line (or by environment), as typed."""
    given: list[str] = []
    for name, label in PLANNING_FLAGS.items():
        source = ctx.get_parameter_source(name)
        if source not in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
            continue
        if name == "prune":
            given.append("--prune" if ctx.params.get(name) else "--no-prune")
        else:
            given.append(label)
    return given
