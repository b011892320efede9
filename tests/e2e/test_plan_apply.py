"""plan and apply end to end: a real emulator process, the reconciler command in a subprocess."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_faults import stored
from tests.support import cli
from tests.support.emulator import RunningEmulator, start_emulator

pytestmark = pytest.mark.e2e

CANARIES = {
    "GITHUB_TOKEN": "ghp_CANARYgithub0000000000000001",
    "LINEAR_TOKEN": "lin_CANARYlinear000000000000002",
    "SLACK_TOKEN": "xoxb-CANARYslack0000000000003",
}
# What the emulator would display for the canaries: these must never be printed either.
DISPLAYS = ["ghp_****0001", "lin_****0002", "xoxb****0003"]


@pytest.fixture
def emu(emulator: RunningEmulator) -> RunningEmulator:
    """The session's emulator (--inspect), emptied before each test."""
    return emulator


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def reconciler(
    *args: str, url: str, cwd: Path, key: str = "e2e-key", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    extra = {**CANARIES, "IOINTELLIGENCE_API_KEY": key, "RECONCILER_API_URL": url, **(env or {})}
    return cli.run(*args, cwd=cwd, env=extra, secrets=[*CANARIES.values(), *DISPLAYS])


def files_hold_no_secret(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file() and path.suffix != ".db" and "-wal" not in path.name:
            text = path.read_bytes().decode("utf-8", errors="replace")
            for secret in [*CANARIES.values(), *DISPLAYS]:
                assert secret not in text, f"{path} holds a secret"


BASE = """
version: 1
secrets:
  - secret_name: github-token
    secret_value: ${GITHUB_TOKEN}
    tool_name: "agno__github__*"
    tool_arg: access_token
    is_default_for_tool: true
  - secret_name: linear-key
    secret_value: ${LINEAR_TOKEN}
    tool_name: "agno__linear__*"
    tool_arg: api_token
"""


def secrets_of(emu: RunningEmulator, key: str = "e2e-key") -> list[dict[str, Any]]:
    """The account's secrets as the emulator stored them, whatever list style it serves."""
    return [{"secret_id": s.secret_id, "secret_name": s.secret_name} for s in stored(emu.db_path, key)]


def test_create_then_no_changes_then_field_update_patches_only_that_field(
    emu: RunningEmulator, tmp_path: Path
) -> None:
    write(tmp_path / "secrets.yaml", BASE)
    first = reconciler("plan", "secrets.yaml", "--detailed-exitcode", url=emu.url, cwd=tmp_path)
    assert first.returncode == 2
    assert "+ create github-token" in first.stdout and "Plan: 2 to create" in first.stdout

    applied = reconciler("apply", "secrets.yaml", "--auto-approve", url=emu.url, cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr
    assert "2 succeeded, 0 failed" in applied.stdout

    again = reconciler("plan", "secrets.yaml", "--detailed-exitcode", url=emu.url, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes" in again.stdout
    assert (
        reconciler("plan", "secrets.yaml", "--detailed-exitcode", url=emu.url, cwd=tmp_path).returncode == 0
    )

    write(tmp_path / "secrets.yaml", BASE.replace("tool_arg: api_token", "tool_arg: token"))
    before = len(emu.requests())
    updated = reconciler("apply", "secrets.yaml", "--auto-approve", url=emu.url, cwd=tmp_path)
    assert updated.returncode == 0, updated.stderr
    patches = [r for r in emu.requests()[before:] if r["method"] == "PATCH"]
    assert len(patches) == 1
    assert patches[0]["body_keys"] == ["tool_arg"]
    files_hold_no_secret(tmp_path)


def test_rename_keeps_the_secret_id(emu: RunningEmulator, tmp_path: Path) -> None:
    write(tmp_path / "secrets.yaml", BASE)
    assert reconciler("apply", "secrets.yaml", "--auto-approve", url=emu.url, cwd=tmp_path).returncode == 0
    ids = {s["secret_name"]: s["secret_id"] for s in secrets_of(emu)}
    write(
        tmp_path / "secrets.yaml",
        BASE.replace("secret_name: linear-key", "secret_name: linear\n    previous_names: [linear-key]"),
    )
    plan = reconciler("plan", "secrets.yaml", url=emu.url, cwd=tmp_path)
    assert "rename linear-key → linear" in plan.stdout
    assert reconciler("apply", "secrets.yaml", "--auto-approve", url=emu.url, cwd=tmp_path).returncode == 0
    after = {s["secret_name"]: s["secret_id"] for s in secrets_of(emu)}
    assert after == {"github-token": ids["github-token"], "linear": ids["linear-key"]}


def test_prune_deletes_unlisted_but_not_protected(emu: RunningEmulator, tmp_path: Path) -> None:
    three = BASE + (
        "  - secret_name: slack\n    secret_value: ${SLACK_TOKEN}\n"
        "  - secret_name: keep-me\n    secret_value: ${SLACK_TOKEN}\n    protect: true\n"
    )
    write(tmp_path / "secrets.yaml", three)
    assert reconciler("apply", "secrets.yaml", "--auto-approve", url=emu.url, cwd=tmp_path).returncode == 0

    # Without prune, dropping entries deletes nothing.
    write(tmp_path / "secrets.yaml", BASE)
    assert "No changes" in reconciler("plan", "secrets.yaml", url=emu.url, cwd=tmp_path).stdout

    pruned = reconciler(
        "apply", "secrets.yaml", "--auto-approve", "--prune", "--max-deletes", "5", url=emu.url, cwd=tmp_path
    )
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    names = sorted(s["secret_name"] for s in secrets_of(emu))
    assert names == ["github-token", "keep-me", "linear-key"]


def test_wrong_key_is_401_and_exit_1(tmp_path: Path) -> None:
    emu = start_emulator("--api-key", "the-right-key", db_path=tmp_path / "auth.db")
    try:
        write(tmp_path / "secrets.yaml", BASE)
        result = reconciler("plan", "secrets.yaml", url=emu.url, cwd=tmp_path, key="wrong-key-123")
    finally:
        emu.stop()
    assert result.returncode == 1
    assert "401" in result.stderr and "IOINTELLIGENCE_API_KEY" in result.stderr
    assert "wrong-key-123" not in result.stderr + result.stdout


def test_quota_413_mid_apply_keeps_what_was_written(tmp_path: Path) -> None:
    emu = start_emulator("--quota-bytes", "120", "--inspect", db_path=tmp_path / "quota.db")
    try:
        text = "version: 1\nsecrets:\n" + "".join(
            f"  - secret_name: s{i}\n    secret_value: ${{GITHUB_TOKEN}}\n" for i in range(5)
        )
        write(tmp_path / "secrets.yaml", text)
        result = reconciler("apply", "secrets.yaml", "--auto-approve", url=emu.url, cwd=tmp_path)
        stored = secrets_of(emu)
    finally:
        emu.stop()
    assert result.returncode == 1
    assert "413" in result.stdout and "quota" in result.stdout
    assert len(stored) == 3  # 3 × (2 + 31) bytes fit in 120
    state = json.loads((tmp_path / ".reconciler" / "state.json").read_text())
    assert sorted(e["secret_name"] for e in state["secrets"].values()) == sorted(
        s["secret_name"] for s in stored
    )


def test_missing_key_is_a_clear_error_before_any_request(emu: RunningEmulator, tmp_path: Path) -> None:
    write(tmp_path / "secrets.yaml", BASE)
    before = len(emu.requests())
    result = reconciler("plan", "secrets.yaml", url=emu.url, cwd=tmp_path, key="")
    assert result.returncode == 1 and "IOINTELLIGENCE_API_KEY" in result.stderr
    assert len(emu.requests()) == before


# 260, not 250: one answer of a round size (250) to every request looks like a cap and is refused.
@pytest.mark.parametrize("style", ["paged", "offset", "cursor", "envelope", "array"])
def test_pagination_over_260_secrets(style: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp = tmp_path_factory.mktemp(style)
    text = "version: 1\nsecrets:\n" + "".join(
        f"  - secret_name: s{i:03}\n    secret_value: ${{GITHUB_TOKEN}}\n    tool_arg: a\n"
        for i in range(260)
    )
    write(tmp / "secrets.yaml", text)
    emu = start_emulator("--list-style", style, db_path=tmp / "many.db")
    try:
        applied = reconciler(
            "apply", "secrets.yaml", "--auto-approve", "--concurrency", "8", url=emu.url, cwd=tmp
        )
        assert applied.returncode == 0, applied.stdout[-2000:]
        again = reconciler("plan", "secrets.yaml", "--detailed-exitcode", url=emu.url, cwd=tmp)
        assert again.returncode == 0, again.stdout[-2000:]
        assert len(secrets_of(emu)) == 260
    finally:
        emu.stop()


def test_rate_limit_storm_converges(tmp_path: Path) -> None:
    emu = start_emulator("--rate-limit", "10", db_path=tmp_path / "rl.db")
    try:
        text = "version: 1\nsecrets:\n" + "".join(
            f"  - secret_name: s{i}\n    secret_value: ${{GITHUB_TOKEN}}\n" for i in range(12)
        )
        write(tmp_path / "secrets.yaml", text)
        result = reconciler(
            "apply", "secrets.yaml", "--auto-approve", "--concurrency", "8", url=emu.url, cwd=tmp_path
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert len(secrets_of(emu)) == 12
    finally:
        emu.stop()


def test_fail_after_rate_never_creates_twice(tmp_path: Path) -> None:
    emu = start_emulator("--fail-after-rate", "0.3", "--seed", "7", db_path=tmp_path / "fa.db")
    try:
        text = "version: 1\nsecrets:\n" + "".join(
            f"  - secret_name: s{i}\n    secret_value: ${{GITHUB_TOKEN}}\n    tool_arg: x\n"
            for i in range(15)
        )
        write(tmp_path / "secrets.yaml", text)
        for _ in range(3):
            result = reconciler("apply", "secrets.yaml", "--auto-approve", url=emu.url, cwd=tmp_path)
            if result.returncode == 0:
                break
        assert result.returncode == 0, result.stdout + result.stderr
        names = [s["secret_name"] for s in secrets_of(emu)]
    finally:
        emu.stop()
    assert sorted(names) == sorted(f"s{i}" for i in range(15))


def test_apply_without_a_terminal_needs_auto_approve(emu: RunningEmulator, tmp_path: Path) -> None:
    write(tmp_path / "secrets.yaml", BASE)
    result = reconciler("apply", "secrets.yaml", url=emu.url, cwd=tmp_path)
    assert result.returncode == 1 and "--auto-approve" in result.stderr
    assert secrets_of(emu) == []


def test_usage_errors_exit_1_not_2(emu: RunningEmulator, tmp_path: Path) -> None:
    write(tmp_path / "secrets.yaml", BASE)
    result = reconciler("plan", "secrets.yaml", "--format", "yaml", url=emu.url, cwd=tmp_path)
    assert result.returncode == 1 and "--format" in result.stderr
    assert reconciler("plan", url=emu.url, cwd=tmp_path).returncode == 1


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_every_format_of_every_command_keeps_values_out(
    emu: RunningEmulator, tmp_path: Path, fmt: str
) -> None:
    """The canary: values and displays never reach stdout, stderr or any file (checked in reconciler())."""
    write(tmp_path / "secrets.yaml", BASE)
    assert reconciler("validate", "secrets.yaml", url=emu.url, cwd=tmp_path).returncode == 0
    assert (
        reconciler("plan", "secrets.yaml", "--format", fmt, "-vv", url=emu.url, cwd=tmp_path).returncode == 0
    )
    applied = reconciler(
        "apply", "secrets.yaml", "--auto-approve", "--format", fmt, "-vv", url=emu.url, cwd=tmp_path
    )
    assert applied.returncode == 0
    rotated = {"GITHUB_TOKEN": "ghp_CANARYrotated000000000000009"}
    # A rotated value is planned as a (sensitive) change, and applied, without printing either value.
    plan = reconciler("plan", "secrets.yaml", "--format", fmt, url=emu.url, cwd=tmp_path, env=rotated)
    assert "ghp_CANARYrotated" not in plan.stdout + plan.stderr
    assert "(sensitive)" in plan.stdout
    assert (
        reconciler("drift", "secrets.yaml", "--format", fmt, "-vv", url=emu.url, cwd=tmp_path).returncode == 0
    )
    files_hold_no_secret(tmp_path)
