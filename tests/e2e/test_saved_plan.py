"""The pull-request flow end to end: saved plans applied exactly or refused, Markdown, job summaries."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.state import state_key
from tests.e2e.test_plan_apply import BASE, CANARIES, DISPLAYS, emu, reconciler, secrets_of, write
from tests.support.emulator import RunningEmulator

pytestmark = pytest.mark.e2e
__all__ = ["emu"]  # the fixture, shared with test_plan_apply
UPDATED = BASE.replace("tool_arg: api_token", "tool_arg: token")


def writes_since(emu: RunningEmulator, before: int) -> list[dict[str, object]]:
    return [r for r in emu.requests()[before:] if r["method"] in ("POST", "PATCH", "DELETE")]


def test_saved_plan_is_applied_exactly_once(emu: RunningEmulator, tmp_path: Path) -> None:
    write(tmp_path / "secrets.yaml", BASE)
    saved = reconciler("plan", "secrets.yaml", "--out", "plan.json", url=emu.url, cwd=tmp_path)
    assert saved.returncode == 0 and "reconciler apply plan.json" in saved.stderr
    text = (tmp_path / "plan.json").read_text()
    assert json.loads(text)["format_version"] == "1"
    assert all(secret not in text for secret in [*CANARIES.values(), *DISPLAYS])

    applied = reconciler("apply", "plan.json", "--auto-approve", url=emu.url, cwd=tmp_path)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert sorted(s["secret_name"] for s in secrets_of(emu)) == ["github-token", "linear-key"]

    before = len(emu.requests())
    again = reconciler("apply", "plan.json", "--auto-approve", url=emu.url, cwd=tmp_path)
    assert again.returncode == 1 and "already applied" in again.stderr
    assert writes_since(emu, before) == []


def test_stale_plan_is_refused_before_any_write(emu: RunningEmulator, tmp_path: Path) -> None:
    write(tmp_path / "secrets.yaml", BASE)
    assert reconciler("apply", "secrets.yaml", "--auto-approve", url=emu.url, cwd=tmp_path).returncode == 0
    write(tmp_path / "secrets.yaml", UPDATED)
    assert reconciler("plan", "secrets.yaml", "--out", "plan.json", url=emu.url, cwd=tmp_path).returncode == 0

    linear = next(s for s in secrets_of(emu) if s["secret_name"] == "linear-key")
    httpx.patch(
        f"{emu.url}/api/v1/secrets/{linear['secret_id']}",
        json={"tool_name": "edited-meanwhile"},
        headers={"Authorization": "Bearer e2e-key"},
    ).raise_for_status()
    before = len(emu.requests())
    result = reconciler("apply", "plan.json", "--auto-approve", url=emu.url, cwd=tmp_path)
    assert result.returncode == 1
    assert "stale plan" in result.stderr and "linear-key" in result.stderr and "Plan again" in result.stderr
    assert writes_since(emu, before) == []


def test_changed_value_or_file_refuses_the_plan(emu: RunningEmulator, tmp_path: Path) -> None:
    write(tmp_path / "secrets.yaml", BASE)
    assert reconciler("plan", "secrets.yaml", "--out", "plan.json", url=emu.url, cwd=tmp_path).returncode == 0
    before = len(emu.requests())
    rotated = {"GITHUB_TOKEN": "ghp_CANARYotherValue0000000000008"}
    result = reconciler("apply", "plan.json", "--auto-approve", url=emu.url, cwd=tmp_path, env=rotated)
    assert result.returncode == 1 and "github-token" in result.stderr and "fingerprint" in result.stderr
    assert "ghp_CANARYotherValue" not in result.stderr

    write(tmp_path / "secrets.yaml", UPDATED)
    result = reconciler("apply", "plan.json", "--auto-approve", url=emu.url, cwd=tmp_path)
    assert result.returncode == 1 and "changed since the plan" in result.stderr
    assert writes_since(emu, before) == []


def test_markdown_over_the_comment_limit_is_cut_with_a_pointer(emu: RunningEmulator, tmp_path: Path) -> None:
    entries = "".join(
        f"  - secret_name: a-rather-long-secret-name-for-the-comment-{i:04}\n"
        f"    secret_value: ${{GITHUB_TOKEN}}\n    tool_name: agno__github__list_issues_{i}\n"
        for i in range(700)
    )
    write(tmp_path / "secrets.yaml", "version: 1\nsecrets:\n" + entries)
    result = reconciler("plan", "secrets.yaml", "--format", "markdown", url=emu.url, cwd=tmp_path)
    assert result.returncode == 0
    assert len(result.stdout) < 65_000
    lines = result.stdout.splitlines()
    assert lines[0].startswith("#### reconciler plan for <code>secrets&#46;yaml</code>")
    assert "700" in lines[2]
    assert "left out" in result.stdout.lower() and "--format text" in result.stdout


def test_github_step_summary_is_appended(emu: RunningEmulator, tmp_path: Path) -> None:
    write(tmp_path / "secrets.yaml", BASE)
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    env = {"GITHUB_STEP_SUMMARY": str(summary)}
    plan = reconciler("plan", "secrets.yaml", url=emu.url, cwd=tmp_path, env=env)
    assert plan.returncode == 0 and plan.stdout.startswith("+ create")  # normal output unchanged
    reconciler("apply", "secrets.yaml", "--auto-approve", url=emu.url, cwd=tmp_path, env=env)
    reconciler("drift", "secrets.yaml", url=emu.url, cwd=tmp_path, env=env)
    text = summary.read_text()
    assert text.startswith("# earlier step\n")
    assert "<details>" in text and "2 to create" in text.replace("**", "")
    assert text.count("\n") > 5
    assert all(secret not in text for secret in [*CANARIES.values(), *DISPLAYS])


def edit_plan(path: Path, change: Callable[[dict[str, Any]], None], *, resign: bool) -> None:
    payload = json.loads(path.read_text())
    change(payload)
    if resign:
        key = state_key({}, api_key="e2e-key")  # the tests' key, derived as reconciler derives it
        payload["signature"] = key.digest(
            "plan:" + json.dumps({k: v for k, v in payload.items() if k != "signature"}, sort_keys=True)
        )
    path.write_text(json.dumps(payload))


def test_an_edited_plan_is_refused_before_any_write(emu: RunningEmulator, tmp_path: Path) -> None:
    write(tmp_path / "secrets.yaml", BASE)
    assert reconciler("plan", "secrets.yaml", "--out", "plan.json", url=emu.url, cwd=tmp_path).returncode == 0

    def retarget(payload: dict[str, Any]) -> None:
        payload["changes"][0]["patch"]["tool_name"] = "agno__attacker__*"

    edit_plan(tmp_path / "plan.json", retarget, resign=False)
    before = len(emu.requests())
    result = reconciler("apply", "plan.json", "--auto-approve", url=emu.url, cwd=tmp_path)
    assert result.returncode == 1 and "signature does not match" in result.stderr
    assert writes_since(emu, before) == []


def test_a_422_from_the_server_names_the_field_and_the_others_go_on(
    emu: RunningEmulator, tmp_path: Path
) -> None:
    """The loader refuses everything the API would, so a 422 needs a plan written by something else:
    here a correctly signed plan whose first create carries an empty tool_arg."""
    write(tmp_path / "secrets.yaml", BASE)
    assert reconciler("plan", "secrets.yaml", "--out", "plan.json", url=emu.url, cwd=tmp_path).returncode == 0

    def empty_arg(payload: dict[str, Any]) -> None:
        payload["changes"][0]["patch"]["tool_arg"] = ""

    edit_plan(tmp_path / "plan.json", empty_arg, resign=True)
    result = reconciler("apply", "plan.json", "--auto-approve", url=emu.url, cwd=tmp_path)
    assert result.returncode == 1
    assert "422" in result.stdout and "tool_arg" in result.stdout
    assert "1 succeeded, 1 failed" in result.stdout
    assert [s["secret_name"] for s in secrets_of(emu)] == ["linear-key"]
