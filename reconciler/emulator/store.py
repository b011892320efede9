"""The emulator's SQLite store: the only module that speaks SQL; secrets survive a restart."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path

from reconciler.emulator.config import MEMORY_DB
from reconciler.emulator.errors import DuplicateName, QuotaExceeded, SecretNotFound
from reconciler.errors import UsageError

SCHEMA_VERSION = 1
UPDATABLE_FIELDS: frozenset[str] = frozenset(
    {"secret_name", "secret_value", "tool_name", "tool_arg", "is_default_for_tool"}
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS secrets (
    -- AUTOINCREMENT never reuses a number, so seq is the creation order even after deletes.
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    secret_id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    secret_name TEXT NOT NULL,
    secret_value TEXT NOT NULL,
    tool_name TEXT,
    tool_arg TEXT,
    is_default_for_tool INTEGER NOT NULL,
    created_us INTEGER NOT NULL,
    updated_us INTEGER NOT NULL,
    size_bytes INTEGER NOT NULL
);
-- Pages of one account in creation order; size_bytes makes the quota sum index-only.
CREATE INDEX IF NOT EXISTS secrets_by_account ON secrets (user_id, seq, size_bytes);
CREATE INDEX IF NOT EXISTS secrets_by_name ON secrets (user_id, secret_name);
"""

_SELECT_BY_ID = (
    "SELECT seq, secret_id, user_id, secret_name, secret_value, tool_name, tool_arg, is_default_for_tool, "
    "created_us, updated_us FROM secrets WHERE secret_id = ? AND user_id = ?"
)
_SELECT_PAGE = (
    "SELECT seq, secret_id, user_id, secret_name, secret_value, tool_name, tool_arg, is_default_for_tool, "
    "created_us, updated_us FROM secrets WHERE user_id = ? ORDER BY seq LIMIT ? OFFSET ?"
)
_SELECT_FROM = (
    "SELECT seq, secret_id, user_id, secret_name, secret_value, tool_name, tool_arg, is_default_for_tool, "
    "created_us, updated_us FROM secrets WHERE user_id = ? AND seq >= ? ORDER BY seq LIMIT ?"
)
_SELECT_AFTER = (
    "SELECT seq, secret_id, user_id, secret_name, secret_value, tool_name, tool_arg, is_default_for_tool, "
    "created_us, updated_us FROM secrets WHERE user_id = ? AND seq > ? ORDER BY seq LIMIT ?"
)
_SELECT_ALL = (
    "SELECT seq, secret_id, user_id, secret_name, secret_value, tool_name, tool_arg, is_default_for_tool, "
    "created_us, updated_us FROM secrets WHERE user_id = ? ORDER BY seq"
)
_INSERT = (
    "INSERT INTO secrets (secret_id, user_id, secret_name, secret_value, tool_name, tool_arg, "
    "is_default_for_tool, created_us, updated_us, size_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPDATE = (
    "UPDATE secrets SET secret_name = ?, secret_value = ?, tool_name = ?, tool_arg = ?, "
    "is_default_for_tool = ?, updated_us = ?, size_bytes = ? WHERE seq = ?"
)

Row = tuple[int, str, str, str, str, str | None, str | None, int, int, int]


def wall_clock_us() -> int:
    return time.time_ns() // 1000


def size_of(secret_name: str, secret_value: str) -> int:
    """What a secret counts against the quota: UTF-8 bytes of its name and value."""
    return len(secret_name.encode()) + len(secret_value.encode())


@dataclass(frozen=True)
class StoredSecret:
    """One stored secret. The value is kept out of repr."""

    seq: int
    secret_id: str
    user_id: str
    secret_name: str
    secret_value: str = field(repr=False)
    tool_name: str | None
    tool_arg: str | None
    is_default_for_tool: bool
    created_us: int
    updated_us: int

    @property
    def size_bytes(self) -> int:
        return size_of(self.secret_name, self.secret_value)


def _private(path: str) -> None:
    """The database holds secret values in plain text: it (and the WAL and shared-memory files SQLite
    creates with its mode) is readable by its owner only, also when an older run left it wider open."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
    for file in (path, f"{path}-wal", f"{path}-shm"):
        with suppress(FileNotFoundError):
            if os.stat(file).st_mode & 0o077:
                os.chmod(file, 0o600)


def _from_row(row: Row) -> StoredSecret:
    return StoredSecret(
        seq=row[0],
        secret_id=row[1],
        user_id=row[2],
        secret_name=row[3],
        secret_value=row[4],
        tool_name=row[5],
        tool_arg=row[6],
        is_default_for_tool=bool(row[7]),
        created_us=row[8],
        updated_us=row[9],
    )


class Store:
    """Secrets per account, with the quota and duplicate-name policies checked inside each write."""

    def __init__(
        self,
        path: str,
        *,
        quota_bytes: int | None = None,
        unique_names: bool = False,
        clock: Callable[[], int] = wall_clock_us,
    ) -> None:
        self.path = path
        self.quota_bytes = quota_bytes
        self.unique_names = unique_names
        self._clock = clock
        # One connection shared by every request: calls are short and serialised by this lock,
        # which also makes each check-then-write atomic.
        self._lock = threading.Lock()
        self._conn = self._open(path)
        # Each account's secret numbers in creation order, read once: a page is then found by its
        # first number through the index, and the count is a length, so a page costs the same at any
        # depth (COUNT(*) and OFFSET walk every row before it). Built on first use, kept up to date by
        # this store's own writes, and dropped when another connection has written to the file.
        self._orders: dict[str, list[int]] = {}
        self._data_version = -1
        row = self._conn.execute("SELECT MAX(updated_us) FROM secrets").fetchone()
        self._last_us: int = int(row[0]) if row and row[0] is not None else 0

    @staticmethod
    def _open(path: str) -> sqlite3.Connection:
        try:
            if path != MEMORY_DB:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                _private(path)
            conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version not in (0, SCHEMA_VERSION):
                    raise UsageError(
                        f"{path} holds emulator data of schema {version}, this emulator reads "
                        f"{SCHEMA_VERSION}; pass another --db path"
                    )
                if path != MEMORY_DB:
                    conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript(_SCHEMA)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            except BaseException:
                conn.close()
                raise
        except (sqlite3.Error, OSError) as exc:
            raise UsageError(
                f"cannot open the emulator database {path}: {exc}; pass a writable --db path"
            ) from None
        return conn

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _now_us(self) -> int:
        # Strictly increasing across all writes, so updated_at moves on every write even when the
        # clock has not ticked (or went backwards) since the previous one.
        now = max(self._clock(), self._last_us + 1)
        self._last_us = now
        return now

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._orders.clear()
                self._conn.execute("ROLLBACK")
                raise
            try:
                self._conn.execute("COMMIT")
            except BaseException:
                self._orders.clear()
                raise

    def _order(self, user_id: str) -> list[int]:
        """The account's secret numbers in creation order (call with the lock held)."""
        version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._data_version:
            # Another connection committed to the file since: what was read may be stale.
            self._orders.clear()
            self._data_version = version
        order = self._orders.get(user_id)
        if order is None:
            rows = self._conn.execute("SELECT seq FROM secrets WHERE user_id = ? ORDER BY seq", (user_id,))
            order = self._orders[user_id] = [row[0] for row in rows]
        return order

    # Reads

    def get(self, user_id: str, secret_id: str) -> StoredSecret:
        with self._lock:
            return self._get(self._conn, user_id, secret_id)

    @staticmethod
    def _get(conn: sqlite3.Connection, user_id: str, secret_id: str) -> StoredSecret:
        row = conn.execute(_SELECT_BY_ID, (secret_id, user_id)).fetchone()
        if row is None:
            raise SecretNotFound("Secret not found")
        return _from_row(row)

    def count(self, user_id: str) -> int:
        with self._lock:
            return len(self._order(user_id))

    def page(self, user_id: str, offset: int, limit: int) -> list[StoredSecret]:
        """Up to `limit` secrets of the account in creation order, skipping the first `offset`."""
        with self._lock:
            order = self._order(user_id)
            if offset >= len(order) or limit <= 0:
                return []
            rows = self._conn.execute(_SELECT_FROM, (user_id, order[offset], limit)).fetchall()
        return [_from_row(row) for row in rows]

    def after(self, user_id: str, seq: int, limit: int) -> list[StoredSecret]:
        """Up to `limit` secrets of the account created after the one numbered `seq`, in creation order:
        a cursor that no create or delete elsewhere can shift."""
        with self._lock:
            rows = self._conn.execute(_SELECT_AFTER, (user_id, seq, limit)).fetchall()
        return [_from_row(row) for row in rows]

    def all(self, user_id: str) -> list[StoredSecret]:
        with self._lock:
            rows = self._conn.execute(_SELECT_ALL, (user_id,)).fetchall()
        return [_from_row(row) for row in rows]

    def used_bytes(self, user_id: str) -> int:
        with self._lock:
            return self._used_bytes(self._conn, user_id)

    @staticmethod
    def _used_bytes(conn: sqlite3.Connection, user_id: str) -> int:
        row = conn.execute("SELECT COALESCE(SUM(size_bytes), 0) FROM secrets WHERE user_id = ?", (user_id,))
        return int(row.fetchone()[0])

    # Policy checks, inside a write transaction

    def _check_name(self, conn: sqlite3.Connection, user_id: str, name: str, own_id: str | None) -> None:
        if not self.unique_names:
            return
        row = conn.execute(
            "SELECT secret_id FROM secrets WHERE user_id = ? AND secret_name = ? AND secret_id != ? LIMIT 1",
            (user_id, name, own_id or ""),
        ).fetchone()
        if row is not None:
            raise DuplicateName("A secret with this name already exists")

    def _check_quota(self, conn: sqlite3.Connection, user_id: str, growth: int) -> None:
        if self.quota_bytes is None or growth <= 0:
            return
        if self._used_bytes(conn, user_id) + growth > self.quota_bytes:
            raise QuotaExceeded("Secret storage limit exceeded for this account")

    # Writes

    def create(
        self,
        user_id: str,
        *,
        secret_name: str,
        secret_value: str,
        tool_name: str | None = None,
        tool_arg: str | None = None,
        is_default_for_tool: bool = False,
    ) -> StoredSecret:
        size = size_of(secret_name, secret_value)
        with self._write() as conn:
            self._check_name(conn, user_id, secret_name, None)
            self._check_quota(conn, user_id, size)
            now = self._now_us()
            secret_id = str(uuid.uuid4())
            cursor = conn.execute(
                _INSERT,
                (
                    secret_id,
                    user_id,
                    secret_name,
                    secret_value,
                    tool_name,
                    tool_arg,
                    int(is_default_for_tool),
                    now,
                    now,
                    size,
                ),
            )
            seq = cursor.lastrowid
            assert seq is not None
            order = self._orders.get(user_id)
            if order is not None:
                # Numbers only grow: the new secret is the account's last.
                order.append(seq)
        return StoredSecret(
            seq=seq,
            secret_id=secret_id,
            user_id=user_id,
            secret_name=secret_name,
            secret_value=secret_value,
            tool_name=tool_name,
            tool_arg=tool_arg,
            is_default_for_tool=is_default_for_tool,
            created_us=now,
            updated_us=now,
        )

    def update(self, user_id: str, secret_id: str, changes: Mapping[str, str | bool | None]) -> StoredSecret:
        """Apply `changes` (field -> new value) and move updated_at, even when `changes` is empty."""
        unknown = set(changes) - UPDATABLE_FIELDS
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        with self._write() as conn:
            old = self._get(conn, user_id, secret_id)
            new = replace(old, **changes)  # type: ignore[arg-type]
            if new.secret_name != old.secret_name:
                self._check_name(conn, user_id, new.secret_name, secret_id)
            self._check_quota(conn, user_id, new.size_bytes - old.size_bytes)
            new = replace(new, updated_us=self._now_us())
            conn.execute(
                _UPDATE,
                (
                    new.secret_name,
                    new.secret_value,
                    new.tool_name,
                    new.tool_arg,
                    int(new.is_default_for_tool),
                    new.updated_us,
                    new.size_bytes,
                    new.seq,
                ),
            )
        return new

    def delete(self, user_id: str, secret_id: str) -> None:
        with self._write() as conn:
            cursor = conn.execute(
                "DELETE FROM secrets WHERE secret_id = ? AND user_id = ?", (secret_id, user_id)
            )
            if cursor.rowcount == 0:
                raise SecretNotFound("Secret not found")
            # Read again on the next listing: deletes are rare, listings after them rarer.
            self._orders.pop(user_id, None)

    def reset(self) -> None:
        """Forget every secret of every account."""
        with self._write() as conn:
            conn.execute("DELETE FROM secrets")
            self._orders.clear()
