"""The apply lock on a state file (one apply or forget at a time), and the names of its temp files."""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reconciler.errors import StateError
from reconciler.text import shown

_TEMP_PREFIX = ".state-"


def temp_prefix(state_path: Path) -> str:
    """How the temp files of a state's atomic saves start, so a killed save's leftovers are found."""
    return f"{_TEMP_PREFIX}{state_path.name}."


@contextlib.contextmanager
def lock(state_path: Path, *, break_lock: bool = False) -> Iterator[None]:
    """One apply per state file: an OS lock on a lock file that names its holder (pid, host, start).

    The operating system releases the lock when its holder exits, however it ends (SIGKILL
    included), so a lock left behind by a dead run is taken over without asking; a live holder is
    refused unless --break-lock is given.
    """
    lock_path = state_path.with_name(state_path.name + ".lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StateError(f"{lock_path}: cannot create its directory ({exc.strerror})") from None
    me = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    fd = _acquire(lock_path, break_lock)
    try:
        # Who holds it is for the messages of refused runs only; the OS lock is what excludes them.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me).encode(), 0)
        _remove_leftovers(state_path)
        yield
    finally:
        # Unlinked while still held, so a run that opened this file meanwhile sees it is stale.
        with contextlib.suppress(OSError):
            if os.path.samestat(os.fstat(fd), os.stat(lock_path)):
                os.unlink(lock_path)
        os.close(fd)


def _acquire(lock_path: Path, break_lock: bool) -> int:
    for _ in range(10):
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StateError(f"{lock_path}: cannot open the lock file ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = _read_lock(lock_path)
            if break_lock:
                # The holder keeps its lock on the old file; this run takes a new one.
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(lock_path)
                break_lock = False
                continue
            pid, host, started = (shown(str(holder.get(k)), 64) for k in ("pid", "host", "started"))
            raise StateError(
                f"{lock_path}: another apply holds the state lock (pid {pid} on {host}, since {started}); "
                "wait for it to finish (--break-lock takes the lock anyway: only when that run is known "
                "to be stuck)"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise StateError(
                f"{lock_path}: the file system refuses file locks ({exc.strerror}); "
                "keep the state on a local disk (--state PATH)"
            ) from None
        # Locked, but the file may have been released and unlinked between open and lock: retry then.
        try:
            current = os.path.samestat(os.fstat(fd), os.stat(lock_path))
        except FileNotFoundError:
            current = False
        if current:
            return fd
        os.close(fd)
    raise StateError(f"{lock_path}: cannot take the state lock; other runs keep racing for it, try again")


def _remove_leftovers(state_path: Path) -> None:
    """Temp files of saves that a killed run left half-written; only the lock holder saves, so none
    of them is in use."""
    for leftover in state_path.parent.glob(f"{glob.escape(temp_prefix(state_path))}*.tmp"):
        with contextlib.suppress(OSError):
            leftover.unlink()


def _read_lock(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
