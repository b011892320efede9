"""Drift end to end: out-of-band edits through the API are reported, restored, and then clean."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_plan_apply import BASE, CANARIES, emu, reconciler, secrets_of, write
from tests.support.emulator import RunningEmulator

pytestmark = pytest.mark.e2e
KEY = "e2e-key"
__all__ = ["emu"]  # the fixture, shared with test_plan_apply


def patch(emu: RunningEmulator, secret_id: str, body: dict[str, object]) -> None:
    response = httpx.patch(
        f"{emu.url}/api/v1/secrets/{secret_id}",
        json=body,
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=10,
    )
    response.raise_for_status()


def by_name(emu: RunningEmulator) -> dict[str, dict[str, object]]:
    """Each secret as the API shows it (display included), by name."""
    found: dict[str, dict[str, object]] = {}
    for stored in secrets_of(emu):
        response = httpx.get(
            f"{emu.url}/api/v1/secrets/{stored['secret_id']}",
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=10,
        )
        response.raise_for_status()
        found[str(stored["secret_name"])] = response.json()
    return found


def applied(emu: RunningEmulator, tmp: Path, *extra: str) -> None:
    result = reconciler("apply", "secrets.yaml", "--auto-approve", *extra, url=emu.url, cwd=tmp)
    assert result.returncode == 0, result.stdout + result.stderr


def test_value_rotated_by_hand_is_drift_and_apply_restores_it(emu: RunningEmulator, tmp_path: Path) -> None:
    write(tmp_path / "secrets.yaml", BASE)
    applied(emu, tmp_path)
    for _ in range(2):  # no perpetual diff
        assert (
            reconciler("plan", "secrets.yaml", "--detailed-exitcode", url=emu.url, cwd=tmp_path).returncode
            == 0
        )
    assert reconciler("drift", "secrets.yaml", url=emu.url, cwd=tmp_path).returncode == 0

    gh = by_name(emu)["github-token"]
    patch(emu, str(gh["secret_id"]), {"secret_value": "ghp_rotatedByHandInTheWebPage9"})
    drift = reconciler("drift", "secrets.yaml", "--format", "json", url=emu.url, cwd=tmp_path)
    assert drift.returncode == 2
    items = json.loads(drift.stdout)["drift"]
    assert [(i["secret_name"], i["verdict"]) for i in items] == [("github-token", "remote_value_changed")]
    assert "ghp_rotatedByHand" not in drift.stdout

    applied(emu, tmp_path)
    assert reconciler("drift", "secrets.yaml", url=emu.url, cwd=tmp_path).returncode == 0
    assert by_name(emu)["github-token"]["display"] == "ghp_****0001"


def test_rewrite_with_same_visible_ends_needs_heal(emu: RunningEmulator, tmp_path: Path) -> None:
    write(tmp_path / "secrets.yaml", BASE)
    applied(emu, tmp_path)
    gh = by_name(emu)["github-token"]
    same_ends = CANARIES["GITHUB_TOKEN"][:4] + "XXXXXXXXXXXXXXXXXXXXXX" + CANARIES["GITHUB_TOKEN"][-4:]
    patch(emu, str(gh["secret_id"]), {"secret_value": same_ends})

    drift = reconciler("drift", "secrets.yaml", url=emu.url, cwd=tmp_path)
    assert drift.returncode == 2 and "github-token" in drift.stdout and "remote_written" in drift.stdout
    # Without --heal the unverified value is reported, not re-sent, and stays unverified.
    plan = reconciler("plan", "secrets.yaml", "--format", "json", url=emu.url, cwd=tmp_path)
    assert json.loads(plan.stdout)["summary"]["update"] == 0
    applied(emu, tmp_path)
    assert reconciler("drift", "secrets.yaml", url=emu.url, cwd=tmp_path).returncode == 2

    applied(emu, tmp_path, "--heal")
    assert reconciler("drift", "secrets.yaml", url=emu.url, cwd=tmp_path).returncode == 0


def test_field_edited_by_hand_is_a_one_field_patch(emu: RunningEmulator, tmp_path: Path) -> None:
    write(tmp_path / "secrets.yaml", BASE)
    applied(emu, tmp_path)
    linear = by_name(emu)["linear-key"]
    patch(emu, str(linear["secret_id"]), {"tool_arg": "edited_by_hand"})

    drift = reconciler("drift", "secrets.yaml", "--format", "json", url=emu.url, cwd=tmp_path)
    assert drift.returncode == 2
    verdicts = {i["verdict"] for i in json.loads(drift.stdout)["drift"]}
    assert "fields_changed" in verdicts
    plan = json.loads(
        reconciler("plan", "secrets.yaml", "--format", "json", url=emu.url, cwd=tmp_path).stdout
    )
    (change,) = plan["changes"]
    assert change["patch"] == {"tool_arg": "api_token"}


def test_secret_deleted_by_hand_is_reported_and_recreated(emu: RunningEmulator, tmp_path: Path) -> None:
    write(tmp_path / "secrets.yaml", BASE)
    applied(emu, tmp_path)
    gh = by_name(emu)["github-token"]
    httpx.delete(f"{emu.url}/api/v1/secrets/{gh['secret_id']}", headers={"Authorization": f"Bearer {KEY}"})
    drift = reconciler("drift", "secrets.yaml", url=emu.url, cwd=tmp_path)
    assert drift.returncode == 2 and "deleted_remotely" in drift.stdout
    applied(emu, tmp_path)
    assert reconciler("drift", "secrets.yaml", url=emu.url, cwd=tmp_path).returncode == 0


def test_adopt_records_a_baseline_without_writing(emu: RunningEmulator, tmp_path: Path) -> None:
    for name, var in (("github-token", "GITHUB_TOKEN"), ("linear-key", "LINEAR_TOKEN")):
        body = {
            "secret_name": name,
            "secret_value": CANARIES[var],
            "tool_name": f"agno__{name.split('-')[0]}__*",
        }
        body.update({"tool_arg": "access_token" if var == "GITHUB_TOKEN" else "api_token"})
        body.update({"is_default_for_tool": var == "GITHUB_TOKEN"})
        httpx.post(
            f"{emu.url}/api/v1/secrets/", json=body, headers={"Authorization": f"Bearer {KEY}"}
        ).raise_for_status()
    write(tmp_path / "secrets.yaml", BASE)
    before = len(emu.requests())
    applied(emu, tmp_path, "--adopt")
    writes = [r for r in emu.requests()[before:] if r["method"] in ("POST", "PATCH", "DELETE")]
    assert writes == []
    state = json.loads((tmp_path / ".reconciler" / "state.json").read_text())
    assert sorted(e["secret_name"] for e in state["secrets"].values()) == ["github-token", "linear-key"]
    again = reconciler("apply", "secrets.yaml", "--adopt", url=emu.url, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "Nothing to adopt: every secret in the file already has a baseline" in again.stdout
    # With a baseline, a by-hand rotation is now drift.
    patch(
        emu, str(by_name(emu)["linear-key"]["secret_id"]), {"secret_value": "lin_changedByHand000000000077"}
    )
    assert reconciler("drift", "secrets.yaml", url=emu.url, cwd=tmp_path).returncode == 2


def test_adopt_is_refused_when_the_display_disagrees(emu: RunningEmulator, tmp_path: Path) -> None:
    body = {"secret_name": "github-token", "secret_value": "ghp_somethingElseEntirely77"}
    httpx.post(
        f"{emu.url}/api/v1/secrets/", json=body, headers={"Authorization": f"Bearer {KEY}"}
    ).raise_for_status()
    write(tmp_path / "secrets.yaml", BASE)
    before = len(emu.requests())
    result = reconciler("apply", "secrets.yaml", "--adopt", url=emu.url, cwd=tmp_path)
    assert result.returncode == 1
    # Adopting only records baselines: the plan's writes are listed and nothing is sent.
    assert "--adopt only records baselines and writes nothing, but this plan writes:" in result.stderr
    assert re.search(r"update github-token \(.*secret_value\): its display shows a value", result.stderr)
    assert "create linear-key" in result.stderr
    assert [r for r in emu.requests()[before:] if r["method"] != "GET"] == []


def test_drift_reports_even_when_prune_would_be_refused(emu: RunningEmulator, tmp_path: Path) -> None:
    """The delete guards protect apply; a read-only scheduled drift run must not fail on them."""
    for i in range(12):
        body = {"secret_name": f"unlisted-{i}", "secret_value": "some-value-0000"}
        httpx.post(
            f"{emu.url}/api/v1/secrets/", json=body, headers={"Authorization": f"Bearer {KEY}"}
        ).raise_for_status()
    write(tmp_path / "secrets.yaml", "prune: true\n" + BASE.lstrip())
    applied(emu, tmp_path, "--no-prune")
    assert reconciler("plan", "secrets.yaml", url=emu.url, cwd=tmp_path).returncode == 1  # 12 > 10 deletes
    assert reconciler("drift", "secrets.yaml", url=emu.url, cwd=tmp_path).returncode == 0
