"""The state file: keyed fingerprints only, atomic 0600 writes, key mismatch and corruption reported."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from reconciler import state
from reconciler.errors import StateError
from reconciler.models import RemoteSecret, SecretValue, StateEntry

VALUE = "ghp_stateCanary000000000000042"
DISPLAY = "ghp_****0042"


def key(secret: str = "k1") -> state.StateKey:
    return state.state_key({state.STATE_KEY_ENV: secret}, api_key="unused")


def test_fingerprints_are_keyed_and_never_the_value() -> None:
    one, two = key("k1"), key("k2")
    assert one.fingerprint(SecretValue(VALUE)) == one.fingerprint(SecretValue(VALUE))
    assert one.fingerprint(SecretValue(VALUE)) != two.fingerprint(SecretValue(VALUE))
    assert VALUE not in one.fingerprint(SecretValue(VALUE))
    assert "k1" not in repr(one)


def test_without_a_state_key_the_key_is_derived_from_the_api_key() -> None:
    derived = state.state_key({}, api_key="api-key-1")
    assert derived.source == "derived from the API key"
    assert derived.key_id != state.state_key({}, api_key="api-key-2").key_id
    assert derived.key_id == state.state_key({}, api_key="api-key-1").key_id


def saved(tmp_path: Path, k: state.StateKey | None = None) -> Path:
    k = k or key()
    journal = state.Journal(state.State(tmp_path / "state.json", k))
    remote = RemoteSecret("id-1", "gh", tool_name="t", display=DISPLAY, updated_at="2026-01-01T00:00:00Z")
    entry = state.entry_after_write(
        k, None, remote, value=SecretValue(VALUE), protect=True, unverified=False, managed={"tool_name": "t"}
    )
    assert entry is not None
    journal.put(entry)
    journal.flush()
    return tmp_path / "state.json"


def test_saved_state_round_trips_with_mode_0600_and_no_value_or_display(tmp_path: Path) -> None:
    path = saved(tmp_path)
    text = path.read_text()
    assert VALUE not in text and DISPLAY not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = state.load(path, key())
    entry = loaded.entries["id-1"]
    assert entry.secret_name == "gh" and entry.protect and entry.updated_at == "2026-01-01T00:00:00Z"
    assert entry.fingerprint == key().fingerprint(SecretValue(VALUE))
    assert not list(tmp_path.glob(".state-*"))  # no temp file left behind


def test_state_written_under_another_key_is_reported(tmp_path: Path) -> None:
    path = saved(tmp_path, key("k1"))
    with pytest.raises(StateError) as info:
        state.load(path, key("k2"))
    assert str(path) in str(info.value) and "another state key" in str(info.value)
    assert "--ignore-state" in str(info.value)


@pytest.mark.parametrize(
    "text",
    ["{not json", "[]", '{"format_version": 9}', '{"format_version": 1, "key_id": "KEY", "secrets": 5}'],
)
def test_corrupt_state_is_a_clear_error_naming_the_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "state.json"
    path.write_text(text.replace("KEY", key().key_id))
    with pytest.raises(StateError) as info:
        state.load(path, key())
    assert str(path) in str(info.value)


def test_missing_state_is_empty(tmp_path: Path) -> None:
    assert state.load(tmp_path / "none.json", key()).entries == {}


def test_no_baseline_is_recorded_without_a_known_value() -> None:
    remote = RemoteSecret("id-1", "gh", updated_at="t")
    assert (
        state.entry_after_write(key(), None, remote, value=None, protect=False, unverified=False, managed={})
        is None
    )


def test_a_field_write_keeps_the_value_unverified() -> None:
    k = key()
    before = StateEntry("id-1", "gh", fingerprint="fp", updated_at="t0", value_unverified=True)
    remote = RemoteSecret("id-1", "gh", updated_at="t1")
    after = state.entry_after_write(k, before, remote, value=None, protect=False, unverified=True, managed={})
    assert (
        after is not None
        and after.value_unverified
        and after.fingerprint == "fp"
        and after.updated_at == "t1"
    )
    resent = state.entry_after_write(
        k, before, remote, value=SecretValue(VALUE), protect=False, unverified=True, managed={}
    )
    assert resent is not None and not resent.value_unverified


def test_lock_refuses_a_live_holder_and_breaks_a_dead_one(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with state.lock(path):
        with pytest.raises(StateError, match="holds the state lock"), state.lock(path):
            pass
        holder = json.loads((tmp_path / "state.json.lock").read_text())
        assert {"pid", "host", "started"} <= set(holder)
    assert not (tmp_path / "state.json.lock").exists()
    # A lock left by a process that no longer exists is taken over.
    (tmp_path / "state.json.lock").write_text(
        json.dumps({"pid": 2**22 + 12345, "host": holder["host"], "started": "x"})
    )
    with state.lock(path):
        pass
