"""Test helpers for the io.net emulator: a real `reconciler emulator` process, or the app in-process."""

from __future__ import annotations

import asyncio
import os
import selectors
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from fastapi import FastAPI

from reconciler.emulator.app import create_app
from reconciler.emulator.config import EmulatorConfig

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
INPROCESS_BASE_URL = "http://emulator.test"


class _Drain:
    """Reads a pipe to the end on a thread, so a chatty process never blocks on a full pipe."""

    def __init__(self, stream: Any) -> None:
        self._chunks: list[str] = []
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._thread.start()

    def _run(self, stream: Any) -> None:
        for line in iter(stream.readline, ""):
            self._chunks.append(line)
        stream.close()

    def text(self, wait: float = 0.0) -> str:
        if wait:
            self._thread.join(wait)
        return "".join(self._chunks)


@dataclass(frozen=True)
class RunningEmulator:
    """A `reconciler emulator` process serving at `url`."""

    url: str
    proc: subprocess.Popen[str]
    db_path: Path
    _stdout: _Drain = field(repr=False)
    _stderr: _Drain = field(repr=False)

    @property
    def port(self) -> str:
        """The port it serves on: a restart on the same port and database is the same endpoint, so a
        state written against one is accepted by the other (the state is bound to the URL)."""
        return self.url.rsplit(":", 1)[1]

    def requests(self) -> list[dict[str, Any]]:
        """The request log (needs --inspect): method, path, query, body_keys, status, user_id, fault."""
        response = httpx.get(f"{self.url}/_emulator/requests", timeout=10)
        response.raise_for_status()
        entries: list[dict[str, Any]] = response.json()
        return entries

    def reset(self) -> None:
        """Forget all secrets and the request log (needs --inspect)."""
        httpx.post(f"{self.url}/_emulator/reset", timeout=10).raise_for_status()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> int:
        """Send `sig` and wait for the exit code; kills the process if it does not stop in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        return self.proc.returncode

    def stdout(self) -> str:
        """Everything printed to stdout after the URL line (complete once the process has exited)."""
        return self._stdout.text(wait=5.0 if self.proc.poll() is not None else 0.0)

    def stderr(self) -> str:
        """Everything printed to stderr so far (complete once the process has exited)."""
        return self._stderr.text(wait=5.0 if self.proc.poll() is not None else 0.0)

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def emulator_argv(*flags: str, db_path: Path) -> list[str]:
    return [sys.executable, "-m", "reconciler", "emulator", "--port", "0", "--db", str(db_path), *flags]


def start_emulator(
    *flags: str, db_path: Path, timeout: float = START_TIMEOUT_S, env: dict[str, str] | None = None
) -> RunningEmulator:
    """Start `reconciler emulator --port 0 --db DB_PATH *flags` and wait for the URL it prints."""
    proc = subprocess.Popen(
        emulator_argv(*flags, db_path=db_path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert proc.stdout is not None and proc.stderr is not None
    stderr = _Drain(proc.stderr)
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        ready = selector.select(timeout=timeout)
    line = proc.stdout.readline() if ready else ""
    if not line.startswith("http://"):
        proc.kill()
        code = proc.wait()
        raise RuntimeError(
            f"emulator did not print its URL within {timeout} s (exit {code}); stderr:\n{stderr.text(wait=5)}"
        )
    return RunningEmulator(
        url=line.strip(), proc=proc, db_path=db_path, _stdout=_Drain(proc.stdout), _stderr=stderr
    )


@contextmanager
def running_emulator(
    *flags: str, db_path: Path, timeout: float = START_TIMEOUT_S
) -> Iterator[RunningEmulator]:
    """`start_emulator` as a context manager that always stops the process."""
    emulator = start_emulator(*flags, db_path=db_path, timeout=timeout)
    try:
        yield emulator
    finally:
        emulator.stop()


def client_for(app: FastAPI, key: str | None = "test-key") -> httpx.AsyncClient:
    """An AsyncClient talking to `app` in-process, with `Authorization: Bearer KEY` unless key is None."""
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=INPROCESS_BASE_URL, headers=headers
    )


def inprocess_client(config: EmulatorConfig, key: str = "test-key") -> httpx.AsyncClient:
    """An AsyncClient bound to a fresh create_app(config), authenticated with Bearer KEY."""
    return client_for(create_app(config), key)


def stored_values(db_path: Path) -> dict[str, str]:
    """secret_id -> secret_value as the emulator stored them, read from its database file."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        return dict(conn.execute("SELECT secret_id, secret_value FROM secrets").fetchall())


@dataclass
class PagesAsked(httpx.AsyncBaseTransport):
    """In front of an in-process app: the pages of a listing asked while its first question (the one
    without `page`) was still unanswered, counted from the first request of `armed` method on."""

    inner: httpx.AsyncBaseTransport
    armed: str = "GET"
    ahead: list[str] = field(default_factory=list)
    _on: bool = False
    _first_open: bool = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._on = self._on or request.method == self.armed
        listing = self._on and request.method == "GET" and request.url.path == "/api/v1/secrets/"
        number = request.url.params.get("page")
        if listing and number is None:
            self._first_open = True
        elif listing and self._first_open:
            self.ahead.append(number)
        try:
            # Lets the questions asked together arrive before the first is answered.
            await asyncio.sleep(0)
            return await self.inner.handle_async_request(request)
        finally:
            if listing and number is None:
                self._first_open = False
