"""The state file under faults and bad input: the apply lock between processes, corrupt files,
failed saves, leftovers of killed runs, and the protection and `forget` records prune depends on."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import state
from reconciler.errors import StateError
from reconciler.models import SecretValue, StateEntry

KEY = state.StateKey(b"state-safety-key", "test")

HOLD = """
import sys, time
from pathlib import Path
from reconciler import state
with state.lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


@contextlib.contextmanager
def hold_lock(path: Path, seconds: float = 30.0) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock on `path` (it says so once it holds it); killed on exit."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_a_live_holder_is_refused_with_its_pid_host_and_start(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with hold_lock(path) as holder:
        with pytest.raises(StateError) as info, state.lock(path):
            pass
        message = str(info.value)
        assert f"pid {holder.pid}" in message and "since 20" in message and "--break-lock" in message
        assert "\n" not in message
        recorded = json.loads((tmp_path / "state.json.lock").read_text())
        assert recorded["pid"] == holder.pid and recorded["host"] and recorded["started"]


def test_a_holder_killed_with_sigkill_leaves_a_lock_that_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with hold_lock(path) as holder:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (tmp_path / "state.json.lock").exists()  # the file is left behind ...
    with state.lock(path):  # ... but nobody holds it any more
        assert json.loads((tmp_path / "state.json.lock").read_text())["pid"] == os.getpid()
    assert not (tmp_path / "state.json.lock").exists()


def test_a_lock_file_copied_from_another_host_does_not_block(tmp_path: Path) -> None:
    # A CI cache can restore .reconciler/ with the lock of a run on another machine.
    (tmp_path / "state.json.lock").write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "x"}))
    with state.lock(tmp_path / "state.json"):
        pass


def test_break_lock_takes_the_lock_from_a_live_holder(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with hold_lock(path), state.lock(path, break_lock=True):
        assert json.loads((tmp_path / "state.json.lock").read_text())["pid"] == os.getpid()
        # Broken once: a third run is refused again while this one holds it.
        with pytest.raises(StateError, match=f"pid {os.getpid()}"), state.lock(path):
            pass


def _contend(path: str, barrier: Any, log: str) -> None:
    barrier.wait()
    deadline = time.monotonic() + 5
    entered = 0
    while entered < 2 and time.monotonic() < deadline:
        try:
            with state.lock(Path(path)):
                _note(log, "in")
                time.sleep(0.01)
                _note(log, "out")
                entered += 1
        except StateError:
            time.sleep(0.001)


def _note(log: str, kind: str) -> None:
    # One O_APPEND write per line: lines from several processes never interleave.
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{time.monotonic():.9f} {kind} {os.getpid()}\n".encode())
    finally:
        os.close(fd)


def test_processes_racing_for_the_lock_never_hold_it_together(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    log = tmp_path / "timeline"
    # A stale lock file to break, too: the race to take over a dead run's lock is the delicate one.
    (tmp_path / "state.json.lock").write_text(json.dumps({"pid": 2**22 + 7, "host": "x", "started": "x"}))
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(6)
    workers = [context.Process(target=_contend, args=(str(path), barrier, str(log))) for _ in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    lines = sorted(line.split() for line in log.read_text().splitlines())
    holders = 0
    for _at, kind, _pid in lines:
        holders += 1 if kind == "in" else -1
        assert holders <= 1, "two processes held the state lock at once"
    assert {pid for _, kind, pid in lines if kind == "in"} == {str(w.pid) for w in workers}


def test_temp_files_of_a_killed_save_are_removed_by_the_next_lock_holder(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    leftover = tmp_path / ".state-state.json.abc123.tmp"
    leftover.write_text('{"half": ')
    other = tmp_path / ".state-other.json.abc123.tmp"  # another state file's: not ours to remove
    other.write_text("{}")
    with state.lock(path):
        pass
    assert not leftover.exists() and other.exists()


def test_a_save_that_cannot_write_is_a_state_error_naming_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    target = blocker / "state.json"
    with pytest.raises(StateError) as info:
        state.save(state.State(target, KEY))
    assert str(target) in str(info.value) and "\n" not in str(info.value)


def test_a_save_never_leaves_a_half_written_state(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    journal = state.Journal(state.State(path, KEY))
    for i in range(50):
        journal.put(
            StateEntry(f"id-{i}", f"name-{i}", fingerprint=KEY.fingerprint(SecretValue(f"v-{i:04d}")))
        )
        journal.flush()
        loaded = state.load(path, KEY)
        assert len(loaded.entries) == i + 1
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=15,
)


@st.composite
def state_documents(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return draw(st.text(max_size=200))
    document: dict[str, Any] = {"format_version": 1, "key_id": KEY.key_id, "secrets": {}}
    if draw(st.booleans()):
        document["secrets"] = draw(JSON)
    else:
        document["secrets"] = {
            draw(st.text(max_size=5)): {
                "secret_name": draw(JSON),
                draw(st.sampled_from(["fingerprint", "protect", "bogus", "updated_at"])): draw(JSON),
            }
        }
    for name in draw(st.lists(st.sampled_from(["forgotten", "protected", "applied_plans", "key_id"]))):
        document[name] = draw(JSON)
    return json.dumps(document)


@settings(max_examples=200, deadline=None)
@given(text=state_documents())
def test_any_state_file_loads_or_is_a_clear_state_error(text: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.json"
        path.write_text(text, encoding="utf-8")
        for read in (lambda: state.load(path, KEY), lambda: state.load_guards(path)):
            try:
                read()
            except StateError as exc:
                assert str(path) in str(exc) and "\n" not in str(exc)


def test_protection_and_forget_survive_a_round_trip_and_a_key_change(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    journal = state.Journal(state.State(path, KEY))
    journal.put(StateEntry("written", "a", fingerprint="fp", protect=True))
    journal.protect("never-written", True)  # protection needs no baseline
    journal.put(StateEntry("plain", "b", fingerprint="fp"))
    journal.forget("plain")
    journal.flush()

    loaded = state.load(path, KEY)
    assert loaded.protected_ids == {"written", "never-written"}
    assert loaded.forgotten == {"plain"} and "plain" not in loaded.entries
    # Under another key the fingerprints are useless, but what prune must spare is still known.
    other = state.StateKey(b"rotated", "test")
    with pytest.raises(StateError, match="another state key"):
        state.load(path, other)
    assert state.load_guards(path) == (frozenset({"written", "never-written"}), frozenset({"plain"}))


def test_forget_releases_protection_and_a_later_write_manages_the_secret_again(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    journal = state.Journal(state.State(path, KEY))
    journal.put(StateEntry("id-1", "a", fingerprint="fp", protect=True))
    journal.forget("id-1")
    journal.flush()
    loaded = state.load(path, KEY)
    assert "id-1" not in loaded.protected_ids and loaded.forgotten == {"id-1"}
    again = state.Journal(loaded)
    again.put(StateEntry("id-1", "a", fingerprint="fp2"))
    again.flush()
    assert state.load(path, KEY).forgotten == frozenset()


def test_protect_follows_the_file_both_ways(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    journal = state.Journal(state.State(path, KEY))
    journal.put(StateEntry("id-1", "a", fingerprint="fp"))
    journal.protect("id-1", True)
    journal.flush()
    assert state.load(path, KEY).entries["id-1"].protect
    journal.protect("id-1", False)
    journal.flush()
    assert state.load(path, KEY).protected_ids == frozenset()


def test_a_value_with_undecodable_bytes_still_fingerprints() -> None:
    # os.environ carries bytes that are not UTF-8 as surrogates; planning must not crash on them.
    assert KEY.fingerprint(SecretValue("abc\udcffdef")) != KEY.fingerprint(SecretValue("abcdef"))
