"""The state file: keyed fingerprints and watermarks per secret_id, the account it belongs to, the
journal of pending creates, and atomic writes (the apply lock is in state_lock, the key in state_keys)."""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from reconciler.endpoint import canonical, shown
from reconciler.errors import StateError
from reconciler.fsutil import atomic_write
from reconciler.models import PendingCreate, RemoteSecret, SecretValue, StateEntry
from reconciler.state_keys import (
    STATE_KEY_ENV,
    Account,
    StateKey,
    bind,
    fields_digest,
    state_key,
    tag_matches,
    user_digest,
    user_tag,
)
from reconciler.state_lock import lock, temp_prefix
from reconciler.text import plural

# The apply lock, and the key with the account binding it signs, kept beside the state they serve.
__all__ = ["STATE_KEY_ENV", "Account", "StateKey", "bind", "fields_digest", "lock", "state_key"]

# Version 2 adds the account binding, the journal of pending creates and each value's write time;
# version 1 files are read as they are and written as version 2 on their next save.
FORMAT_VERSION = 2
_READABLE = (1, 2)
_ENTRY_FIELDS = frozenset(StateEntry.__dataclass_fields__)
# Keyed digests earlier versions wrote into each entry and never read: skipped on load.
_LEGACY_ENTRY_FIELDS = frozenset({"display_digest", "fields_digest"})
_ACCOUNT_FIELDS = frozenset({"api_url", "user", "api_key"})
_PENDING_FIELDS = frozenset(PendingCreate.__dataclass_fields__) - {"secret_name"}


def check_account(state: State, api_url: str, api_key: str, remote: Iterable[RemoteSecret]) -> None:
    """Refuse a state written for another endpoint or another account, before anything is planned.

    The account is told by its user_id, so a rotated API key keeps its state. An account that shows
    no user_id (it is empty) can only be told by the API key; a state with entries is then refused
    when the key differs, since it may belong to another account.
    """
    bound = state.account
    if bound is None:
        if state.rekeyed:
            raise StateError(state.rekeyed)
        return
    configured = canonical(api_url)
    if bound.api_url != configured:
        raise StateError(
            f"{state.path}: the state belongs to {shown(bound.api_url)}, but the API URL is "
            f"{shown(configured)}; keep one state per endpoint (--state PATH), or point --api-url at "
            "the state's endpoint"
        )
    users = {s.user_id for s in remote if s.user_id}
    if state.rekeyed:
        _check_rekeyed(state, bound, users)
        return
    if bound.user and users:
        if any(hmac.compare_digest(user_digest(state.key, u), bound.user) for u in users):
            return
        raise StateError(
            f"{state.path}: the state belongs to another io.net account than the one this API key "
            "opens; use that account's key, or this account's own state (--state PATH)"
        )
    if not state.entries or hmac.compare_digest(state.key.digest("api_key:" + api_key), bound.api_key):
        return
    raise StateError(
        f"{state.path}: the state was written with another API key, and the account has no secret "
        "that tells whether it is the same account; use this account's own state (--state PATH), or "
        "pass --ignore-state if the key was rotated on an emptied account"
    )


def _check_rekeyed(state: State, bound: Account, users: set[str]) -> None:
    """A state written under a key that is gone is kept only for the account it was written for."""
    if not bound.user_tag or not users:
        # Without the account's user_id (an empty account, or a state from before the tag) the
        # account cannot be told, and a wrong match would report every secret deleted by hand.
        raise StateError(state.rekeyed)
    if not any(tag_matches(bound.user_tag, u) for u in users):
        raise StateError(
            f"{state.path}: the state belongs to another io.net account than the one this API key "
            "opens (and was written under another state key); use that account's key, or this "
            "account's own state (--state PATH)"
        )


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
    # None: not bound yet (a new state, or one written by version 1).
    account: Account | None = None
    # Creates sent whose answer may be lost, by secret_name.
    pending: Mapping[str, PendingCreate] = field(default_factory=lambda: MappingProxyType({}))
    # True when there was no state file to read.
    missing: bool = False
    # Why the value fingerprints were dropped on load (written under another state key); the rest is
    # kept once `check_account` has matched the account. Empty when the key is the one in use.
    rekeyed: str = ""

    @property
    def protected_ids(self) -> frozenset[str]:
        """Every secret prune must never delete, by id, whatever the file says now."""
        return self.protected | {sid for sid, entry in self.entries.items() if entry.protect}


def load(path: Path, key: StateKey, *, rekey: bool = False) -> State:
    """Read the state file; a missing file is an empty state, anything unreadable is an error.

    A state written under another key is an error, unless `rekey`: it is then read without its value
    fingerprints (they cannot be checked under this key) for the caller to match its account with
    `check_account` before anything uses it. Everything else in it does not depend on the key.
    """
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return State(path, key, missing=True)
    except OSError as exc:
        raise StateError(
            f"{path}: cannot read the state file ({exc.strerror}); or pass --ignore-state"
        ) from exc
    try:
        data = json.loads(raw)
        rekeyed = _check_header(path, data, key, rekey=rekey)
        entries = {}
        for secret_id, item in data["secrets"].items():
            unknown = set(item) - _ENTRY_FIELDS - _LEGACY_ENTRY_FIELDS
            if unknown or not isinstance(item.get("secret_name"), str):
                raise ValueError(f"entry {secret_id} is malformed")
            fields = {k: v for k, v in item.items() if k not in _LEGACY_ENTRY_FIELDS}
            if rekeyed:
                fields["fingerprint"] = ""
            entries[secret_id] = StateEntry(**{**fields, "secret_id": secret_id})
        return State(
            path,
            key,
            MappingProxyType(entries),
            forgotten=frozenset(str(x) for x in data.get("forgotten", [])),
            applied_plans=frozenset(str(x) for x in data.get("applied_plans", [])),
            protected=frozenset(str(x) for x in data.get("protected", [])),
            account=_account(data.get("account")),
            pending=MappingProxyType(_pending(data.get("pending") or {})),
            rekeyed=rekeyed,
        )
    except StateError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        raise StateError(
            f"{path}: the state file is corrupt ({type(exc).__name__}); restore it from backup, "
            "delete it, or pass --ignore-state"
        ) from exc


def _check_header(path: Path, data: object, key: StateKey, *, rekey: bool) -> str:
    """A state file this reconciler reads, written under `key`; or, with `rekey`, under another key,
    said in the returned text (empty when the key is the one in use)."""
    if not isinstance(data, dict) or data.get("format_version") not in _READABLE:
        version = data.get("format_version") if isinstance(data, dict) else None
        if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
            raise StateError(
                f"{path}: the state file is format {version}, written by a newer reconciler; this one "
                f"reads up to {FORMAT_VERSION}. Upgrade reconciler"
            )
        raise ValueError("not a state file")
    if data.get("key_id") == key.key_id:
        return ""
    written = str(data.get("key_id"))[:32]
    refused = (
        f"{path}: the state was written under another state key (key id {written!r}, "
        f"now {key.key_id}, {key.source}); set the {STATE_KEY_ENV} used before, or pass "
        "--ignore-state to plan from the remote display alone"
    )
    if not rekey:
        raise StateError(refused)
    return refused


def _pending(raw: Mapping[str, dict[str, Any]]) -> dict[str, PendingCreate]:
    pending = {}
    for name, item in raw.items():
        if set(item) != _PENDING_FIELDS or not isinstance(item["in_doubt"], bool):
            raise ValueError(f"pending create {name} is malformed")
        if not all(isinstance(v, str) for k, v in item.items() if k != "in_doubt"):
            raise ValueError(f"pending create {name} is malformed")
        pending[str(name)] = PendingCreate(secret_name=str(name), **item)
    return pending


def _account(raw: object) -> Account | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - {"user_tag"} != _ACCOUNT_FIELDS:
        raise ValueError("the account binding is malformed")
    if not all(isinstance(v, str) for v in raw.values()):
        raise ValueError("the account binding is malformed")
    return Account(raw["api_url"], raw["user"], raw["api_key"], raw.get("user_tag", ""))


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
        "account": asdict(state.account) if state.account is not None else None,
        "pending": {
            name: {k: v for k, v in asdict(p).items() if k != "secret_name"}
            for name, p in sorted(state.pending.items())
        },
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
    sent: bool = False,
) -> StateEntry | None:
    """The entry that records a verified write. Without a value sent or known, there is no baseline.

    `sent`: this write sent `value`. The value's write time moves only when a new value is sent:
    re-sending the same value (a restore, --force-values) does not make it younger, and neither does
    a write of other fields or an adoption. After a key change the previous fingerprint is unknown,
    so whether a sent value is new cannot be told: its write time is kept, which may report it stale
    too early but never hides an old value.
    """
    written_at = previous.value_written_at if previous is not None else ""
    if value is not None:
        fingerprint = key.fingerprint(value)
        unverified = False
        if previous is None or (previous.fingerprint and previous.fingerprint != fingerprint):
            written_at = after.updated_at if sent else ""
    elif previous is not None and (previous.fingerprint or previous.updated_at):
        # Written under a key that is gone, the entry keeps its watermark without a fingerprint.
        fingerprint = previous.fingerprint
    else:
        return None
    return StateEntry(
        secret_id=after.secret_id,
        secret_name=after.secret_name,
        fingerprint=fingerprint,
        updated_at=after.updated_at,
        value_unverified=unverified,
        protect=protect,
        value_written_at=written_at,
    )


def rekey_notice(state: State) -> str:
    """What value fingerprints the state lacks cost, for every output: all of them when it was read
    under another key, and afterwards those of the entries no write or adoption has keyed again (the
    next apply writes the state under the new key, so the header alone would stop saying it)."""
    cost = (
        "compared by its display until it is next written, and a value rewritten by hand with the same "
        "first and last characters cannot be seen. `apply --adopt` records the fingerprints again where "
        f"the display agrees; set {STATE_KEY_ENV} to keep them across API key rotations"
    )
    if state.rekeyed:
        return (
            f"{state.path} was written under another state key (the API key was rotated, or "
            f"{STATE_KEY_ENV} changed). It belongs to this account, so it is kept, but its value "
            f"fingerprints cannot be read: each value is {cost}"
        )
    unkeyed = sum(1 for entry in state.entries.values() if not entry.fingerprint)
    if not unkeyed:
        return ""
    return (
        f"{state.path}: {plural(unkeyed, 'secret')} kept no value fingerprint when the state key changed: "
        f"each such value is {cost}"
    )


class Journal:
    """The state being updated during an apply; `flush` writes what is recorded so far."""

    def __init__(self, state: State) -> None:
        self._state = state
        self._entries = dict(state.entries)
        self._forgotten = set(state.forgotten)
        self._applied = set(state.applied_plans)
        self._protected = set(state.protected_ids)
        self._account = state.account
        self._pending = dict(state.pending)
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

    def bind(self, account: Account) -> None:
        if account != self._account:
            self._account = account
            self._dirty = True

    def saw_user(self, user_id: str) -> None:
        """A secret written in this run shows the account's user_id: the binding learns it."""
        if user_id and self._account is not None and not self._account.user:
            salt = secrets.token_hex(16)
            self.bind(
                replace(self._account, user=user_digest(self.key, user_id), user_tag=user_tag(salt, user_id))
            )

    @property
    def pending(self) -> Mapping[str, PendingCreate]:
        return MappingProxyType(self._pending)

    def pending_create(self, pending: PendingCreate) -> None:
        """Record a create before it is sent: if its answer is lost, the next run looks for it."""
        self._pending[pending.secret_name] = pending
        self._dirty = True

    def in_doubt(self, secret_name: str, at: str) -> None:
        """The create's answer was lost at `at` and it may still land: hold it back from then on."""
        pending = self._pending.get(secret_name)
        if pending is not None:
            self._pending[secret_name] = replace(pending, sent_at=at, in_doubt=True)
            self._dirty = True

    def settle(self, secret_name: str) -> None:
        """The create of `secret_name` is known to have landed (and is recorded) or not to have."""
        if self._pending.pop(secret_name, None) is not None:
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
                    account=self._account,
                    pending=MappingProxyType(dict(self._pending)),
                )
            )
            self._dirty = False
