"""SIGINT and SIGTERM at any point of a run end it with exit 130 and its message: while the command
line is still being imported, while a request waits for its answer, and after apply's own handling."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler import engine
from reconciler import settings as settings_module
from reconciler.commands import apply as apply_command
from reconciler.models import DesiredState, Plan
from tests.support import cli

pytestmark = pytest.mark.e2e

SIGNALS = pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
DESIRED = "version: 1\nsecrets:\n  - secret_name: token\n    secret_value: ${TOKEN}\n"
ENV = {"IOINTELLIGENCE_API_KEY": "signal-key", "TOKEN": "signal-CANARY-value"}


class Tarpit:
    """A server that takes each request and never answers it; `waiting` is set once one has arrived."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.waiting = threading.Event()
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.held.append(conn)
            if conn.recv(65536):  # the request is in: the client now waits for its answer
                self.waiting.set()

    def close(self) -> None:
        self.server.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def tarpit() -> Iterator[Tarpit]:
    pit = Tarpit()
    try:
        yield pit
    finally:
        pit.close()


@SIGNALS
@pytest.mark.parametrize(
    "command",
    [("plan", "secrets.yaml"), ("apply", "secrets.yaml", "--auto-approve"), ("drift", "secrets.yaml")],
)
def test_a_signal_while_waiting_for_the_server_exits_130(
    sig: int, command: tuple[str, ...], tarpit: Tarpit, tmp_path: Path
) -> None:
    (tmp_path / "secrets.yaml").write_text(DESIRED)
    proc = subprocess.Popen(
        cli.argv(*command),
        cwd=tmp_path,
        env=cli.clean_env({**ENV, "RECONCILER_API_URL": tarpit.url}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert tarpit.waiting.wait(60), "the command never sent its request"
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "Interrupted." and "Traceback" not in stderr
    assert not (tmp_path / ".reconciler" / "state.json.lock").exists()


# Sends the signal to itself while `click` is being imported: before the command line exists at all.
WHILE_IMPORTING = """
import os, sys
class SignalOnImport:
    def find_spec(self, name, path=None, target=None):
        if name == "click":
            os.kill(os.getpid(), {sig})
        return None
sys.meta_path.insert(0, SignalOnImport())
sys.argv = ["reconciler", "--version"]
from reconciler.__main__ import main
main()
"""


@SIGNALS
def test_a_signal_while_the_command_line_is_imported_exits_130(sig: int, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", WHILE_IMPORTING.format(sig=int(sig))],
        cwd=tmp_path,
        env=cli.clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 130, result.stderr
    assert result.stderr == "Interrupted.\n"


def test_apply_gives_the_signals_back_as_it_found_them(tmp_path: Path) -> None:
    """apply's own handling of Ctrl-C ends with apply: a signal after it is handled as before it."""
    (tmp_path / "secrets.yaml").write_text(DESIRED)
    resolved = settings_module.resolve(desired_path=tmp_path / "secrets.yaml", api_url="local", environ=ENV)
    result = engine.PlanResult(DesiredState(path="secrets.yaml", secrets=()), (), None, Plan(changes=()))

    def on_term(signum: int, frame: object) -> None:
        raise AssertionError("never called")

    pairs = (signal.SIGINT, signal.SIGTERM)
    saved = {sig: signal.getsignal(sig) for sig in pairs}
    signal.signal(signal.SIGTERM, on_term)
    before: dict[int, object] = {}
    after: dict[int, object] = {}

    async def go() -> None:
        before.update({sig: signal.getsignal(sig) for sig in pairs})  # asyncio's own Ctrl-C handling
        await apply_command._apply_with_signals(resolved, result, False, None)
        after.update({sig: signal.getsignal(sig) for sig in pairs})

    try:
        asyncio.run(go())
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    assert after == before and after[signal.SIGTERM] is on_term
