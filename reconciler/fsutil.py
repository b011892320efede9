"""Files read and written safely: the one atomic write, and reads that refuse what is not a regular file."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path

from reconciler.errors import ReconcilerError


class NotRegularFile(OSError):
    """A FIFO, a device or a socket where a file was expected."""


def read_regular(path: Path, limit: int | None = None) -> bytes:
    """The bytes of the regular file at `path`: all of them, or at most `limit + 1` when a limit is given,
    so that the caller can tell a file that is too long.

    A FIFO, a device or a socket is refused without blocking: opening a FIFO waits for a writer and
    reading `/dev/zero` or a terminal never ends. Raises OSError (NotRegularFile, IsADirectoryError,
    FileNotFoundError, ...); callers turn it into an error that names what was being read.
    """
    # O_NONBLOCK: the open of a FIFO returns at once instead of waiting for a writer.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(mode):
            raise NotRegularFile(errno.EINVAL, "not a regular file (a FIFO, a device or a socket)", str(path))
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read() if limit is None else handle.read(limit + 1)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644, prefix: str | None = None) -> None:
    """Replace `path` with `data` so that a crash leaves the old file or the new one, never a mix.

    Raises OSError; callers turn it into an error that names what was being written.
    """
    fd, temp = tempfile.mkstemp(prefix=prefix or f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    # The rename is durable only once the directory entry is: a crash must not bring back the old file.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def replace_text(path: Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` through atomic_write, keeping the file's mode; errors name the file."""
    path = Path(path)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o644
    except OSError as exc:
        raise ReconcilerError(f"cannot write {path} ({exc.strerror}); check its permissions") from None
    try:
        atomic_write(path, text.encode("utf-8"), mode=mode)
    except OSError as exc:
        raise ReconcilerError(f"cannot write {path} ({exc.strerror}); check its permissions") from None
