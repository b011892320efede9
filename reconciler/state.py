"""The state file: keyed fingerprints and watermarks per secret_id, and atomic writes (the apply lock
is in state_lock)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from reconciler.errors import StateError
from reconciler.fsutil import atomic_write
from reconciler.models import FieldValue, RemoteSecret, SecretValue, StateEntry
from reconciler.state_lock import lock, temp_prefix

__all__ = ["lock"]  # the apply lock, kept beside the state it guards

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
        # surrogatepass: a value holding undecodable bytes from the environment still fingerprints.
        return hmac.new(self.secret, text.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()

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
    # Secrets the file marked `protect: true`, also those with no entry (never written, no baseline).
    protected: frozenset[str] = frozenset()

    @property
    def protected_ids(self) -> frozenset[str]:
        """Every secret prune must never delete, by id, whatever the file says now."""
        return self.protected | {sid for sid, entry in self.entries.items() if entry.protect}


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
            written = str(data.get("key_id"))[:32]
            raise StateError(
                f"{path}: the state was written under another state key (key id {written!r}, "
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
        protected = frozenset(str(x) for x in data.get("protected", []))
    except StateError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        raise StateError(
            f"{path}: the state file is corrupt ({type(exc).__name__}); restore it from backup, "
            "delete it, or pass --ignore-state"
        ) from exc
    return State(path, key, MappingProxyType(entries), forgotten, applied, protected)


def load_guards(path: Path) -> tuple[frozenset[str], frozenset[str]]:
    """The ids a prune must leave alone (protected, forgotten), read without the state key.

    For --ignore-state and a state written under another key: fingerprints are then unusable, but
    protection and `forget` do not depend on the key and must not be lost with them.
    """
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return frozenset(), frozenset()
    except OSError as exc:
        raise StateError(
            f"{path}: cannot read which secrets are protected ({exc.strerror}); fix its permissions"
        ) from None
    try:
        data = json.loads(raw)
        entries = data["secrets"]
        protected = {str(x) for x in data.get("protected", [])}
        protected.update(str(sid) for sid, item in entries.items() if item.get("protect") is True)
        forgotten = frozenset(str(x) for x in data.get("forgotten", []))
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        raise StateError(
            f"{path}: the state file is corrupt, so which secrets are protected is unknown; restore it "
            "from backup, or move it away to plan without it"
        ) from None
    return frozenset(protected), forgotten


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
        "protected": sorted(state.protected),
    }
    data = (json.dumps(payload, indent=1, sort_keys=True) + "\n").encode()
    try:
        state.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(state.path, data, mode=0o600, prefix=temp_prefix(state.path))
    except OSError as exc:
        raise StateError(
            f"{state.path}: cannot write the state file ({exc.strerror}); changes made in this run may "
            "be unrecorded: fix the disk, then plan again"
        ) from None


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
        self._protected = set(state.protected_ids)
        self._dirty = False

    @property
    def key(self) -> StateKey:
        return self._state.key

    def get(self, secret_id: str) -> StateEntry | None:
        return self._entries.get(secret_id)

    def put(self, entry: StateEntry) -> None:
        self._entries[entry.secret_id] = entry
        self._forgotten.discard(entry.secret_id)
        self._set_protected(entry.secret_id, entry.protect)
        self._dirty = True

    def drop(self, secret_id: str) -> None:
        if self._entries.pop(secret_id, None) is not None:
            self._dirty = True
        self._set_protected(secret_id, False)

    def forget(self, secret_id: str) -> None:
        """Stop managing a secret: no entry, no protection, and prune leaves it alone."""
        self._entries.pop(secret_id, None)
        self._forgotten.add(secret_id)
        self._set_protected(secret_id, False)
        self._dirty = True

    def protect(self, secret_id: str, on: bool) -> None:
        """Record the file's `protect` for a secret, written or not (protection needs no baseline)."""
        entry = self._entries.get(secret_id)
        if entry is not None and entry.protect != on:
            self._entries[secret_id] = replace(entry, protect=on)
            self._dirty = True
        self._set_protected(secret_id, on)

    def _set_protected(self, secret_id: str, on: bool) -> None:
        if on and secret_id not in self._protected:
            self._protected.add(secret_id)
            self._dirty = True
        elif not on and secret_id in self._protected:
            self._protected.discard(secret_id)
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
                    protected=frozenset(self._protected),
                )
            )
            self._dirty = False
