"""Shared fixtures for end-to-end tests: one `reconciler emulator --inspect` process per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.emulator import RunningEmulator, start_emulator

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/e2e/ is end to end, marked or not: `-m "not e2e"` leaves them all out."""
    for item in items:
        if item.path.is_relative_to(_HERE):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def emulator_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    """A real emulator process shared by the session (per xdist worker); prefer `emulator`."""
    db_path = tmp_path_factory.mktemp("emulator") / "emulator.db"
    with start_emulator("--inspect", db_path=db_path) as running:
        yield running


@pytest.fixture
def emulator(emulator_session: RunningEmulator) -> RunningEmulator:
    """The session's emulator, emptied (secrets and request log) before the test."""
    emulator_session.reset()
    return emulator_session
