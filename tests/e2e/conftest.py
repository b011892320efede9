"""Shared fixtures for end-to-end tests: one `reconciler emulator --inspect` process per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.emulator import RunningEmulator, start_emulator


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
