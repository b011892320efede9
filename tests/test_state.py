"""The state file: keyed fingerprints only, atomic 0600 writes, key mismatch and corruption reported."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest

from reconciler import state
from reconciler.errors import StateError
from reconciler.models import PendingCreate, RemoteSecret, SecretValue, StateEntry

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
    entry = state.entry_after_write(k, None, remote, value=SecretValue(VALUE), protect=True, unverified=False)
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
    ["{not json", "[]", '{"format_version": "9"}', '{"format_version": 1, "key_id": "KEY", "secrets": 5}'],
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
    assert state.entry_after_write(key(), None, remote, value=None, protect=False, unverified=False) is None


def test_a_field_write_keeps_the_value_unverified() -> None:
    k = key()
    before = StateEntry("id-1", "gh", fingerprint="fp", updated_at="t0", value_unverified=True)
    remote = RemoteSecret("id-1", "gh", updated_at="t1")
    after = state.entry_after_write(k, before, remote, value=None, protect=False, unverified=True)
    assert (
        after is not None
        and after.value_unverified
        and after.fingerprint == "fp"
        and after.updated_at == "t1"
    )
    resent = state.entry_after_write(
        k, before, remote, value=SecretValue(VALUE), protect=False, unverified=True
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


# --- format 2: the account binding, pending creates, value write times -------------------------

URL = "https://api.intelligence.io.solutions"


def bound(
    tmp_path: Path,
    *,
    user: str = "user-1",
    api_key: str = "key-1",
    entries: bool = True,
    k: state.StateKey | None = None,
) -> state.State:
    k = k or key()
    journal = state.Journal(state.State(tmp_path / "state.json", k))
    journal.bind(state.bind(k, URL + "/api/", api_key, [user] if user else []))
    if entries:
        journal.put(StateEntry("id-1", "gh", fingerprint="fp", updated_at="t"))
    journal.flush()
    return state.load(tmp_path / "state.json", k)


def test_a_rotated_api_key_keeps_the_state_of_its_account(tmp_path: Path) -> None:
    loaded = bound(tmp_path)
    assert loaded.account is not None and loaded.account.api_url == URL
    mine = [RemoteSecret("id-1", "gh", user_id="user-1")]
    state.check_account(loaded, URL, "key-2", mine)
    state.check_account(loaded, URL, "key-1", [])  # emptied, same key


def test_a_state_of_another_account_or_endpoint_is_refused(tmp_path: Path) -> None:
    loaded = bound(tmp_path)
    with pytest.raises(StateError, match=r"another io\.net account") as info:
        state.check_account(loaded, URL, "key-1", [RemoteSecret("id-9", "x", user_id="user-2")])
    assert str(loaded.path) in str(info.value) and "user-1" not in str(info.value)
    other_url = re.escape(f"belongs to {URL}, but the API URL is http://127.0.0.1:8765")
    with pytest.raises(StateError, match=other_url):
        state.check_account(loaded, "http://127.0.0.1:8765", "key-1", [])
    # An empty account cannot show whose it is: another key with entries to lose is refused.
    with pytest.raises(StateError, match="another API key"):
        state.check_account(loaded, URL, "key-2", [])


def test_a_state_bound_while_the_account_was_empty_learns_its_user(tmp_path: Path) -> None:
    loaded = bound(tmp_path, user="", entries=False)
    assert loaded.account is not None and loaded.account.user == ""
    state.check_account(loaded, URL, "key-2", [RemoteSecret("id-1", "gh", user_id="user-1")])
    journal = state.Journal(loaded)
    journal.saw_user("user-1")
    journal.flush()
    again = state.load(loaded.path, key())
    with pytest.raises(StateError, match=r"another io\.net account"):
        state.check_account(again, URL, "key-1", [RemoteSecret("id-9", "x", user_id="user-2")])


def test_a_version_1_state_is_read_and_upgraded_on_its_next_write(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    entry = {
        "secret_name": "gh",
        "fingerprint": "fp",
        "updated_at": "t",
        "display_digest": "d",
        "fields_digest": "f",
        "value_unverified": False,
        "protect": True,
    }
    v1 = {
        "format_version": 1,
        "key_id": key().key_id,
        "key_source": "x",
        "secrets": {"id-1": entry},
        "forgotten": ["id-2"],
        "applied_plans": ["p"],
        "protected": ["id-1"],
    }
    path.write_text(json.dumps(v1))
    loaded = state.load(path, key())
    assert loaded.account is None and loaded.entries["id-1"].value_written_at == ""
    state.check_account(loaded, URL, "any-key", [RemoteSecret("id-1", "gh", user_id="u")])
    journal = state.Journal(loaded)
    journal.bind(state.bind(key(), URL, "key-1", ["u"]))
    journal.flush()
    data = json.loads(path.read_text())
    assert data["format_version"] == 2 and data["forgotten"] == ["id-2"] and data["applied_plans"] == ["p"]
    assert data["secrets"]["id-1"]["protect"] is True and data["account"]["api_url"] == URL
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "key-1" not in path.read_text() and '"u"' not in path.read_text()


def test_a_state_from_a_newer_reconciler_says_so(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"format_version": 3}))
    with pytest.raises(StateError, match="format 3, written by a newer reconciler"):
        state.load(path, key())


def test_pending_creates_are_journaled_marked_in_doubt_and_settled(tmp_path: Path) -> None:
    journal = state.Journal(state.State(tmp_path / "state.json", key()))
    journal.pending_create(PendingCreate("gh", "fp", "fd", "2026-01-01T00:00:00Z"))
    journal.flush()
    loaded = state.load(tmp_path / "state.json", key())
    assert loaded.pending["gh"] == PendingCreate("gh", "fp", "fd", "2026-01-01T00:00:00Z")
    journal = state.Journal(loaded)
    journal.in_doubt("gh", "2026-01-01T00:00:09Z")
    journal.flush()
    assert state.load(tmp_path / "state.json", key()).pending["gh"].in_doubt
    journal.settle("gh")
    journal.flush()
    assert state.load(tmp_path / "state.json", key()).pending == {}


@pytest.mark.parametrize(
    "bad", [{"fingerprint": "fp"}, {"fingerprint": 1, "fields_digest": "", "sent_at": "", "in_doubt": False}]
)
def test_a_malformed_pending_create_is_a_corrupt_state(tmp_path: Path, bad: dict[str, object]) -> None:
    path = tmp_path / "state.json"
    path.write_text(
        json.dumps({"format_version": 2, "key_id": key().key_id, "secrets": {}, "pending": {"x": bad}})
    )
    with pytest.raises(StateError, match="corrupt"):
        state.load(path, key())


def test_the_value_write_time_moves_only_when_a_new_value_is_sent() -> None:
    k = key()
    first = RemoteSecret("id-1", "gh", updated_at="t1")
    created = state.entry_after_write(
        k, None, first, value=SecretValue(VALUE), protect=False, unverified=False, sent=True
    )
    assert created is not None and created.value_written_at == "t1"
    later = RemoteSecret("id-1", "gh", updated_at="t2")
    for value in (None, SecretValue(VALUE)):  # a field write, then the same value re-sent
        kept = state.entry_after_write(
            k,
            created,
            later,
            value=value,
            protect=False,
            unverified=False,
            sent=value is not None,
        )
        assert kept is not None and kept.value_written_at == "t1" and kept.updated_at == "t2"
    rotated = state.entry_after_write(
        k,
        created,
        later,
        value=SecretValue(VALUE + "x"),
        protect=False,
        unverified=False,
        sent=True,
    )
    assert rotated is not None and rotated.value_written_at == "t2"
    adopted = state.entry_after_write(
        k, None, later, value=SecretValue(VALUE), protect=False, unverified=False
    )
    assert adopted is not None and adopted.value_written_at == ""


def test_a_state_under_another_key_is_read_without_its_fingerprints_and_kept_for_its_account(
    tmp_path: Path,
) -> None:
    old, new = state.state_key({}, api_key="key-1"), state.state_key({}, api_key="key-2")
    written = bound(tmp_path, k=old)
    with pytest.raises(StateError, match="another state key"):
        state.load(written.path, new)  # only callers that check the account may read it
    loaded = state.load(written.path, new, rekey=True)
    assert "another state key" in loaded.rekeyed and str(written.path) in state.rekey_notice(loaded)
    entry = loaded.entries["id-1"]
    assert entry.fingerprint == "" and entry.updated_at == "t"
    state.check_account(loaded, URL, "key-2", [RemoteSecret("id-1", "gh", user_id="user-1")])
    with pytest.raises(StateError, match=r"another io\.net account"):
        state.check_account(loaded, URL, "key-2", [RemoteSecret("id-9", "x", user_id="user-2")])
    with pytest.raises(StateError, match="another state key"):
        state.check_account(loaded, URL, "key-2", [])  # an empty account cannot tell whose it is


def test_a_state_without_the_user_tag_under_another_key_is_refused(tmp_path: Path) -> None:
    old = state.state_key({}, api_key="key-1")
    path = bound(tmp_path, k=old).path
    data = json.loads(path.read_text())
    del data["account"]["user_tag"]  # written before the tag: the account cannot be told
    path.write_text(json.dumps(data))
    loaded = state.load(path, state.state_key({}, api_key="key-2"), rekey=True)
    with pytest.raises(StateError, match="another state key"):
        state.check_account(loaded, URL, "key-2", [RemoteSecret("id-1", "gh", user_id="user-1")])
    assert state.load(path, old).account is not None  # and the old key still reads it


def test_an_entry_without_a_fingerprint_keeps_its_watermark_and_its_value_age() -> None:
    k = key()
    before = StateEntry("id-1", "gh", fingerprint="", updated_at="t1", value_written_at="t0")
    after = RemoteSecret("id-1", "gh", updated_at="t2")
    field_write = state.entry_after_write(k, before, after, value=None, protect=False, unverified=False)
    assert field_write is not None and field_write.fingerprint == "" and field_write.updated_at == "t2"
    # Whether a value sent now is new cannot be told: its age is kept, never made younger.
    sent = state.entry_after_write(
        k, before, after, value=SecretValue(VALUE), protect=False, unverified=False, sent=True
    )
    assert sent is not None and sent.fingerprint == k.fingerprint(SecretValue(VALUE))
    assert sent.value_written_at == "t0"


def test_entries_kept_without_a_fingerprint_are_said_until_keyed_again(tmp_path: Path) -> None:
    journal = state.Journal(state.State(tmp_path / "state.json", key()))
    journal.put(StateEntry("id-1", "gh", fingerprint="", updated_at="t"))
    journal.put(StateEntry("id-2", "lin", fingerprint="fp", updated_at="t"))
    journal.flush()
    loaded = state.load(tmp_path / "state.json", key())
    assert not loaded.rekeyed and "1 secret kept no value fingerprint" in state.rekey_notice(loaded)
    journal.put(StateEntry("id-1", "gh", fingerprint="fp2", updated_at="t2"))
    journal.flush()
    assert state.rekey_notice(state.load(tmp_path / "state.json", key())) == ""
