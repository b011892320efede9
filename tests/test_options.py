"""The shared options: one spelling per flag, taken from the module that owns it."""

from __future__ import annotations

import click

from reconciler import listing
from reconciler.cli import cli
from reconciler.endpoint import AUTH_HEADERS
from reconciler.options import PLANNING_FLAGS, listing_option
from reconciler.render import FORMATS


def _params(name: str) -> dict[str, click.Parameter]:
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    return {p.name: p for p in command.params if p.name}


def test_the_listing_flag_is_spelled_as_the_listing_module_says() -> None:
    @listing_option
    def probe() -> None: ...

    (param,) = probe.__click_params__  # type: ignore[attr-defined]
    assert param.opts == [listing.FLAG]
    assert PLANNING_FLAGS["assume_complete_listing"] == listing.FLAG


def test_choices_come_from_their_owners() -> None:
    plan = _params("plan")
    assert isinstance(plan["fmt"].type, click.Choice) and tuple(plan["fmt"].type.choices) == FORMATS
    header = plan["auth_header"].type
    assert isinstance(header, click.Choice) and tuple(header.choices) == AUTH_HEADERS


def test_every_refused_flag_is_an_option_of_apply() -> None:
    apply = _params("apply")
    for name, label in PLANNING_FLAGS.items():
        assert name in apply, name
        assert label.split("/")[0] in apply[name].opts, label
