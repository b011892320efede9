"""A saved plan whose assumptions no longer hold, in names or in the state, is refused as stale before
any write; a pinned rename into a name another secret holds is a conflict at plan and at apply time."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_plan_apply import emu, reconciler, secrets_of, write
from tests.e2e.test_saved_plan import writes_since
from tests.support.emulator import RunningEmulator

pytestmark = pytest.mark.e2e
__all__ = ["emu"]  # the fixture, shared with test_plan_apply
AUTH = {"Authorization": "Bearer e2e-key"}


def create(emu: RunningEmulator, name: str) -> str:
    response = httpx.post(
        f"{emu.url}/api/v1/secrets/",
        json={"secret_name": name, "secret_value": "by-hand-value"},
        headers=AUTH,
    )
    response.raise_for_status()
    secret_id: str = response.json()["secret_id"]
    return secret_id


def names(emu: RunningEmulator) -> list[str]:
    return sorted(s["secret_name"] for s in secrets_of(emu))


def refused_as_stale(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 1, result.stdout
    stderr = result.stderr
    assert "stale plan" in stderr and "nothing was written" in stderr, stderr
    for word in words:
        assert word in stderr, (word, stderr)


def test_a_saved_rename_into_a_name_taken_since_is_stale(emu: RunningEmulator, tmp_path: Path) -> None:
    write(
        tmp_path / "secrets.yaml",
        "version: 1\nsecrets:\n  - secret_name: old-name\n    secret_value: ${GITHUB_TOKEN}\n",
    )
    assert reconciler("apply", "secrets.yaml", "--auto-approve", url=emu.url, cwd=tmp_path).returncode == 0
    write(
        tmp_path / "secrets.yaml",
        "version: 1\nsecrets:\n  - secret_name: new-name\n    secret_value: ${GITHUB_TOKEN}\n"
        "    previous_names: [old-name]\n",
    )
    planned = reconciler("plan", "secrets.yaml", "--out", "plan.json", url=emu.url, cwd=tmp_path)
    assert planned.returncode == 0 and "rename" in planned.stdout

    taken = create(emu, "new-name")
    before = len(emu.requests())
    result = reconciler("apply", "plan.json", "--auto-approve", url=emu.url, cwd=tmp_path)
    refused_as_stale(result, "old-name", taken, "took the name since the plan")
    assert writes_since(emu, before) == []
    assert names(emu) == ["new-name", "old-name"]


def test_a_saved_delete_of_a_secret_forgotten_since_is_stale(emu: RunningEmulator, tmp_path: Path) -> None:
    write(
        tmp_path / "secrets.yaml",
        "version: 1\nprune: true\nsecrets:\n  - secret_name: keep\n    secret_value: ${GITHUB_TOKEN}\n"
        "  - secret_name: going\n    secret_value: ${LINEAR_TOKEN}\n",
    )
    assert reconciler("apply", "secrets.yaml", "--auto-approve", url=emu.url, cwd=tmp_path).returncode == 0
    write(
        tmp_path / "secrets.yaml",
        "version: 1\nprune: true\nsecrets:\n  - secret_name: keep\n    secret_value: ${GITHUB_TOKEN}\n",
    )
    planned = reconciler("plan", "secrets.yaml", "--out", "plan.json", url=emu.url, cwd=tmp_path)
    assert planned.returncode == 0 and "- delete going" in planned.stdout

    forgot = reconciler("forget", "secrets.yaml", "going", url=emu.url, cwd=tmp_path)
    assert forgot.returncode == 0, forgot.stderr
    before = len(emu.requests())
    result = reconciler("apply", "plan.json", "--auto-approve", url=emu.url, cwd=tmp_path)
    refused_as_stale(result, "going (forgotten since the plan")
    assert writes_since(emu, before) == []
    assert names(emu) == ["going", "keep"]
    # Without the state's fingerprints, its guards still hold.
    result = reconciler("apply", "plan.json", "--auto-approve", "--ignore-state", url=emu.url, cwd=tmp_path)
    assert result.returncode == 1 and names(emu) == ["going", "keep"]


def test_a_pinned_rename_into_a_held_name_is_a_conflict_at_plan_and_apply_time(
    emu: RunningEmulator, tmp_path: Path
) -> None:
    pinned = create(emu, "first")
    pinned_file = (
        f"version: 1\nsecrets:\n  - secret_name: second\n    secret_value: ${{GITHUB_TOKEN}}\n"
        f"    secret_id: {pinned}\n"
    )
    write(tmp_path / "secrets.yaml", pinned_file)
    planned = reconciler("plan", "secrets.yaml", "--out", "plan.json", url=emu.url, cwd=tmp_path)
    assert planned.returncode == 0 and "rename" in planned.stdout

    holder = create(emu, "second")
    before = len(emu.requests())
    for args in (("plan", "secrets.yaml"), ("apply", "secrets.yaml", "--auto-approve")):
        result = reconciler(*args, url=emu.url, cwd=tmp_path)
        assert result.returncode == 1, result.stdout
        assert f"pinned to secret_id {pinned}" in result.stderr and holder in result.stderr
        assert "two secrets with one name" in result.stderr
    refused_as_stale(reconciler("apply", "plan.json", "--auto-approve", url=emu.url, cwd=tmp_path), holder)
    assert writes_since(emu, before) == []
    assert names(emu) == ["first", "second"]
