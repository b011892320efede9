"""The state file: keyed fingerprints and watermarks per secret_id, atomic writes, and the apply lock."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import socket
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from reconciler.errors import StateError
from reconciler.models import FieldValue, RemoteSecret, SecretValue, StateEntry

FORMAT_VERSION = 1
STATE_KEY_ENV = "RECONCILER_STATE_KEY"
_ENTRY_FIELDS = frozenset(StateEntry.__dataclass_fields__)


@dataclass(frozen=True)
class StateKey:
    """The HMAC key for fingerprints, where it came from, and a public id that names it."""

    secret: bytes = field(repr=False)
    source: str

    @property
    def key_id(self) -> str:
        return hmac.new(self.secret, b"reconciler key id v1", hashlib.sha256).hexdigest()[:16]

    def digest(self, text: str) -> str:
        return hmac.new(self.secret, text.encode(), hashlib.sha256).hexdigest()

    def fingerprint(self, value: SecretValue) -> str:
        return self.digest("value:" + value.reveal())


def state_key(environ: Mapping[str, str], api_key: str) -> StateKey:
    """RECONCILER_STATE_KEY when set; otherwise a key derived from the API key.

    The derived key needs no extra secret in CI, but rotating the API key changes it, and the next
    run then reports the state as written under another key (plan with --ignore-state once, apply,
    and the state is rewritten under the new key).
    """
    explicit = environ.get(STATE_KEY_ENV, "")
    if explicit:
        return StateKey(explicit.encode(), STATE_KEY_ENV)
    derived = hmac.new(api_key.encode(), b"reconciler state key v1", hashlib.sha256).digest()
    return StateKey(derived, "derived from the API key")


def fields_digest(key: StateKey, fields: Mapping[str, FieldValue]) -> str:
    return key.digest("fields:" + json.dumps(dict(fields), sort_keys=True))


@dataclass(frozen=True)
class State:
    """The whole state file as read; `entries` are keyed by secret_id."""

    path: Path
    key: StateKey
    entries: Mapping[str, StateEntry] = field(default_factory=lambda: MappingProxyType({}))
    # Secrets released by `forget`: never deleted by prune until they are managed again.
    forgotten: frozenset[str] = frozenset()
    # Saved plans already applied: a plan applies once.
    applied_plans: frozenset[str] = frozenset()


def load(path: Path, key: StateKey) -> State:
    """Read the state file; a missing file is an empty state, anything unreadable is an error."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return State(path, key)
    except OSError as exc:
        raise StateError(
            f"{path}: cannot read the state file ({exc.strerror}); or pass --ignore-state"
        ) from exc
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
            raise ValueError("not a version 1 state file")
        if data.get("key_id") != key.key_id:
            raise StateError(
                f"{path}: the state was written under another state key (key id {data.get('key_id')}, "
                f"now {key.key_id}, {key.source}); set the {STATE_KEY_ENV} used before, or pass "
                "--ignore-state to plan from the remote display alone"
            )
        entries = {}
        for secret_id, item in data["secrets"].items():
            unknown = set(item) - _ENTRY_FIELDS
            if unknown or not isinstance(item.get("secret_name"), str):
                raise ValueError(f"entry {secret_id} is malformed")
            entries[secret_id] = StateEntry(**{**item, "secret_id": secret_id})
        forgotten = frozenset(str(x) for x in data.get("forgotten", []))
        applied = frozenset(str(x) for x in data.get("applied_plans", []))
    except StateError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise StateError(
            f"{path}: the state file is corrupt ({type(exc).__name__}); restore it from backup, "
            "delete it, or pass --ignore-state"
        ) from exc
    return State(path, key, MappingProxyType(entries), forgotten, applied)


def save(state: State) -> None:
    """Write atomically: a temp file beside the target, fsync, rename; mode 0600."""
    payload = {
        "format_version": FORMAT_VERSION,
        "key_id": state.key.key_id,
        "key_source": state.key.source,
        "secrets": {
            sid: {k: v for k, v in asdict(e).items() if k != "secret_id"}
            for sid, e in sorted(state.entries.items())
        },
        "forgotten": sorted(state.forgotten),
        "applied_plans": sorted(state.applied_plans),
    }
    state.path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".tmp", dir=state.path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)
            json.dump(payload, handle, indent=1, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, state.path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def entry_after_write(
    key: StateKey,
    previous: StateEntry | None,
    after: RemoteSecret,
    *,
    value: SecretValue | None,
    protect: bool,
    unverified: bool,
    managed: Mapping[str, FieldValue],
) -> StateEntry | None:
    """The entry that records a verified write. Without a value sent or known, there is no baseline."""
    if value is not None:
        fingerprint = key.fingerprint(value)
        unverified = False
    elif previous is not None and previous.fingerprint:
        fingerprint = previous.fingerprint
    else:
        return None
    return StateEntry(
        secret_id=after.secret_id,
        secret_name=after.secret_name,
        fingerprint=fingerprint,
        updated_at=after.updated_at,
        display_digest=key.digest("display:" + (after.display or "")),
        fields_digest=fields_digest(key, managed),
        value_unverified=unverified,
        protect=protect,
    )


class Journal:
    """The state being updated during an apply; `flush` writes what is recorded so far."""

    def __init__(self, state: State) -> None:
        self._state = state
        self._entries = dict(state.entries)
        self._forgotten = set(state.forgotten)
        self._applied = set(state.applied_plans)
        self._dirty = False

    @property
    def key(self) -> StateKey:
        return self._state.key

    def get(self, secret_id: str) -> StateEntry | None:
        return self._entries.get(secret_id)

    def put(self, entry: StateEntry) -> None:
        self._entries[entry.secret_id] = entry
        self._forgotten.discard(entry.secret_id)
        self._dirty = True

    def drop(self, secret_id: str) -> None:
        if self._entries.pop(secret_id, None) is not None:
            self._dirty = True

    def forget(self, secret_id: str) -> None:
        self._entries.pop(secret_id, None)
        self._forgotten.add(secret_id)
        self._dirty = True

    def plan_applied(self, plan_id: str) -> None:
        self._applied.add(plan_id)
        self._dirty = True

    def mark_unverified(self, secret_id: str) -> None:
        entry = self._entries.get(secret_id)
        if entry is not None and not entry.value_unverified:
            self._entries[secret_id] = replace(entry, value_unverified=True)
            self._dirty = True

    def flush(self) -> None:
        if self._dirty:
            save(
                State(
                    self._state.path,
                    self._state.key,
                    MappingProxyType(self._entries),
                    frozenset(self._forgotten),
                    frozenset(self._applied),
                )
            )
            self._dirty = False


@contextlib.contextmanager
def lock(state_path: Path, *, break_lock: bool = False) -> Iterator[None]:
    """One apply per state file: a lock file holding the holder's pid, host and start time.

    A lock left by a process that is gone (same host) is broken automatically; a live holder, or
    one on another host, is refused unless --break-lock is given.
    """
    lock_path = state_path.with_name(state_path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    me = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    for _ in range(2):
        # Written whole to a private file, then linked into place: the lock never exists half-written.
        fd, tmp = tempfile.mkstemp(prefix=".lock-", dir=lock_path.parent)
        with os.fdopen(fd, "w") as handle:
            json.dump(me, handle)
        try:
            os.link(tmp, lock_path)
        except FileExistsError:
            holder = _read_lock(lock_path)
            if break_lock or _stale(holder):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(lock_path)
                continue
            raise StateError(
                f"{lock_path}: another apply holds the state lock (pid {holder.get('pid')} on "
                f"{holder.get('host')}, since {holder.get('started')}); wait for it to finish, or pass "
                "--break-lock if that process is gone"
            ) from None
        finally:
            os.unlink(tmp)
        break
    else:
        raise StateError(f"{lock_path}: cannot take the state lock; another apply raced for it, try again")
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            if _read_lock(lock_path).get("pid") == me["pid"]:
                os.unlink(lock_path)


def _read_lock(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _stale(holder: Mapping[str, Any]) -> bool:
    pid = holder.get("pid")
    if not holder:
        return True  # unreadable: not one of ours (ours are linked into place whole)
    if holder.get("host") != socket.gethostname() or not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
