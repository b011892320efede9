"""cli._await: a command's result comes back as it is, never formatted into text on the way."""

from __future__ import annotations

import signal

import pytest

from reconciler.cli import _await


class Recorded:
    """A result that notes every time it is formatted (asyncio's task repr swallows errors)."""

    def __init__(self) -> None:
        self.formatted = 0

    def __repr__(self) -> str:
        self.formatted += 1
        return "Recorded()"


async def _fail() -> None:
    raise ValueError("boom")


def test_the_result_is_returned_without_being_formatted() -> None:
    # asyncio.run formats the finished task only when it installed its own SIGINT handler, which it
    # does when the default one is in place: as in the `reconciler` process.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    result = Recorded()

    async def produce() -> Recorded:
        return result

    assert _await(produce()) is result
    assert result.formatted == 0


def test_an_exception_still_propagates() -> None:
    with pytest.raises(ValueError, match="boom"):
        _await(_fail())
