"""The emulator's SQLite store: persistence, creation order, timestamps, quota and duplicate policies."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from reconciler.emulator.errors import DuplicateName, QuotaExceeded, SecretNotFound
from reconciler.emulator.store import Store, size_of
from reconciler.errors import UsageError

USER = "11111111-1111-5111-8111-111111111111"
OTHER = "22222222-2222-5222-8222-222222222222"


def frozen_clock(at: int = 1_700_000_000_000_000) -> list[int]:
    """A settable clock: the store reads the first item."""
    return [at]


def test_secrets_survive_reopening_the_file(tmp_path: Path) -> None:
    path = str(tmp_path / "sub" / "emulator.db")
    store = Store(path)
    created = store.create(USER, secret_name="n", secret_value="value-1", tool_name="t", tool_arg="a")
    store.update(USER, created.secret_id, {"secret_value": "value-2"})
    store.close()

    reopened = Store(path)
    got = reopened.get(USER, created.secret_id)
    assert (got.secret_name, got.secret_value, got.tool_name, got.tool_arg) == ("n", "value-2", "t", "a")
    assert got.created_us == created.created_us
    assert got.updated_us > created.updated_us
    reopened.close()


def test_uses_wal_journal(tmp_path: Path) -> None:
    path = tmp_path / "emulator.db"
    Store(str(path)).close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_updated_at_strictly_increases_even_when_the_clock_stands_still() -> None:
    clock = frozen_clock()
    store = Store(":memory:", clock=lambda: clock[0])
    secret = store.create(USER, secret_name="n", secret_value="value")
    seen = [secret.updated_us]
    for _ in range(5):
        seen.append(store.update(USER, secret.secret_id, {}).updated_us)
    clock[0] -= 10_000_000  # the wall clock stepping back must not move timestamps back
    seen.append(store.update(USER, secret.secret_id, {"tool_name": "x"}).updated_us)
    assert seen == sorted(set(seen))
    assert store.get(USER, secret.secret_id).created_us == secret.created_us


def test_timestamps_keep_increasing_after_a_restart_with_a_slow_clock(tmp_path: Path) -> None:
    path = str(tmp_path / "e.db")
    store = Store(path, clock=lambda: 2_000_000_000_000_000)
    secret = store.create(USER, secret_name="n", secret_value="value")
    store.close()
    reopened = Store(path, clock=lambda: 1_000_000_000_000_000)
    assert reopened.update(USER, secret.secret_id, {}).updated_us > secret.updated_us
    reopened.close()


def test_accounts_are_isolated() -> None:
    store = Store(":memory:")
    mine = store.create(USER, secret_name="n", secret_value="value")
    with pytest.raises(SecretNotFound):
        store.get(OTHER, mine.secret_id)
    with pytest.raises(SecretNotFound):
        store.update(OTHER, mine.secret_id, {"secret_name": "stolen"})
    with pytest.raises(SecretNotFound):
        store.delete(OTHER, mine.secret_id)
    assert store.all(OTHER) == []
    assert store.get(USER, mine.secret_id).secret_name == "n"


def test_pages_follow_creation_order_across_deletes_and_renames() -> None:
    store = Store(":memory:")
    ids = [store.create(USER, secret_name=f"s{i:03d}", secret_value="value").secret_id for i in range(25)]
    store.create(OTHER, secret_name="other", secret_value="value")
    store.delete(USER, ids[3])
    store.update(USER, ids[0], {"secret_name": "zzz-renamed"})
    expected = [i for i in ids if i != ids[3]]
    paged = [s.secret_id for offset in range(0, 30, 7) for s in store.page(USER, offset, 7)]
    assert paged == expected
    assert [s.secret_id for s in store.all(USER)] == expected
    assert store.count(USER) == 24


def test_a_ten_thousand_secret_account_lists_in_pages() -> None:
    store = Store(":memory:")
    for i in range(10_000):
        store.create(USER, secret_name=f"secret-{i:05d}", secret_value="value-xyz")
    names = [s.secret_name for page in range(100) for s in store.page(USER, page * 100, 100)]
    assert names == [f"secret-{i:05d}" for i in range(10_000)]
    plan = " ".join(
        str(row)
        for row in store._conn.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM secrets WHERE user_id = ? ORDER BY seq LIMIT 100 OFFSET 9900",
            (USER,),
        )
    )
    assert "secrets_by_account" in plan
    assert "TEMP B-TREE" not in plan.upper()
    store.close()


def test_quota_counts_utf8_bytes_of_names_and_values_and_refuses_without_changing() -> None:
    store = Store(":memory:", quota_bytes=20)
    first = store.create(USER, secret_name="ab", secret_value="ééé1")  # 2 + 7 bytes
    assert store.used_bytes(USER) == size_of("ab", "ééé1") == 9
    second = store.create(USER, secret_name="c", secret_value="0123456789")  # 11: total 20, at the cap
    with pytest.raises(QuotaExceeded) as refused:
        store.create(USER, secret_name="d", secret_value="wxyz")
    assert refused.value.status == 413
    with pytest.raises(QuotaExceeded):
        store.update(USER, first.secret_id, {"secret_value": "ééé12"})
    assert store.get(USER, first.secret_id).secret_value == "ééé1"
    # Shrinking is always allowed, and frees room.
    store.update(USER, second.secret_id, {"secret_value": "0123"})
    store.create(USER, secret_name="d", secret_value="wxyz")
    assert store.used_bytes(USER) == 9 + 5 + 5
    # Quota is per account.
    store.create(OTHER, secret_name="o", secret_value="0123456789")


def test_duplicate_names_allowed_by_default_and_refused_when_unique() -> None:
    lenient = Store(":memory:")
    lenient.create(USER, secret_name="same", secret_value="value")
    lenient.create(USER, secret_name="same", secret_value="value")
    assert [s.secret_name for s in lenient.all(USER)] == ["same", "same"]

    strict = Store(":memory:", unique_names=True)
    kept = strict.create(USER, secret_name="same", secret_value="value")
    other = strict.create(USER, secret_name="other", secret_value="value")
    strict.create(OTHER, secret_name="same", secret_value="value")
    with pytest.raises(DuplicateName) as refused:
        strict.create(USER, secret_name="same", secret_value="value")
    assert refused.value.status == 409
    with pytest.raises(DuplicateName):
        strict.update(USER, other.secret_id, {"secret_name": "same"})
    # Renaming to its own name is not a conflict.
    strict.update(USER, kept.secret_id, {"secret_name": "same", "tool_name": "t"})
    assert [s.secret_name for s in strict.all(USER)] == ["same", "other"]


def test_reset_forgets_every_account() -> None:
    store = Store(":memory:")
    store.create(USER, secret_name="a", secret_value="value")
    store.create(OTHER, secret_name="b", secret_value="value")
    store.reset()
    assert store.all(USER) == store.all(OTHER) == []


def test_repr_never_shows_the_value() -> None:
    store = Store(":memory:")
    secret = store.create(USER, secret_name="n", secret_value="canary-value-314159")
    assert "canary-value-314159" not in repr(secret)


def test_an_unusable_path_is_a_usage_error(tmp_path: Path) -> None:
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("this is not a database\n" * 100)
    with pytest.raises(UsageError, match="pass a writable --db path"):
        Store(str(not_a_db))
    with pytest.raises(UsageError, match="cannot open"):
        Store(str(tmp_path))  # a directory


def test_a_database_of_another_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(UsageError, match="schema 99"):
        Store(str(path))


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_the_database_and_its_wal_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    db = tmp_path / "dir" / "emulator.db"
    store = Store(str(db))
    store.create("u", secret_name="n", secret_value="plain-text-value")
    assert {path.name: mode(path) for path in db.parent.iterdir()} == {
        "emulator.db": 0o600,
        "emulator.db-wal": 0o600,
        "emulator.db-shm": 0o600,
    }
    store.close()


def test_a_database_left_readable_by_others_is_made_private(tmp_path: Path) -> None:
    db = tmp_path / "emulator.db"
    Store(str(db)).close()
    for path in tmp_path.iterdir():
        path.chmod(0o644)
    Store(str(db)).close()
    assert [(p.name, mode(p)) for p in tmp_path.iterdir() if mode(p) != 0o600] == []


def test_pages_and_count_follow_creates_and_deletes_in_order(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "e.db"))
    made = [store.create(USER, secret_name=f"s{i}", secret_value="value") for i in range(7)]
    store.create(OTHER, secret_name="other", secret_value="value")
    assert store.count(USER) == 7
    assert [s.secret_name for s in store.page(USER, 2, 3)] == ["s2", "s3", "s4"]
    store.delete(USER, made[3].secret_id)
    store.create(USER, secret_name="s7", secret_value="value")
    assert store.count(USER) == 7
    assert [s.secret_name for s in store.page(USER, 2, 3)] == ["s2", "s4", "s5"]
    assert [s.secret_name for s in store.page(USER, 5, 10)] == ["s6", "s7"]
    assert store.page(USER, 7, 10) == [] and store.page(USER, 0, 0) == []
    store.close()


def test_pages_see_writes_made_through_another_connection(tmp_path: Path) -> None:
    path = str(tmp_path / "e.db")
    serving, other = Store(path), Store(path)
    serving.create(USER, secret_name="a", secret_value="value")
    assert serving.count(USER) == 1  # the order is read and kept now
    b = other.create(USER, secret_name="b", secret_value="value")
    assert [s.secret_name for s in serving.page(USER, 0, 10)] == ["a", "b"]
    other.delete(USER, b.secret_id)
    assert serving.count(USER) == 1
    serving.close()
    other.close()
