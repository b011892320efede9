"""`reconciler forget` and `protect` end to end: a forgotten secret is never deleted, a protected one
never either, not even when its entry leaves the file together with `protect`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_faults import HOLD_LOCK, by_name, cli, stored, write
from tests.support.emulator import RunningEmulator, start_emulator

pytestmark = pytest.mark.e2e

VALUES = {"A": "forget-value-a-CANARY", "B": "forget-value-b-CANARY", "C": "forget-value-c-CANARY"}
THREE = """
version: 1
secrets:
  - secret_name: a
    secret_value: ${A}
  - secret_name: b
    secret_value: ${B}
  - secret_name: c
    secret_value: ${C}
"""
WITHOUT_B = """
version: 1
prune: true
secrets:
  - secret_name: a
    secret_value: ${A}
  - secret_name: c
    secret_value: ${C}
"""


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    db = tmp_path_factory.mktemp("forget-emu") / "emulator.db"
    with start_emulator(db_path=db) as running:
        yield running


def state_of(root: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((root / ".reconciler" / "state.json").read_text())
    return data


def apply_ok(emulator: RunningEmulator, tmp_path: Path, key: str) -> None:
    result = cli(
        "apply", "secrets.yaml", "--auto-approve", cwd=tmp_path, url=emulator.url, key=key, env=VALUES
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_forget_stops_managing_without_deleting_until_managed_again(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    key = "forget-flow"

    def run(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        result = cli(
            *args, cwd=tmp_path, url=emulator.url, key=key, env=VALUES, secrets=tuple(VALUES.values())
        )
        assert result.returncode == code, result.stdout + result.stderr
        return result

    write(tmp_path / "secrets.yaml", THREE)
    run("apply", "secrets.yaml", "--auto-approve")
    b_id = by_name(stored(emulator.db_path, key))["b"].secret_id

    write(tmp_path / "secrets.yaml", WITHOUT_B)
    assert "- delete b" in run("plan", "secrets.yaml").stdout  # what forget prevents

    forgot = run("forget", "secrets.yaml", "b")
    assert forgot.stdout.strip() == f"Forgot b ({b_id}): no longer managed, not deleted."
    state = state_of(tmp_path)
    assert b_id not in state["secrets"] and state["forgotten"] == [b_id]  # type: ignore[operator]

    assert "No changes" in run("plan", "secrets.yaml").stdout
    run("apply", "secrets.yaml", "--auto-approve")
    assert by_name(stored(emulator.db_path, key))["b"].secret_id == b_id

    # Listed and written again, it is managed again: the next prune may delete it once it leaves.
    write(tmp_path / "secrets.yaml", THREE.replace("${B}", "${B}-rotated"))
    run("apply", "secrets.yaml", "--auto-approve")
    assert state_of(tmp_path)["forgotten"] == []
    write(tmp_path / "secrets.yaml", WITHOUT_B)
    assert "- delete b" in run("plan", "secrets.yaml").stdout


def test_forget_refuses_unknown_names_changes_nothing_and_notes_listed_ones(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    key = "forget-refuse"
    write(tmp_path / "secrets.yaml", THREE)
    apply_ok(emulator, tmp_path, key)
    before = (tmp_path / ".reconciler" / "state.json").read_text()

    refused = cli("forget", "secrets.yaml", "a", "nope", cwd=tmp_path, url=emulator.url, key=key)
    assert refused.returncode == 1
    assert "'nope' is not in the state file" in refused.stderr and "nothing was forgotten" in refused.stderr
    assert (tmp_path / ".reconciler" / "state.json").read_text() == before

    listed = cli("forget", "secrets.yaml", "a", cwd=tmp_path, url=emulator.url, key=key)
    assert listed.returncode == 0 and listed.stdout.startswith("Forgot a (")
    assert "still lists a" in listed.stderr

    again = cli("forget", "secrets.yaml", "a", cwd=tmp_path, url=emulator.url, key=key)
    assert again.returncode == 1 and "already forgotten" in again.stderr


def test_forget_waits_for_no_one_it_refuses_while_an_apply_holds_the_lock(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    key = "forget-lock"
    write(tmp_path / "secrets.yaml", THREE)
    apply_ok(emulator, tmp_path, key)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path / ".reconciler" / "state.json")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        refused = cli("forget", "secrets.yaml", "b", cwd=tmp_path, url=emulator.url, key=key)
        assert refused.returncode == 1 and f"pid {holder.pid}" in refused.stderr
    finally:
        holder.kill()
        holder.communicate()
    assert cli("forget", "secrets.yaml", "b", cwd=tmp_path, url=emulator.url, key=key).returncode == 0


PROTECTED = """
version: 1
secrets:
  - secret_name: a
    secret_value: ${A}
  - secret_name: b
    secret_value: ${B}
    protect: true
  - secret_name: c
    secret_value: ${C}
"""


def plan_deletes(emulator: RunningEmulator, root: Path, key: str, *args: str) -> str:
    result = cli(
        "plan", "secrets.yaml", "--format", "json", *args, cwd=root, url=emulator.url, key=key, env=VALUES
    )
    assert result.returncode == 0, result.stderr
    return ",".join(c["secret_name"] for c in json.loads(result.stdout)["changes"] if c["action"] == "delete")


def test_protect_survives_the_entry_and_protect_leaving_together_and_forget_keeps_it(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    key = "protect-remembered"
    write(tmp_path / "secrets.yaml", PROTECTED)
    apply_ok(emulator, tmp_path, key)
    write(tmp_path / "secrets.yaml", WITHOUT_B)  # b and its `protect: true` leave in one change
    assert plan_deletes(emulator, tmp_path, key) == ""
    applied = cli(
        "apply", "secrets.yaml", "--auto-approve", cwd=tmp_path, url=emulator.url, key=key, env=VALUES
    )
    assert applied.returncode == 0 and "b" in by_name(stored(emulator.db_path, key))
    # forget releases the protection, and a forgotten secret is never deleted either.
    assert cli("forget", "secrets.yaml", "b", cwd=tmp_path, url=emulator.url, key=key).returncode == 0
    assert plan_deletes(emulator, tmp_path, key) == ""


def test_protect_added_without_any_other_change_is_remembered(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    key = "protect-added-later"
    write(tmp_path / "secrets.yaml", THREE)
    apply_ok(emulator, tmp_path, key)
    write(tmp_path / "secrets.yaml", PROTECTED)
    apply_ok(emulator, tmp_path, key)
    write(tmp_path / "secrets.yaml", WITHOUT_B)
    assert plan_deletes(emulator, tmp_path, key) == ""


def test_ignore_state_still_spares_protected_secrets(emulator: RunningEmulator, tmp_path: Path) -> None:
    key = "protect-ignore-state"
    write(tmp_path / "secrets.yaml", PROTECTED)
    apply_ok(emulator, tmp_path, key)
    write(tmp_path / "secrets.yaml", WITHOUT_B)
    assert plan_deletes(emulator, tmp_path, key, "--ignore-state") == ""


def test_no_prune_overrides_the_files_prune(emulator: RunningEmulator, tmp_path: Path) -> None:
    key = "no-prune"
    write(tmp_path / "secrets.yaml", THREE)
    apply_ok(emulator, tmp_path, key)
    write(tmp_path / "secrets.yaml", WITHOUT_B)
    assert plan_deletes(emulator, tmp_path, key) == "b"
    assert plan_deletes(emulator, tmp_path, key, "--no-prune") == ""
